package httpproxy_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-audit/cairn/internal/httpproxy"
)

func basicHeader(user, pass string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

func TestBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t, httpproxy.Config{Identity: httpproxy.Identity{Kind: httpproxy.IdentityBasic, Realm: "users",
		Users: []httpproxy.BasicUser{{Name: "alice", Bcrypt: string(hash)}}}})

	for range 2 { // the second is served from the verified-credentials cache
		if code, _, _ := s.do(t, nil, "DELETE", "/v1/users/9", basicHeader("alice", "correct horse"), ""); code != 204 {
			t.Fatalf("good password: %d", code)
		}
		r := s.lastRecord(t)
		if r.UserIdentityType != "IAMUser" || r.Username != "alice" || r.EventName != "DeleteUser" || r.ErrorCode != "" {
			t.Errorf("recorded as %s", r.Raw)
		}
	}
	hits := s.up.hits.Load()
	for _, c := range []struct {
		name, user, pass, recordedUser string
	}{
		{"wrong password", "alice", "wrong horse", "alice"},
		{"unknown user", "mallory", "correct horse", "HIDDEN_DUE_TO_SECURITY_REASONS"},
	} {
		code, _, h := s.do(t, nil, "DELETE", "/v1/users/9", basicHeader(c.user, c.pass), "")
		if code != 401 || h.Get("WWW-Authenticate") != `Basic realm="users", charset="UTF-8"` {
			t.Errorf("%s: %d %q, want 401 with a Basic challenge", c.name, code, h.Get("WWW-Authenticate"))
		}
		r := s.lastRecord(t)
		if r.ErrorCode != "AccessDenied" || r.UserIdentityType != "Unknown" || r.str("userIdentity.userName") != c.recordedUser {
			t.Errorf("%s recorded as %s", c.name, r.Raw)
		}
		if strings.Contains(string(r.Raw), c.pass) {
			t.Errorf("%s: the record contains the password", c.name)
		}
	}
	if s.up.hits.Load() != hits {
		t.Error("the upstream saw refused calls")
	}
}

// pki is a test CA with server and client certificates on disk.
type pki struct {
	dir        string
	caPEM      string
	serverCert string
	serverKey  string
	ca         *x509.Certificate
	caKey      *ecdsa.PrivateKey
	pool       *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	p := &pki{dir: t.TempDir()}
	p.caKey = mustEC(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	p.caPEM = p.write(t, "ca.pem", "CERTIFICATE", der)
	cert, key := p.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "proxy"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, p.ca, p.caKey)
	p.serverCert = p.write(t, "server.pem", "CERTIFICATE", cert.Certificate[0])
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.serverKey = p.write(t, "server.key", "PRIVATE KEY", kder)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

var serial int64 = 100

func (p *pki) issue(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (tls.Certificate, *ecdsa.PrivateKey) {
	key := mustEC(t)
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, key
}

func (p *pki) client(certs ...tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: certs}}}
}

func TestClientCertificates(t *testing.T) {
	p := newPKI(t)
	s := startStack(t, httpproxy.Config{TLSCert: p.serverCert, TLSKey: p.serverKey,
		Identity: httpproxy.Identity{Kind: httpproxy.IdentityClientCert, ClientCA: p.caPEM}})
	alice, _ := p.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "alice", Organization: []string{"Example"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, p.ca, p.caKey)
	svc, _ := p.issue(t, &x509.Certificate{DNSNames: []string{"billing.internal"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, p.ca, p.caKey)

	resp, err := p.client(alice).Get(s.url + "/v1/users/3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Fatalf("alice's certificate: %d over %s, want 200 over HTTP/2.0", resp.StatusCode, resp.Proto)
	}
	r := s.lastRecord(t)
	if r.Username != "alice" || r.str("userIdentity.principalId") != "CN=alice,O=Example" || r.str("tlsDetails.tlsVersion") != "TLSv1.3" ||
		r.str("tlsDetails.clientProvidedHostHeader") != strings.TrimPrefix(s.url, "https://") {
		t.Errorf("recorded as %s", r.Raw)
	}
	if code, _, _ := s.do(t, p.client(svc), "GET", "/v1/users/3", nil, ""); code != 200 {
		t.Fatalf("SAN-only certificate: %d", code)
	}
	if r := s.lastRecord(t); r.Username != "billing.internal" {
		t.Errorf("SAN-only certificate recorded as %s", r.Raw)
	}

	hits := s.up.hits.Load()
	if code, _, _ := s.do(t, p.client(), "GET", "/v1/users/3", nil, ""); code != 401 {
		t.Fatalf("no certificate: %d, want 401", code)
	}
	if r := s.lastRecord(t); r.ErrorCode != "AccessDenied" {
		t.Errorf("call without a certificate recorded as %s", r.Raw)
	}
	// A certificate from another CA fails the handshake.
	otherCAKey := mustEC(t)
	otherCA := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "other CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	mallory, _ := p.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, otherCA, otherCAKey)
	// (Go's client would not even offer it to a server asking for another
	// CA, so it is forced on the server here.)
	forced := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory, nil }}}}
	if resp, err := forced.Get(s.url + "/v1/users/3"); err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate from another CA was accepted: %d", resp.StatusCode)
	}
	if s.up.hits.Load() != hits {
		t.Error("the upstream saw refused calls")
	}
}

