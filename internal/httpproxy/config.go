package httpproxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Failure policies: what the proxy does with a call whose event cannot be
// made durable.
const (
	// FailClosed refuses the call (503) rather than let it through
	// unrecorded. The default.
	FailClosed = "closed"
	// FailOpen forwards the call and counts the lost event in
	// cairn_http_proxy_events_lost_total.
	FailOpen = "open"
)

// What happens to requests no route matches.
const (
	UnmatchedRecord = "record" // forwarded and recorded as UnmatchedEventName
	UnmatchedDeny   = "deny"   // refused with 403 and recorded
)

// Identity kinds.
const (
	IdentityNone       = ""
	IdentityJWT        = "jwt"
	IdentityBasic      = "basic"
	IdentityClientCert = "client_cert"
	IdentityHeader     = "header"
)

// Defaults.
const (
	DefaultRegion             = "us-east-1"
	DefaultUnmatchedEventName = "UnmatchedRequest"
	DefaultBodyLimit          = 16 << 10
	// MaxBodyLimit bounds BodyLimit so that a record (a recorded body, a
	// query of up to 64 KiB, an error message read from the body) always
	// fits the journal's 1 MiB entry: a larger one could not be recorded,
	// and under fail-closed every such call would be answered 503 after
	// the upstream had acted on it.
	MaxBodyLimit           = 256 << 10
	DefaultIdentityHeader  = "X-Forwarded-User"
	DefaultUsernameClaim   = "sub"
	DefaultJWKSMinRefresh  = 30 * time.Second
	DefaultJWKSRefresh     = time.Hour
	DefaultLeeway          = 30 * time.Second
	DefaultUpstreamTimeout = 60 * time.Second
)

// Config declares one proxy: where it listens, what it forwards to and how
// each call becomes a CloudTrail event.
type Config struct {
	// Listen is host:port; an empty host means 127.0.0.1, so exposing the
	// proxy beyond the machine takes an explicit address.
	Listen string
	// Upstream is the http or https URL of the API behind the proxy; a
	// path in it prefixes every forwarded path.
	Upstream string
	// Region is the events' awsRegion.
	Region string
	// EventSource is the eventSource of routes that do not set their own
	// and of unmatched requests.
	EventSource string
	// FailurePolicy is FailClosed (default) or FailOpen.
	FailurePolicy string
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For
	// (and identity header) the proxy believes.
	TrustedProxies []string
	// TLSCert and TLSKey make the listener serve HTTPS.
	TLSCert, TLSKey string
	// Unmatched is UnmatchedRecord (default) or UnmatchedDeny.
	Unmatched string
	// UnmatchedEventName names the events of unmatched requests.
	UnmatchedEventName string
	// RecordRequestBody adds JSON object request bodies of at most
	// BodyLimit bytes to requestParameters under "body".
	RecordRequestBody bool
	// BodyLimit caps the bytes of a request body recorded and of an error
	// response body read for ErrorCodeField; zero means DefaultBodyLimit.
	BodyLimit int64
	// ErrorCodeField and ErrorMessageField are dotted paths ("error.code")
	// into a JSON error response whose values become errorCode and
	// errorMessage instead of those derived from the status.
	ErrorCodeField, ErrorMessageField string
	// RedactParameters are query parameters (and top-level members of a
	// recorded body) whose values are recorded as
	// HIDDEN_DUE_TO_SECURITY_REASONS; "access_token" (RFC 6750's query
	// form of a bearer token) always is.
	RedactParameters []string
	// UpstreamTimeout bounds the wait for the upstream's response headers;
	// zero means DefaultUpstreamTimeout, negative means no limit.
	UpstreamTimeout time.Duration
	// UpstreamCA is a PEM bundle of CAs for an https upstream; empty means
	// the system's.
	UpstreamCA string
	Identity   Identity
	Routes     []Route
}

// Route maps a method and path pattern to the event recorded.
type Route struct {
	// Method is an HTTP method, or "" / "*" for any.
	Method string
	// Path is a pattern: literal segments, {name} for one segment, a final
	// {name...} for the rest.
	Path string
	// EventSource overrides Config.EventSource.
	EventSource string
	EventName   string
	ReadOnly    bool
	// DataEvent records the calls as data events (managementEvent false,
	// eventCategory Data), which the event history leaves out unless the
	// server keeps data events there.
	DataEvent bool
	// ResourceType and ResourceARN (a template with the path's wildcards,
	// {region} and {account}) fill the event's resources[].
	ResourceType, ResourceARN string
	// ResponseHeaders are response headers recorded in responseElements
	// (responseElements is null otherwise).
	ResponseHeaders []string
}

