// Package objstore is the object store trails deliver log files and digest
// files to. It is deliberately the small subset of S3 that CloudTrail
// delivery and validation need (buckets, whole-object put/get, ordered
// listing, user metadata), so that a local directory and any S3-compatible
// server can both implement it and pass one conformance suite
// (objstoretest).
//
// Backends live in subpackages: file (a directory tree, the embedded
// default) and s3 (any S3-compatible server). Package stores picks one from
// a URL.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Backends wrap them with %w together with what failed, so
// callers test with errors.Is and log the full message.
var (
	// ErrNotFound: the bucket exists but the key does not.
	ErrNotFound = errors.New("object not found")
	// ErrNoSuchBucket: the bucket does not exist.
	ErrNoSuchBucket = errors.New("no such bucket")
	// ErrBucketExists: CreateBucket found the bucket already there.
	ErrBucketExists = errors.New("bucket already exists")
	// ErrUnsupported: the backend cannot honour a requested option (for
	// example SSE-KMS on the file backend). Callers must surface it rather
	// than silently fall back to something weaker.
	ErrUnsupported = errors.New("not supported by this object store")
	// ErrInvalidBucketName: the name breaks S3's bucket naming rules.
	ErrInvalidBucketName = errors.New("invalid bucket name")
	// ErrInvalidKey: the key cannot be stored by this backend: it is not a
	// valid S3 key, or (file-tree backends such as file and versitygw's
	// posix) it would need a path that is already an object where a
	// directory is needed or the other way round ("a/b" and "a/b/c").
	ErrInvalidKey = errors.New("invalid object key")
	// ErrDamaged: the object's body is not the one its stored metadata
	// describes (a backend that keeps the two apart, such as file, found
	// them disagree on read): the body was changed, truncated or replaced
	// behind the store's back, or an overwrite was interrupted. Get and
	// Head refuse such an object rather than serve the body with another
	// body's ETag and signature; a verifier reads it with
	// AsStoredGetter.GetAsStored and judges the bytes itself.
	ErrDamaged = errors.New("object body does not match its stored metadata")
	// ErrStop may be returned by a List callback to end the listing early;
	// List then returns nil.
	ErrStop = errors.New("stop listing")
)

// MaxKeyLen is S3's limit on the UTF-8 length of a key.
const MaxKeyLen = 1024

// Store is a set of buckets holding objects, with S3's semantics for the
// operations it has. Every method honours ctx cancellation. Implementations
// are safe for concurrent use.
type Store interface {
	// BucketExists reports whether bucket exists.
	BucketExists(ctx context.Context, bucket string) (bool, error)
	// CreateBucket creates bucket; ErrBucketExists if it is already there,
	// ErrInvalidBucketName if the name breaks S3's rules.
	CreateBucket(ctx context.Context, bucket string) error
	// ListBuckets returns every bucket, sorted by name.
	ListBuckets(ctx context.Context) ([]BucketInfo, error)

	// Put stores body under key, replacing any object already there. size
	// is the exact body length, or -1 when unknown; a body that does not
	// match a non-negative size is an error and nothing is stored. The
	// object is durable when Put returns nil, and atomic: readers see
	// either the old object or the complete new one, never a part.
	Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts PutOptions) error
	// Get opens the object for reading; the caller closes the reader.
	// ErrNotFound or ErrNoSuchBucket when it is not there.
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error)
	// Head returns what Get would, without the body.
	Head(ctx context.Context, bucket, key string) (ObjectInfo, error)
	// List calls fn for every object whose key starts with prefix and sorts
	// after startAfter (both may be empty), in ascending byte order of the
	// full key, as S3's ListObjects does. Objects listed carry Key, Size,
	// LastModified and ETag; Metadata and content headers need Head. If fn
	// returns ErrStop, List stops and returns nil; any other error stops
	// the listing and is returned unchanged.
	List(ctx context.Context, bucket, prefix, startAfter string, fn func(ObjectInfo) error) error
	// Delete removes the object. Deleting a key that does not exist is not
	// an error (as in S3); a missing bucket is ErrNoSuchBucket.
	Delete(ctx context.Context, bucket, key string) error
	// Close releases what the store holds open. The store must not be used
	// afterwards.
	Close() error
}

// AsStoredGetter is implemented by stores that keep an object's metadata
// apart from its body and check on read that they belong together (the
// file store's sidecars). A validator must judge the bytes as they are by
// a hash it trusts, not stop at the store's own check: tampering on disk
// is exactly what it is there to report, and "put it again" is the wrong
// advice for a file whose hash does not match.
type AsStoredGetter interface {
	// GetAsStored opens the object's body as it is now. When the stored
	// metadata does not describe that body, the body is still returned,
	// with damaged (wrapping ErrDamaged) saying why; info then has the
	// body's own Size, LastModified and ETag (its MD5) and the metadata
	// as stored (it belongs to another body: a signature in it will not
	// verify). err is for what Get would also fail on (not found, I/O).
	GetAsStored(ctx context.Context, bucket, key string) (body io.ReadCloser, info ObjectInfo, damaged, err error)
}

// LocalPather is implemented by stores that keep each object's body as a
// plain local file (the file store). A reader that needs file paths, such
// as the SQL engine reading an event data store's Parquet files, uses
// them in place instead of copying them out. The file at the path is
// replaced atomically by a Put and removed by a Delete; it must only be
// read.
type LocalPather interface {
	// LocalPath returns the path of the file that holds (or would hold)
	// the object's body, and true; false when the key cannot be stored
	// (or the store keeps objects otherwise). It does not check that the
	// object exists.
	LocalPath(bucket, key string) (string, bool)
}

// PutOptions are the headers stored with an object.
type PutOptions struct {
	// ContentType defaults to "application/octet-stream" when empty.
	ContentType string
	// ContentEncoding is stored and returned verbatim ("gzip" for
	// CloudTrail log files); the store never decodes the body.
	ContentEncoding string
	// Metadata is user metadata (S3's x-amz-meta-* headers). Keys are
	// case-insensitive and come back lower-cased, as from S3; keys must be
	// HTTP header tokens and values printable ASCII. CloudTrail digests
	// carry "signature" and "signature-algorithm" here.
	Metadata map[string]string
	// SSEKMSKeyID asks for server-side encryption with this KMS key (a
	// trail's KmsKeyId). A backend that cannot do it returns ErrUnsupported
	// instead of storing the object unencrypted.
	SSEKMSKeyID string
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key  string
	Size int64
	// LastModified is when the object was stored, in UTC; S3 reports
	// whole seconds, the file backend finer.
	LastModified time.Time
	// ETag is S3's entity tag as S3 sends it, quotes included; for an
	// object stored by a single Put it is the quoted hex MD5 of the body.
	ETag            string
	ContentType     string
	ContentEncoding string
	// Metadata is user metadata with lower-case keys; nil when none.
	Metadata map[string]string
}

// BucketInfo describes a bucket.
type BucketInfo struct {
	Name         string
	CreationDate time.Time
}

// DefaultContentType is the content type of an object put without one.
// Backends apply it themselves so that every backend reports the same value
// (S3 servers differ: some store nothing, some say binary/octet-stream).
const DefaultContentType = "application/octet-stream"
