package file_test

import (
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/objstore/objstoretest"
)

func newStore(t *testing.T) *file.Store {
	t.Helper()
	s, err := file.New(t.TempDir(), file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newStore(t) })
}

func put(t *testing.T, s *file.Store, bucket, key, body string, md map[string]string) {
	t.Helper()
	if err := s.Put(t.Context(), bucket, key, strings.NewReader(body), int64(len(body)), objstore.PutOptions{Metadata: md}); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func read(t *testing.T, s *file.Store, bucket, key string) (string, objstore.ObjectInfo, error) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), bucket, key)
	if err != nil {
		return "", info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), info, err
}

func TestKeysStayInsideTheBucket(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	s, err := file.New(dir, file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"../escape", "a/../../escape", "/abs", "a//b", "./a", "a/.", "a/..", "trailing/",
		"x.cairn-meta.json", "a/b.cairn-meta.json/c", strings.Repeat("s", 250),
	} {
		err := s.Put(ctx, "bkt", k, strings.NewReader("x"), 1, objstore.PutOptions{})
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, _, err := s.Get(ctx, "bkt", k); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, "bkt", k); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 || ents[0].Name() != "store" {
		t.Errorf("something was written next to the store: %v", ents)
	}
	// Bucket names are single path elements too.
	for _, b := range []string{"..", "../x", ".cairn-tmp", "a/b"} {
		if _, _, err := s.Get(ctx, b, "k"); !errors.Is(err, objstore.ErrInvalidBucketName) {
			t.Errorf("Get in bucket %q = %v, want ErrInvalidBucketName", b, err)
		}
	}
}

