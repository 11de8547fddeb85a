package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/golden"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/trail"
)

// fixedClock is the wall clock of tests whose output is compared with a
// golden file.
func fixedClock() time.Time { return time.Date(2024, 5, 1, 12, 34, 56, 0, time.UTC) }

var keyRE = regexp.MustCompile(`^(?:([^/].*)/)?AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_([A-Za-z0-9]{16})\.json\.gz$`)

// checkKey checks a key against CloudTrail's layout and returns its region.
func checkKey(t *testing.T, key, prefix string, at time.Time) string {
	t.Helper()
	m := keyRE.FindStringSubmatch(key)
	if m == nil || !LogFileNameRE.MatchString(key) {
		t.Fatalf("key %q does not follow CloudTrail's layout", key)
	}
	if m[1] != prefix || m[2] != testAccount || m[7] != testAccount || m[3] != m[8] {
		t.Errorf("key %q: prefix/account/region parts disagree", key)
	}
	if !at.IsZero() {
		if got, want := m[4]+"/"+m[5]+"/"+m[6], at.UTC().Format("2006/01/02"); got != want {
			t.Errorf("key %q: date folders %s, want %s", key, got, want)
		}
		if got, want := m[9], at.UTC().Format("20060102T1504Z"); got != want {
			t.Errorf("key %q: timestamp %s, want %s", key, got, want)
		}
	}
	return m[3]
}

// TestDeliveryFiles delivers a known set of events to three trails and
// compares the files with a golden file: keys, headers, and content, each
// record byte-identical to its journal entry.
func TestDeliveryFiles(t *testing.T) {
	e := newEnv(t)
	e.bucket("audit-logs")
	e.bucket("west-logs")
	ctx := context.Background()
	main := e.trail("us-east-1", trail.CreateInput{Name: "main", S3BucketName: "audit-logs", S3KeyPrefix: "org/main", IsMultiRegionTrail: ptr(true)})
	west := e.trail("us-west-2", trail.CreateInput{Name: "west", S3BucketName: "west-logs", IncludeGlobalServiceEvents: ptr(false)})
	if _, err := e.trails.PutEventSelectors(ctx, "us-west-2", "west", []selector.EventSelector{{
		ReadWriteType: ptr("All"), IncludeManagementEvents: ptr(true),
		DataResources: []selector.DataResource{{Type: ptr("AWS::S3::Object"), Values: []string{"arn:aws:s3:::data/"}}},
	}}, nil); err != nil {
		t.Fatal(err)
	}
	idle := e.trail("eu-central-1", trail.CreateInput{Name: "idle", S3BucketName: "audit-logs", S3KeyPrefix: "idle", IncludeGlobalServiceEvents: ptr(false)})

	opts := testOptions()
	opts.Clock = fixedClock
	m := e.manager(opts)
	e.changed(m) // open the logging windows before the events arrive
	nums := e.append(
		rec{Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "RunInstances", ReadOnly: "false"},
		rec{Region: "us-west-2", Source: "ec2.amazonaws.com", Name: "DescribeInstances", ReadOnly: "true"},
		rec{Region: "us-east-1", Source: "iam.amazonaws.com", Name: "CreateUser", ReadOnly: "false"},
		rec{Region: "us-west-2", Source: "s3.amazonaws.com", Name: "GetObject", ReadOnly: "true", Category: "Data",
			Resources: [][2]string{{"AWS::S3::Object", "arn:aws:s3:::data/report.csv"}}},
		rec{Region: "us-west-2", Source: "s3.amazonaws.com", Name: "GetObject", ReadOnly: "true", Category: "Data",
			Resources: [][2]string{{"AWS::S3::Object", "arn:aws:s3:::private/key"}}},
		rec{Region: "eu-west-1", Source: "kms.amazonaws.com", Name: "Decrypt", ReadOnly: "true", Pad: "unicode é ✓ \u2028"},
		rec{Region: "ap-southeast-2", Source: "payments.example.com", Name: "Refund", Category: "ActivityAuditLog"},
	)
	e.start(m)
	for _, tr := range []trail.Trail{main, west, idle} {
		e.caughtUp(tr.ARN())
	}

	var listing bytes.Buffer
	check := func(bucket, prefix string, want []int) {
		t.Helper()
		fs := files(t, e.store, bucket)
		got := map[string]int{}
		for _, f := range fs {
			if !strings.HasPrefix(f.Key, prefix+"/") && prefix != "" {
				continue
			}
			region := checkKey(t, f.Key, prefix, fixedClock())
			if f.Info.ContentType != ContentType || f.Info.ContentEncoding != ContentEncoding {
				t.Errorf("%s: Content-Type %q, Content-Encoding %q", f.Key, f.Info.ContentType, f.Info.ContentEncoding)
			}
			fmt.Fprintf(&listing, "s3://%s/%s\n  Content-Type: %s\n  Content-Encoding: %s\n  %d records\n", bucket, f.Key, f.Info.ContentType, f.Info.ContentEncoding, len(f.Records))
			for _, r := range f.Records {
				id := eventIDOf(t, r)
				got[id]++
				n := slices.IndexFunc(nums, func(n int) bool { return eventID(n) == id })
				if n < 0 {
					t.Fatalf("unknown event %s", id)
				}
				entry, err := e.j.Get(ctx, uint64(n+1))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(r, entry) {
					t.Errorf("%s: record %s differs from its journal entry:\n got %s\nwant %s", f.Key, id, r, entry)
				}
				if rr := regionOfRecord(t, r); rr != region && !(rr != region && region == "us-east-1" && strings.Contains(string(r), "iam.amazonaws.com")) {
					t.Errorf("%s: record of region %s in the %s folder", f.Key, rr, region)
				}
				fmt.Fprintf(&listing, "  %s\n", r)
			}
		}
		want2 := make([]string, len(want))
		for i, k := range want {
			want2[i] = eventID(nums[k])
		}
		exactlyOnce(t, got, want2)
	}
	check("audit-logs", "org/main", []int{0, 1, 2, 5})
	check("west-logs", "", []int{1, 3})
	// The idle trail logged nothing it selects: it writes nothing.
	if fs := files(t, e.store, "audit-logs"); slices.ContainsFunc(fs, func(f logFile) bool { return strings.HasPrefix(f.Key, "idle/") }) {
		t.Error("the idle trail wrote a file")
	}

	golden.Check(t, filepath.Join("testdata", "delivery_files.golden"), listing.Bytes())

	// Status: a successful delivery with no error.
	st, err := e.trails.ByARN(ctx, main.ARN())
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.LatestDeliveryError != "" || !st.Status.LatestDeliveryTime.Equal(fixedClock()) || !st.Status.LatestDeliveryAttemptSucceeded.Equal(fixedClock()) {
		t.Errorf("status after delivery: %+v", st.Status)
	}
}

