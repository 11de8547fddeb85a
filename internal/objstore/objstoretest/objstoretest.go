// Package objstoretest is the conformance suite every objstore backend
// passes, so that delivery and validation can rely on one behaviour whether
// logs land in a directory or on an S3 server.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/objstore"
)

// Run runs the suite. newStore returns the store a subtest uses; it may
// return a fresh store each time or new handles on one shared server, since
// every subtest works in buckets of its own with random names. newStore
// registers whatever cleanup its store needs (Run closes nothing).
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"Buckets", testBuckets},
		{"MissingBucket", testMissingBucket},
		{"MissingKey", testMissingKey},
		{"RoundTrip", testRoundTrip},
		{"DefaultContentType", testDefaultContentType},
		{"Overwrite", testOverwrite},
		{"UnknownSize", testUnknownSize},
		{"SizeMismatch", testSizeMismatch},
		{"EmptyObject", testEmptyObject},
		{"SpecialKeys", testSpecialKeys},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidMetadata", testInvalidMetadata},
		{"ListOrder", testListOrder},
		{"ListStop", testListStop},
		{"ParentAndChildKeys", testParentAndChildKeys},
		{"Delete", testDelete},
		{"LargeObject", testLargeObject},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Cancellation", testCancellation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// NewBucketName returns a valid bucket name no other test uses.
func NewBucketName() string {
	var b [6]byte
	rand.Read(b[:])
	return "cairn-test-" + hex.EncodeToString(b[:])
}

// newBucket creates a fresh bucket in s.
func newBucket(t *testing.T, s objstore.Store) string {
	t.Helper()
	b := NewBucketName()
	if err := s.CreateBucket(t.Context(), b); err != nil {
		t.Fatalf("CreateBucket(%s): %v", b, err)
	}
	return b
}

func put(t *testing.T, s objstore.Store, bucket, key, body string, opts objstore.PutOptions) {
	t.Helper()
	if err := s.Put(t.Context(), bucket, key, strings.NewReader(body), int64(len(body)), opts); err != nil {
		t.Fatalf("Put(%s, %q): %v", bucket, key, err)
	}
}

func get(t *testing.T, s objstore.Store, bucket, key string) (string, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), bucket, key)
	if err != nil {
		t.Fatalf("Get(%s, %q): %v", bucket, key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s, %q): read body: %v", bucket, key, err)
	}
	return string(b), info
}

