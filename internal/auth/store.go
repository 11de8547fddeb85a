package auth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/datadir"
)

// File names inside the data directory.
const (
	KeysFile        = datadir.Keys
	LockFile        = datadir.KeysLock
	MasterKeyFile   = datadir.MasterKey
	CredentialsName = datadir.Credentials
	// AdminProfile is the profile EnsureAdmin writes to the credentials file.
	AdminProfile = "cairn"
	// AdminName is the user name of the first admin key.
	AdminName = "admin"
)

// reloadInterval bounds how stale a Store's view of keys.json may be: a key
// deleted by another process stops working within this time.
const reloadInterval = time.Second

// openLockTimeout bounds Open's wait for another process holding keys.lock,
// since Open takes no context.
const openLockTimeout = 30 * time.Second

const fileVersion = 1

// keysFile is the JSON layout of keys.json.
type keysFile struct {
	Version int         `json:"version"`
	Keys    []storedKey `json:"keys"`
}

type storedKey struct {
	AccessKeyID string    `json:"accessKeyId"`
	Name        string    `json:"name"`
	Role        Role      `json:"role"`
	Created     time.Time `json:"created"`
	PrincipalID string    `json:"principalId"`
	// Secret is "v1:" + base64url(nonce || AES-256-GCM ciphertext), sealed
	// with the access key ID as additional data so that a sealed secret
	// cannot be moved to another key.
	Secret string `json:"secret"`
}

func (k storedKey) key() Key {
	return Key{AccessKeyID: k.AccessKeyID, Name: k.Name, Role: k.Role, Created: k.Created, PrincipalID: k.PrincipalID}
}

// Store is the access-key store of one data directory. It is safe for
// concurrent use, and several Stores (in one or several processes) may share
// a directory.
type Store struct {
	dir  string
	aead cipher.AEAD
	log  *slog.Logger
	// writers admits one writer of this Store at a time before it takes the
	// flock; a channel so that waiting honours the context.
	writers chan struct{}

	mu      sync.Mutex
	keys    map[string]storedKey
	stamp   fileStamp // of the keys.json the cache holds
	checked time.Time // last stat of keys.json
	loadErr error     // set while keys.json cannot be read; lookups fail closed
}

// Option configures Open.
type Option func(*Store)

// WithLogger sets the logger; the default discards. Secrets are never logged.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open opens the store in dataDir, creating the directory (0700) and the
// master key (0600) when missing. It waits at most 30 s for another process
// holding the lock; OpenContext takes a context instead.
func Open(dataDir string, opts ...Option) (*Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openLockTimeout)
	defer cancel()
	return OpenContext(ctx, dataDir, opts...)
}

// OpenContext is Open with a context bounding the wait for the lock.
func OpenContext(ctx context.Context, dataDir string, opts ...Option) (*Store, error) {
	s := &Store{
		dir:     dataDir,
		log:     slog.New(slog.DiscardHandler),
		writers: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open key store: create data directory: %w", err)
	}
	master, err := s.loadMasterKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("open key store in %s: %w", dataDir, err)
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	if s.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	s.mu.Lock()
	err = s.refreshLocked(true)
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("open key store in %s: %w", dataDir, err)
	}
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// loadMasterKey reads master.key, creating it under the lock on first use.
func (s *Store) loadMasterKey(ctx context.Context) ([]byte, error) {
	key, err := s.readMasterKey()
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	unlock, err := lockPath(ctx, s.path(LockFile))
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another process may have created it while we waited.
	if key, err := s.readMasterKey(); !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	// A new master key cannot open secrets sealed with a lost one; refuse
	// rather than silently orphan every key.
	f, _, err := readKeysFile(s.path(KeysFile))
	if err != nil {
		return nil, err
	}
	if len(f.Keys) > 0 {
		return nil, fmt.Errorf("%s is missing but %s holds %d keys sealed with it: restore it from a backup (or move %s away to start over)",
			MasterKeyFile, KeysFile, len(f.Keys), KeysFile)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString(key) + "\n"
	if err := writeFileAtomic(s.dir, MasterKeyFile, []byte(enc)); err != nil {
		return nil, fmt.Errorf("write master key: %w", err)
	}
	s.log.Info("created master key for access-key secrets", "path", s.path(MasterKeyFile))
	return key, nil
}

func (s *Store) readMasterKey() ([]byte, error) {
	p := s.path(MasterKeyFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
		s.log.Warn("master key file is readable by other users; chmod 600 it", "path", p, "mode", fi.Mode().Perm().String())
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s is not a base64 32-byte key", p)
	}
	return key, nil
}

// Create makes a key for user name with role and returns it with its secret,
// which is never retrievable from the Store's listings again.
func (s *Store) Create(ctx context.Context, name string, role Role) (Key, string, error) {
	if err := ValidateName(name); err != nil {
		return Key{}, "", err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return Key{}, "", err
	}
	var (
		k      Key
		secret string
	)
	err := s.update(ctx, func(f *keysFile) error {
		var err error
		k, secret, err = s.add(f, name, role)
		return err
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("create access key for %q: %w", name, err)
	}
	s.log.Info("created access key", "accessKeyId", k.AccessKeyID, "name", name, "role", string(role))
	return k, secret, nil
}

// add appends a new key to f.
func (s *Store) add(f *keysFile, name string, role Role) (Key, string, error) {
	var principal string
	for _, sk := range f.Keys {
		if sk.Name == name {
			principal = sk.PrincipalID
			break
		}
	}
	if principal == "" {
		principal = "AIDA" + randomBase32(16)
	}
	id := "CKIA" + randomBase32(16)
	for slices.ContainsFunc(f.Keys, func(sk storedKey) bool { return sk.AccessKeyID == id }) {
		id = "CKIA" + randomBase32(16)
	}
	secret := randomBase62(40)
	sk := storedKey{
		AccessKeyID: id,
		Name:        name,
		Role:        role,
		Created:     time.Now().UTC(),
		PrincipalID: principal,
		Secret:      s.seal(id, secret),
	}
	f.Keys = append(f.Keys, sk)
	return sk.key(), secret, nil
}

// List returns every key, oldest first, without secrets.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list access keys: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refreshLocked(true); err != nil {
		return nil, fmt.Errorf("list access keys: %w", err)
	}
	out := make([]Key, 0, len(s.keys))
	for _, sk := range s.keys {
		out = append(out, sk.key())
	}
	slices.SortFunc(out, func(a, b Key) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.AccessKeyID, b.AccessKeyID)
	})
	return out, nil
}