// Identity says how the proxy learns who is calling.
type Identity struct {
	// Kind is IdentityNone (every call anonymous), IdentityJWT,
	// IdentityBasic, IdentityClientCert or IdentityHeader.
	Kind string
	// AllowAnonymous forwards calls without valid credentials as
	// anonymous instead of refusing them with 401 (config: require =
	// false).
	AllowAnonymous bool

	// JWT: keys from JWKSFile or JWKSURL; tokens must carry Issuer and one
	// of Audience.
	JWKSFile, JWKSURL string
	Issuer            string
	Audience          []string
	// UsernameClaim is the claim that becomes userName; default "sub".
	UsernameClaim string
	// Leeway tolerates clock skew on exp/nbf/iat; default 30s.
	Leeway time.Duration
	// JWKSMinRefresh is the least time between two refetches caused by
	// tokens with unknown key IDs (default 30s), so forged kids cannot make
	// the proxy hammer the identity provider.
	JWKSMinRefresh time.Duration
	// JWKSRefresh is how often the key set is refetched anyway, so removed
	// keys stop being accepted (default 1h).
	JWKSRefresh time.Duration

	// Basic: users and their bcrypt hashes.
	Realm string
	Users []BasicUser

	// ClientCert: PEM bundle of the CAs client certificates must chain to.
	ClientCA string

	// Header: the header a trusted gateway sets to the caller's name;
	// default X-Forwarded-User.
	Header string
}

// BasicUser is one HTTP basic-auth user.
type BasicUser struct {
	Name   string
	Bcrypt string
}

// route is a compiled Route.
type route struct {
	Route
	method string
	pat    *pattern
	arn    *template
}

// compiled is a validated Config.
type compiled struct {
	cfg      Config
	listen   string
	upstream *url.URL
	trusted  []netip.Prefix
	routes   []*route
	// redact are the parameter names whose values are hidden, lower-cased.
	redact map[string]bool
}

// compile validates cfg, fills defaults and builds the route table; every
// error names the setting at fault.
func compile(cfg Config) (*compiled, error) {
	c := &compiled{}
	if cfg.Listen == "" {
		return nil, errors.New("listen: required (host:port)")
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	c.listen = net.JoinHostPort(host, port)
	if cfg.Upstream == "" {
		return nil, errors.New("upstream: required (http or https URL)")
	}
	u, err := url.Parse(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", cfg.Upstream, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: want an http:// or https:// URL with a host", cfg.Upstream)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("upstream %q: no query, fragment or user info allowed", cfg.Upstream)
	}
	c.upstream = u
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	switch cfg.FailurePolicy {
	case "":
		cfg.FailurePolicy = FailClosed
	case FailClosed, FailOpen:
	default:
		return nil, fmt.Errorf("failure_policy %q: want %q or %q", cfg.FailurePolicy, FailClosed, FailOpen)
	}
	switch cfg.Unmatched {
	case "":
		cfg.Unmatched = UnmatchedRecord
	case UnmatchedRecord, UnmatchedDeny:
	default:
		return nil, fmt.Errorf("unmatched %q: want %q or %q", cfg.Unmatched, UnmatchedRecord, UnmatchedDeny)
	}
	if cfg.UnmatchedEventName == "" {
		cfg.UnmatchedEventName = DefaultUnmatchedEventName
	}
	if cfg.BodyLimit < 0 || cfg.BodyLimit > MaxBodyLimit {
		return nil, fmt.Errorf("body_limit %d: want at most %d (a record must fit the journal's 1 MiB entry)", cfg.BodyLimit, MaxBodyLimit)
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	c.redact = map[string]bool{"access_token": true}
	for _, k := range cfg.RedactParameters {
		if k == "" {
			return nil, errors.New("redact_parameters: empty name")
		}
		c.redact[strings.ToLower(k)] = true
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("tls_cert and tls_key: set both or neither")
	}
	for _, s := range cfg.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		c.trusted = append(c.trusted, p)
	}
	if err := checkIdentity(&cfg); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	for i, r := range cfg.Routes {
		cr, err := compileRoute(r, cfg.EventSource)
		if err != nil {
			return nil, fmt.Errorf("route %d (%s %s): %w", i+1, r.Method, r.Path, err)
		}
		c.routes = append(c.routes, cr)
	}
	if cfg.EventSource == "" && cfg.Unmatched == UnmatchedRecord {
		return nil, errors.New("event_source: required (the eventSource of unmatched requests, and of routes without their own)")
	}
	c.cfg = cfg
	return c, nil
}

// parsePrefix takes an address ("10.0.0.1") or a CIDR ("10.0.0.0/8").
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want an IP address or CIDR: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func compileRoute(r Route, defaultSource string) (*route, error) {
	cr := &route{Route: r}
	switch m := strings.ToUpper(r.Method); m {
	case "", "*":
	default:
		if !validToken(m) {
			return nil, fmt.Errorf("method %q: not an HTTP method", r.Method)
		}
		cr.method = m
	}
	if r.Path == "" {
		return nil, errors.New("path: required")
	}
	p, err := parsePattern(r.Path)
	if err != nil {
		return nil, err
	}
	cr.pat = p
	if r.EventName == "" {
		return nil, errors.New("event_name: required")
	}
	if r.EventSource == "" {
		if defaultSource == "" {
			return nil, errors.New("event_source: set it on the route or on the proxy")
		}
		cr.EventSource = defaultSource
	}
	if r.ResourceARN != "" {
		t, err := parseTemplate(r.ResourceARN, p.names())
		if err != nil {
			return nil, fmt.Errorf("resource_arn: %w", err)
		}
		cr.arn = t
		if r.ResourceType == "" {
			return nil, errors.New("resource_type: required with resource_arn")
		}
	} else if r.ResourceType != "" {
		return nil, errors.New("resource_arn: required with resource_type")
	}
	for _, h := range r.ResponseHeaders {
		if !validToken(h) {
			return nil, fmt.Errorf("response_headers: %q is not a header name", h)
		}
	}
	return cr, nil
}

