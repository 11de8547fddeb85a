package main

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/cairn-audit/cairn/internal/k8saudit"
	"github.com/cairn-audit/cairn/internal/server"
)

// kubernetesAuditKeys are the keys a [kubernetes_audit] table may hold;
// anything else is refused so that a misspelt key (say "tokenfile") does
// not silently leave the webhook open or misconfigured.
var kubernetesAuditKeys = []string{"path", "cluster", "region", "event_source", "token_file", "token_env",
	"allow_unauthenticated", "stages", "max_body_bytes"}

// parseKubernetesAudit builds the audit webhooks of the config file's
// kubernetes_audit table(s), one per cluster:
//
//	[[kubernetes_audit]]
//	cluster = "prod"
//	path = "/k8s/audit/prod"
//	token_file = "/etc/cairn/k8s-audit-token"
//
// The bearer token is read from a file or an environment variable, never
// from the config file itself, so the config can be shared and logged.
func parseKubernetesAudit(raw any, lookupEnv func(string) (string, bool)) ([]server.Capture, error) {
	ts, err := tables("kubernetes_audit", raw)
	if err != nil {
		return nil, err
	}
	var out []server.Capture
	paths, clusters := map[string]int{}, map[string]int{}
	for i, t := range ts {
		cfg, err := kubernetesAuditConfig(t, lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		c, err := k8saudit.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		path, cluster := cfg.Path, cfg.Cluster
		if path == "" {
			path = k8saudit.DefaultPath
		}
		if cluster == "" {
			cluster = k8saudit.DefaultCluster
		}
		if j, dup := paths[path]; dup {
			return nil, fmt.Errorf("[%d]: path %q is already taken by [%d]", i, path, j)
		}
		if j, dup := clusters[cluster]; dup {
			return nil, fmt.Errorf("[%d]: cluster %q is already named by [%d]: give each webhook its own cluster name", i, cluster, j)
		}
		paths[path], clusters[cluster] = i, i
		out = append(out, c)
	}
	return out, nil
}

// kubernetesAuditConfig reads one table.
func kubernetesAuditConfig(t map[string]any, lookupEnv func(string) (string, bool)) (k8saudit.Config, error) {
	var cfg k8saudit.Config
	var unknown []string
	for k := range t {
		if !slices.Contains(kubernetesAuditKeys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return cfg, fmt.Errorf("unknown key(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(kubernetesAuditKeys, ", "))
	}
	var err error
	str := func(key string) string {
		v, ok := t[key]
		if !ok || err != nil {
			return ""
		}
		s, isStr := v.(string)
		if !isStr {
			err = fmt.Errorf("%s: want a string, got %T", key, v)
		}
		return s
	}
	cfg.Path = str("path")
	cfg.Cluster = str("cluster")
	cfg.Region = str("region")
	cfg.EventSource = str("event_source")
	tokenFile, tokenEnv := str("token_file"), str("token_env")
	if err != nil {
		return cfg, err
	}
	if v, ok := t["allow_unauthenticated"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return cfg, fmt.Errorf("allow_unauthenticated: want true or false, got %T", v)
		}
		cfg.AllowUnauthenticated = b
	}
	if v, ok := t["max_body_bytes"]; ok {
		n, isInt := v.(int64)
		if !isInt || n <= 0 {
			return cfg, fmt.Errorf("max_body_bytes: want a positive integer, got %v", v)
		}
		cfg.MaxBodyBytes = n
	}
	if v, ok := t["stages"]; ok {
		list, isList := v.([]any)
		if !isList {
			return cfg, fmt.Errorf("stages: want an array of strings, got %T", v)
		}
		cfg.Stages = []string{}
		for i, s := range list {
			str, isStr := s.(string)
			if !isStr {
				return cfg, fmt.Errorf("stages[%d]: want a string, got %T", i, s)
			}
			cfg.Stages = append(cfg.Stages, str)
		}
	}
	switch {
	case tokenFile != "" && tokenEnv != "":
		return cfg, fmt.Errorf("token_file and token_env are both set: choose one")
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return cfg, fmt.Errorf("token_file: %w", err)
		}
		cfg.Token = strings.TrimSpace(string(b))
		if cfg.Token == "" {
			return cfg, fmt.Errorf("token_file %s is empty", tokenFile)
		}
	case tokenEnv != "":
		v, ok := lookupEnv(tokenEnv)
		if !ok || strings.TrimSpace(v) == "" {
			return cfg, fmt.Errorf("token_env: environment variable %s is not set or empty", tokenEnv)
		}
		cfg.Token = strings.TrimSpace(v)
	case !cfg.AllowUnauthenticated:
		return cfg, fmt.Errorf("no token_file or token_env: the webhook needs a bearer token (or allow_unauthenticated = true)")
	}
	return cfg, nil
}