func regionOfRecord(t *testing.T, r []byte) string {
	t.Helper()
	m := regexp.MustCompile(`"awsRegion":"([^"]*)"`).FindSubmatch(r)
	if m == nil {
		t.Fatalf("record without awsRegion: %s", r)
	}
	return string(m[1])
}

func ptr[T any](v T) *T { return &v }

// TestStopStartGap: events acknowledged before StopLogging are delivered,
// events while stopped are not, events after StartLogging are.
func TestStopStartGap(t *testing.T) {
	e := newEnv(t)
	e.bucket("logs")
	ctx := context.Background()
	tr := e.trail("us-east-1", trail.CreateInput{Name: "gap", S3BucketName: "logs"})
	opts := testOptions()
	opts.Interval = 10 * time.Second // the drain on StopLogging must not wait for it
	m := e.manager(opts)
	e.start(m)
	e.changed(m)

	before := e.append(rec{Name: "Before1"}, rec{Name: "Before2"})
	if err := e.trails.StopLogging(ctx, "us-east-1", "gap"); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	during := e.append(rec{Name: "WhileStopped1"}, rec{Name: "WhileStopped2"})
	// The drained deliverer stops: nothing is pending.
	waitFor(t, 10*time.Second, "the stopped trail to drain", func() bool {
		_, running := m.Lag(tr.ARN())
		return !running
	})
	if got := delivered(t, files(t, e.store, "logs")); len(got) != 2 {
		t.Fatalf("after StopLogging delivered %v, want the two events from before", got)
	}
	// A stopped, drained trail releases its cursor so that it does not
	// hold the journal's retention back.
	waitFor(t, 5*time.Second, "the cursor to be released", func() bool {
		_, ok := e.j.Cursors()[CursorName(tr.ARN())]
		return !ok
	})
	if err := e.trails.StartLogging(ctx, "us-east-1", "gap"); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	// Logging again: the cursor is back, at the new window's start.
	if pos, ok := e.j.Cursors()[CursorName(tr.ARN())]; !ok || pos != e.j.LastSeq() {
		t.Errorf("cursor after StartLogging: %d, %v; want %d", pos, ok, e.j.LastSeq())
	}
	after := e.append(rec{Name: "After1"})
	if err := e.trails.StopLogging(ctx, "us-east-1", "gap"); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	waitFor(t, 10*time.Second, "the second window to drain", func() bool {
		return len(delivered(t, files(t, e.store, "logs"))) == 3
	})
	exactlyOnce(t, delivered(t, files(t, e.store, "logs")), idsOf(append(before, after...)))
	_ = during
	// Stopping and starting again between two polls (no TrailChanged)
	// still counts as a new session.
	if err := e.trails.StartLogging(ctx, "us-east-1", "gap"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the poll to open a window", func() bool {
		st, err := stateStore{e.st}.load(ctx, tr.ARN())
		return err == nil && st.openWindow() >= 0
	})
	last := e.append(rec{Name: "Polled"})
	if err := e.trails.StopLogging(ctx, "us-east-1", "gap"); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	waitFor(t, 10*time.Second, "the third window to drain", func() bool {
		return len(delivered(t, files(t, e.store, "logs"))) == 4
	})
	exactlyOnce(t, delivered(t, files(t, e.store, "logs")), idsOf(slices.Concat(before, after, last)))
}

