// Package file is the objstore backend on a local directory: Cairn's
// embedded default, so a single binary can deliver trails with nothing else
// installed.
//
// # Layout
//
//	DIR/
//	  .cairn-tmp/                     in-progress Puts (same filesystem, so rename is atomic)
//	  <bucket>/                       one directory per bucket
//	    .cairn-meta.json              the bucket's creation time
//	    <key>                         the object's bytes, verbatim (zcat works on log files)
//	    <key>.cairn-meta.json         sidecar: ETag, size, content headers, user metadata
//
// A key is a relative path: "AWSLogs/123/CloudTrail/x.json.gz" is the file
// DIR/<bucket>/AWSLogs/123/CloudTrail/x.json.gz. So that a key is always a
// clean path inside its bucket, keys with an empty, "." or ".." segment, a
// leading or trailing '/', NUL, a segment longer than the filesystem allows
// or a segment ending in ".cairn-meta.json" are refused (ErrInvalidKey).
// All file access goes through an os.Root, so not even a symlink planted in
// DIR can lead outside it. As in other file-tree S3 servers, one key cannot
// be both an object and a "directory" of others ("a/b" and "a/b/c"): the
// second Put fails with ErrInvalidKey and leaves the first object intact.
//
// # Atomicity and durability
//
// Put writes body and sidecar to temporary files, fsyncs both, renames the
// sidecar into place, then the body, then fsyncs the directory (and every
// directory it had to create). Because the sidecar lands first, a new
// object is never visible without its metadata. The sidecar records the
// identity of the body file it describes (inode, size, mtime), so a reader
// that races an overwrite, or finds the remains of a crash between the two
// renames, notices the mismatch: it retries, and if the mismatch persists
// it accepts the sidecar only when the body's MD5 equals the sidecar's
// ETag (a replayed Put of identical bytes). Otherwise the object is
// damaged (objstore.ErrDamaged): a body edited, truncated or replaced on
// disk looks the same. Get and Head refuse it rather than serve it with
// someone else's signature; List lists it as what is on disk; and
// GetAsStored hands its bytes to a verifier such as validate-logs, which
// judges them by the digest's hash and reports them as the AWS CLI does.
// Delete removes the body first and the sidecar second, for the same
// reason. Puts of one key are serialised within a process so two writers
// cannot interleave their renames.
package file

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-audit/cairn/internal/objstore"
)

const (
	// tmpDir holds in-progress writes. It cannot clash with a bucket:
	// bucket names never start with '.'.
	tmpDir = ".cairn-tmp"
	// metaSuffix marks sidecar files; keys may not have a segment ending
	// in it, so a sidecar can never shadow an object.
	metaSuffix = objstore.SidecarSuffix
	// bucketMeta is the bucket's own sidecar (the sidecar of the empty key).
	bucketMeta = metaSuffix
	// staleTmpAge is how old a temporary file must be before New removes
	// it: old enough that no live Put, in this or another process sharing
	// DIR, can still own it.
	staleTmpAge = 24 * time.Hour

	// Delivered logs are audit records: owner only, like the rest of
	// Cairn's data directory (internal/datadir), whatever the umask.
	dirPerm  = 0o700
	filePerm = 0o600
)