func TestSymlinksCannotLeadOutside(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := file.New(dir, file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "bkt", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "bkt", "filelink")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"link/secret", "filelink"} {
		if body, _, err := read(t, s, "bkt", k); err == nil {
			t.Errorf("Get(%q) read %q from outside the store", k, body)
		}
	}
	if err := s.Put(ctx, "bkt", "link/new", strings.NewReader("x"), 1, objstore.PutOptions{}); err == nil {
		t.Errorf("Put through a symlink succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Errorf("Put wrote outside the store")
	}
	var listed []string
	if err := s.List(ctx, "bkt", "", "", func(o objstore.ObjectInfo) error { listed = append(listed, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 0 {
		t.Errorf("List followed symlinks: %v", listed)
	}
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(dir, file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateBucket(ctx, "trail"); err != nil {
		t.Fatal(err)
	}
	key := "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/log.json.gz"
	put(t, s, "trail", key, "verbatim bytes", map[string]string{"signature": "ab"})
	// The body is a plain file at the key's path: operators can zcat it.
	b, err := os.ReadFile(filepath.Join(dir, "trail", filepath.FromSlash(key)))
	if err != nil || string(b) != "verbatim bytes" {
		t.Fatalf("object file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "trail", filepath.FromSlash(key)) + ".cairn-meta.json"); err != nil {
		t.Fatalf("sidecar: %v", err)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, ".cairn-tmp")); err != nil || len(ents) != 0 {
		t.Errorf("temporary area after Put: %v, %v; want empty", ents, err)
	}
	buckets, err := s.ListBuckets(ctx)
	if err != nil || len(buckets) != 1 || buckets[0].Name != "trail" {
		t.Errorf("ListBuckets = %+v, %v; want only trail", buckets, err)
	}
	// A reopened store sees the same bucket, with the same creation date.
	s2, err := file.New(dir, file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	buckets2, err := s2.ListBuckets(ctx)
	if err != nil || len(buckets2) != 1 || !buckets2[0].CreationDate.Equal(buckets[0].CreationDate) {
		t.Errorf("after reopening: %+v, %v; want %+v", buckets2, err, buckets)
	}
	// Delete leaves no empty directories behind.
	if err := s.Delete(ctx, "trail", key); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "trail"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != ".cairn-meta.json" {
			t.Errorf("left behind in the bucket after Delete: %s", e.Name())
		}
	}
}

func TestFilePlacedByHand(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(dir, file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bkt", "restored"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bkt", "restored", "f"), []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	body, info, err := read(t, s, "bkt", "restored/f")
	if err != nil || body != "old" || info.Size != 3 || info.ContentType != objstore.DefaultContentType || info.Metadata != nil {
		t.Errorf("Get of a hand-placed file = %q %+v %v", body, info, err)
	}
}

func TestSSEKMSIsRefused(t *testing.T) {
	s := newStore(t)
	if err := s.CreateBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	err := s.Put(t.Context(), "bkt", "k", strings.NewReader("x"), 1, objstore.PutOptions{SSEKMSKeyID: "arn:aws:kms:us-east-1:123456789012:key/abc"})
	if !errors.Is(err, objstore.ErrUnsupported) {
		t.Fatalf("Put with SSE-KMS = %v, want ErrUnsupported", err)
	}
	if _, err := s.Head(t.Context(), "bkt", "k"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("object stored unencrypted after refusing SSE-KMS: %v", err)
	}
}

// replaceBody swaps the object's body for a new file (new inode), as a
// crash between Put's two renames would leave it, or an operator's copy.
func replaceBody(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	// A different mtime too, in case the inode number is reused.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestSidecarMismatch(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(dir, file.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateBucket(t.Context(), "bkt"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "bkt", "digest", "signed content", map[string]string{"signature": "ab"})
	path := filepath.Join(dir, "bkt", "digest")

	// Same bytes under a new inode (a replayed Put interrupted between
	// renames): the sidecar still describes them, so the object is fine.
	replaceBody(t, path, "signed content")
	body, info, err := read(t, s, "bkt", "digest")
	if err != nil || body != "signed content" || info.Metadata["signature"] != "ab" {
		t.Fatalf("same bytes, new inode: %q %+v %v", body, info, err)
	}

	// Different bytes: serving them with the old signature would be a lie.
	replaceBody(t, path, "other content!")
	_, _, err = read(t, s, "bkt", "digest")
	if !errors.Is(err, objstore.ErrDamaged) {
		t.Fatalf("Get of a body that does not match its sidecar = %v, want ErrDamaged", err)
	}
	if strings.Contains(err.Error(), "again") {
		t.Errorf("the error advises putting a body that may have been tampered with again: %v", err)
	}
	if _, err := s.Head(t.Context(), "bkt", "digest"); !errors.Is(err, objstore.ErrDamaged) {
		t.Fatalf("Head of a damaged object = %v, want ErrDamaged", err)
	}
	// A verifier gets the bytes as they are, told they are not the ones
	// the sidecar describes, with the body's own MD5 as ETag.
	rc, info, damaged, err := s.GetAsStored(t.Context(), "bkt", "digest")
	if err != nil || !errors.Is(damaged, objstore.ErrDamaged) {
		t.Fatalf("GetAsStored of a damaged object: damaged=%v err=%v", damaged, err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "other content!" || info.Size != 14 || info.ETag != `"`+fmt.Sprintf("%x", md5.Sum(b))+`"` || info.Metadata["signature"] != "ab" {
		t.Fatalf("GetAsStored of a damaged object = %q %+v", b, info)
	}
	// A listing does not stop at it.
	put(t, s, "bkt", "later", "x", nil)
	var keys []string
	if err := s.List(t.Context(), "bkt", "", "", func(oi objstore.ObjectInfo) error { keys = append(keys, oi.Key); return nil }); err != nil || !slices.Equal(keys, []string{"digest", "later"}) {
		t.Fatalf("List with a damaged object = %v %v", keys, err)
	}
	// A sidecar that is not JSON is damage too, not an I/O error.
	if err := os.WriteFile(path+".cairn-meta.json", []byte("{not json"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := read(t, s, "bkt", "digest"); !errors.Is(err, objstore.ErrDamaged) {
		t.Fatalf("Get with a garbled sidecar = %v, want ErrDamaged", err)
	}
	if rc, _, damaged, err := s.GetAsStored(t.Context(), "bkt", "digest"); err != nil || !errors.Is(damaged, objstore.ErrDamaged) {
		t.Fatalf("GetAsStored with a garbled sidecar: damaged=%v err=%v", damaged, err)
	} else {
		rc.Close()
	}
	// Putting it again repairs it.
	put(t, s, "bkt", "digest", "new", nil)
	if body, _, err := read(t, s, "bkt", "digest"); err != nil || body != "new" {
		t.Fatalf("after re-put: %q %v", body, err)
	}
}

func TestStaleTemporaryFilesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(dir, file.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	tmp := filepath.Join(dir, ".cairn-tmp")
	for _, name := range []string{"stale", "fresh"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(tmp, "stale"), old, old); err != nil {
		t.Fatal(err)
	}
	s, err = file.New(dir, file.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(tmp, "stale")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "fresh")); err != nil {
		t.Errorf("fresh temporary file (maybe another process's Put) removed: %v", err)
	}
}

// TestOverwriteIsAtomicForReaders races readers against a writer that
// keeps replacing one object: every read must see one whole version whose
// metadata belongs to its body.
func TestOverwriteIsAtomicForReaders(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	version := func(i int) string { return strings.Repeat(fmt.Sprintf("<%d>", i), 2000+i) }
	put(t, s, "bkt", "k", version(0), map[string]string{"v": "0"})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				body, info, err := read(t, s, "bkt", "k")
				if err != nil {
					t.Errorf("Get during overwrites: %v", err)
					return
				}
				var v int
				fmt.Sscan(info.Metadata["v"], &v)
				if body != version(v) || info.Size != int64(len(body)) {
					t.Errorf("read a body of %d bytes that is not version %s", len(body), info.Metadata["v"])
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := 1; i <= 40; i++ {
		put(t, s, "bkt", "k", version(i), map[string]string{"v": fmt.Sprint(i)})
	}
	close(stop)
	wg.Wait()
	if reads.Load() == 0 {
		t.Errorf("readers never ran")
	}
}

// TestPutRacesDirectoryPruning races Puts into a directory against Deletes
// that empty it (and so prune it): no Put may fail for want of its
// directory.
func TestPutRacesDirectoryPruning(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				key := fmt.Sprintf("deep/dir/w%d-%d", w, i)
				if err := s.Put(ctx, "bkt", key, strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
					t.Errorf("Put(%s): %v", key, err)
					return
				}
				if err := s.Delete(ctx, "bkt", key); err != nil {
					t.Errorf("Delete(%s): %v", key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if ents, err := os.ReadDir(filepath.Join(s.Dir(), "bkt")); err != nil || len(ents) != 1 {
		t.Errorf("bucket after the race: %v %v; want only its own sidecar", ents, err)
	}
}
