package httpproxy_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cairn-audit/cairn/internal/httpproxy"
)

const (
	issuer   = "https://idp.example.com"
	audience = "users-api"
)

// idp is a test identity provider: signing keys and their public JWKS.
type idp struct {
	t    testing.TB
	keys map[string]jose.JSONWebKey // private, by kid
}

func newIDP(t testing.TB) *idp {
	t.Helper()
	i := &idp{t: t, keys: map[string]jose.JSONWebKey{}}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	i.add("rsa1", rsaKey, jose.RS256)
	i.add("ec1", ecKey, jose.ES256)
	i.add("ed1", edKey, jose.EdDSA)
	return i
}

func (i *idp) add(kid string, key crypto.Signer, alg jose.SignatureAlgorithm) {
	i.keys[kid] = jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

// jwks is the public key set, as an identity provider publishes it.
func (i *idp) jwks() []byte {
	var set jose.JSONWebKeySet
	for _, k := range i.keys {
		set.Keys = append(set.Keys, k.Public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		i.t.Fatal(err)
	}
	return b
}

type claims struct {
	jwt.Claims
	PreferredUsername string `json:"preferred_username,omitempty"`
}

func validClaims() claims {
	now := time.Now()
	return claims{Claims: jwt.Claims{Issuer: issuer, Subject: "u-42", Audience: jwt.Audience{audience},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute))},
		PreferredUsername: "alice"}
}