// Options configure a Store.
type Options struct {
	// Logger receives warnings about damaged objects and cleanup; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Store is an objstore.Store on a directory. It is safe for concurrent
// use, and several processes may share one directory (Puts of the same key
// from two processes at the same instant are the one thing not
// serialised; the damage check above catches the result).
type Store struct {
	dir   string
	root  *os.Root
	log   *slog.Logger
	locks [64]sync.Mutex // striped per-key locks for Put and Delete
}

var (
	_ objstore.Store          = (*Store)(nil)
	_ objstore.AsStoredGetter = (*Store)(nil)
	_ objstore.LocalPather    = (*Store)(nil)
)

// New opens the store in dir, creating dir if needed, and removes
// temporary files that crashed Puts left behind long ago.
func New(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("objstore/file: empty directory path")
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("objstore/file: create store directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore/file: open store directory: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Store{dir: dir, root: root, log: log.With("objstore", "file", "dir", dir)}
	if err := root.Mkdir(tmpDir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		root.Close()
		return nil, fmt.Errorf("objstore/file: create %s: %w", tmpDir, err)
	}
	s.removeStaleTemps()
	return s, nil
}

// Dir is the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// LocalPath returns the path of the file holding the object's body (see
// objstore.LocalPather): bodies are stored verbatim under DIR/<bucket>/<key>.
func (s *Store) LocalPath(bucket, key string) (string, bool) {
	if s.check(bucket, key) != nil {
		return "", false
	}
	p := filepath.Join(s.dir, bucket, filepath.FromSlash(key))
	if abs, err := filepath.Abs(p); err == nil {
		p = abs // readers in other processes and DuckDB's allowed_directories need it
	}
	return p, true
}

// Close releases the directory handle.
func (s *Store) Close() error { return s.root.Close() }

func (s *Store) removeStaleTemps() {
	d, err := s.root.Open(tmpDir)
	if err != nil {
		return
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleTmpAge {
			continue
		}
		if err := s.root.Remove(path.Join(tmpDir, e.Name())); err == nil {
			s.log.Info("removed a stale temporary file", "name", e.Name())
		}
	}
}

// BucketExists reports whether bucket is a directory of the store.
func (s *Store) BucketExists(ctx context.Context, bucket string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := objstore.ValidBucketName(bucket); err != nil {
		return false, err
	}
	info, err := s.root.Stat(bucket)
	switch {
	case err == nil:
		return info.IsDir(), nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("objstore/file: stat bucket %s: %w", bucket, err)
}

// CreateBucket makes the bucket's directory, durably.
func (s *Store) CreateBucket(ctx context.Context, bucket string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := objstore.ValidBucketName(bucket); err != nil {
		return err
	}
	if err := s.root.Mkdir(bucket, dirPerm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("objstore/file: create bucket %s: %w", bucket, objstore.ErrBucketExists)
		}
		return fmt.Errorf("objstore/file: create bucket %s: %w", bucket, err)
	}
	meta, err := json.Marshal(bucketSidecar{Version: 1, Created: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("objstore/file: create bucket %s: %w", bucket, err)
	}
	tmp, err := s.writeTemp(ctx, bytes.NewReader(meta), int64(len(meta)))
	if err != nil {
		return fmt.Errorf("objstore/file: create bucket %s: %w", bucket, err)
	}
	if err := s.root.Rename(tmp.name, path.Join(bucket, bucketMeta)); err != nil {
		s.root.Remove(tmp.name)
		return fmt.Errorf("objstore/file: create bucket %s: record creation time: %w", bucket, err)
	}
	if err := s.syncDir(bucket); err != nil {
		return fmt.Errorf("objstore/file: create bucket %s: %w", bucket, err)
	}
	if err := s.syncDir("."); err != nil {
		return fmt.Errorf("objstore/file: create bucket %s: %w", bucket, err)
	}
	return nil
}

type bucketSidecar struct {
	Version int       `json:"v"`
	Created time.Time `json:"created"`
}

// ListBuckets returns the bucket directories, sorted by name.
func (s *Store) ListBuckets(ctx context.Context) ([]objstore.BucketInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := s.root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("objstore/file: list buckets: %w", err)
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("objstore/file: list buckets: %w", err)
	}
	var out []objstore.BucketInfo
	for _, e := range ents {
		if !e.IsDir() || objstore.ValidBucketName(e.Name()) != nil {
			continue
		}
		b := objstore.BucketInfo{Name: e.Name()}
		var meta bucketSidecar
		if raw, err := s.root.ReadFile(path.Join(e.Name(), bucketMeta)); err == nil && json.Unmarshal(raw, &meta) == nil {
			b.CreationDate = meta.Created
		} else if info, err := e.Info(); err == nil {
			b.CreationDate = info.ModTime().UTC() // made by hand, or a crash inside CreateBucket
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b objstore.BucketInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// checkKey refuses keys that are not clean relative paths (see the
// package comment): objstore's portable-key rule, which is this backend's.
func checkKey(key string) error { return objstore.ValidPortableKey(key) }

func (s *Store) check(bucket, key string) error {
	if err := objstore.ValidBucketName(bucket); err != nil {
		return err
	}
	return checkKey(key)
}

// notFound turns a failed lookup into ErrNoSuchBucket or ErrNotFound.
func (s *Store) notFound(op, bucket, key string) error {
	if info, err := s.root.Stat(bucket); err != nil || !info.IsDir() {
		return fmt.Errorf("objstore/file: %s %s/%s: %w", op, bucket, key, objstore.ErrNoSuchBucket)
	}
	return fmt.Errorf("objstore/file: %s %s/%s: %w", op, bucket, key, objstore.ErrNotFound)
}

func (s *Store) lock(bucket, key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(bucket))
	h.Write([]byte{'/'})
	h.Write([]byte(key))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

// sidecar is what <key>.cairn-meta.json holds.
type sidecar struct {
	Version         int               `json:"v"`
	Size            int64             `json:"size"`
	ETag            string            `json:"etag"`
	ContentType     string            `json:"contentType,omitempty"`
	ContentEncoding string            `json:"contentEncoding,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	// Identity of the body file this sidecar describes.
	DataIno     uint64 `json:"dataIno"`
	DataMtimeNs int64  `json:"dataMtimeNs"`
}

// tempFile is a synced temporary file in tmpDir.
type tempFile struct {
	name  string // relative to the root
	size  int64
	md5   []byte
	ino   uint64
	mtime time.Time
}

// writeTemp copies r into a new file in tmpDir and fsyncs it. A
// non-negative size must match exactly.
func (s *Store) writeTemp(ctx context.Context, r io.Reader, size int64) (*tempFile, error) {
	var rnd [12]byte
	rand.Read(rnd[:])
	name := path.Join(tmpDir, hex.EncodeToString(rnd[:]))
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			s.root.Remove(name)
		}
	}()
	h := md5.New()
	src := io.Reader(ctxReader{ctx, r})
	if size >= 0 {
		src = io.LimitReader(src, size+1) // one more byte tells "too long"
	}
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), src, buf)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("write body: %w", err)
	}
	if size >= 0 && n != size {
		if n > size {
			return nil, fmt.Errorf("body is longer than the declared size %d", size)
		}
		return nil, fmt.Errorf("body is %d bytes, declared size is %d", n, size)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync temporary file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close temporary file: %w", err)
	}
	ok = true
	return &tempFile{name: name, size: n, md5: h.Sum(nil), ino: inode(info), mtime: info.ModTime()}, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Put stores the object atomically and durably (see the package comment).
func (s *Store) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objstore.PutOptions) error {
	if err := s.check(bucket, key); err != nil {
		return err
	}
	if opts.SSEKMSKeyID != "" {
		return fmt.Errorf("objstore/file: put %s/%s: SSE-KMS encryption: %w (use an s3:// store for a trail with a KMS key)", bucket, key, objstore.ErrUnsupported)
	}
	if err := objstore.ValidMetadata(opts.Metadata); err != nil {
		return fmt.Errorf("objstore/file: put %s/%s: %w", bucket, key, err)
	}
	if ok, err := s.BucketExists(ctx, bucket); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("objstore/file: put %s/%s: %w", bucket, key, objstore.ErrNoSuchBucket)
	}

	data, err := s.writeTemp(ctx, body, size)
	if err != nil {
		return fmt.Errorf("objstore/file: put %s/%s: %w", bucket, key, err)
	}
	defer s.root.Remove(data.name) // a no-op once renamed
	ct := opts.ContentType
	if ct == "" {
		ct = objstore.DefaultContentType
	}
	sc := sidecar{
		Version:         1,
		Size:            data.size,
		ETag:            `"` + hex.EncodeToString(data.md5) + `"`,
		ContentType:     ct,
		ContentEncoding: opts.ContentEncoding,
		Metadata:        objstore.NormalizeMetadata(opts.Metadata),
		DataIno:         data.ino,
		DataMtimeNs:     data.mtime.UnixNano(),
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("objstore/file: put %s/%s: encode sidecar: %w", bucket, key, err)
	}
	meta, err := s.writeTemp(ctx, bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return fmt.Errorf("objstore/file: put %s/%s: sidecar: %w", bucket, key, err)
	}
	defer s.root.Remove(meta.name)

	objPath := path.Join(bucket, key)
	dir := path.Dir(objPath)
	mu := s.lock(bucket, key)
	mu.Lock()
	defer mu.Unlock()
	// A concurrent Delete of the last object in a directory may remove it
	// between our mkdir and our rename; that shows as ENOENT, so retry.
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err // nothing committed yet
		}
		err := s.commit(bucket, key, dir, objPath, data.name, meta.name)
		if err == nil {
			return nil
		}
		if attempt < 10 && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return fmt.Errorf("objstore/file: put %s/%s: %w", bucket, key, err)
	}
}

// commit moves the synced temporaries into place, sidecar first.
func (s *Store) commit(bucket, key, dir, objPath, dataTmp, metaTmp string) error {
	if err := s.mkdirAll(bucket, dir); err != nil {
		return err
	}
	if info, err := s.root.Lstat(objPath); err == nil && info.IsDir() {
		return fmt.Errorf("%w: %q is already a prefix of other keys here (a file-tree store cannot hold both)", objstore.ErrInvalidKey, key)
	}
	if err := s.root.Rename(metaTmp, objPath+metaSuffix); err != nil {
		return fmt.Errorf("place sidecar: %w", err)
	}
	if err := s.root.Rename(dataTmp, objPath); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
			s.root.Remove(objPath + metaSuffix)
			return fmt.Errorf("%w: %q is already a prefix of other keys here (a file-tree store cannot hold both)", objstore.ErrInvalidKey, key)
		}
		return fmt.Errorf("place body: %w", err)
	}
	if err := s.syncDir(dir); err != nil {
		return err
	}
	return nil
}

// mkdirAll creates dir (inside bucket) and its missing parents, fsyncing
// each parent that gained an entry, so the new object's path survives a
// crash along with the object.
func (s *Store) mkdirAll(bucket, dir string) error {
	if dir == bucket {
		return nil
	}
	rel := strings.TrimPrefix(dir, bucket+"/")
	cur := bucket
	for seg := range strings.SplitSeq(rel, "/") {
		parent := cur
		cur = cur + "/" + seg
		err := s.root.Mkdir(cur, dirPerm)
		switch {
		case err == nil:
			if err := s.syncDir(parent); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			if info, serr := s.root.Lstat(cur); serr == nil && !info.IsDir() {
				return fmt.Errorf("%w: %q is already an object, so it cannot also be a prefix of keys here (a file-tree store cannot hold both)", objstore.ErrInvalidKey, strings.TrimPrefix(cur, bucket+"/"))
			}
		case errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("%w: a prefix of the key is already an object (a file-tree store cannot hold both)", objstore.ErrInvalidKey)
		default:
			return fmt.Errorf("create directory %s: %w", cur, err)
		}
	}
	return nil
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Get opens the object's body and reads its sidecar. A body its sidecar
// does not describe is refused with objstore.ErrDamaged: serving it would
// pair it with another body's ETag and signature.
func (s *Store) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	f, info, err := s.getChecked(ctx, "get", bucket, key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	return f, info, nil
}

// GetAsStored is Get for a verifier (objstore.AsStoredGetter): a body its
// sidecar does not describe is returned as it is, with damaged saying so,
// and nothing is logged (the caller judges the bytes and reports them).
func (s *Store) GetAsStored(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error, error) {
	if err := ctx.Err(); err != nil {
		return nil, objstore.ObjectInfo{}, nil, err
	}
	if err := s.check(bucket, key); err != nil {
		return nil, objstore.ObjectInfo{}, nil, err
	}
	f, info, damaged, err := s.open(ctx, "get", bucket, key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, nil, err
	}
	return f, info, damaged, nil
}

// Head is Get without the body.
func (s *Store) Head(ctx context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	f, info, err := s.getChecked(ctx, "head", bucket, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	f.Close()
	return info, nil
}

func (s *Store) getChecked(ctx context.Context, op, bucket, key string) (*os.File, objstore.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	if err := s.check(bucket, key); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	f, info, damaged, err := s.open(ctx, op, bucket, key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	if damaged != nil {
		f.Close()
		s.log.Warn("object body and sidecar disagree: changed on disk after it was stored, or an overwrite was interrupted", "bucket", bucket, "key", key, "err", damaged)
		return nil, objstore.ObjectInfo{}, damaged
	}
	return f, info, nil
}

// open opens the body and pairs it with a sidecar that describes it
// (see the package comment for the races this handles). A body the
// sidecar does not describe (or whose sidecar is not valid JSON) comes
// back with damaged set, wrapping objstore.ErrDamaged: info then has the
// body's own size, time and MD5 ETag, and the sidecar's headers and
// metadata as stored. err is for everything that leaves no body to read.
func (s *Store) open(ctx context.Context, op, bucket, key string) (f *os.File, info objstore.ObjectInfo, damaged, err error) {
	objPath := path.Join(bucket, key)
	fail := func(err error) (*os.File, objstore.ObjectInfo, error, error) {
		if f != nil {
			f.Close()
		}
		return nil, objstore.ObjectInfo{}, nil, err
	}
	for attempt := 0; ; attempt++ {
		f, err = s.root.Open(objPath)
		if err != nil {
			f = nil
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return fail(s.notFound(op, bucket, key))
			}
			return fail(fmt.Errorf("objstore/file: %s %s/%s: %w", op, bucket, key, err))
		}
		st, err := f.Stat()
		if err != nil {
			return fail(fmt.Errorf("objstore/file: %s %s/%s: %w", op, bucket, key, err))
		}
		if !st.Mode().IsRegular() { // a "directory" of other keys, or something odd
			return fail(s.notFound(op, bucket, key))
		}
		info = objstore.ObjectInfo{Key: key, Size: st.Size(), LastModified: st.ModTime().UTC(), ContentType: objstore.DefaultContentType}
		raw, err := s.root.ReadFile(objPath + metaSuffix)
		if errors.Is(err, fs.ErrNotExist) {
			// Put never leaves a body without its sidecar, so this file
			// was placed by hand: serve it as plain bytes.
			return f, info, nil, nil
		}
		if err != nil {
			return fail(fmt.Errorf("objstore/file: %s %s/%s: read sidecar: %w", op, bucket, key, err))
		}
		var sc sidecar
		if jerr := json.Unmarshal(raw, &sc); jerr != nil {
			sum, err := md5File(f)
			if err != nil {
				return fail(fmt.Errorf("objstore/file: %s %s/%s: read body: %w", op, bucket, key, err))
			}
			info.ETag = `"` + sum + `"`
			return f, info, fmt.Errorf("objstore/file: %s %s/%s: %w: its sidecar %s is not valid: %v", op, bucket, key, objstore.ErrDamaged, path.Base(key)+metaSuffix, jerr), nil
		}
		match := sc.Size == st.Size() && sc.DataIno == inode(st) && sc.DataMtimeNs == st.ModTime().UnixNano()
		if !match && attempt < 20 {
			// Most likely an overwrite between its two renames: look again.
			// A busy writer on a loaded machine can straddle several looks
			// in a row, so give up only after ~300 ms: a real interrupted
			// overwrite is rare and may wait, a false "damaged" may not.
			f.Close()
			select {
			case <-ctx.Done():
				return nil, objstore.ObjectInfo{}, nil, ctx.Err()
			case <-time.After(min(time.Duration(attempt+1)*2*time.Millisecond, 20*time.Millisecond)):
			}
			continue
		}
		info.ETag = sc.ETag
		info.ContentType = sc.ContentType
		info.ContentEncoding = sc.ContentEncoding
		info.Metadata = sc.Metadata
		if !match {
			sum, err := md5File(f)
			if err != nil {
				return fail(fmt.Errorf("objstore/file: %s %s/%s: read body: %w", op, bucket, key, err))
			}
			if sc.Size != st.Size() || `"`+sum+`"` != sc.ETag {
				info.ETag = `"` + sum + `"`
				damaged = fmt.Errorf("objstore/file: %s %s/%s: %w: the body on disk (%d bytes, MD5 %s) is not the one its sidecar describes (%d bytes, ETag %s): it was changed after it was stored, or an overwrite was interrupted",
					op, bucket, key, objstore.ErrDamaged, st.Size(), sum, sc.Size, sc.ETag)
			}
			// Otherwise the same bytes as the sidecar describes (a
			// replayed Put): fine. md5File read to the end either way.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fail(fmt.Errorf("objstore/file: %s %s/%s: %w", op, bucket, key, err))
			}
		}
		return f, info, damaged, nil
	}
}

func md5File(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Delete removes body then sidecar, then prunes directories the key
// leaves empty (S3 has no directories, so none should linger).
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.check(bucket, key); err != nil {
		return err
	}
	if ok, err := s.BucketExists(ctx, bucket); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("objstore/file: delete %s/%s: %w", bucket, key, objstore.ErrNoSuchBucket)
	}
	objPath := path.Join(bucket, key)
	mu := s.lock(bucket, key)
	mu.Lock()
	defer mu.Unlock()
	info, err := s.root.Lstat(objPath)
	if err != nil || info.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // not an object: nothing to delete, as in S3
		}
		return fmt.Errorf("objstore/file: delete %s/%s: %w", bucket, key, err)
	}
	if err := s.root.Remove(objPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore/file: delete %s/%s: %w", bucket, key, err)
	}
	if err := s.root.Remove(objPath + metaSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore/file: delete %s/%s: remove sidecar: %w", bucket, key, err)
	}
	dir := path.Dir(objPath)
	if err := s.syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore/file: delete %s/%s: %w", bucket, key, err)
	}
	for dir != bucket {
		if err := s.root.Remove(dir); err != nil {
			break // not empty (or already gone): stop pruning
		}
		dir = path.Dir(dir)
	}
	return nil
}

// List walks the bucket's tree in S3 key order. Within a directory, an
// object named n sorts as "n" and a subdirectory d as "d/": every key below
// d starts with "d/" and no entry name contains '/', so visiting entries in
// that order (descending into directories in place) yields all keys in
// byte order. Directories that cannot hold a key matching prefix and
// sorting after startAfter are not opened.
func (s *Store) List(ctx context.Context, bucket, prefix, startAfter string, fn func(objstore.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := objstore.ValidBucketName(bucket); err != nil {
		return err
	}
	if ok, err := s.BucketExists(ctx, bucket); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("objstore/file: list %s: %w", bucket, objstore.ErrNoSuchBucket)
	}
	w := walker{s: s, ctx: ctx, bucket: bucket, prefix: prefix, startAfter: startAfter, fn: fn}
	err := w.walk("")
	if errors.Is(err, objstore.ErrStop) {
		return nil
	}
	return err
}

type walker struct {
	s                  *Store
	ctx                context.Context
	bucket             string
	prefix, startAfter string
	fn                 func(objstore.ObjectInfo) error
}

type entry struct {
	sortKey string // name, or name+"/" for a directory
	name    string
	dir     bool
}

// walk lists the directory holding keys that start with keyPrefix ("" or
// ending in '/').
func (w *walker) walk(keyPrefix string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	dirPath := path.Join(w.bucket, keyPrefix)
	d, err := w.s.root.Open(dirPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && keyPrefix != "" {
			return nil // pruned by a concurrent Delete
		}
		return fmt.Errorf("objstore/file: list %s: open %s: %w", w.bucket, dirPath, err)
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("objstore/file: list %s: read %s: %w", w.bucket, dirPath, err)
	}
	list := make([]entry, 0, len(ents))
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, metaSuffix):
			continue // sidecars (and the bucket's own)
		case e.IsDir():
			list = append(list, entry{sortKey: name + "/", name: name, dir: true})
		case e.Type().IsRegular():
			list = append(list, entry{sortKey: name, name: name})
		}
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	for _, e := range list {
		full := keyPrefix + e.sortKey
		if e.dir {
			// Keys below start with full. Skip the subtree unless it can
			// match prefix and reach past startAfter.
			if !strings.HasPrefix(full, w.prefix) && !strings.HasPrefix(w.prefix, full) {
				continue
			}
			if full <= w.startAfter && !strings.HasPrefix(w.startAfter, full) {
				continue
			}
			if err := w.walk(full); err != nil {
				return err
			}
			continue
		}
		if !strings.HasPrefix(full, w.prefix) || full <= w.startAfter {
			continue
		}
		if checkKey(full) != nil {
			continue // a stray file no Put could have made
		}
		// A damaged object is listed as what is on disk (its body's size,
		// time and MD5): it exists, and a listing that stopped at it would
		// hide every key after it.
		f, info, _, err := w.s.open(w.ctx, "list", w.bucket, full)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // deleted while we listed
		}
		if err != nil {
			return err
		}
		f.Close()
		if err := w.fn(info); err != nil {
			return err
		}
	}
	return nil
}