// TestDeleteTrail: deleting a trail stops its delivery and removes its
// cursor and state; its files stay.
func TestDeleteTrail(t *testing.T) {
	e := newEnv(t)
	e.bucket("logs")
	ctx := context.Background()
	tr := e.trail("us-east-1", trail.CreateInput{Name: "doomed", S3BucketName: "logs"})
	reg := prometheus.NewRegistry()
	opts := testOptions()
	opts.Registerer = reg
	m := e.manager(opts)
	e.start(m)
	e.changed(m)
	e.append(rec{}, rec{})
	e.caughtUp(tr.ARN())
	if n := seriesCount(t, reg, "cairn_delivery_lag_entries"); n != 1 {
		t.Errorf("%d lag series, want 1", n)
	}
	if err := e.trails.Delete(ctx, "us-east-1", "doomed"); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	if _, ok := e.j.Cursors()[CursorName(tr.ARN())]; ok {
		t.Error("the deleted trail's cursor is still there")
	}
	all, err := stateStore{e.st}.loadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all[tr.ARN()]; ok {
		t.Error("the deleted trail's delivery state is still there")
	}
	if n := seriesCount(t, reg, "cairn_delivery_lag_entries"); n != 0 {
		t.Errorf("%d lag series after delete, want 0", n)
	}
	if got := delivered(t, files(t, e.store, "logs")); len(got) != 2 {
		t.Errorf("files of the deleted trail: %v", got)
	}
}

// TestMaxFileBytes: files are cut before they would exceed the limit, and
// every event is in exactly one of them.
func TestMaxFileBytes(t *testing.T) {
	e := newEnv(t)
	e.bucket("logs")
	tr := e.trail("us-east-1", trail.CreateInput{Name: "small", S3BucketName: "logs", IsMultiRegionTrail: ptr(true)})
	opts := testOptions()
	opts.MaxFileBytes = 8 << 10
	m := e.manager(opts)
	e.changed(m)
	var recs []rec
	for i := range 300 {
		// Poorly compressible padding, so that files fill up quickly.
		pad := fmt.Sprintf("%x", sha(i))
		recs = append(recs, rec{Region: []string{"us-east-1", "eu-west-1"}[i%2], Pad: pad + pad[:20]})
	}
	nums := e.append(recs...)
	e.start(m)
	e.caughtUp(tr.ARN())
	fs := files(t, e.store, "logs")
	if len(fs) < 4 {
		t.Errorf("only %d files for ~%d KB of poorly compressible records", len(fs), 300*700/1024)
	}
	for _, f := range fs {
		if int64(len(f.Raw)) > opts.MaxFileBytes {
			t.Errorf("%s is %d bytes, over the %d limit", f.Key, len(f.Raw), opts.MaxFileBytes)
		}
	}
	exactlyOnce(t, delivered(t, fs), idsOf(nums))
}

func sha(i int) []byte {
	h := make([]byte, 32)
	x := uint64(i)*0x9E3779B97F4A7C15 + 1
	for k := range h {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		h[k] = byte(x)
	}
	return h
}

