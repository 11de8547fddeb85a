package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

var (
	keyIDRE     = regexp.MustCompile(`^CKIA[A-Z2-7]{16}$`)
	secretRE    = regexp.MustCompile(`^[A-Za-z0-9]{40}$`)
	principalRE = regexp.MustCompile(`^AIDA[A-Z2-7]{16}$`)
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func mustCreate(t *testing.T, s *Store, name string, role Role) (Key, string) {
	t.Helper()
	k, secret, err := s.Create(context.Background(), name, role)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return k, secret
}

func TestCreateListLookupDelete(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "data"))

	alice, aliceSecret := mustCreate(t, s, "alice", RoleAdmin)
	bob, bobSecret := mustCreate(t, s, "bob@example.com", RoleReadOnly)
	alice2, _ := mustCreate(t, s, "alice", RoleReadOnly)

	for _, k := range []Key{alice, bob, alice2} {
		if !keyIDRE.MatchString(k.AccessKeyID) || !principalRE.MatchString(k.PrincipalID) || k.Created.IsZero() {
			t.Fatalf("malformed key %+v", k)
		}
	}
	if !secretRE.MatchString(aliceSecret) || !secretRE.MatchString(bobSecret) || aliceSecret == bobSecret {
		t.Fatalf("malformed secrets %q %q", aliceSecret, bobSecret)
	}
	if alice.PrincipalID != alice2.PrincipalID || alice.PrincipalID == bob.PrincipalID {
		t.Fatalf("principal IDs: keys of one user must share it, of two users must not: %s %s %s", alice.PrincipalID, alice2.PrincipalID, bob.PrincipalID)
	}

	keys, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("listed %d keys, want 3: %+v", len(keys), keys)
	}
	k, secret, ok, err := s.Lookup(ctx, bob.AccessKeyID)
	if err != nil || !ok || secret != bobSecret || k != bob {
		t.Fatalf("lookup bob: %+v %v %v", k, ok, err)
	}
	if k.Role.CanWrite() {
		t.Fatal("read-only key can write")
	}
	if _, _, ok, err := s.Lookup(ctx, "CKIAAAAAAAAAAAAAAAAA"); ok || err != nil {
		t.Fatalf("unknown key: ok=%v err=%v", ok, err)
	}

	if err := s.Delete(ctx, alice.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := s.Lookup(ctx, alice.AccessKeyID); ok || err != nil {
		t.Fatalf("deleted key: ok=%v err=%v", ok, err)
	}
	if err := s.Delete(ctx, alice.AccessKeyID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if keys, _ := s.List(ctx); len(keys) != 2 {
		t.Fatalf("after delete %d keys", len(keys))
	}

	// A reopened store sees the same keys and can decrypt them.
	s2 := openStore(t, s.dir)
	if _, secret, ok, err := s2.Lookup(ctx, bob.AccessKeyID); !ok || err != nil || secret != bobSecret {
		t.Fatalf("reopened lookup: ok=%v err=%v", ok, err)
	}

	id := bob.Identity("123456789012")
	want := Identity{Type: "IAMUser", PrincipalID: bob.PrincipalID, ARN: "arn:aws:iam::123456789012:user/bob@example.com",
		AccountID: "123456789012", AccessKeyID: bob.AccessKeyID, UserName: "bob@example.com"}
	if id != want {
		t.Fatalf("identity %+v", id)
	}
}

func TestCreateValidates(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, name := range []string{"", "has space", "slash/y", strings.Repeat("a", 65), "ünicode"} {
		if _, _, err := s.Create(context.Background(), name, RoleAdmin); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, _, err := s.Create(context.Background(), "ok", Role("root")); err == nil {
		t.Error("role root accepted")
	}
	if _, err := ParseRole("read-only"); err != nil {
		t.Error(err)
	}
}

func TestFileModesAndNoPlaintextSecrets(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	if created, err := s.EnsureAdmin(ctx); err != nil || !created {
		t.Fatalf("EnsureAdmin: %v %v", created, err)
	}
	var secrets []string
	for i := range 3 {
		_, secret := mustCreate(t, s, fmt.Sprintf("user%d", i), RoleReadOnly)
		secrets = append(secrets, secret)
	}
	keys, _ := s.List(ctx)
	if keys[0].Name != AdminName {
		t.Fatalf("oldest key is %+v, want the admin", keys[0])
	}
	_, adminSecret, _, _ := s.Lookup(ctx, keys[0].AccessKeyID)

	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v %v", fi.Mode(), err)
	}
	for _, name := range []string{KeysFile, MasterKeyFile, LockFile, CredentialsName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, sec := range secrets {
			if bytes.Contains(data, []byte(sec)) {
				t.Errorf("secret found in plaintext in %s", p)
			}
		}
		// Only the credentials file, whose purpose it is, holds the admin secret.
		if bytes.Contains(data, []byte(adminSecret)) != (d.Name() == CredentialsName) {
			t.Errorf("admin secret presence wrong in %s", p)
		}
		if strings.HasPrefix(d.Name(), ".") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stores := []*Store{openStore(t, dir), openStore(t, dir)}
	var (
		mu   sync.Mutex
		ids  []string
		wg   sync.WaitGroup
		errs = make(chan error, 64)
	)
	for si, s := range stores {
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 4 {
					k, _, err := s.Create(context.Background(), fmt.Sprintf("s%d-g%d-%d", si, g, i), RoleReadOnly)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					ids = append(ids, k.AccessKeyID)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	keys, err := openStore(t, dir).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[k.AccessKeyID] = true
	}
	if len(keys) != 24 || len(ids) != 24 {
		t.Fatalf("have %d keys, created %d, want 24", len(keys), len(ids))
	}
	for _, id := range ids {
		if !have[id] {
			t.Errorf("key %s lost", id)
		}
	}
}

func TestOtherStoreSeesChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	writer, server := openStore(t, dir), openStore(t, dir)
	if _, _, ok, _ := server.Lookup(ctx, "CKIAAAAAAAAAAAAAAAAA"); ok {
		t.Fatal("phantom key")
	}

	k, secret := mustCreate(t, writer, "carol", RoleAdmin)
	// A lookup miss re-checks the file at once.
	if _, got, ok, err := server.Lookup(ctx, k.AccessKeyID); !ok || err != nil || got != secret {
		t.Fatalf("new key not visible: ok=%v err=%v", ok, err)
	}

	if err := writer.Delete(ctx, k.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		_, _, ok, err := server.Lookup(ctx, k.AccessKeyID)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Since(start) > reloadInterval+500*time.Millisecond {
			t.Fatalf("deleted key still works after %v", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTamperedStoreFailsSafely(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	a, _ := mustCreate(t, s, "a", RoleAdmin)
	b, bSecret := mustCreate(t, s, "b", RoleAdmin)

	edit := func(fn func(f *keysFile)) {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(dir, KeysFile))
		if err != nil {
			t.Fatal(err)
		}
		var f keysFile
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		fn(&f)
		out, _ := json.Marshal(f)
		if err := writeFileAtomic(dir, KeysFile, out); err != nil {
			t.Fatal(err)
		}
	}
	wantCorrupt := func(s *Store, id string) {
		t.Helper()
		k, secret, ok, err := s.Lookup(ctx, id)
		if ok || secret != "" || k != (Key{}) || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("tampered lookup: key=%+v secretLen=%d ok=%v err=%v", k, len(secret), ok, err)
		}
	}

	// Flip one byte of a's ciphertext.
	edit(func(f *keysFile) {
		sec := []byte(f.Keys[0].Secret)
		i := len(sec) - 5
		if sec[i] == 'A' {
			sec[i] = 'B'
		} else {
			sec[i] = 'A'
		}
		f.Keys[0].Secret = string(sec)
	})
	fresh := openStore(t, dir)
	wantCorrupt(fresh, a.AccessKeyID)
	if _, got, ok, err := fresh.Lookup(ctx, b.AccessKeyID); !ok || err != nil || got != bSecret {
		t.Fatalf("untouched key b: ok=%v err=%v", ok, err)
	}

	// A sealed secret moved to another key does not open: the key ID is
	// authenticated with it.
	edit(func(f *keysFile) { f.Keys[0].Secret = f.Keys[1].Secret })
	wantCorrupt(openStore(t, dir), a.AccessKeyID)

	// An unparsable file fails every lookup, even in a store that had the
	// keys cached, rather than serving a stale (maybe deleted) key.
	if err := writeFileAtomic(dir, KeysFile, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(reloadInterval + 500*time.Millisecond)
	for {
		_, _, ok, err := s.Lookup(ctx, b.AccessKeyID)
		if errors.Is(err, ErrCorrupt) && !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("corrupt file not noticed: ok=%v err=%v", ok, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of corrupt store: %v", err)
	}

	// A wrong master key cannot open anything.
	dir2 := t.TempDir()
	s2 := openStore(t, dir2)
	k2, _ := mustCreate(t, s2, "x", RoleAdmin)
	if err := writeFileAtomic(dir2, MasterKeyFile, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(openStore(t, dir2), k2.AccessKeyID)
}

func TestMissingMasterKeyRefused(t *testing.T) {
	dir := t.TempDir()
	mustCreate(t, openStore(t, dir), "x", RoleAdmin)
	if err := os.Remove(filepath.Join(dir, MasterKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("open without master key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, MasterKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a new master key was created over existing keys")
	}
}

func TestEnsureAdminCredentialsFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Keep the SDK away from the environment's own credentials.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-such-config"))

	s1, s2 := openStore(t, dir), openStore(t, dir)
	var (
		wg      sync.WaitGroup
		created [2]bool
		errs    [2]error
	)
	for i, s := range []*Store{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created[i], errs[i] = s.EnsureAdmin(ctx)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || created[0] == created[1] {
		t.Fatalf("concurrent EnsureAdmin: created=%v errs=%v", created, errs)
	}
	again, err := s1.EnsureAdmin(ctx)
	if err != nil || again {
		t.Fatalf("EnsureAdmin not idempotent: %v %v", again, err)
	}
	keys, err := s1.List(ctx)
	if err != nil || len(keys) != 1 || keys[0].Role != RoleAdmin || keys[0].Name != AdminName {
		t.Fatalf("keys after EnsureAdmin: %+v %v", keys, err)
	}
	_, secret, _, err := s1.Lookup(ctx, keys[0].AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithSharedCredentialsFiles([]string{filepath.Join(dir, CredentialsName)}),
		config.WithSharedConfigProfile(AdminProfile),
		config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != keys[0].AccessKeyID || got.SecretAccessKey != secret {
		t.Fatalf("credentials file yields %s, want %s", got.AccessKeyID, keys[0].AccessKeyID)
	}
}

func TestWriteHonoursContext(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	unlock, err := lockPath(context.Background(), filepath.Join(dir, LockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.Create(ctx, "late", RoleAdmin); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("create while locked: %v", err)
	}
}