func listKeys(t *testing.T, s objstore.Store, bucket, prefix, startAfter string) []string {
	t.Helper()
	keys := []string{}
	err := s.List(t.Context(), bucket, prefix, startAfter, func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s, prefix %q, startAfter %q): %v", bucket, prefix, startAfter, err)
	}
	return keys
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func etagOf(body []byte) string {
	sum := md5.Sum(body)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func testBuckets(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := NewBucketName()
	if ok, err := s.BucketExists(ctx, b); err != nil || ok {
		t.Fatalf("BucketExists before create = %v, %v; want false, nil", ok, err)
	}
	if err := s.CreateBucket(ctx, b); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if ok, err := s.BucketExists(ctx, b); err != nil || !ok {
		t.Fatalf("BucketExists after create = %v, %v; want true, nil", ok, err)
	}
	wantErr(t, "CreateBucket twice", s.CreateBucket(ctx, b), objstore.ErrBucketExists)

	b2 := NewBucketName()
	if err := s.CreateBucket(ctx, b2); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	buckets, err := s.ListBuckets(ctx)
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	var names []string
	for _, bi := range buckets {
		names = append(names, bi.Name)
		if (bi.Name == b || bi.Name == b2) && (bi.CreationDate.IsZero() || time.Since(bi.CreationDate) > time.Hour) {
			t.Errorf("bucket %s: CreationDate %v, want about now", bi.Name, bi.CreationDate)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("ListBuckets not sorted: %v", names)
	}
	if !slices.Contains(names, b) || !slices.Contains(names, b2) {
		t.Errorf("ListBuckets = %v, want it to contain %s and %s", names, b, b2)
	}

	for _, bad := range []string{"Upper-Case", "ab", "bad_name", "192.168.1.1", "-leading"} {
		wantErr(t, "CreateBucket("+bad+")", s.CreateBucket(ctx, bad), objstore.ErrInvalidBucketName)
	}
}

func testMissingBucket(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := NewBucketName()
	_, _, err := s.Get(ctx, b, "k")
	wantErr(t, "Get", err, objstore.ErrNoSuchBucket)
	_, err = s.Head(ctx, b, "k")
	wantErr(t, "Head", err, objstore.ErrNoSuchBucket)
	err = s.Put(ctx, b, "k", strings.NewReader("x"), 1, objstore.PutOptions{})
	wantErr(t, "Put", err, objstore.ErrNoSuchBucket)
	err = s.List(ctx, b, "", "", func(objstore.ObjectInfo) error { return nil })
	wantErr(t, "List", err, objstore.ErrNoSuchBucket)
	wantErr(t, "Delete", s.Delete(ctx, b, "k"), objstore.ErrNoSuchBucket)
	if ok, err := s.BucketExists(ctx, b); err != nil || ok {
		t.Errorf("BucketExists = %v, %v; want false, nil", ok, err)
	}
}

func testMissingKey(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := newBucket(t, s)
	put(t, s, b, "dir/present", "x", objstore.PutOptions{})
	for _, k := range []string{"absent", "dir/absent", "dir", "dir/present/below"} {
		_, _, err := s.Get(ctx, b, k)
		wantErr(t, "Get("+k+")", err, objstore.ErrNotFound)
		_, err = s.Head(ctx, b, k)
		wantErr(t, "Head("+k+")", err, objstore.ErrNotFound)
		if err := s.Delete(ctx, b, k); err != nil {
			t.Errorf("Delete(%s) of a missing key = %v, want nil", k, err)
		}
	}
	if got, _ := get(t, s, b, "dir/present"); got != "x" {
		t.Errorf("dir/present = %q after deleting absent keys, want x", got)
	}
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	body := []byte("\x1f\x8b pretend this is gzip")
	key := "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/x.json.gz"
	before := time.Now()
	put(t, s, b, key, string(body), objstore.PutOptions{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Metadata: map[string]string{
			"signature":           strings.Repeat("ab", 256),
			"Signature-Algorithm": "SHA256withRSA", // comes back lower-cased
		},
	})
	got, info := get(t, s, b, key)
	if got != string(body) {
		t.Errorf("body = %q, want %q", got, body)
	}
	want := objstore.ObjectInfo{
		Key: key, Size: int64(len(body)), ETag: etagOf(body),
		ContentType: "application/json", ContentEncoding: "gzip",
		Metadata: map[string]string{"signature": strings.Repeat("ab", 256), "signature-algorithm": "SHA256withRSA"},
	}
	checkInfo(t, "Get", info, want, before)
	hinfo, err := s.Head(t.Context(), b, key)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	checkInfo(t, "Head", hinfo, want, before)

	var listed []objstore.ObjectInfo
	if err := s.List(t.Context(), b, "", "", func(o objstore.ObjectInfo) error { listed = append(listed, o); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(listed) != 1 || listed[0].Key != key || listed[0].Size != want.Size || listed[0].ETag != want.ETag {
		t.Errorf("List = %+v, want one entry with key, size and ETag of %+v", listed, want)
	}
}

func checkInfo(t *testing.T, what string, got, want objstore.ObjectInfo, before time.Time) {
	t.Helper()
	if got.Key != want.Key || got.Size != want.Size || got.ETag != want.ETag ||
		got.ContentType != want.ContentType || got.ContentEncoding != want.ContentEncoding {
		t.Errorf("%s info = %+v, want %+v", what, got, want)
	}
	if len(got.Metadata) != len(want.Metadata) {
		t.Errorf("%s metadata = %v, want %v", what, got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("%s metadata[%q] = %q, want %q", what, k, got.Metadata[k], v)
		}
	}
	// S3 reports seconds; allow for that and a little clock noise.
	if got.LastModified.Before(before.Add(-2*time.Second)) || got.LastModified.After(time.Now().Add(2*time.Second)) {
		t.Errorf("%s LastModified = %v, want between %v and now", what, got.LastModified, before)
	}
}

func testDefaultContentType(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	put(t, s, b, "k", "body", objstore.PutOptions{})
	_, info := get(t, s, b, "k")
	if info.ContentType != objstore.DefaultContentType || info.ContentEncoding != "" || info.Metadata != nil {
		t.Errorf("info = %+v, want content type %q, no encoding, nil metadata", info, objstore.DefaultContentType)
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	put(t, s, b, "k", "first version, longer", objstore.PutOptions{ContentEncoding: "gzip", Metadata: map[string]string{"v": "1"}})
	put(t, s, b, "k", "second", objstore.PutOptions{Metadata: map[string]string{"w": "2"}})
	got, info := get(t, s, b, "k")
	if got != "second" || info.Size != 6 || info.ETag != etagOf([]byte("second")) {
		t.Errorf("after overwrite: body %q, info %+v", got, info)
	}
	if info.ContentEncoding != "" || len(info.Metadata) != 1 || info.Metadata["w"] != "2" {
		t.Errorf("after overwrite: headers %+v; want only the second Put's", info)
	}
	if keys := listKeys(t, s, b, "", ""); !slices.Equal(keys, []string{"k"}) {
		t.Errorf("List = %v, want [k]", keys)
	}
}

// onlyReader hides every method but Read (no Seek, no WriterTo), as a pipe
// or a gzip writer's output would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testUnknownSize(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	body := strings.Repeat("unknown size ", 1000)
	if err := s.Put(t.Context(), b, "k", onlyReader{strings.NewReader(body)}, -1, objstore.PutOptions{}); err != nil {
		t.Fatalf("Put with size -1: %v", err)
	}
	if got, info := get(t, s, b, "k"); got != body || info.Size != int64(len(body)) {
		t.Errorf("got %d bytes (info size %d), want %d", len(got), info.Size, len(body))
	}
	if err := s.Put(t.Context(), b, "k2", onlyReader{strings.NewReader(body)}, int64(len(body)), objstore.PutOptions{}); err != nil {
		t.Fatalf("Put of a plain reader with its size: %v", err)
	}
	if got, _ := get(t, s, b, "k2"); got != body {
		t.Errorf("k2: got %d bytes, want %d", len(got), len(body))
	}
}

func testSizeMismatch(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := newBucket(t, s)
	for _, tc := range []struct {
		key  string
		body io.Reader
		size int64
	}{
		{"short-seeker", strings.NewReader("12345"), 10},
		{"long-seeker", strings.NewReader("12345"), 3},
		{"short-reader", onlyReader{strings.NewReader("12345")}, 10},
		{"long-reader", onlyReader{strings.NewReader("12345")}, 3},
	} {
		if err := s.Put(ctx, b, tc.key, tc.body, tc.size, objstore.PutOptions{}); err == nil {
			t.Errorf("Put(%s) with wrong size succeeded", tc.key)
		}
		_, err := s.Head(ctx, b, tc.key)
		wantErr(t, "Head after failed Put("+tc.key+")", err, objstore.ErrNotFound)
	}
}

func testEmptyObject(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	put(t, s, b, "empty", "", objstore.PutOptions{})
	got, info := get(t, s, b, "empty")
	if got != "" || info.Size != 0 || info.ETag != etagOf(nil) {
		t.Errorf("empty object: body %q, info %+v", got, info)
	}
}

// specialKeys are keys S3 stores verbatim and a store must not mangle
// (URL escaping, '+' as space, Unicode).
var specialKeys = []string{
	"with space/and+plus",
	"percent%20literal",
	"query?and#hash=1&x",
	"unicodé/日本語.json.gz",
	"tilde~and!bang*(paren)'quote",
	"semi;colon,comma:colon@at$dollar",
	"UPPER/lower",
}

func testSpecialKeys(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	for i, k := range specialKeys {
		put(t, s, b, k, fmt.Sprint(i), objstore.PutOptions{})
	}
	for i, k := range specialKeys {
		if got, info := get(t, s, b, k); got != fmt.Sprint(i) || info.Key != k {
			t.Errorf("Get(%q) = %q (key %q), want %d", k, got, info.Key, i)
		}
	}
	want := slices.Clone(specialKeys)
	slices.Sort(want)
	if got := listKeys(t, s, b, "", ""); !slices.Equal(got, want) {
		t.Errorf("List = %q\nwant   %q", got, want)
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := newBucket(t, s)
	for _, k := range []string{"", "nul\x00byte", strings.Repeat("k", objstore.MaxKeyLen+1), "bad\xffutf8"} {
		err := s.Put(ctx, b, k, strings.NewReader("x"), 1, objstore.PutOptions{})
		wantErr(t, fmt.Sprintf("Put(%.20q)", k), err, objstore.ErrInvalidKey)
		_, _, err = s.Get(ctx, b, k)
		wantErr(t, fmt.Sprintf("Get(%.20q)", k), err, objstore.ErrInvalidKey)
	}
}

func testInvalidMetadata(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := newBucket(t, s)
	for _, md := range []map[string]string{
		{"has space": "v"},
		{"k": "line\nbreak"},
		{"k": "non-ascii é"},
		{"": "v"},
	} {
		if err := s.Put(ctx, b, "k", strings.NewReader("x"), 1, objstore.PutOptions{Metadata: md}); err == nil {
			t.Errorf("Put with metadata %q succeeded, want an error", md)
		}
	}
}

// orderKeys exercise S3's byte order against directory-by-directory order:
// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), which sorts before
// digits, upper case, '~' and UTF-8 multi-byte characters.
var orderKeys = []string{
	"a-c", "a.b", "a/b", "a/b-c", "a/b.d/e", "a/b0", "a/bc/d", "a/c/d/e",
	"a0", "ab/c", "b", "B/x", "z~", "é/x", "0/1",
}

func testListOrder(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	keys := orderKeys
	shuffled := slices.Clone(keys)
	mrand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		put(t, s, b, k, "body of "+k, objstore.PutOptions{})
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)

	expect := func(prefix, startAfter string) []string {
		out := []string{}
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) && k > startAfter {
				out = append(out, k)
			}
		}
		return out
	}
	cases := []struct{ prefix, startAfter string }{
		{"", ""},
		{"a", ""},
		{"a/", ""},
		{"a/b", ""},
		{"a/b/", ""},
		{"a/c/d/", ""},
		{"nothing", ""},
		{"", "a/b"},
		{"", "a/b/"},
		{"", "a/bb"},
		{"", "a-c"},
		{"a/", "a/b-c"},
		{"a/", "a/b.d/e"},
		{"a/", "a/b.d"},
		{"a/", "a/c"},
		{"a", "a0"},
		{"", "zzz"},
		{"", "\xff"},
		{"a/b", "a/b"},
	}
	for _, c := range cases {
		got := listKeys(t, s, b, c.prefix, c.startAfter)
		if want := expect(c.prefix, c.startAfter); !slices.Equal(got, want) {
			t.Errorf("List(prefix %q, startAfter %q)\n got %q\nwant %q", c.prefix, c.startAfter, got, want)
		}
	}
	// Listed infos carry size and ETag.
	err := s.List(t.Context(), b, "a/b", "", func(o objstore.ObjectInfo) error {
		body := []byte("body of " + o.Key)
		if o.Size != int64(len(body)) || o.ETag != etagOf(body) || o.LastModified.IsZero() {
			t.Errorf("listed %q: size %d ETag %s LastModified %v; want %d %s and a time", o.Key, o.Size, o.ETag, o.LastModified, len(body), etagOf(body))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
}

func testListStop(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	for i := range 5 {
		put(t, s, b, fmt.Sprintf("k%d", i), "x", objstore.PutOptions{})
	}
	var seen []string
	err := s.List(t.Context(), b, "", "", func(o objstore.ObjectInfo) error {
		seen = append(seen, o.Key)
		if len(seen) == 2 {
			return objstore.ErrStop
		}
		return nil
	})
	if err != nil || !slices.Equal(seen, []string{"k0", "k1"}) {
		t.Errorf("List stopped with ErrStop: err %v, saw %v; want nil, [k0 k1]", err, seen)
	}
	mine := errors.New("mine")
	err = s.List(t.Context(), b, "", "", func(objstore.ObjectInfo) error { return mine })
	if !errors.Is(err, mine) {
		t.Errorf("List with a failing callback = %v, want the callback's error", err)
	}
}

// testParentAndChildKeys checks keys where one is a "directory" of the
// other. S3 stores both; file-tree stores may refuse the second with
// ErrInvalidKey, but must then keep the first intact.
func testParentAndChildKeys(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := newBucket(t, s)
	for _, pair := range [][2]string{{"p/q", "p/q/r"}, {"x/y/z", "x/y"}} {
		first, second := pair[0], pair[1]
		put(t, s, b, first, "first", objstore.PutOptions{})
		err := s.Put(ctx, b, second, strings.NewReader("second"), 6, objstore.PutOptions{})
		if err != nil && !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%s) after Put(%s) = %v; want nil or ErrInvalidKey", second, first, err)
		}
		if got, _ := get(t, s, b, first); got != "first" {
			t.Errorf("%s = %q after Put(%s), want first", first, got, second)
		}
		want := []string{first}
		if err == nil {
			if got, _ := get(t, s, b, second); got != "second" {
				t.Errorf("%s = %q, want second", second, got)
			}
			want = append(want, second)
			slices.Sort(want)
		} else {
			t.Logf("this store refuses %q next to %q: %v", second, first, err)
			_, herr := s.Head(ctx, b, second)
			wantErr(t, "Head of refused key "+second, herr, objstore.ErrNotFound)
		}
		prefix := first[:1]
		if got := listKeys(t, s, b, prefix, ""); !slices.Equal(got, want) {
			t.Errorf("List(%s) = %q, want %q", prefix, got, want)
		}
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	b := newBucket(t, s)
	put(t, s, b, "d/e/f", "1", objstore.PutOptions{Metadata: map[string]string{"m": "1"}})
	put(t, s, b, "d/g", "2", objstore.PutOptions{})
	if err := s.Delete(ctx, b, "d/e/f"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err := s.Get(ctx, b, "d/e/f")
	wantErr(t, "Get after Delete", err, objstore.ErrNotFound)
	if got := listKeys(t, s, b, "", ""); !slices.Equal(got, []string{"d/g"}) {
		t.Errorf("List after Delete = %q, want [d/g]", got)
	}
	// The freed name works both as an object and as a prefix again.
	put(t, s, b, "d/e", "3", objstore.PutOptions{})
	if err := s.Delete(ctx, b, "d/e"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	put(t, s, b, "d/e/f", "4", objstore.PutOptions{})
	got, info := get(t, s, b, "d/e/f")
	if got != "4" || info.Metadata != nil {
		t.Errorf("re-put after Delete: %q %+v; want 4 with no metadata", got, info)
	}
	if err := s.Delete(ctx, b, "d/e/f"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, b, "d/g"); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, s, b, "", ""); len(got) != 0 {
		t.Errorf("List of emptied bucket = %q", got)
	}
}

func testLargeObject(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	body := make([]byte, 5<<20+123)
	rand.Read(body)
	want := sha256.Sum256(body)
	for _, tc := range []struct {
		key string
		r   io.Reader
	}{
		{"seeker", bytes.NewReader(body)},
		{"reader", onlyReader{bytes.NewReader(body)}},
	} {
		if err := s.Put(t.Context(), b, tc.key, tc.r, int64(len(body)), objstore.PutOptions{ContentEncoding: "gzip"}); err != nil {
			t.Fatalf("Put(%s) of %d bytes: %v", tc.key, len(body), err)
		}
		rc, info, err := s.Get(t.Context(), b, tc.key)
		if err != nil {
			t.Fatalf("Get(%s): %v", tc.key, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", tc.key, err)
		}
		if n != int64(len(body)) || !bytes.Equal(h.Sum(nil), want[:]) || info.Size != n || info.ETag != etagOf(body) {
			t.Errorf("%s: read %d bytes (info %d, ETag %s), want %d bytes with matching hash and ETag %s", tc.key, n, info.Size, info.ETag, len(body), etagOf(body))
		}
	}
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	const writers = 12
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every writer puts its own key, and all of them race on
			// "shared" so last-writer-wins must leave one whole version.
			own := fmt.Sprintf("own/%02d/k", i)
			body := strings.Repeat(fmt.Sprintf("%02d", i), 4096+i)
			md := map[string]string{"writer": fmt.Sprint(i)}
			if err := s.Put(t.Context(), b, own, strings.NewReader(body), int64(len(body)), objstore.PutOptions{Metadata: md}); err != nil {
				errs <- fmt.Errorf("put %s: %w", own, err)
			}
			if err := s.Put(t.Context(), b, "shared", strings.NewReader(body), int64(len(body)), objstore.PutOptions{Metadata: md}); err != nil {
				errs <- fmt.Errorf("put shared: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, info := get(t, s, b, "shared")
	var w int
	if _, err := fmt.Sscan(info.Metadata["writer"], &w); err != nil {
		t.Fatalf("shared: metadata %v", info.Metadata)
	}
	if want := strings.Repeat(fmt.Sprintf("%02d", w), 4096+w); got != want {
		t.Errorf("shared: body does not match the metadata of writer %d (len %d, want %d)", w, len(got), len(want))
	}
	if keys := listKeys(t, s, b, "own/", ""); len(keys) != writers {
		t.Errorf("listed %d own keys, want %d: %v", len(keys), writers, keys)
	}
}

// cancelAfter cancels its context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		// Give the store a moment to notice, then keep feeding it: a
		// correct store stops on its own.
		time.Sleep(10 * time.Millisecond)
	}
	if len(p) > 4096 {
		p = p[:4096]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func testCancellation(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	put(t, s, b, "exists", "x", objstore.PutOptions{})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Put(ctx, b, "k", strings.NewReader("x"), 1, objstore.PutOptions{})
	wantErr(t, "Put with a cancelled context", err, context.Canceled)
	_, _, err = s.Get(ctx, b, "exists")
	wantErr(t, "Get with a cancelled context", err, context.Canceled)
	_, err = s.Head(ctx, b, "exists")
	wantErr(t, "Head with a cancelled context", err, context.Canceled)
	err = s.List(ctx, b, "", "", func(objstore.ObjectInfo) error { return nil })
	wantErr(t, "List with a cancelled context", err, context.Canceled)
	_, err = s.ListBuckets(ctx)
	wantErr(t, "ListBuckets with a cancelled context", err, context.Canceled)
	wantErr(t, "Delete with a cancelled context", s.Delete(ctx, b, "exists"), context.Canceled)

	// Cancelled part-way through the body: nothing is stored.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	body := bytes.Repeat([]byte("z"), 2<<20)
	err = s.Put(ctx, b, "partial", onlyReader{&cancelAfter{r: bytes.NewReader(body), n: 64 << 10, cancel: cancel}}, int64(len(body)), objstore.PutOptions{})
	if err == nil {
		t.Errorf("Put cancelled mid-body succeeded")
	}
	_, err = s.Head(t.Context(), b, "partial")
	wantErr(t, "Head after a cancelled Put", err, objstore.ErrNotFound)
	if got, _ := get(t, s, b, "exists"); got != "x" {
		t.Errorf("exists = %q after cancelled calls, want x", got)
	}
}
