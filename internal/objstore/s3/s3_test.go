package s3_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/objstoretest"
	"github.com/cairn-audit/cairn/internal/objstore/s3"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return srv.NewStore(t) })
}

// headerRecorder remembers the headers of every PutObject it carries.
type headerRecorder struct {
	mu   sync.Mutex
	puts []http.Header
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		h.mu.Lock()
		h.puts = append(h.puts, r.Header.Clone())
		h.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestPutHeaders(t *testing.T) {
	srv := s3test.Start(t)
	rec := &headerRecorder{}
	opts := srv.Options()
	opts.HTTPClient = &http.Client{Transport: rec}
	s, err := s3.New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.CreateBucket(ctx, "headers"); err != nil {
		t.Fatal(err)
	}
	err = s.Put(ctx, "headers", "digest.json.gz", strings.NewReader("x"), 1, objstore.PutOptions{
		ContentType: "application/json", ContentEncoding: "gzip",
		Metadata: map[string]string{"Signature": "ab", "signature-algorithm": "SHA256withRSA"},
	})
	if err != nil {
		t.Fatal(err)
	}
	kmsKey := "arn:aws:kms:us-east-1:123456789012:key/0e2f1d4c-0000-4000-8000-000000000000"
	sseErr := s.Put(ctx, "headers", "encrypted", strings.NewReader("x"), 1, objstore.PutOptions{SSEKMSKeyID: kmsKey})
	t.Logf("versitygw's answer to SSE-KMS: %v", sseErr)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var objPuts []http.Header
	for _, h := range rec.puts {
		if h.Get("Content-Length") != "" || h.Get("X-Amz-Content-Sha256") != "" {
			objPuts = append(objPuts, h)
		}
	}
	if len(objPuts) < 3 {
		t.Fatalf("recorded %d PUTs, want bucket + 2 objects", len(objPuts))
	}
	plain, enc := objPuts[len(objPuts)-2], objPuts[len(objPuts)-1]
	for k, want := range map[string]string{
		"Content-Type": "application/json", "Content-Encoding": "gzip",
		"X-Amz-Meta-Signature": "ab", "X-Amz-Meta-Signature-Algorithm": "SHA256withRSA",
	} {
		if got := plain.Get(k); got != want {
			t.Errorf("PutObject header %s = %q, want %q", k, got, want)
		}
	}
	// The body is signed (not UNSIGNED-PAYLOAD), so plain HTTP cannot
	// alter it unnoticed.
	if got := plain.Get("X-Amz-Content-Sha256"); len(got) != 64 {
		t.Errorf("x-amz-content-sha256 = %q, want the body's SHA-256", got)
	}
	if got := enc.Get("X-Amz-Server-Side-Encryption"); got != "aws:kms" {
		t.Errorf("SSE header = %q, want aws:kms", got)
	}
	if got := enc.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != kmsKey {
		t.Errorf("SSE key header = %q, want %q", got, kmsKey)
	}
}

// TestGetLean checks that the lean GET path reads what Get reads (body,
// user metadata, headers), for keys that need escaping, and maps S3's
// errors the same way, against a real versitygw that checks signatures.
func TestGetLean(t *testing.T) {
	srv := s3test.Start(t)
	s := srv.NewStore(t)
	ctx := t.Context()
	const b = "lean"
	if err := s.CreateBucket(ctx, b); err != nil {
		t.Fatal(err)
	}
	keys := []string{
		"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/123456789012_CloudTrail-Digest_us-east-1_audit_us-east-1_20260102T030405Z.json.gz",
		"a b+c/d=e&f?g#h/ü~x%20y.json",
		"semi;colon,comma'quote(paren)*star!bang$dollar@at:colon",
	}
	for i, k := range keys {
		body := strings.Repeat(fmt.Sprintf("object %d ", i), 1000)
		err := s.Put(ctx, b, k, strings.NewReader(body), int64(len(body)), objstore.PutOptions{
			ContentType: "application/json", ContentEncoding: "gzip",
			Metadata: map[string]string{"signature": "ab01", "Signature-Algorithm": "SHA256withRSA"},
		})
		if err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
		rc, info, err := s.GetLean(ctx, b, k)
		if err != nil {
			t.Fatalf("GetLean %q: %v", k, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != body {
			t.Fatalf("GetLean %q: read %d bytes (%v), want the %d put", k, len(got), err, len(body))
		}
		rc2, want, err := s.Get(ctx, b, k)
		if err != nil {
			t.Fatal(err)
		}
		rc2.Close()
		if !reflect.DeepEqual(info, want) {
			t.Errorf("GetLean %q info\n %+v\nGet info\n %+v", k, info, want)
		}
		if info.Metadata["signature"] != "ab01" || info.Metadata["signature-algorithm"] != "SHA256withRSA" {
			t.Errorf("GetLean %q metadata %v", k, info.Metadata)
		}
	}
	if _, _, err := s.GetLean(ctx, b, "no/such/key"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("GetLean of a missing key: %v, want ErrNotFound", err)
	}
	if _, _, err := s.GetLean(ctx, "no-such-bucket", "k"); !errors.Is(err, objstore.ErrNoSuchBucket) {
		t.Errorf("GetLean in a missing bucket: %v, want ErrNoSuchBucket", err)
	}
	// A wrong secret is refused by the server, not treated as missing.
	o := srv.Options()
	o.SecretAccessKey = "wrong-secret-key-0123456789abcdefghijklmn"
	bad, err := s3.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = bad.GetLean(ctx, b, keys[0])
	var ae smithy.APIError
	if err == nil || errors.Is(err, objstore.ErrNotFound) || !errors.As(err, &ae) || ae.ErrorCode() != "SignatureDoesNotMatch" {
		t.Errorf("GetLean with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
}

// TestListKeysLean checks the lean listing against List on a real
// versitygw: the same keys in the same order, keys that need escaping in
// the prefix and start-after, paging past 1,000 keys, ErrStop, and S3's
// errors.
func TestListKeysLean(t *testing.T) {
	srv := s3test.Start(t)
	s := srv.NewStore(t)
	ctx := t.Context()
	const b = "leanlist"
	if err := s.CreateBucket(ctx, b); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 1100 {
		keys = append(keys, fmt.Sprintf("p/%04d.json.gz", i))
	}
	keys = append(keys, "q r+s/t=u&v?w#x/ü~y%20z<&>'\".json", "q r+s/plain", "top")
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 16)
	for _, k := range keys {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- s.Put(ctx, b, k, strings.NewReader("x"), 1, objstore.PutOptions{})
		}()
	}
	for range keys {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ prefix, after string }{
		{"", ""}, {"p/", ""}, {"p/", "p/0997.json.gz"}, {"q r+s/", ""}, {"q r+s/", "q r+s/plain"}, {"", "q r+s/plain"}, {"none/", ""},
	} {
		var want, got []string
		if err := s.List(ctx, b, c.prefix, c.after, func(oi objstore.ObjectInfo) error { want = append(want, oi.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := s.ListKeysLean(ctx, b, c.prefix, c.after, func(k string) error { got = append(got, k); return nil }); err != nil {
			t.Fatalf("ListKeysLean(%q, %q): %v", c.prefix, c.after, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ListKeysLean(%q, %q): %d keys, List %d; first differences: %v", c.prefix, c.after, len(got), len(want), firstDiff(got, want))
		}
	}
	n := 0
	if err := s.ListKeysLean(ctx, b, "p/", "", func(string) error {
		if n++; n == 5 {
			return objstore.ErrStop
		}
		return nil
	}); err != nil || n != 5 {
		t.Errorf("ErrStop after 5 keys: %v, %d calls", err, n)
	}
	if err := s.ListKeysLean(ctx, "no-such-bucket", "", "", func(string) error { return nil }); !errors.Is(err, objstore.ErrNoSuchBucket) {
		t.Errorf("ListKeysLean of a missing bucket: %v, want ErrNoSuchBucket", err)
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}
