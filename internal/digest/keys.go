package digest

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/state"
)

// Signing keys: one RSA-2048 key pair per region at a time, as CloudTrail
// has. A key signs the digests whose end time falls in its validity window
// [Start, End); when a digest falls past the current key's window a new key
// is made and the old one stays on record, so that ListPublicKeys can still
// hand it out for the digests it signed.
//
// Private keys are sealed with AES-256-GCM under a 32-byte key kept in its
// own file in the data directory (mode 0600), and stored in the state
// store:
//
//	digest/key/<region>/<20-digit Unix start> -> storedKey
const (
	stateKeyPrefix = "digest/key/"
	// KeyFile is the file (in the data directory) holding the key that
	// seals the signing keys at rest.
	KeyFile = datadir.DigestKey
	// DefaultKeyRotation is CloudTrail's observed validity window.
	DefaultKeyRotation = 30 * 24 * time.Hour
	// MinKeyRotation keeps the key set small even when misconfigured.
	MinKeyRotation = time.Minute
	keyBits        = 2048
)

// KeyOptions configure OpenKeys.
type KeyOptions struct {
	// Rotation is how long a key signs before the next one takes over;
	// zero means 30 days.
	Rotation time.Duration
	// Clock is "now" for ListPublicKeys without times; nil means time.Now.
	Clock  func() time.Time
	Logger *slog.Logger
}

// Keys is the signing key store of every region.
type Keys struct {
	st   *state.Store
	aead cipher.AEAD
	opts KeyOptions
	log  *slog.Logger

	mu    sync.Mutex
	cache map[string]*rsa.PrivateKey // state key -> decrypted private key
}

// PublicKey is one key as ListPublicKeys returns it.
type PublicKey struct {
	Region string
	// DER is the PKCS#1 RSAPublicKey encoding (what the AWS CLI v1 loads).
	DER []byte
	// Fingerprint is the lowercase hex MD5 of DER: it is how a digest
	// names the key that signed it.
	Fingerprint   string
	Start, End    time.Time
	stateKey      string
	sealedPrivate []byte
}

// SigningKey is a private key with its public half.
type SigningKey struct {
	PublicKey
	Private *rsa.PrivateKey
}

type storedKey struct {
	Region     string
	Start, End time.Time
	Public     []byte // PKCS#1 DER
	// Sealed is nonce || AES-GCM(PKCS#1 DER of the private key), with the
	// region and start as additional data so a record cannot be moved.
	Sealed []byte
}

