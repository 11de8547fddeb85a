package httpproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestJWKSNotFromADowngradedRedirect: a key set configured at an https URL
// is not taken from a plain-http URL the server redirects to, where anyone
// on the path could serve keys of their own; an https redirect is
// followed.
func TestJWKSNotFromADowngradedRedirect(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(set) }))
	defer plain.Close()
	var tlsURL string
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/keys", http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, tlsURL+"/keys", http.StatusFound)
		default:
			_, _ = w.Write(set)
		}
	}))
	defer secure.Close()
	tlsURL = secure.URL
	for _, c := range []struct {
		path, wantErr string
	}{{"/to-http", "redirect from https to http"}, {"/to-https", ""}} {
		p, err := New(Config{Listen: "127.0.0.1:0", Upstream: plain.URL, EventSource: "x.example.com",
			Identity: Identity{Kind: IdentityJWT, JWKSURL: secure.URL + c.path, Issuer: "https://idp", Audience: []string{"a"}}})
		if err != nil {
			t.Fatal(err)
		}
		p.keys.client.Transport = secure.Client().Transport // trust the test server's certificate
		err = p.keys.load(context.Background())
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.path, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: loaded the key set (err %v), want it refused", c.path, err)
		}
	}
}
