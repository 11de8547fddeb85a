package httpproxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-audit/cairn/internal/event"
)

// caller is who made a call, as far as the proxy could verify.
type caller struct {
	id event.UserIdentity
	// provider is the identity provider (a JWT's issuer), recorded in
	// additionalEventData.identityProvider.
	provider string
}

// anonymous is the identity of calls forwarded without credentials, the
// way CloudTrail records anonymous S3 requests.
var anonymous = caller{id: event.UserIdentity{Type: "AWSAccount", PrincipalID: "ANONYMOUS_PRINCIPAL", AccountID: "anonymous"}}

// errNoCredentials means the request carried none; other authentication
// errors mean it carried bad ones.
var errNoCredentials = errors.New("no credentials")

// authError is a refused credential. Its message is what the event's
// errorMessage says, so it never contains the credential itself.
type authError struct {
	msg string
	// user is a claimed user name known to exist, recorded on failed
	// basic-auth attempts the way CloudTrail records failed sign-ins.
	user string
}

func (e *authError) Error() string { return e.msg }

func refused(format string, args ...any) error { return &authError{msg: fmt.Sprintf(format, args...)} }

// authenticator finds the caller of a request. trusted says whether the
// connection comes from a trusted proxy.
type authenticator interface {
	authenticate(r *http.Request, trusted bool) (caller, error)
	// challenge is the WWW-Authenticate value of a 401, "" for none.
	challenge() string
}

type noAuth struct{}

func (noAuth) authenticate(*http.Request, bool) (caller, error) { return anonymous, nil }
func (noAuth) challenge() string                                { return "" }

// allowedAlgs are the signature algorithms accepted: asymmetric only, so a
// public key can never double as an HMAC secret, and never "none".
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

type jwtAuth struct {
	id   Identity
	keys *keySource
	now  func() time.Time
}

func (a *jwtAuth) challenge() string { return `Bearer realm="cairn"` }

func (a *jwtAuth) authenticate(r *http.Request, _ bool) (caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{}, errNoCredentials
	}
	scheme, raw, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return caller{}, refused("the Authorization header is not a bearer token")
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(raw), allowedAlgs)
	if err != nil {
		return caller{}, refused("the bearer token is malformed or not signed with an accepted algorithm (%s)", algNames())
	}
	hdr := tok.Headers[0]
	keys, err := a.keys.lookup(r.Context(), hdr.KeyID)
	if err != nil {
		return caller{}, refused("the token's signing keys are unavailable")
	}
	var std jwt.Claims
	var all map[string]any
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &std, &all); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		if len(keys) == 0 {
			return caller{}, refused("no key %q in the identity provider's key set", hdr.KeyID)
		}
		return caller{}, refused("the token's signature does not verify")
	}
	if std.Expiry == nil {
		return caller{}, refused("the token has no exp claim")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: a.id.Issuer, AnyAudience: a.id.Audience, Time: a.now()}, a.id.Leeway)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrExpired):
		return caller{}, refused("the token has expired")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return caller{}, refused("the token is not valid yet")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return caller{}, refused("the token's issuer is not %q", a.id.Issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return caller{}, refused("the token is not for this audience")
	default:
		return caller{}, refused("the token's claims are invalid: %v", err)
	}
	name := claimString(all[a.id.UsernameClaim])
	if name == "" {
		return caller{}, refused("the token has no %s claim", a.id.UsernameClaim)
	}
	sub := std.Subject
	if sub == "" {
		sub = name
	}
	return caller{
		id:       event.UserIdentity{Type: "WebIdentityUser", PrincipalID: std.Issuer + ":" + sub, UserName: name},
		provider: std.Issuer,
	}, nil
}

func algNames() string {
	s := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// claimString renders a string or number claim; other types do not name
// anyone.
func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// basicAuth checks HTTP basic credentials against bcrypt hashes.
// Successful checks are remembered for a while under a keyed hash, since
// bcrypt (deliberately ~50 ms) on every call would cap the proxy at a few
// dozen calls a second per core.
type basicAuth struct {
	realm string
	users map[string][]byte
	// dummy is compared against for unknown users so that their refusals
	// take as long as wrong passwords.
	dummy []byte
	key   [32]byte
	now   func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]time.Time
}

const (
	basicCacheTTL = 5 * time.Minute
	basicCacheMax = 4096
)

func newBasicAuth(id Identity, now func() time.Time) (*basicAuth, error) {
	a := &basicAuth{realm: id.Realm, users: map[string][]byte{}, now: now, cache: map[[32]byte]time.Time{}}
	for _, u := range id.Users {
		a.users[u.Name] = []byte(u.Bcrypt)
	}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, fmt.Errorf("basic auth: cache key: %w", err)
	}
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	dummy, err := bcrypt.GenerateFromPassword(pw[:], bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("basic auth: %w", err)
	}
	a.dummy = dummy
	return a, nil
}

func (a *basicAuth) challenge() string {
	return fmt.Sprintf("Basic realm=%q, charset=\"UTF-8\"", a.realm)
}

func (a *basicAuth) authenticate(r *http.Request, _ bool) (caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{}, errNoCredentials
	}
	scheme, enc, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return caller{}, refused("the Authorization header is not basic credentials")
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return caller{}, refused("the basic credentials are not valid base64")
	}
	name, pass, ok := strings.Cut(string(dec), ":")
	if !ok {
		return caller{}, refused("the basic credentials have no ':'")
	}
	hash, known := a.users[name]
	if !known {
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(pass))
		return caller{}, &authError{msg: "unknown user or wrong password", user: "HIDDEN_DUE_TO_SECURITY_REASONS"}
	}
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var k [32]byte
	copy(k[:], mac.Sum(nil))
	now := a.now()
	a.mu.Lock()
	exp, hit := a.cache[k]
	a.mu.Unlock()
	if !hit || now.After(exp) {
		if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
			return caller{}, &authError{msg: "unknown user or wrong password", user: name}
		}
		a.mu.Lock()
		if len(a.cache) >= basicCacheMax {
			clear(a.cache)
		}
		a.cache[k] = now.Add(basicCacheTTL)
		a.mu.Unlock()
	}
	return caller{id: event.UserIdentity{Type: "IAMUser", PrincipalID: name, UserName: name}}, nil
}

// certAuth names callers after their verified client certificates. The
// TLS handshake did the verifying (the listener requires the chain to end
// at client_ca when a certificate is presented).
type certAuth struct{}

func (certAuth) challenge() string { return "" }

func (certAuth) authenticate(r *http.Request, _ bool) (caller, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		return caller{}, errNoCredentials
	}
	leaf := r.TLS.PeerCertificates[0]
	name := certName(leaf)
	if name == "" {
		return caller{}, refused("the client certificate names nobody (no subject CN or SAN)")
	}
	return caller{id: event.UserIdentity{Type: "IAMUser", PrincipalID: leaf.Subject.String(), UserName: name}}, nil
}

// certName is the subject's common name, else the first URI, DNS or email
// SAN.
func certName(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	}
	return ""
}

// headerAuth believes a header set by a trusted gateway. From anyone else
// the header is ignored (and removed before forwarding), as if absent.
type headerAuth struct{ header string }

func (headerAuth) challenge() string { return "" }

func (a headerAuth) authenticate(r *http.Request, trusted bool) (caller, error) {
	v := strings.TrimSpace(r.Header.Get(a.header))
	if !trusted || v == "" {
		return caller{}, errNoCredentials
	}
	return caller{id: event.UserIdentity{Type: "IAMUser", PrincipalID: v, UserName: v}}, nil
}
