package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/s3proxy"
)

// s3ProxyKeys are the settings of an [[s3_proxy]] table; anything else is
// refused by name, so a typo cannot silently leave a setting at its default.
var s3ProxyKeys = []string{"listen", "upstream", "region", "account_id", "failure_policy",
	"trusted_proxies", "virtual_host_domain", "tls_cert", "tls_key", "identity"}

var s3IdentityKeys = []string{"access_key_id", "type", "user_name", "arn", "account_id", "principal_id"}

// parseS3Proxies builds the S3 audit proxies the config file's [[s3_proxy]]
// tables declare (see docs/s3-proxy.md).
func parseS3Proxies(raw any, _ func(string) (string, bool)) ([]capture.Capture, error) {
	ts, err := tables("s3_proxy", raw)
	if err != nil {
		return nil, err
	}
	var out []capture.Capture
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
	r := &tableReader{t: t}
	r.known(s3ProxyKeys)
	cfg.Listen = r.str("listen")
	cfg.Upstream = r.str("upstream")
	cfg.Region = r.str("region")
	cfg.AccountID = r.str("account_id")
	cfg.VirtualHostDomain = r.str("virtual_host_domain")
	cfg.TLSCert = r.str("tls_cert")
	cfg.TLSKey = r.str("tls_key")
	policy := r.str("failure_policy")
	proxies := r.list("trusted_proxies")
	if r.err != nil {
		return cfg, r.err
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
	if cfg.AccountID != "" && !awsproto.ValidAccountID(cfg.AccountID) {
		return cfg, fmt.Errorf("account_id %q: want 12 digits", cfg.AccountID)
	}
	for _, s := range proxies {
		pre, err := s3ParsePrefix(s)
		if err != nil {
			return cfg, fmt.Errorf("trusted_proxies: %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, pre)
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
	r := &tableReader{t: t}
	r.known(s3IdentityKeys)
	id.AccessKeyID, id.Type, id.UserName = r.str("access_key_id"), r.str("type"), r.str("user_name")
	id.ARN, id.AccountID, id.PrincipalID = r.str("arn"), r.str("account_id"), r.str("principal_id")
	if r.err != nil {
		return id, r.err
	}
	if id.AccessKeyID == "" {
		return id, errors.New("access_key_id is required")
	}
	if id.AccountID != "" && !awsproto.ValidAccountID(id.AccountID) {
		return id, fmt.Errorf("account_id %q: want 12 digits", id.AccountID)
	}
	if id.ARN != "" && !strings.HasPrefix(id.ARN, "arn:") {
		return id, fmt.Errorf("arn %q: want an ARN (arn:aws:iam::123456789012:user/alice)", id.ARN)
	}
	return id, nil
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