// sign makes a token with the key kid (header kid set to headerKid).
func (i *idp) sign(kid, headerKid string, c claims) string {
	i.t.Helper()
	k, ok := i.keys[kid]
	if !ok {
		i.t.Fatalf("no key %s", kid)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", headerKid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: k.Key}, opts)
	if err != nil {
		i.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		i.t.Fatal(err)
	}
	return tok
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func jwtConfig(t testing.TB, i *idp) (httpproxy.Config, string) {
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, i.jwks(), 0o600); err != nil {
		t.Fatal(err)
	}
	return httpproxy.Config{RecordRequestBody: true, RedactParameters: []string{"password"}, ErrorCodeField: "error.code", ErrorMessageField: "error.message",
		Identity: httpproxy.Identity{Kind: httpproxy.IdentityJWT, JWKSFile: file, Issuer: issuer, Audience: []string{audience}, UsernameClaim: "preferred_username"}}, file
}

// TestCallsShowUpInEventHistory drives the proxy with a real client and
// finds its events through the real SDK's LookupEvents.
func TestCallsShowUpInEventHistory(t *testing.T) {
	i := newIDP(t)
	cfg, _ := jwtConfig(t, i)
	s := startStack(t, cfg)
	tok := bearer(i.sign("rsa1", "rsa1", validClaims()))

	if code, body, _ := s.do(t, nil, "GET", "/v1/users/42?expand=groups&x=1&x=2&access_token=s3cret-query", tok, ""); code != 200 || body != `{"id":"42"}` {
		t.Fatalf("GET user: %d %s", code, body)
	}
	if code, _, _ := s.do(t, nil, "GET", "/v1/users/missing", tok, ""); code != 404 {
		t.Fatalf("GET missing user: %d", code)
	}
	hdr := map[string]string{"Authorization": tok["Authorization"], "Content-Type": "application/json", "User-Agent": "users-cli/1.0"}
	if code, _, h := s.do(t, nil, "POST", "/v1/users", hdr, `{"name": "bob", "admin": false, "password": "s3cret-body"}`); code != 201 || h.Get("Location") != "/v1/users/new" {
		t.Fatalf("POST user: %d %v", code, h)
	}
	if code, _, _ := s.do(t, nil, "PATCH", "/elsewhere/x", tok, ""); code != 200 {
		t.Fatalf("unmatched: %d", code)
	}

	// The event history has them, with the route's names and resources.
	h := s.h
	if err := h.Server.History().WaitIndexed(ctx(t), h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	out, err := h.CloudTrail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventSource, AttributeValue: aws.String(source)}}})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]types.Event{}
	for _, e := range out.Events {
		byName[aws.ToString(e.EventName)] = append(byName[aws.ToString(e.EventName)], e)
	}
	gets := byName["GetUser"]
	if len(gets) != 2 || len(byName["CreateUser"]) != 1 || len(byName["UnmatchedRequest"]) != 1 {
		t.Fatalf("event history by name: %v", byName)
	}
	for _, e := range gets {
		if aws.ToString(e.Username) != "alice" || len(e.Resources) != 1 || aws.ToString(e.Resources[0].ResourceType) != "Example::Users::User" {
			t.Errorf("GetUser event: user %q resources %+v", aws.ToString(e.Username), e.Resources)
		}
	}
	found, err := h.CloudTrail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyResourceName, AttributeValue: aws.String("arn:example:users:us-east-1:000000000000:user/42")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Events) != 1 {
		t.Fatalf("lookup by resource ARN found %d events, want 1", len(found.Events))
	}

	// The records themselves.
	rs := s.records(t)
	if len(rs) != 4 {
		t.Fatalf("%d records, want 4", len(rs))
	}
	get, missing, create, unmatched := rs[0], rs[1], rs[2], rs[3]
	for k, want := range map[string]string{
		"userIdentity.type":              "WebIdentityUser",
		"userIdentity.principalId":       issuer + ":u-42",
		"userIdentity.userName":          "alice",
		"userIdentity.identityProvider":  issuer,
		"additionalEventData.httpStatus": "200",
		"eventName":                      "GetUser",
		"sourceIPAddress":                "127.0.0.1",
		"requestParameters":              `{"access_token":"HIDDEN_DUE_TO_SECURITY_REASONS","expand":"groups","id":"42","x":["1","2"]}`,
		"responseElements":               "",
		"requestID":                      "req-42",
		"readOnly":                       "true",
		"managementEvent":                "true",
		"recipientAccountId":             "000000000000",
		"resources":                      `[{"ARN":"arn:example:users:us-east-1:000000000000:user/42","accountId":"000000000000","type":"Example::Users::User"}]`,
	} {
		if got := get.str(k); got != want {
			t.Errorf("GetUser %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(string(get.Raw), `"requestParameters":{"id":"42","access_token":"HIDDEN_DUE_TO_SECURITY_REASONS","expand":"groups","x":["1","2"]}`) {
		t.Errorf("requestParameters not in wildcard-then-query order: %s", get.Raw)
	}
	for _, r := range rs {
		if strings.Contains(string(r.Raw), "s3cret") {
			t.Errorf("a redacted value was recorded: %s", r.Raw)
		}
	}
	if missing.ErrorCode != "UserNotFound" || missing.str("errorMessage") != "no user missing" {
		t.Errorf("404 recorded as %q %q, want the body's error code and message", missing.ErrorCode, missing.str("errorMessage"))
	}
	if !strings.Contains(string(create.Raw), `"body":{"name":"bob","admin":false,"password":"HIDDEN_DUE_TO_SECURITY_REASONS"}`) || create.str("responseElements.Location") != "/v1/users/new" ||
		create.str("readOnly") != "false" || create.UserAgent != "users-cli/1.0" {
		t.Errorf("CreateUser record: %s", create.Raw)
	}
	if unmatched.EventName != "UnmatchedRequest" || unmatched.str("additionalEventData.httpPath") != "/elsewhere/x" ||
		unmatched.str("additionalEventData.httpMethod") != "PATCH" || unmatched.str("readOnly") != "false" {
		t.Errorf("unmatched record: %s", unmatched.Raw)
	}
}

// TestJWTVerification accepts RSA, ECDSA and EdDSA tokens and refuses
// everything else with a recorded 401 the upstream never sees.
func TestJWTVerification(t *testing.T) {
	i := newIDP(t)
	cfg, file := jwtConfig(t, i)
	s := startStack(t, cfg)

	for _, kid := range []string{"rsa1", "ec1", "ed1"} {
		if code, body, _ := s.do(t, nil, "GET", "/v1/users/1", bearer(i.sign(kid, kid, validClaims())), ""); code != 200 {
			t.Errorf("token signed with %s: %d %s", kid, code, body)
		}
	}

	other := newIDP(t) // same kids, different keys
	expired := validClaims()
	expired.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	early := validClaims()
	early.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
	wrongAud := validClaims()
	wrongAud.Audience = jwt.Audience{"other-api"}
	wrongIss := validClaims()
	wrongIss.Issuer = "https://evil.example.com"
	noExp := validClaims()
	noExp.Expiry = nil
	seg := func(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }
	payload, _ := json.Marshal(validClaims())
	algNone := seg(`{"alg":"none","typ":"JWT"}`) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: i.jwks()}, (&jose.SignerOptions{}).WithHeader("kid", "rsa1"))
	if err != nil {
		t.Fatal(err)
	}
	hsTok, err := jwt.Signed(hs).Claims(validClaims()).Serialize()
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		hdr  map[string]string
		msg  string
	}{
		{"no token", nil, "no credentials"},
		{"expired", bearer(i.sign("rsa1", "rsa1", expired)), "expired"},
		{"not yet valid", bearer(i.sign("rsa1", "rsa1", early)), "not valid yet"},
		{"wrong audience", bearer(i.sign("rsa1", "rsa1", wrongAud)), "audience"},
		{"wrong issuer", bearer(i.sign("rsa1", "rsa1", wrongIss)), "issuer"},
		{"no exp", bearer(i.sign("rsa1", "rsa1", noExp)), "no exp"},
		{"wrong key", bearer(other.sign("rsa1", "rsa1", validClaims())), "signature"},
		{"alg none", bearer(algNone), "algorithm"},
		{"HS256 with the public key set as secret", bearer(hsTok), "algorithm"},
		{"garbage", bearer("not.a.token"), "malformed"},
		{"basic scheme", map[string]string{"Authorization": "Basic YWxpY2U6cHc="}, "not a bearer token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.up.hits.Load()
			code, body, h := s.do(t, nil, "GET", "/v1/users/1", c.hdr, "")
			if code != 401 || !strings.Contains(body, `"error":"AccessDenied"`) || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("got %d %s (WWW-Authenticate %q), want 401 AccessDenied", code, body, h.Get("WWW-Authenticate"))
			}
			if s.up.hits.Load() != before {
				t.Error("the upstream saw a refused call")
			}
			r := s.lastRecord(t)
			if r.ErrorCode != "AccessDenied" || r.UserIdentityType != "Unknown" || r.EventName != "GetUser" ||
				!strings.Contains(r.str("errorMessage"), c.msg) || r.str("additionalEventData.httpStatus") != "401" {
				t.Errorf("refusal recorded as %s", r.Raw)
			}
			if c.hdr != nil && strings.Contains(string(r.Raw), strings.TrimPrefix(c.hdr["Authorization"], "Bearer ")) {
				t.Error("the record contains the token")
			}
		})
	}

	// A key added to the set later is found on the first token naming it;
	// another unknown kid right after does not trigger a second reload.
	i.add("ec2", mustEC(t), jose.ES256)
	if err := os.WriteFile(file, i.jwks(), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := s.do(t, nil, "GET", "/v1/users/1", bearer(i.sign("ec2", "ec2", validClaims())), ""); code != 200 {
		t.Fatalf("token with a newly published kid: %d %s", code, body)
	}
	i.add("ec3", mustEC(t), jose.ES256)
	if err := os.WriteFile(file, i.jwks(), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := s.do(t, nil, "GET", "/v1/users/1", bearer(i.sign("ec3", "ec3", validClaims())), ""); code != 401 {
		t.Fatalf("a second unknown kid within the refresh interval: %d, want 401 (reloads are rate limited)", code)
	}
}

func mustEC(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestJWKSFromURLAndOptionalTokens fetches the key set over HTTP and, with
// require = false, lets calls without valid tokens through as anonymous.
func TestJWKSFromURLAndOptionalTokens(t *testing.T) {
	i := newIDP(t)
	var fetches atomic.Int64
	idpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(i.jwks())
	}))
	defer idpSrv.Close()
	s := startStack(t, httpproxy.Config{Identity: httpproxy.Identity{Kind: httpproxy.IdentityJWT, JWKSURL: idpSrv.URL + "/jwks",
		Issuer: issuer, Audience: []string{audience}, AllowAnonymous: true}})
	if fetches.Load() != 1 {
		t.Fatalf("%d key set fetches at start, want 1", fetches.Load())
	}
	if code, _, _ := s.do(t, nil, "GET", "/v1/users/7", bearer(i.sign("ed1", "ed1", validClaims())), ""); code != 200 {
		t.Fatalf("valid token: %d", code)
	}
	if r := s.lastRecord(t); r.Username != "u-42" || r.UserIdentityType != "WebIdentityUser" {
		t.Errorf("default username claim sub: %s", r.Raw)
	}
	if code, _, _ := s.do(t, nil, "GET", "/v1/users/7", nil, ""); code != 200 {
		t.Fatalf("no token, require = false: %d", code)
	}
	r := s.lastRecord(t)
	if r.UserIdentityType != "AWSAccount" || r.str("userIdentity.principalId") != "ANONYMOUS_PRINCIPAL" || r.str("additionalEventData.credentialsIgnored") != "" {
		t.Errorf("anonymous call recorded as %s", r.Raw)
	}
	expired := validClaims()
	expired.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	if code, _, _ := s.do(t, nil, "GET", "/v1/users/7", bearer(i.sign("ed1", "ed1", expired)), ""); code != 200 {
		t.Fatalf("expired token, require = false: %d", code)
	}
	if r := s.lastRecord(t); r.UserIdentityType != "AWSAccount" || !strings.Contains(r.str("additionalEventData.credentialsIgnored"), "expired") {
		t.Errorf("call with an expired token let through as anonymous recorded as %s", r.Raw)
	}
}