// validToken is RFC 9110's token, what methods and header names are made of.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func checkIdentity(cfg *Config) error {
	id := &cfg.Identity
	if err := checkIdentityKeys(id); err != nil {
		return err
	}
	switch id.Kind {
	case IdentityNone:
		if id.JWKSFile != "" || id.JWKSURL != "" || len(id.Users) > 0 || id.ClientCA != "" || id.Header != "" {
			return errors.New("kind: required when identity settings are given")
		}
		id.AllowAnonymous = true
	case IdentityJWT:
		if (id.JWKSFile == "") == (id.JWKSURL == "") {
			return errors.New("jwt: set exactly one of jwks_file and jwks_url")
		}
		if id.JWKSURL != "" {
			u, err := url.Parse(id.JWKSURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("jwks_url %q: want an http:// or https:// URL", id.JWKSURL)
			}
		}
		if id.Issuer == "" {
			return errors.New("jwt: issuer required (tokens from any issuer would otherwise pass)")
		}
		if len(id.Audience) == 0 {
			return errors.New("jwt: audience required (tokens minted for other services would otherwise pass)")
		}
		if id.UsernameClaim == "" {
			id.UsernameClaim = DefaultUsernameClaim
		}
		if id.Leeway == 0 {
			id.Leeway = DefaultLeeway
		}
		if id.JWKSMinRefresh == 0 {
			id.JWKSMinRefresh = DefaultJWKSMinRefresh
		}
		if id.JWKSRefresh == 0 {
			id.JWKSRefresh = DefaultJWKSRefresh
		}
		if id.Leeway < 0 || id.JWKSMinRefresh < 0 || id.JWKSRefresh < 0 {
			return errors.New("jwt: leeway and refresh intervals must not be negative")
		}
	case IdentityBasic:
		if len(id.Users) == 0 {
			return errors.New("basic: at least one user required")
		}
		seen := map[string]bool{}
		for i, u := range id.Users {
			if u.Name == "" || strings.Contains(u.Name, ":") {
				return fmt.Errorf("basic: user %d: name must be non-empty and without ':'", i+1)
			}
			if seen[u.Name] {
				return fmt.Errorf("basic: user %q listed twice", u.Name)
			}
			seen[u.Name] = true
			if _, err := bcrypt.Cost([]byte(u.Bcrypt)); err != nil {
				return fmt.Errorf("basic: user %q: bcrypt hash: %w", u.Name, err)
			}
		}
		if id.Realm == "" {
			id.Realm = "cairn"
		}
	case IdentityClientCert:
		if id.ClientCA == "" {
			return errors.New("client_cert: client_ca required")
		}
		if cfg.TLSCert == "" {
			return errors.New("client_cert: the proxy needs tls_cert and tls_key")
		}
	case IdentityHeader:
		if id.Header == "" {
			id.Header = DefaultIdentityHeader
		}
		if !validToken(id.Header) {
			return fmt.Errorf("header %q: not a header name", id.Header)
		}
		id.Header = http.CanonicalHeaderKey(id.Header)
		if len(cfg.TrustedProxies) == 0 {
			return errors.New("header: trusted_proxies required (the header is believed only from them)")
		}
	default:
		return fmt.Errorf("kind %q: want jwt, basic, client_cert or header", id.Kind)
	}
	return nil
}

// checkIdentityKeys refuses settings of another kind than the one chosen
// (users under kind = "jwt", say), which would otherwise be silently
// ignored while the operator believes them in force.
func checkIdentityKeys(id *Identity) error {
	if id.Kind == IdentityNone {
		return nil // checked by checkIdentity
	}
	set := []struct {
		key, kind string
		given     bool
	}{
		{"jwks_file", IdentityJWT, id.JWKSFile != ""},
		{"jwks_url", IdentityJWT, id.JWKSURL != ""},
		{"issuer", IdentityJWT, id.Issuer != ""},
		{"audience", IdentityJWT, len(id.Audience) > 0},
		{"username_claim", IdentityJWT, id.UsernameClaim != ""},
		{"leeway", IdentityJWT, id.Leeway != 0},
		{"jwks_min_refresh", IdentityJWT, id.JWKSMinRefresh != 0},
		{"jwks_refresh", IdentityJWT, id.JWKSRefresh != 0},
		{"realm", IdentityBasic, id.Realm != ""},
		{"user", IdentityBasic, len(id.Users) > 0},
		{"client_ca", IdentityClientCert, id.ClientCA != ""},
		{"header", IdentityHeader, id.Header != ""},
	}
	for _, s := range set {
		if s.given && s.kind != id.Kind {
			return fmt.Errorf("%s: applies to kind %q, not %q", s.key, s.kind, id.Kind)
		}
	}
	return nil
}
