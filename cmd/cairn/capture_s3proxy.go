package main

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/cairn-audit/cairn/internal/s3proxy"
	"github.com/cairn-audit/cairn/internal/server"
)

// s3ProxyKeys are the settings of an [[s3_proxy]] table; anything else is
// refused by name, so a typo cannot silently leave a setting at its default.
var s3ProxyKeys = map[string]bool{
	"listen": true, "upstream": true, "region": true, "account_id": true, "failure_policy": true,
	"trusted_proxies": true, "virtual_host_domain": true, "tls_cert": true, "tls_key": true, "identity": true,
}

var s3IdentityKeys = map[string]bool{
	"access_key_id": true, "type": true, "user_name": true, "arn": true, "account_id": true, "principal_id": true,
}

// parseS3Proxies builds the S3 audit proxies the config file's [[s3_proxy]]
// tables declare (see docs/s3-proxy.md).
func parseS3Proxies(raw any, _ func(string) (string, bool)) ([]server.Capture, error) {
	ts, err := tables("s3_proxy", raw)
	if err != nil {
		return nil, err
	}
	var out []server.Capture
	listens := map[string]int{}
	for i, t := range ts {
		cfg, err := s3ProxyConfig(t)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		listen := cfg.Listen
		if listen == "" {
			listen = "127.0.0.1:9000"
		}
		if j, dup := listens[listen]; dup && !strings.HasSuffix(listen, ":0") {
			return nil, fmt.Errorf("[%d]: listen %s is already taken by s3_proxy[%d]", i, listen, j)
		}
		listens[listen] = i
		p, err := s3proxy.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func s3ProxyConfig(t map[string]any) (s3proxy.Config, error) {
	var cfg s3proxy.Config
	if err := s3UnknownKeys(t, s3ProxyKeys); err != nil {
		return cfg, err
	}
	var err error
	str := func(key string) string {
		v, e := s3String(t, key)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	cfg.Listen = str("listen")
	cfg.Upstream = str("upstream")
	cfg.Region = str("region")
	cfg.AccountID = str("account_id")
	cfg.VirtualHostDomain = str("virtual_host_domain")
	cfg.TLSCert = str("tls_cert")
	cfg.TLSKey = str("tls_key")
	policy := str("failure_policy")
	if err != nil {
		return cfg, err
	}
	switch policy {
	case "", "closed":
	case "open":
		cfg.FailOpen = true
	default:
		return cfg, fmt.Errorf("failure_policy %q: want \"closed\" (refuse calls that cannot be recorded) or \"open\"", policy)
	}
	if cfg.Upstream == "" {
		return cfg, errors.New("upstream is required (the S3 server's URL, e.g. \"http://127.0.0.1:7070\")")
	}
	if cfg.AccountID != "" && !s3IsAccountID(cfg.AccountID) {
		return cfg, fmt.Errorf("account_id %q: want 12 digits", cfg.AccountID)
	}
	if v, ok := t["trusted_proxies"]; ok {
		list, err := s3StringList("trusted_proxies", v)
		if err != nil {
			return cfg, err
		}
		for _, s := range list {
			pre, err := s3ParsePrefix(s)
			if err != nil {
				return cfg, fmt.Errorf("trusted_proxies: %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
			}
			cfg.TrustedProxies = append(cfg.TrustedProxies, pre)
		}
	}
	if v, ok := t["identity"]; ok {
		ids, err := tables("identity", v)
		if err != nil {
			return cfg, err
		}
		for j, it := range ids {
			id, err := s3Identity(it)
			if err != nil {
				return cfg, fmt.Errorf("identity[%d]: %w", j, err)
			}
			cfg.Identities = append(cfg.Identities, id)
		}
	}
	return cfg, nil
}

func s3Identity(t map[string]any) (s3proxy.Identity, error) {
	var id s3proxy.Identity
	if err := s3UnknownKeys(t, s3IdentityKeys); err != nil {
		return id, err
	}
	fields := []struct {
		key string
		dst *string
	}{
		{"access_key_id", &id.AccessKeyID}, {"type", &id.Type}, {"user_name", &id.UserName},
		{"arn", &id.ARN}, {"account_id", &id.AccountID}, {"principal_id", &id.PrincipalID},
	}
	for _, f := range fields {
		v, err := s3String(t, f.key)
		if err != nil {
			return id, err
		}
		*f.dst = v
	}
	if id.AccessKeyID == "" {
		return id, errors.New("access_key_id is required")
	}
	if id.AccountID != "" && !s3IsAccountID(id.AccountID) {
		return id, fmt.Errorf("account_id %q: want 12 digits", id.AccountID)
	}
	if id.ARN != "" && !strings.HasPrefix(id.ARN, "arn:") {
		return id, fmt.Errorf("arn %q: want an ARN (arn:aws:iam::123456789012:user/alice)", id.ARN)
	}
	return id, nil
}

func s3UnknownKeys(t map[string]any, known map[string]bool) error {
	var bad []string
	for k := range t {
		if !known[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("unknown setting(s) %s", strings.Join(bad, ", "))
}

func s3String(t map[string]any, key string) (string, error) {
	v, ok := t[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %T", key, v)
	}
	return s, nil
}

func s3StringList(key string, v any) ([]string, error) {
	switch l := v.(type) {
	case []string:
		return l, nil
	case []any:
		out := make([]string, 0, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: want a string, got %T", key, i, e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want a list of strings, got %T", key, v)
}

func s3ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func s3IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
