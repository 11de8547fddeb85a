// Package s3 is the objstore backend for AWS S3 and S3-compatible servers
// (MinIO, Ceph RGW, versitygw, ...), through aws-sdk-go-v2.
//
// Choices made for compatibility rather than for AWS alone: path-style
// requests by default (most self-hosted servers have no wildcard DNS), and
// request checksums only where an operation requires them (many servers
// reject the SDK's aws-chunked trailing checksums). Integrity of uploads
// comes from SigV4 instead: the body's SHA-256 is signed, which needs a
// seekable body, so Put buffers a plain io.Reader (in memory when small, in
// a temporary file otherwise) before sending it.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/objstore"
)

// DefaultRegion is used when Options.Region is empty.
const DefaultRegion = "us-east-1"

// memSpoolMax is the largest plain-reader body Put buffers in memory;
// larger ones (or ones of unknown size that grow past it) go to a
// temporary file. CloudTrail log files are at most 50 MB compressed.
const memSpoolMax = 16 << 20

// maxIdlePerHost is how many idle connections to the server are kept.
const maxIdlePerHost = 64

// Options configure a Store.
type Options struct {
	// Endpoint is the server's base URL, e.g. "http://127.0.0.1:7070".
	// Empty means AWS's own endpoint for Region.
	Endpoint string
	// Region signs requests and places new buckets; default us-east-1.
	Region string
	// AccessKeyID and SecretAccessKey are static credentials. Give both or
	// neither; neither means the AWS SDK's default chain (environment,
	// shared config, instance role, ...).
	AccessKeyID     string
	SecretAccessKey string
	// VirtualHostedStyle sends requests to BUCKET.host instead of
	// host/BUCKET. The default, path style, works with every S3-compatible
	// server; AWS accepts both.
	VirtualHostedStyle bool
	// HTTPClient, when set, carries every request, exactly as configured
	// (its own TLS roots, proxies, timeouts; AWS_CA_BUNDLE is not applied
	// to it).
	HTTPClient *http.Client
}

// Store is an objstore.Store on an S3 server.
type Store struct {
	client *awss3.Client
	region string
	lean   *lean
}

var _ objstore.Store = (*Store)(nil)

// New makes a client for the server; it does not contact it.
func New(ctx context.Context, opts Options) (*Store, error) {
	if (opts.AccessKeyID == "") != (opts.SecretAccessKey == "") {
		return nil, errors.New("objstore/s3: give both an access key ID and a secret access key, or neither to use the default credential chain")
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("objstore/s3: endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", opts.Endpoint)
		}
	}
	region := opts.Region
	if region == "" {
		region = DefaultRegion
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if opts.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: load AWS configuration: %w", err)
	}
	if opts.HTTPClient != nil {
		cfg.HTTPClient = opts.HTTPClient
	} else {
		// The SDK keeps 10 idle connections per host; parallel readers
		// (validate-logs reads 32 objects at once) would otherwise dial
		// and close a connection for most requests.
		bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
		if !ok || bc == nil {
			bc = awshttp.NewBuildableClient()
		}
		cfg.HTTPClient = bc.WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = max(tr.MaxIdleConns, maxIdlePerHost)
			tr.MaxIdleConnsPerHost = maxIdlePerHost
		})
	}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(strings.TrimSuffix(opts.Endpoint, "/"))
		}
		o.UsePathStyle = !opts.VirtualHostedStyle
		if opts.HTTPClient != nil {
			// Set here rather than in LoadDefaultConfig, which would try
			// to graft AWS_CA_BUNDLE onto it and fail for a plain
			// *http.Client: the caller's client is used exactly as given.
			o.HTTPClient = opts.HTTPClient
		}
	})
	st := &Store{client: client, region: region}
	if opts.Endpoint != "" && cfg.Credentials != nil {
		base, _ := url.Parse(strings.TrimSuffix(opts.Endpoint, "/"))
		st.lean = &lean{base: base, pathStyle: !opts.VirtualHostedStyle, region: region,
			creds: cfg.Credentials, client: cfg.HTTPClient}
	}
	return st, nil
}

// Client is the underlying SDK client, for what the Store interface does
// not cover.
func (s *Store) Client() *awss3.Client { return s.client }

// Close does nothing: the SDK client holds only idle connections.
func (s *Store) Close() error { return nil }

