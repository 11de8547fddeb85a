package httpproxy

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/bcrypt"
)

// FuzzUntrustedRequest feeds what a caller or upstream controls through the
// proxy's parsing: the path, the query, X-Forwarded-For, the Authorization
// header (as a bearer token and as basic credentials), a request body and
// an error body. None may panic; what is recorded must stay valid JSON;
// the source IP must be an address.
func FuzzUntrustedRequest(f *testing.F) {
	f.Add("/v1/users/42", "expand=groups&x=1&x=2&access_token=t", "203.0.113.7, 10.0.0.1", "Bearer eyJhbGciOiJub25lIn0.e30.", `{"name":"bob","password":"pw"}`, `{"error":{"code":"NotFound"}}`)
	f.Add("/files/a/%2e%2e/b", "%zz=1;a=b", "::ffff:10.0.0.1, [2001:db8::1]:443, junk", "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:pw")), `{"a":{"b":[1,2,{"c":null}]}}`, `{"error":{"code":12.5e3}}`)
	f.Add("//", "", "", "Basic !!!", "[1,2]", "not json")

	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	p, err := New(Config{Listen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", EventSource: "x.example.com",
		TrustedProxies: []string{"127.0.0.1", "10.0.0.0/8"}, RedactParameters: []string{"password"},
		Routes: []Route{{Path: "/v1/users/{id}", EventName: "GetUser", ResourceType: "T", ResourceARN: "arn:{region}:{account}:{id}"},
			{Path: "/files/{p...}", EventName: "GetFile"}}})
	if err != nil {
		f.Fatal(err)
	}
	basic, err := newBasicAuth(Identity{Realm: "r", Users: []BasicUser{{Name: "alice", Bcrypt: string(hash)}}}, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	ks := &keySource{minRefresh: time.Hour, now: time.Now, lastTry: time.Now()}
	keys := []jose.JSONWebKey{}
	ks.set.Store(&keys)
	jwtA := &jwtAuth{id: Identity{Issuer: "i", Audience: []string{"a"}, UsernameClaim: "sub"}, keys: ks, now: time.Now}

	f.Fuzz(func(t *testing.T, path, query, xff, authz, body, errBody string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = &url.URL{Path: path, RawQuery: query}
		r.RemoteAddr = "127.0.0.1:5000"
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Authorization", authz)
		_, ip := p.clientIP(r)
		if _, err := netip.ParseAddr(ip); err != nil {
			t.Fatalf("source IP %q from X-Forwarded-For %q is not an address", ip, xff)
		}
		c := &call{in: r}
		if segs, err := splitPath(r.URL.EscapedPath()); err == nil {
			c.route, c.params = p.match("GET", segs)
		}
		c.body = &teeBody{limit: DefaultBodyLimit, buf: []byte(body), eof: true}
		if params := p.requestParameters(c); params != nil && !json.Valid(params) {
			t.Fatalf("requestParameters not JSON: %s", params)
		}
		_ = jsonField([]byte(errBody), "error.code")
		_, _ = jwtA.authenticate(r, false)
		r.Header.Set("Authorization", authz)
		_, _ = basic.authenticate(r, false)
		var h http.Header = map[string][]string{"Location": {errBody}}
		if o := headerObject(h, []string{"Location"}); o != nil && !json.Valid(o) {
			t.Fatalf("responseElements not JSON: %s", o)
		}
	})
}
