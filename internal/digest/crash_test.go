package digest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

var errCrash = errors.New("simulated crash")

// crashRig is a trail with log file validation over a file store, a clock
// the test moves (now) and writers that fail at the hook stage crashAt, as
// a process killed there would.
type crashRig struct {
	st      *state.Store
	store   *file.Store
	trails  *trail.Service
	tr      trail.Trail
	keys    *Keys
	now     time.Time
	crashAt string
}

func newCrashRig(t *testing.T, start time.Time) *crashRig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &crashRig{now: start}
	var err error
	if r.st, err = state.Open(ctx, filepath.Join(dir, "state"), state.Options{Logger: log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.st.Close() })
	if r.store, err = file.New(filepath.Join(dir, "buckets"), file.Options{Logger: log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.store.Close() })
	if err := r.store.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	r.trails = trail.New(r.st, r.store, "123456789012", r.clock, trail.WithLogger(log))
	if r.tr, err = r.trails.Create(ctx, "us-east-1", trail.CreateInput{Name: "trl", S3BucketName: "bkt", EnableLogFileValidation: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	if err := r.trails.StartLogging(ctx, "us-east-1", "trl"); err != nil {
		t.Fatal(err)
	}
	if r.keys, err = OpenKeys(dir, r.st, KeyOptions{Clock: r.clock, Logger: log}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *crashRig) clock() time.Time { return r.now }

// writer is a Writer as a freshly started process would have it.
func (r *crashRig) writer(t *testing.T) *Writer {
	t.Helper()
	w, err := NewWriter(r.st, r.trails, r.store, r.keys, Options{Interval: time.Minute, Clock: r.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		testHook: func(stage string) error {
			if stage == r.crashAt {
				return errCrash
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCrashAndReplay: a writer that dies after writing a digest object but
// before recording it, and a delivery that reports the same batch twice
// (a replay after a crash before its cursor moved), still give one valid
// chain, without orphan digests and without a log file listed twice.
func TestCrashAndReplay(t *testing.T) {
	ctx := context.Background()
	r := newCrashRig(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	w := r.writer(t)
	file1 := delivery.LogFileDelivered{TrailARN: r.tr.ARN(), Region: "us-east-1", Bucket: "bkt", Key: "AWSLogs/123456789012/CloudTrail/us-east-1/2026/03/01/f1.json.gz",
		DeliveredAt: r.now.Add(10 * time.Second), NewestEventTime: r.now, OldestEventTime: r.now, First: 1, Last: 5}
	putLog(t, r.store, file1.Key)
	file1.SHA256 = sumOfLog()
	for range 2 { // the second call is a replay
		if err := w.Record(ctx, []delivery.LogFileDelivered{file1}); err != nil {
			t.Fatal(err)
		}
	}
	r.now = r.now.Add(time.Minute)
	if err := w.Tick(ctx); err != nil { // chain start only (nothing due yet)
		t.Fatal(err)
	}
	for i := range 5 {
		r.now = r.now.Add(time.Minute)
		if i == 2 {
			r.crashAt = "put"
			if err := w.Tick(ctx); !errors.Is(err, errCrash) {
				t.Fatalf("want the simulated crash, got %v", err)
			}
			r.crashAt = ""
			r.now = r.now.Add(20 * time.Second) // the restart takes a while
			w = r.writer(t)
			// The same file replayed after the restart is not listed again.
			if err := w.Record(ctx, []delivery.LogFileDelivered{file1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var digests []string
	listed := 0
	_ = r.store.List(ctx, "bkt", "AWSLogs/123456789012/CloudTrail-Digest/", "", func(oi objstore.ObjectInfo) error {
		digests = append(digests, oi.Key)
		return nil
	})
	res, err := Validate(ctx, ValidateOptions{TrailARN: r.tr.ARN(), Start: r.now.Add(-time.Hour), Now: r.now, Bucket: "bkt", Store: r.store,
		PublicKeys: func(ctx context.Context, s, e time.Time) ([]PublicKey, error) {
			return r.keys.PublicKeys(ctx, "us-east-1", s, e)
		}})
	if err != nil {
		t.Fatal(err)
	}
	listed = res.ValidLogs
	if !res.OK() || res.ValidDigests != len(digests) || listed != 1 {
		t.Fatalf("after a crash: %+v, %d digest objects %v; want all valid, no orphan, the file listed once", res, len(digests), strings.Join(digests, "\n"))
	}
}

func ptrTo[T any](v T) *T { return &v }

const logBody = `{"Records":[]}`

func putLog(t *testing.T, store objstore.Store, key string) {
	t.Helper()
	var b strings.Builder
	zw := newGzip(&b)
	zw.Write([]byte(logBody))
	zw.Close()
	if err := store.Put(context.Background(), "bkt", key, strings.NewReader(b.String()), int64(b.Len()), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func sumOfLog() [32]byte { return sha256.Sum256([]byte(logBody)) }

func newGzip(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

// TestRewriteAfterCrashListsTheSameFiles: a digest whose PUT landed just
// before a crash is written again after the restart with the same bytes,
// even when a log file stamped before the digest's end was recorded in
// between (delivery stamps a file, then records it; under load or across
// a restart that can be after the digest was planned). Before the fix the
// rewrite listed the late file and replaced the object with other bytes,
// seen in cmd/cairn's TestDigestChainSurvivesKill9.
func TestRewriteAfterCrashListsTheSameFiles(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r := newCrashRig(t, start)
	logFile := func(name string, at time.Time, first, last uint64) delivery.LogFileDelivered {
		f := delivery.LogFileDelivered{TrailARN: r.tr.ARN(), Region: "us-east-1", Bucket: "bkt", Key: "AWSLogs/123456789012/CloudTrail/us-east-1/2026/03/01/" + name,
			DeliveredAt: at, NewestEventTime: at, OldestEventTime: at, First: first, Last: last}
		putLog(t, r.store, f.Key)
		f.SHA256 = sumOfLog()
		return f
	}
	digests := func() map[string][]byte {
		out := map[string][]byte{}
		_ = r.store.List(ctx, "bkt", "AWSLogs/123456789012/CloudTrail-Digest/", "", func(oi objstore.ObjectInfo) error {
			rc, _, err := r.store.Get(ctx, "bkt", oi.Key)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			out[oi.Key] = b
			return nil
		})
		return out
	}

	w := r.writer(t)
	if err := w.Record(ctx, []delivery.LogFileDelivered{logFile("early.json.gz", start.Add(10*time.Second), 1, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Tick(ctx); err != nil { // the chain starts
		t.Fatal(err)
	}
	r.now = start.Add(90 * time.Second)
	r.crashAt = "put"
	if err := w.Tick(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("want the simulated crash after the PUT, got %v", err)
	}
	r.crashAt = ""
	before := digests()
	if len(before) != 1 {
		t.Fatalf("%d digests after the crash, want the one whose PUT landed", len(before))
	}
	// A file stamped before that digest's end is recorded only r.now.
	w = r.writer(t)
	if err := w.Record(ctx, []delivery.LogFileDelivered{logFile("late.json.gz", start.Add(50*time.Second), 6, 9)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	after := digests()
	for key, b := range before {
		if !bytes.Equal(after[key], b) {
			t.Fatalf("the digest %s was rewritten with other bytes after the crash", key)
		}
	}
	// The late file is in the next digest, and the chain validates.
	r.now = start.Add(150 * time.Second)
	if err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := Validate(ctx, ValidateOptions{TrailARN: r.tr.ARN(), Start: start.Add(-time.Hour), Now: r.now, Bucket: "bkt", Store: r.store,
		PublicKeys: func(ctx context.Context, s, e time.Time) ([]PublicKey, error) {
			return r.keys.PublicKeys(ctx, "us-east-1", s, e)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.ValidLogs != 2 {
		t.Fatalf("after the rewrite: %+v; want a valid chain listing both files", res)
	}
}