// mapErr wraps err with what failed and, when S3's error code says so,
// the matching objstore sentinel (the SDK error stays in the chain).
func mapErr(op, bucket, key string, err error) error {
	where := bucket
	if key != "" {
		where += "/" + key
	}
	var sentinel error
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey":
			sentinel = objstore.ErrNotFound
		case "NoSuchBucket":
			sentinel = objstore.ErrNoSuchBucket
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			sentinel = objstore.ErrBucketExists
		case "InvalidBucketName":
			sentinel = objstore.ErrInvalidBucketName
		case "KeyTooLongError",
			// File-tree servers (versitygw posix, MinIO FS) refusing a key
			// that is both an object and a prefix of others.
			"ObjectParentIsFile", "ExistingObjectIsDirectory", "XMinioParentIsObject", "XMinioObjectExistsAsDirectory":
			sentinel = objstore.ErrInvalidKey
		}
	}
	if sentinel != nil {
		return fmt.Errorf("objstore/s3: %s %s: %w: %w", op, where, sentinel, err)
	}
	return fmt.Errorf("objstore/s3: %s %s: %w", op, where, err)
}

// isNotFound is true for a HEAD's bare 404, which carries no error code
// naming what is missing.
func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "NoSuchKey", "NoSuchBucket":
			return true
		}
	}
	return false
}

// BucketExists asks the server with HeadBucket.
func (s *Store) BucketExists(ctx context.Context, bucket string) (bool, error) {
	if err := objstore.ValidBucketName(bucket); err != nil {
		return false, err
	}
	_, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, mapErr("head bucket", bucket, "", err)
}

// CreateBucket creates the bucket in the store's region.
func (s *Store) CreateBucket(ctx context.Context, bucket string) error {
	if err := objstore.ValidBucketName(bucket); err != nil {
		return err
	}
	in := &awss3.CreateBucketInput{Bucket: aws.String(bucket)}
	if s.region != DefaultRegion {
		// us-east-1 is the one region that must not be named here.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	if _, err := s.client.CreateBucket(ctx, in); err != nil {
		return mapErr("create bucket", bucket, "", err)
	}
	return nil
}

// ListBuckets returns every bucket the credentials can see, by name.
func (s *Store) ListBuckets(ctx context.Context) ([]objstore.BucketInfo, error) {
	var out []objstore.BucketInfo
	var token *string
	for {
		resp, err := s.client.ListBuckets(ctx, &awss3.ListBucketsInput{ContinuationToken: token})
		if err != nil {
			return nil, mapErr("list buckets", "", "", err)
		}
		for _, b := range resp.Buckets {
			out = append(out, objstore.BucketInfo{Name: aws.ToString(b.Name), CreationDate: aws.ToTime(b.CreationDate)})
		}
		if aws.ToString(resp.ContinuationToken) == "" {
			break
		}
		token = resp.ContinuationToken
	}
	slices.SortFunc(out, func(a, b objstore.BucketInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func check(bucket, key string) error {
	if err := objstore.ValidBucketName(bucket); err != nil {
		return err
	}
	return objstore.ValidKey(key)
}

// Put uploads the object with one PutObject (S3 makes it atomic).
func (s *Store) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objstore.PutOptions) error {
	if err := check(bucket, key); err != nil {
		return err
	}
	if err := objstore.ValidMetadata(opts.Metadata); err != nil {
		return fmt.Errorf("objstore/s3: put %s/%s: %w", bucket, key, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rs, n, cleanup, err := seekable(ctx, body, size)
	if err != nil {
		return fmt.Errorf("objstore/s3: put %s/%s: %w", bucket, key, err)
	}
	defer cleanup()
	ct := opts.ContentType
	if ct == "" {
		ct = objstore.DefaultContentType
	}
	in := &awss3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          rs,
		ContentLength: aws.Int64(n),
		ContentType:   aws.String(ct),
		Metadata:      objstore.NormalizeMetadata(opts.Metadata),
	}
	if opts.ContentEncoding != "" {
		in.ContentEncoding = aws.String(opts.ContentEncoding)
	}
	if opts.SSEKMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(opts.SSEKMSKeyID)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return mapErr("put", bucket, key, err)
	}
	return nil
}

// seekable returns body as an io.ReadSeeker of known length, checking it
// against size (-1: unknown). The SDK must be able to rewind the body to
// sign it and to retry.
func seekable(ctx context.Context, body io.Reader, size int64) (io.ReadSeeker, int64, func(), error) {
	noop := func() {}
	if rs, ok := body.(io.ReadSeeker); ok {
		cur, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, 0, noop, fmt.Errorf("seek body: %w", err)
		}
		end, err := rs.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, noop, fmt.Errorf("seek body: %w", err)
		}
		if _, err := rs.Seek(cur, io.SeekStart); err != nil {
			return nil, 0, noop, fmt.Errorf("seek body: %w", err)
		}
		n := end - cur
		if size >= 0 && n != size {
			return nil, 0, noop, fmt.Errorf("body is %d bytes, declared size is %d", n, size)
		}
		return rs, n, noop, nil
	}

	src := io.Reader(ctxReader{ctx, body})
	if size >= 0 {
		src = io.LimitReader(src, size+1) // one more byte tells "too long"
	}
	checkLen := func(n int64) error {
		if size >= 0 && n != size {
			if n > size {
				return fmt.Errorf("body is longer than the declared size %d", size)
			}
			return fmt.Errorf("body is %d bytes, declared size is %d", n, size)
		}
		return nil
	}
	// Small bodies: memory.
	var buf bytes.Buffer
	if size >= 0 && size <= memSpoolMax {
		buf.Grow(int(size))
	}
	n, err := io.Copy(&buf, io.LimitReader(src, memSpoolMax+1))
	if err != nil {
		return nil, 0, noop, spoolErr(ctx, err)
	}
	if n <= memSpoolMax {
		if err := checkLen(n); err != nil {
			return nil, 0, noop, err
		}
		return bytes.NewReader(buf.Bytes()), n, noop, nil
	}
	// Large bodies: a temporary file, removed when Put returns.
	f, err := os.CreateTemp("", "cairn-s3-put-*")
	if err != nil {
		return nil, 0, noop, fmt.Errorf("buffer body: %w", err)
	}
	cleanup := func() {
		f.Close()
		os.Remove(f.Name())
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		cleanup()
		return nil, 0, noop, fmt.Errorf("buffer body: %w", err)
	}
	m, err := io.Copy(f, src)
	if err != nil {
		cleanup()
		return nil, 0, noop, spoolErr(ctx, err)
	}
	n += m
	if err := checkLen(n); err != nil {
		cleanup()
		return nil, 0, noop, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, noop, fmt.Errorf("buffer body: %w", err)
	}
	return f, n, cleanup, nil
}

