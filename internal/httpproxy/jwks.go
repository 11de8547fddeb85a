package httpproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a fetched key set; real ones are a few KiB.
const maxJWKSBytes = 1 << 20

// keySource holds the identity provider's public keys, loaded from a file
// or URL, reloaded when a token names a key it does not know (at most once
// per minRefresh) and every refresh interval.
type keySource struct {
	file, url  string
	client     *http.Client
	minRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger

	set atomic.Pointer[[]jose.JSONWebKey]

	mu      sync.Mutex // serialises reloads
	lastTry time.Time
}

// load reads the key set and replaces the current one; on error the
// current one stays.
func (k *keySource) load(ctx context.Context) error {
	data, err := k.read(ctx)
	if err != nil {
		return err
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("key set from %s: %w", k.where(), err)
	}
	k.set.Store(&keys)
	return nil
}

func (k *keySource) where() string {
	if k.file != "" {
		return k.file
	}
	return k.url
}

func (k *keySource) read(ctx context.Context) ([]byte, error) {
	if k.file != "" {
		data, err := os.ReadFile(k.file)
		if err != nil {
			return nil, fmt.Errorf("read key set: %w", err)
		}
		return data, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch key set %s: %w", k.url, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch key set: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch key set %s: HTTP %s", k.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch key set %s: %w", k.url, err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch key set %s: larger than %d bytes", k.url, maxJWKSBytes)
	}
	return data, nil
}

// jwksRedirect follows at most a few redirects of a key set URL, and never
// from https to plain http: the keys decide who may call, so they must
// not come over a connection anyone on the path could answer.
func jwksRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing a redirect from https to %s://%s", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// parseJWKS keeps the set's asymmetric signing keys, public halves only;
// symmetric ("oct") keys are refused outright, since accepting one would
// let anyone who can read the set mint tokens.
func parseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON key set: %w", err)
	}
	if raw.Keys == nil {
		return nil, errors.New(`no "keys" member`)
	}
	var out []jose.JSONWebKey
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if k.Use == "enc" {
			continue
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *rsa.PrivateKey, *ecdsa.PublicKey, *ecdsa.PrivateKey, ed25519.PublicKey, ed25519.PrivateKey:
		default:
			return nil, fmt.Errorf("key %d (kid %q): %T is not an asymmetric signing key", i, k.KeyID, k.Key)
		}
		out = append(out, k.Public())
	}
	if len(out) == 0 {
		return nil, errors.New("no signing keys")
	}
	return out, nil
}

// lookup returns the keys a token with this kid may be signed with: the
// one with that ID, or all of them when the token names none. An unknown
// kid reloads the set, unless one was tried within minRefresh.
func (k *keySource) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if ks := find(*k.set.Load(), kid); len(ks) > 0 {
		return ks, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if ks := find(*k.set.Load(), kid); len(ks) > 0 { // another request reloaded
		return ks, nil
	}
	now := k.now()
	if !k.lastTry.IsZero() && now.Sub(k.lastTry) < k.minRefresh {
		return nil, nil
	}
	k.lastTry = now
	if err := k.load(context.WithoutCancel(ctx)); err != nil {
		k.log.Warn("http proxy: reloading the JWT key set failed; keeping the old one", "source", k.where(), "err", err)
		return nil, nil
	}
	return find(*k.set.Load(), kid), nil
}

func find(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	for _, k := range keys {
		if k.KeyID == kid {
			return []jose.JSONWebKey{k}
		}
	}
	return nil
}

// refreshEvery reloads the set every interval until ctx ends, so keys the
// provider has withdrawn stop verifying tokens.
func (k *keySource) refreshEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.mu.Lock()
			k.lastTry = k.now()
			err := k.load(ctx)
			k.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				k.log.Warn("http proxy: periodic reload of the JWT key set failed; keeping the old one", "source", k.where(), "err", err)
			}
		}
	}
}
