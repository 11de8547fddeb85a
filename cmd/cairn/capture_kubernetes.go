package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/k8saudit"
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
func parseKubernetesAudit(raw any, lookupEnv func(string) (string, bool)) ([]capture.Capture, error) {
	ts, err := tables("kubernetes_audit", raw)
	if err != nil {
		return nil, err
	}
	var out []capture.Capture
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
	r := &tableReader{t: t}
	r.known(kubernetesAuditKeys)
	cfg.Path = r.str("path")
	cfg.Cluster = r.str("cluster")
	cfg.Region = r.str("region")
	cfg.EventSource = r.str("event_source")
	tokenFile, tokenEnv := r.str("token_file"), r.str("token_env")
	cfg.AllowUnauthenticated = r.bool("allow_unauthenticated", false)
	cfg.MaxBodyBytes = r.int("max_body_bytes")
	cfg.Stages = r.list("stages")
	if r.err != nil {
		return cfg, r.err
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