func spoolErr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("read body: %w", err)
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

func objectInfo(key string, size *int64, etag *string, lastModified *time.Time, contentType, contentEncoding *string, md map[string]string) objstore.ObjectInfo {
	return objstore.ObjectInfo{
		Key:             key,
		Size:            aws.ToInt64(size),
		ETag:            aws.ToString(etag),
		LastModified:    aws.ToTime(lastModified).UTC(),
		ContentType:     aws.ToString(contentType),
		ContentEncoding: aws.ToString(contentEncoding),
		Metadata:        objstore.NormalizeMetadata(md),
	}
}

// Get streams the object's body.
func (s *Store) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if err := check(bucket, key); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	resp, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, objstore.ObjectInfo{}, mapErr("get", bucket, key, err)
	}
	return resp.Body, objectInfo(key, resp.ContentLength, resp.ETag, resp.LastModified, resp.ContentType, resp.ContentEncoding, resp.Metadata), nil
}

// Head fetches the object's headers. A HEAD's 404 does not say whether the
// bucket or the key is missing, so on a 404 it asks about the bucket.
func (s *Store) Head(ctx context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	if err := check(bucket, key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	resp, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			if ok, berr := s.BucketExists(ctx, bucket); berr == nil && !ok {
				return objstore.ObjectInfo{}, fmt.Errorf("objstore/s3: head %s/%s: %w: %w", bucket, key, objstore.ErrNoSuchBucket, err)
			}
			return objstore.ObjectInfo{}, fmt.Errorf("objstore/s3: head %s/%s: %w: %w", bucket, key, objstore.ErrNotFound, err)
		}
		return objstore.ObjectInfo{}, mapErr("head", bucket, key, err)
	}
	return objectInfo(key, resp.ContentLength, resp.ETag, resp.LastModified, resp.ContentType, resp.ContentEncoding, resp.Metadata), nil
}

// List pages through ListObjectsV2. Keys are requested URL-encoded
// (encoding-type=url) so that keys with characters XML 1.0 cannot carry
// survive the trip, and decoded here as S3 encodes them (form encoding:
// '+' is a space).
func (s *Store) List(ctx context.Context, bucket, prefix, startAfter string, fn func(objstore.ObjectInfo) error) error {
	if err := objstore.ValidBucketName(bucket); err != nil {
		return err
	}
	in := &awss3.ListObjectsV2Input{
		Bucket:       aws.String(bucket),
		EncodingType: types.EncodingTypeUrl,
	}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	p := awss3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return mapErr("list", bucket, "", err)
		}
		encoded := page.EncodingType == types.EncodingTypeUrl
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if encoded {
				if key, err = url.QueryUnescape(key); err != nil {
					return fmt.Errorf("objstore/s3: list %s: server sent a badly encoded key %q: %w", bucket, aws.ToString(o.Key), err)
				}
			}
			info := objstore.ObjectInfo{
				Key:          key,
				Size:         aws.ToInt64(o.Size),
				ETag:         aws.ToString(o.ETag),
				LastModified: aws.ToTime(o.LastModified).UTC(),
			}
			if err := fn(info); err != nil {
				if errors.Is(err, objstore.ErrStop) {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

// Delete removes the object; S3 treats a missing key as done.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	if err := check(bucket, key); err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return mapErr("delete", bucket, key, err)
	}
	return nil
}