// TestTrustedGateway believes X-Forwarded-User and X-Forwarded-For only
// from trusted proxies.
func TestTrustedGateway(t *testing.T) {
	t.Run("trusted", func(t *testing.T) {
		s := startStack(t, httpproxy.Config{TrustedProxies: []string{"127.0.0.1", "10.0.0.0/8"},
			Identity: httpproxy.Identity{Kind: httpproxy.IdentityHeader}})
		hdr := map[string]string{"X-Forwarded-User": "bob", "X-Forwarded-For": "198.51.100.9, 203.0.113.7, 10.1.2.3"}
		if code, _, _ := s.do(t, nil, "GET", "/v1/users/5", hdr, ""); code != 200 {
			t.Fatalf("%d", code)
		}
		r := s.lastRecord(t)
		if r.Username != "bob" || r.UserIdentityType != "IAMUser" || r.SourceIPAddress != "203.0.113.7" {
			t.Errorf("recorded as %s", r.Raw)
		}
		up := s.up.lastHeader()
		if up.Get("X-Forwarded-User") != "bob" || up.Get("X-Forwarded-For") != "198.51.100.9, 203.0.113.7, 10.1.2.3, 127.0.0.1" {
			t.Errorf("upstream got X-Forwarded-User %q X-Forwarded-For %q", up.Get("X-Forwarded-User"), up.Get("X-Forwarded-For"))
		}
		if code, _, _ := s.do(t, nil, "GET", "/v1/users/5", nil, ""); code != 401 {
			t.Errorf("no header from a trusted proxy: %d, want 401", code)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		s := startStack(t, httpproxy.Config{TrustedProxies: []string{"10.0.0.0/8"},
			Identity: httpproxy.Identity{Kind: httpproxy.IdentityHeader, Header: "x-remote-user", AllowAnonymous: true}})
		hdr := map[string]string{"X-Remote-User": "admin", "X-Forwarded-For": "203.0.113.7"}
		if code, _, _ := s.do(t, nil, "GET", "/v1/users/5", hdr, ""); code != 200 {
			t.Fatalf("%d", code)
		}
		r := s.lastRecord(t)
		if r.UserIdentityType != "AWSAccount" || r.Username == "admin" || r.SourceIPAddress != "127.0.0.1" {
			t.Errorf("a spoofed identity and address were believed: %s", r.Raw)
		}
		up := s.up.lastHeader()
		if up.Get("X-Remote-User") != "" || up.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("upstream got X-Remote-User %q X-Forwarded-For %q; the untrusted values must not pass", up.Get("X-Remote-User"), up.Get("X-Forwarded-For"))
		}
	})
	// Look-alikes of the identity header (underscores, which CGI-style
	// upstreams read as the same HTTP_X_REMOTE_USER) never pass, from
	// anyone, and a trusted call passes only the value recorded.
	t.Run("look-alikes", func(t *testing.T) {
		for _, trusted := range []string{"10.0.0.0/8", "127.0.0.1"} {
			s := startStack(t, httpproxy.Config{TrustedProxies: []string{trusted},
				Identity: httpproxy.Identity{Kind: httpproxy.IdentityHeader, Header: "x-remote-user", AllowAnonymous: true}})
			req, err := http.NewRequest("GET", s.url+"/v1/users/5", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header["X_Remote_User"] = []string{"admin"}
			req.Header["X-Remote-User"] = []string{"bob", "admin"}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("trusted %s: %d", trusted, resp.StatusCode)
			}
			up := s.up.lastHeader()
			for k, v := range up {
				if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Remote-User") && (k != "X-Remote-User" || len(v) != 1 || v[0] != "bob") {
					t.Errorf("trusted %s: the upstream got %s: %q", trusted, k, v)
				}
			}
			if trusted == "127.0.0.1" && up.Get("X-Remote-User") != "bob" {
				t.Errorf("a trusted call lost its identity header: %v", up)
			}
			if trusted != "127.0.0.1" && up.Get("X-Remote-User") != "" {
				t.Errorf("an untrusted call passed its identity header: %v", up)
			}
		}
	})
}

// TestIdentitySettingsOfAnotherKind: a setting that belongs to another
// identity kind than the one chosen is a configuration error, not silently
// ignored (users listed under kind jwt would otherwise look in force).
func TestIdentitySettingsOfAnotherKind(t *testing.T) {
	base := httpproxy.Config{Listen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", EventSource: source}
	for _, c := range []struct {
		id   httpproxy.Identity
		want string
	}{
		{httpproxy.Identity{Kind: httpproxy.IdentityJWT, JWKSFile: "/x", Issuer: "i", Audience: []string{"a"},
			Users: []httpproxy.BasicUser{{Name: "a", Bcrypt: "$2a$04$abcdefghijklmnopqrstuu5gJ3b1Yh8kF3Vq1gE1cYgG0xI7y9c2O"}}}, `user: applies to kind "basic", not "jwt"`},
		{httpproxy.Identity{Kind: httpproxy.IdentityBasic, JWKSURL: "https://idp/keys",
			Users: []httpproxy.BasicUser{{Name: "a", Bcrypt: "$2a$04$abcdefghijklmnopqrstuu5gJ3b1Yh8kF3Vq1gE1cYgG0xI7y9c2O"}}}, `jwks_url: applies to kind "jwt", not "basic"`},
		{httpproxy.Identity{Kind: httpproxy.IdentityHeader, Header: "X-User", Issuer: "https://idp"}, `issuer: applies to kind "jwt", not "header"`},
		{httpproxy.Identity{Kind: httpproxy.IdentityJWT, JWKSFile: "/x", Issuer: "i", Audience: []string{"a"}, Header: "X-User"}, `header: applies to kind "header", not "jwt"`},
	} {
		cfg := base
		cfg.TrustedProxies = []string{"10.0.0.1"}
		cfg.Identity = c.id
		_, err := httpproxy.New(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s identity with another kind's setting: got %v, want %q", c.id.Kind, err, c.want)
		}
	}
}
