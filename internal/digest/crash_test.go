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

// TestCrashAndReplay: a writer that dies after writing a digest object but
// before recording it, and a delivery that reports the same batch twice
// (a replay after a crash before its cursor moved), still give one valid
// chain, without orphan digests and without a log file listed twice.
func TestCrashAndReplay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := state.Open(ctx, filepath.Join(dir, "state"), state.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	store, err := file.New(filepath.Join(dir, "buckets"), file.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := func() time.Time { return now }
	trails := trail.New(st, store, "123456789012", clk, trail.WithLogger(log))
	tr, err := trails.Create(ctx, "us-east-1", trail.CreateInput{Name: "trl", S3BucketName: "bkt", EnableLogFileValidation: ptrTo(true)})
	if err != nil {
		t.Fatal(err)
	}
	if err := trails.StartLogging(ctx, "us-east-1", "trl"); err != nil {
		t.Fatal(err)
	}
	keys, err := OpenKeys(dir, st, KeyOptions{Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	crashAt := ""
	newWriter := func() *Writer {
		w, err := NewWriter(st, trails, store, keys, Options{Interval: time.Minute, Clock: clk, Logger: log,
			testHook: func(stage string) error {
				if stage == crashAt {
					return errCrash
				}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := newWriter()
	file1 := delivery.LogFileDelivered{TrailARN: tr.ARN(), Region: "us-east-1", Bucket: "bkt", Key: "AWSLogs/123456789012/CloudTrail/us-east-1/2026/03/01/f1.json.gz",
		DeliveredAt: now.Add(10 * time.Second), NewestEventTime: now, OldestEventTime: now, First: 1, Last: 5}
	putLog(t, store, file1.Key)
	file1.SHA256 = sumOfLog()
	for range 2 { // the second call is a replay
		if err := w.Record(ctx, []delivery.LogFileDelivered{file1}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Minute)
	if err := w.Tick(ctx); err != nil { // chain start only (nothing due yet)
		t.Fatal(err)
	}
	for i := range 5 {
		now = now.Add(time.Minute)
		if i == 2 {
			crashAt = "put"
			if err := w.Tick(ctx); !errors.Is(err, errCrash) {
				t.Fatalf("want the simulated crash, got %v", err)
			}
			crashAt = ""
			now = now.Add(20 * time.Second) // the restart takes a while
			w = newWriter()
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
	_ = store.List(ctx, "bkt", "AWSLogs/123456789012/CloudTrail-Digest/", "", func(oi objstore.ObjectInfo) error {
		digests = append(digests, oi.Key)
		return nil
	})
	res, err := Validate(ctx, ValidateOptions{TrailARN: tr.ARN(), Start: now.Add(-time.Hour), Now: now, Bucket: "bkt", Store: store,
		PublicKeys: func(ctx context.Context, s, e time.Time) ([]PublicKey, error) {
			return keys.PublicKeys(ctx, "us-east-1", s, e)
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
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := state.Open(ctx, filepath.Join(dir, "state"), state.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	store, err := file.New(filepath.Join(dir, "buckets"), file.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := start
	clk := func() time.Time { return now }
	trails := trail.New(st, store, "123456789012", clk, trail.WithLogger(log))
	tr, err := trails.Create(ctx, "us-east-1", trail.CreateInput{Name: "trl", S3BucketName: "bkt", EnableLogFileValidation: ptrTo(true)})
	if err != nil {
		t.Fatal(err)
	}
	if err := trails.StartLogging(ctx, "us-east-1", "trl"); err != nil {
		t.Fatal(err)
	}
	keys, err := OpenKeys(dir, st, KeyOptions{Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	crashAt := ""
	newWriter := func() *Writer {
		w, err := NewWriter(st, trails, store, keys, Options{Interval: time.Minute, Clock: clk, Logger: log,
			testHook: func(stage string) error {
				if stage == crashAt {
					return errCrash
				}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	logFile := func(name string, at time.Time, first, last uint64) delivery.LogFileDelivered {
		f := delivery.LogFileDelivered{TrailARN: tr.ARN(), Region: "us-east-1", Bucket: "bkt", Key: "AWSLogs/123456789012/CloudTrail/us-east-1/2026/03/01/" + name,
			DeliveredAt: at, NewestEventTime: at, OldestEventTime: at, First: first, Last: last}
		putLog(t, store, f.Key)
		f.SHA256 = sumOfLog()
		return f
	}
	digests := func() map[string][]byte {
		out := map[string][]byte{}
		_ = store.List(ctx, "bkt", "AWSLogs/123456789012/CloudTrail-Digest/", "", func(oi objstore.ObjectInfo) error {
			rc, _, err := store.Get(ctx, "bkt", oi.Key)
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

	w := newWriter()
	if err := w.Record(ctx, []delivery.LogFileDelivered{logFile("early.json.gz", start.Add(10*time.Second), 1, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Tick(ctx); err != nil { // the chain starts
		t.Fatal(err)
	}
	now = start.Add(90 * time.Second)
	crashAt = "put"
	if err := w.Tick(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("want the simulated crash after the PUT, got %v", err)
	}
	crashAt = ""
	before := digests()
	if len(before) != 1 {
		t.Fatalf("%d digests after the crash, want the one whose PUT landed", len(before))
	}
	// A file stamped before that digest's end is recorded only now.
	w = newWriter()
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
	now = start.Add(150 * time.Second)
	if err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := Validate(ctx, ValidateOptions{TrailARN: tr.ARN(), Start: start.Add(-time.Hour), Now: now, Bucket: "bkt", Store: store,
		PublicKeys: func(ctx context.Context, s, e time.Time) ([]PublicKey, error) {
			return keys.PublicKeys(ctx, "us-east-1", s, e)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.ValidLogs != 2 {
		t.Fatalf("after the rewrite: %+v; want a valid chain listing both files", res)
	}
}