// Delete removes a key; requests signed with it fail within a second in
// every process sharing the directory. An unknown key is an error wrapping
// ErrNotFound.
func (s *Store) Delete(ctx context.Context, accessKeyID string) error {
	err := s.update(ctx, func(f *keysFile) error {
		i := slices.IndexFunc(f.Keys, func(sk storedKey) bool { return sk.AccessKeyID == accessKeyID })
		if i < 0 {
			return ErrNotFound
		}
		f.Keys = slices.Delete(f.Keys, i, i+1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete access key %s: %w", accessKeyID, err)
	}
	s.log.Info("deleted access key", "accessKeyId", accessKeyID)
	return nil
}

// Lookup returns the key and its secret. ok is false for an unknown key. A
// secret that fails to decrypt is an error wrapping ErrCorrupt, never a
// garbage secret.
func (s *Store) Lookup(ctx context.Context, accessKeyID string) (Key, string, bool, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, "", false, fmt.Errorf("look up access key: %w", err)
	}
	s.mu.Lock()
	err := s.refreshLocked(false)
	sk, ok := s.keys[accessKeyID]
	if err == nil && !ok {
		// A key created a moment ago by `cairn keys create` should work at
		// once, not after the next periodic check.
		err = s.refreshLocked(true)
		sk, ok = s.keys[accessKeyID]
	}
	s.mu.Unlock()
	if err != nil {
		return Key{}, "", false, fmt.Errorf("look up access key %s: %w", accessKeyID, err)
	}
	if !ok {
		return Key{}, "", false, nil
	}
	secret, err := s.open(sk.AccessKeyID, sk.Secret)
	if err != nil {
		return Key{}, "", false, fmt.Errorf("look up access key %s: %w", accessKeyID, err)
	}
	return sk.key(), secret, true, nil
}

// Secret has the shape of awsproto.SecretLookup, so a Store can back SigV4
// verification directly: awsproto.VerifyRequest(ctx, r, body, store.Secret, now).
func (s *Store) Secret(ctx context.Context, accessKeyID string) (string, bool, error) {
	_, secret, ok, err := s.Lookup(ctx, accessKeyID)
	return secret, ok, err
}

// EnsureAdmin creates the first admin key when the store has none, and
// writes it to <data-dir>/credentials (0600) under profile [cairn], so a
// fresh server is usable with `--profile cairn`. It is idempotent: with any
// key present it does nothing and reports false.
func (s *Store) EnsureAdmin(ctx context.Context) (bool, error) {
	created := false
	err := s.update(ctx, func(f *keysFile) error {
		if len(f.Keys) > 0 {
			return errNoChange
		}
		k, secret, err := s.add(f, AdminName, RoleAdmin)
		if err != nil {
			return err
		}
		// Write the credentials before committing the key: a key whose
		// secret was never shown would be unusable.
		content := fmt.Sprintf("# Cairn admin access key, created %s. Keep this file private.\n", k.Created.Format(time.RFC3339)) +
			CredentialsFile(AdminProfile, k.AccessKeyID, secret)
		if err := writeFileAtomic(s.dir, CredentialsName, []byte(content)); err != nil {
			return fmt.Errorf("write credentials file: %w", err)
		}
		created = true
		return nil
	})
	if errors.Is(err, errNoChange) {
		return false, nil
	}
	if err != nil {
		if created {
			// The key was not committed; do not leave a dead credential.
			_ = os.Remove(s.path(CredentialsName))
		}
		return false, fmt.Errorf("ensure an admin access key: %w", err)
	}
	s.log.Info("created first admin access key", "credentials", s.path(CredentialsName), "profile", AdminProfile)
	return created, nil
}

// errNoChange lets an update function end without writing.
var errNoChange = errors.New("no change")

// update runs fn on the current keys.json under the write lock and, unless
// fn fails, replaces the file atomically.
func (s *Store) update(ctx context.Context, fn func(*keysFile) error) error {
	select {
	case s.writers <- struct{}{}:
		defer func() { <-s.writers }()
	case <-ctx.Done():
		return ctx.Err()
	}
	unlock, err := lockPath(ctx, s.path(LockFile))
	if err != nil {
		return err
	}
	defer unlock()

	// Read from disk, not the cache: another process may have written.
	f, _, err := readKeysFile(s.path(KeysFile))
	if err != nil {
		return err
	}
	if err := fn(&f); err != nil {
		return err
	}
	f.Version = fileVersion
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", KeysFile, err)
	}
	if err := writeFileAtomic(s.dir, KeysFile, append(data, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", KeysFile, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshLocked(true)
}

// refreshLocked reloads keys.json if its stat changed; without force it
// stats at most once per reloadInterval. s.mu must be held.
func (s *Store) refreshLocked(force bool) error {
	now := time.Now()
	if !force && now.Sub(s.checked) < reloadInterval {
		return s.loadErr
	}
	s.checked = now
	st, err := statFile(s.path(KeysFile))
	if err != nil {
		s.loadErr = err
		return err
	}
	if st == s.stamp && s.keys != nil && s.loadErr == nil {
		return nil
	}
	f, st, err := readKeysFile(s.path(KeysFile))
	if err != nil {
		s.loadErr = err
		return err
	}
	keys := make(map[string]storedKey, len(f.Keys))
	for _, sk := range f.Keys {
		keys[sk.AccessKeyID] = sk
	}
	s.keys, s.stamp, s.loadErr = keys, st, nil
	return nil
}

// readKeysFile reads and validates keys.json; a missing file is an empty
// store.
func readKeysFile(path string) (keysFile, fileStamp, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return keysFile{Version: fileVersion}, fileStamp{}, nil
	}
	if err != nil {
		return keysFile{}, fileStamp{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return keysFile{}, fileStamp{}, fmt.Errorf("stat %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(fh); err != nil {
		return keysFile{}, fileStamp{}, fmt.Errorf("read %s: %w", path, err)
	}
	var f keysFile
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return keysFile{}, fileStamp{}, fmt.Errorf("decode %s: %w: %v", path, ErrCorrupt, err)
	}
	if f.Version != fileVersion {
		return keysFile{}, fileStamp{}, fmt.Errorf("%s has version %d, this cairn understands %d: %w", path, f.Version, fileVersion, ErrCorrupt)
	}
	seen := make(map[string]bool, len(f.Keys))
	for _, sk := range f.Keys {
		if sk.AccessKeyID == "" || seen[sk.AccessKeyID] {
			return keysFile{}, fileStamp{}, fmt.Errorf("%s: empty or duplicate access key ID %q: %w", path, sk.AccessKeyID, ErrCorrupt)
		}
		seen[sk.AccessKeyID] = true
		if _, err := ParseRole(string(sk.Role)); err != nil {
			return keysFile{}, fileStamp{}, fmt.Errorf("%s: key %s: %w: %v", path, sk.AccessKeyID, ErrCorrupt, err)
		}
	}
	return f, stampOf(fi), nil
}

const sealPrefix = "v1:"

// seal encrypts secret for key id. The random 96-bit nonce is safe far past
// any plausible number of keys (the GCM limit is 2^32 seals per master key).
func (s *Store) seal(id, secret string) string {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		// crypto/rand.Read does not fail on supported platforms.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	sealed := s.aead.Seal(nonce, nonce, []byte(secret), []byte(id))
	return sealPrefix + base64.RawURLEncoding.EncodeToString(sealed)
}

func (s *Store) open(id, sealed string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", fmt.Errorf("sealed secret has no %q prefix: %w", sealPrefix, ErrCorrupt)
	}
	data, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(data) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", fmt.Errorf("sealed secret is malformed: %w", ErrCorrupt)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, data[:n], data[n:], []byte(id))
	if err != nil {
		return "", fmt.Errorf("decrypt secret (wrong master key or tampered keys.json): %w", ErrCorrupt)
	}
	return string(plain), nil
}

const (
	base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	base62Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// randomBase32 returns n uniformly random characters of AWS's key-ID
// alphabet (upper-case letters and 2-7).
func randomBase32(n int) string { return randomFrom(base32Alphabet, n) }

// randomBase62 returns n uniformly random alphanumerics: 40 of them carry
// 238 bits, more than AWS's 40-character base64 secrets.
func randomBase62(n int) string { return randomFrom(base62Alphabet, n) }

// randomFrom draws n characters from alphabet without modulo bias.
func randomFrom(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err))
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
