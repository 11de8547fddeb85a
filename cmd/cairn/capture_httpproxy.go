package main

import (
	"fmt"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/httpproxy"
)

// The keys each part of an [[http_proxy]] table may have. Anything else is
// an error naming the key: a misspelt setting (say "failure_polcy") would
// otherwise silently leave the default in force.
var (
	httpProxyKeys = []string{"listen", "upstream", "upstream_ca", "upstream_timeout", "region", "event_source",
		"failure_policy", "trusted_proxies", "tls_cert", "tls_key", "unmatched", "unmatched_event_name",
		"record_request_body", "body_limit", "redact_parameters", "error_code_field", "error_message_field", "identity", "route"}
	httpProxyIdentityKeys = []string{"kind", "require", "jwks_file", "jwks_url", "issuer", "audience", "username_claim",
		"leeway", "jwks_min_refresh", "jwks_refresh", "realm", "user", "client_ca", "header"}
	httpProxyRouteKeys = []string{"method", "path", "event_source", "event_name", "read_only", "data_event",
		"resource_type", "resource_arn", "response_headers"}
	httpProxyUserKeys = []string{"name", "bcrypt"}
)

// parseHTTPProxies builds the HTTP audit proxies of the config file's
// [[http_proxy]] tables (see docs/http-proxy.md), e.g.
//
//	[[http_proxy]]
//	listen = "127.0.0.1:8081"
//	upstream = "http://127.0.0.1:8080"
//	event_source = "users.example.com"
//	[http_proxy.identity]
//	kind = "jwt"
//	jwks_file = "/etc/cairn/jwks.json"
//	issuer = "https://idp.example.com"
//	audience = "users-api"
//	[[http_proxy.route]]
//	method = "GET"
//	path = "/v1/users/{id}"
//	event_name = "GetUser"
//	read_only = true
//
// No setting is a secret (basic-auth users are given as bcrypt hashes), so
// nothing is read from the environment.
func parseHTTPProxies(raw any, lookupEnv func(string) (string, bool)) ([]capture.Capture, error) {
	_ = lookupEnv
	ts, err := tables("http_proxy", raw)
	if err != nil {
		return nil, err
	}
	var out []capture.Capture
	listens := map[string]int{}
	for i, t := range ts {
		cfg, err := httpProxyConfig(t)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		p, err := httpproxy.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		if j, dup := listens[p.Addr()]; dup {
			return nil, fmt.Errorf("[%d]: listen %s is already taken by [%d]", i, p.Addr(), j)
		}
		listens[p.Addr()] = i
		out = append(out, p)
	}
	return out, nil
}

// httpProxyConfig reads one [[http_proxy]] table.
func httpProxyConfig(t map[string]any) (httpproxy.Config, error) {
	var cfg httpproxy.Config
	r := &tableReader{t: t}
	r.known(httpProxyKeys)
	cfg.Listen = r.str("listen")
	cfg.Upstream = r.str("upstream")
	cfg.UpstreamCA = r.str("upstream_ca")
	cfg.UpstreamTimeout = r.duration("upstream_timeout")
	cfg.Region = r.str("region")
	cfg.EventSource = r.str("event_source")
	cfg.FailurePolicy = r.str("failure_policy")
	cfg.TrustedProxies = r.strs("trusted_proxies")
	cfg.TLSCert = r.str("tls_cert")
	cfg.TLSKey = r.str("tls_key")
	cfg.Unmatched = r.str("unmatched")
	cfg.UnmatchedEventName = r.str("unmatched_event_name")
	cfg.RecordRequestBody = r.bool("record_request_body", false)
	cfg.BodyLimit = r.int("body_limit")
	cfg.RedactParameters = r.strs("redact_parameters")
	cfg.ErrorCodeField = r.str("error_code_field")
	cfg.ErrorMessageField = r.str("error_message_field")
	if r.err != nil {
		return cfg, r.err
	}
	if v, ok := t["identity"]; ok {
		m, isTable := v.(map[string]any)
		if !isTable {
			return cfg, fmt.Errorf("identity: want a table ([http_proxy.identity]), got %T", v)
		}
		id, err := httpProxyIdentity(m)
		if err != nil {
			return cfg, fmt.Errorf("identity: %w", err)
		}
		cfg.Identity = id
	}
	if v, ok := t["route"]; ok {
		rts, err := tables("route", v)
		if err != nil {
			return cfg, err
		}
		for i, rt := range rts {
			route, err := httpProxyRoute(rt)
			if err != nil {
				return cfg, fmt.Errorf("route[%d]: %w", i, err)
			}
			cfg.Routes = append(cfg.Routes, route)
		}
	}
	return cfg, nil
}

func httpProxyIdentity(t map[string]any) (httpproxy.Identity, error) {
	var id httpproxy.Identity
	r := &tableReader{t: t}
	r.known(httpProxyIdentityKeys)
	id.Kind = r.str("kind")
	id.AllowAnonymous = !r.bool("require", true)
	id.JWKSFile = r.str("jwks_file")
	id.JWKSURL = r.str("jwks_url")
	id.Issuer = r.str("issuer")
	id.Audience = r.strs("audience")
	id.UsernameClaim = r.str("username_claim")
	id.Leeway = r.duration("leeway")
	id.JWKSMinRefresh = r.duration("jwks_min_refresh")
	id.JWKSRefresh = r.duration("jwks_refresh")
	id.Realm = r.str("realm")
	id.ClientCA = r.str("client_ca")
	id.Header = r.str("header")
	if r.err != nil {
		return id, r.err
	}
	if id.Kind == "" {
		return id, fmt.Errorf("kind: required (jwt, basic, client_cert or header)")
	}
	if v, ok := t["user"]; ok {
		us, err := tables("user", v)
		if err != nil {
			return id, err
		}
		for i, u := range us {
			ur := &tableReader{t: u}
			ur.known(httpProxyUserKeys)
			user := httpproxy.BasicUser{Name: ur.str("name"), Bcrypt: ur.str("bcrypt")}
			if ur.err != nil {
				return id, fmt.Errorf("user[%d]: %w", i, ur.err)
			}
			id.Users = append(id.Users, user)
		}
	}
	return id, nil
}

func httpProxyRoute(t map[string]any) (httpproxy.Route, error) {
	r := &tableReader{t: t}
	r.known(httpProxyRouteKeys)
	rt := httpproxy.Route{
		Method:          r.str("method"),
		Path:            r.str("path"),
		EventSource:     r.str("event_source"),
		EventName:       r.str("event_name"),
		ReadOnly:        r.bool("read_only", false),
		DataEvent:       r.bool("data_event", false),
		ResourceType:    r.str("resource_type"),
		ResourceARN:     r.str("resource_arn"),
		ResponseHeaders: r.strs("response_headers"),
	}
	return rt, r.err
}