// OpenKeys opens the key store kept in st, creating the sealing key file in
// dataDir when it does not exist yet.
func OpenKeys(dataDir string, st *state.Store, opts KeyOptions) (*Keys, error) {
	if st == nil {
		return nil, errors.New("digest: keys need a state store")
	}
	if opts.Rotation == 0 {
		opts.Rotation = DefaultKeyRotation
	}
	if opts.Rotation < MinKeyRotation {
		return nil, fmt.Errorf("digest: key rotation %s is shorter than %s", opts.Rotation, MinKeyRotation)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	master, err := loadOrCreateSealKey(filepath.Join(dataDir, KeyFile), opts.Logger)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, fmt.Errorf("digest: signing-key cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("digest: signing-key cipher: %w", err)
	}
	return &Keys{st: st, aead: aead, opts: opts, log: opts.Logger.With("component", "digest-keys"), cache: map[string]*rsa.PrivateKey{}}, nil
}

// Rotation is the keys' validity window.
func (k *Keys) Rotation() time.Duration { return k.opts.Rotation }

func loadOrCreateSealKey(path string, log *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("digest: %s holds %d bytes, want 32 (damaged?)", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("digest: read signing-key seal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("digest: create data dir for %s: %w", path, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("digest: generate seal key: %w", err)
	}
	// O_EXCL: two processes creating it at once must not end up with
	// different keys; the loser reads the winner's.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadOrCreateSealKey(path, log)
	}
	if err != nil {
		return nil, fmt.Errorf("digest: create %s: %w", path, err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, fmt.Errorf("digest: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("digest: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("digest: close %s: %w", path, err)
	}
	log.Info("created the key that seals digest signing keys", "path", path)
	return key, nil
}

func keyStateKey(region string, start time.Time) string {
	return fmt.Sprintf("%s%s/%020d", stateKeyPrefix, region, start.Unix())
}

func aad(region string, start time.Time) []byte {
	return fmt.Appendf(nil, "%s|%d", region, start.Unix())
}

// Fingerprint is the lowercase hex MD5 of a DER public key.
func Fingerprint(der []byte) string {
	sum := md5.Sum(der)
	return hex.EncodeToString(sum[:])
}

func (sk storedKey) public(stateKey string) PublicKey {
	return PublicKey{Region: sk.Region, DER: sk.Public, Fingerprint: Fingerprint(sk.Public), Start: sk.Start, End: sk.End, stateKey: stateKey, sealedPrivate: sk.Sealed}
}

func (k *Keys) load(ctx context.Context, region string) ([]PublicKey, error) {
	if !regionOK(region) {
		return nil, fmt.Errorf("digest: %q is not a region name", region)
	}
	var out []PublicKey
	err := k.st.View(ctx, func(r state.Reader) error {
		return r.Scan(stateKeyPrefix+region+"/", func(key string, value []byte) error {
			var sk storedKey
			if err := jsonUnmarshal(value, &sk); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			out = append(out, sk.public(key))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("digest: load signing keys of %s: %w", region, err)
	}
	return out, nil
}

// SigningKey returns the key that signs a digest of region ending at at,
// making one (valid from at for the rotation period) when no key covers at.
func (k *Keys) SigningKey(ctx context.Context, region string, at time.Time) (*SigningKey, error) {
	at = at.UTC().Truncate(time.Second)
	find := func(keys []PublicKey) *PublicKey {
		// The newest key covering at wins: after a rotation the old and
		// the new window may overlap.
		for i := len(keys) - 1; i >= 0; i-- {
			if !keys[i].Start.After(at) && at.Before(keys[i].End) {
				return &keys[i]
			}
		}
		return nil
	}
	keys, err := k.load(ctx, region)
	if err != nil {
		return nil, err
	}
	if pk := find(keys); pk != nil {
		return k.unseal(*pk)
	}
	// Generate outside the transaction (it takes a while), then insert
	// unless someone else did meanwhile.
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("digest: generate signing key for %s: %w", region, err)
	}
	sk := storedKey{Region: region, Start: at, End: at.Add(k.opts.Rotation), Public: x509.MarshalPKCS1PublicKey(&priv.PublicKey)}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("digest: nonce: %w", err)
	}
	sk.Sealed = k.aead.Seal(nonce, nonce, x509.MarshalPKCS1PrivateKey(priv), aad(region, at))
	var chosen *PublicKey
	err = k.st.Update(ctx, func(tx *state.Tx) error {
		var existing []PublicKey
		if err := tx.Scan(stateKeyPrefix+region+"/", func(key string, value []byte) error {
			var s storedKey
			if err := jsonUnmarshal(value, &s); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			existing = append(existing, s.public(key))
			return nil
		}); err != nil {
			return err
		}
		if pk := find(existing); pk != nil {
			chosen = pk
			return nil
		}
		key := keyStateKey(region, at)
		pk := sk.public(key)
		chosen = &pk
		return tx.Put(key, sk)
	})
	if err != nil {
		return nil, fmt.Errorf("digest: store signing key for %s: %w", region, err)
	}
	if chosen.Fingerprint == Fingerprint(sk.Public) {
		k.log.Info("new digest signing key", "region", region, "fingerprint", chosen.Fingerprint, "valid_from", chosen.Start, "valid_to", chosen.End)
	}
	return k.unseal(*chosen)
}

func (k *Keys) unseal(pk PublicKey) (*SigningKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if priv, ok := k.cache[pk.stateKey]; ok {
		return &SigningKey{PublicKey: pk, Private: priv}, nil
	}
	ns := k.aead.NonceSize()
	if len(pk.sealedPrivate) < ns {
		return nil, fmt.Errorf("digest: signing key %s is truncated", pk.stateKey)
	}
	der, err := k.aead.Open(nil, pk.sealedPrivate[:ns], pk.sealedPrivate[ns:], aad(pk.Region, pk.Start))
	if err != nil {
		return nil, fmt.Errorf("digest: unseal signing key %s (wrong %s, or a tampered record): %w", pk.stateKey, KeyFile, err)
	}
	priv, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("digest: parse signing key %s: %w", pk.stateKey, err)
	}
	k.cache[pk.stateKey] = priv
	return &SigningKey{PublicKey: pk, Private: priv}, nil
}

// PublicKeys returns region's keys whose validity window overlaps [start,
// end], oldest first. Both zero means the key valid now, as ListPublicKeys
// without times returns the current key. A range that reaches now always
// includes the current key, made if needed: every region has one on AWS,
// whether or not it has signed anything yet.
func (k *Keys) PublicKeys(ctx context.Context, region string, start, end time.Time) ([]PublicKey, error) {
	now := k.opts.Clock()
	if start.IsZero() && end.IsZero() {
		sk, err := k.SigningKey(ctx, region, now)
		if err != nil {
			return nil, err
		}
		return []PublicKey{sk.PublicKey}, nil
	}
	// "Reaches now" allows for the client's clock and the request's
	// flight: validate-logs asks for [start, its own now].
	if at := now; end.IsZero() || end.After(now.Add(-5*time.Minute)) {
		if !end.IsZero() && end.Before(now) {
			at = end // a key made now must overlap the window asked for
		}
		if _, err := k.SigningKey(ctx, region, at); err != nil {
			return nil, err
		}
	}
	keys, err := k.load(ctx, region)
	if err != nil {
		return nil, err
	}
	// A new slice: load may hand out its cache.
	out := make([]PublicKey, 0, len(keys))
	for _, pk := range keys {
		if (end.IsZero() || !pk.Start.After(end)) && (start.IsZero() || pk.End.After(start)) {
			out = append(out, pk)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// Sign signs data with SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256),
// which is deterministic: the same data always gives the same signature.
func (sk *SigningKey) Sign(data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(nil, sk.Private, crypto.SHA256, sum[:])
	if err != nil {
		return nil, fmt.Errorf("digest: sign with key %s: %w", sk.Fingerprint, err)
	}
	return sig, nil
}

// Verify checks a SHA256withRSA signature with a PKCS#1 DER public key.
func Verify(der, data, sig []byte) error {
	pub, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return fmt.Errorf("load PKCS #1 key: %w", err)
	}
	sum := sha256.Sum256(data)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}

// regionOK guards state keys against odd region names.
func regionOK(r string) bool {
	return r != "" && len(r) <= 64 && strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