// TestReplayIsByteIdentical: a plan rebuilt from the journal produces the
// same bytes as the batch that made it, also when the batch was cut by
// the size limit.
func TestReplayIsByteIdentical(t *testing.T) {
	sel := SelectionOf(&trail.Trail{HomeRegion: "us-east-1", IsMultiRegionTrail: true, IncludeGlobalServiceEvents: true})
	var entries [][]byte
	for i := range 400 {
		pad := fmt.Sprintf("%x", sha(i))
		entries = append(entries, rec{Region: []string{"us-east-1", "eu-west-1", "ap-south-1"}[i%3], Pad: strings.Repeat(pad, 1+i%3)}.json(i))
	}
	const max = 6 << 10
	pos := uint64(0)
	for pos < uint64(len(entries)) {
		b := newBatch(sel, pos, max)
		for i := pos; i < uint64(len(entries)); i++ {
			if !b.take(i+1, entries[i], false) {
				break
			}
		}
		orig := b.finish("")
		replay := newBatch(sel, pos, max)
		for i := pos; i < b.last; i++ {
			replay.take(i+1, entries[i], true)
		}
		again := replay.finish(b.fullRegion)
		if !slices.Equal(replay.regions(), b.regions()) {
			t.Fatalf("batch %d-%d: regions %v, replay %v", b.first, b.last, b.regions(), replay.regions())
		}
		for r, data := range orig {
			if !bytes.Equal(data, again[r]) {
				t.Fatalf("batch %d-%d region %s: replay is not byte-identical (%d vs %d bytes)", b.first, b.last, r, len(data), len(again[r]))
			}
			if len(data) > max {
				t.Errorf("batch %d-%d region %s: %d bytes, over %d", b.first, b.last, r, len(data), max)
			}
		}
		pos = b.last
	}
}

func TestLogFileKey(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	got := LogFileKey("a/b", testAccount, "eu-west-1", at, "AbCdEfGhIjKlMnOp")
	want := "a/b/AWSLogs/123456789012/CloudTrail/eu-west-1/2024/01/02/123456789012_CloudTrail_eu-west-1_20240102T0204Z_AbCdEfGhIjKlMnOp.json.gz"
	if got != want {
		t.Errorf("LogFileKey = %s\nwant %s", got, want)
	}
	if got := LogFileKey("", testAccount, "us-east-1", at, "x"); !strings.HasPrefix(got, "AWSLogs/") {
		t.Errorf("no prefix: %s", got)
	}
	u := uniqueString("arn:aws:cloudtrail:us-east-1:123456789012:trail/t", 1, 9, "us-east-1")
	if !regexp.MustCompile(`^[A-Za-z0-9]{16}$`).MatchString(u) {
		t.Errorf("unique string %q", u)
	}
	if u != uniqueString("arn:aws:cloudtrail:us-east-1:123456789012:trail/t", 1, 9, "us-east-1") {
		t.Error("unique string is not deterministic")
	}
	if u == uniqueString("arn:aws:cloudtrail:us-east-1:123456789012:trail/t", 1, 10, "us-east-1") {
		t.Error("unique string ignores the range")
	}
}

func TestErrorCode(t *testing.T) {
	if got := ErrorCode(errors.New("boom"), false); got != CodeInternal {
		t.Errorf("ErrorCode(other) = %s", got)
	}
	if got := ErrorCode(context.DeadlineExceeded, false); got != CodeTimeout {
		t.Errorf("ErrorCode(deadline) = %s", got)
	}
}

// seriesCount is how many series of the metric the registry has.
func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestTrimmedGap: entries trimmed from under a lagging cursor are skipped
// without reading past the end of a closed window.
func TestTrimmedGap(t *testing.T) {
	e := newEnv(t)
	e.bucket("logs")
	ctx := context.Background()
	tr := e.trail("us-east-1", trail.CreateInput{Name: "gappy", S3BucketName: "logs"})
	m := e.manager(testOptions())
	e.changed(m)
	nums := e.append(rec{}, rec{}, rec{}, rec{}, rec{}, rec{}, rec{})
	if err := e.trails.StopLogging(ctx, "us-east-1", "gappy"); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	e.append(rec{}, rec{}, rec{}) // after StopLogging: never delivered
	if err := e.j.Trim(ctx, 5); err != nil {
		t.Fatal(err)
	}
	e.start(m)
	waitFor(t, 10*time.Second, "the window to drain", func() bool {
		return e.j.Cursor(CursorName(tr.ARN())).Position() == 7
	})
	exactlyOnce(t, delivered(t, files(t, e.store, "logs")), idsOf(nums[4:]))
}
