package imports

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/datasets"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/state"
)

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
	testBucket  = "trail-logs"
	testRole    = "arn:aws:iam::123456789012:role/import"
)

var testStore = lake.Spec{
	ID: "0b5e1a4e-1111-4222-8333-944455556666", ARN: "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/0b5e1a4e-1111-4222-8333-944455556666",
	Region: testRegion, AccountID: testAccount, Status: lake.StatusEnabled, Category: lake.CategoryManagement,
	RetentionDays: 3653, Ingesting: true, Queryable: true,
}

// fakeStores resolves the one test store (its status can be changed).
type fakeStores struct {
	mu   sync.Mutex
	spec lake.Spec
}

func (f *fakeStores) Resolve(_ context.Context, _, ref string) (lake.Spec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref != f.spec.ARN && ref != f.spec.ID {
		return lake.Spec{}, awsproto.Errorf("EventDataStoreNotFoundException", "The event data store %s was not found.", ref)
	}
	return f.spec, nil
}

// memSink keeps what each name holds, replacing on rewrite, as the
// store's object names do. failAfter > 0 fails every call after that many.
type memSink struct {
	mu        sync.Mutex
	byName    map[string][][]byte
	calls     int
	failAfter int
	onWrite   func(calls int)
}

func newSink() *memSink { return &memSink{byName: map[string][][]byte{}} }

func (m *memSink) WriteImport(_ context.Context, _ lake.Spec, name string, recs [][]byte) error {
	m.mu.Lock()
	m.calls++
	calls := m.calls
	if m.failAfter > 0 && calls > m.failAfter {
		m.mu.Unlock()
		return errors.New("disk full")
	}
	cp := make([][]byte, len(recs))
	for i, r := range recs {
		cp[i] = bytes.Clone(r)
	}
	m.byName[name] = cp
	hook := m.onWrite
	m.mu.Unlock()
	if hook != nil {
		hook(calls)
	}
	return nil
}

// eventIDs returns every stored event's ID, sorted, duplicates kept.
func (m *memSink) eventIDs(t *testing.T) []string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, recs := range m.byName {
		for _, r := range recs {
			rec, err := event.Parse(r)
			if err != nil {
				t.Fatalf("stored record: %v", err)
			}
			ids = append(ids, rec.EventID)
		}
	}
	sort.Strings(ids)
	return ids
}

type fixture struct {
	st     *state.Store
	src    *file.Store
	stores *fakeStores
	sink   *memSink
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := state.Open(context.Background(), filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src, err := file.New(filepath.Join(dir, "buckets"), file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.CreateBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, src: src, stores: &fakeStores{spec: testStore}, sink: newSink(), now: time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)}
}

func (f *fixture) service() *Service {
	return New(f.st, f.stores, f.src, f.sink, testAccount, Options{Clock: func() time.Time { return f.now }, ChunkEvents: 3})
}

// run runs the worker until the import is no longer ongoing.
func (f *fixture) run(t *testing.T, svc *Service, id string) Import {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.After(30 * time.Second)
	for {
		im, err := svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !im.ongoing() {
			return im
		}
		select {
		case <-deadline:
			t.Fatalf("import %s still %s", id, im.Status)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// putLog writes one gzip log file with n events starting at t, one a
// minute, and returns their IDs.
func (f *fixture) putLog(t *testing.T, prefix string, t0 time.Time, n int) []string {
	t.Helper()
	var recs []map[string]any
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%08d-0000-4000-8000-%012d", t0.Unix()%1e8, i)
		ids = append(ids, id)
		recs = append(recs, map[string]any{
			"eventVersion": "1.08", "eventTime": t0.Add(time.Duration(i) * time.Minute).UTC().Format(time.RFC3339),
			"eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": testRegion,
			"eventID": id, "eventType": "AwsApiCall", "recipientAccountId": testAccount,
			"userIdentity": map[string]any{"type": "IAMUser", "accountId": testAccount},
		})
	}
	body, _ := json.Marshal(map[string]any{"Records": recs})
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(body)
	w.Close()
	stamp := t0.Add(time.Duration(n) * time.Minute).UTC()
	key := fmt.Sprintf("%sAWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%s.json.gz", prefix, testAccount, testRegion,
		stamp.Format("2006/01/02"), testAccount, testRegion, stamp.Format("20060102T1504Z"), fmt.Sprintf("r%015d", stamp.UnixNano()%1e15))
	if err := f.src.Put(context.Background(), testBucket, key, &gz, int64(gz.Len()), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func (f *fixture) start(t *testing.T, svc *Service, in StartInput) Import {
	t.Helper()
	if in.Destinations == nil && in.ImportID == "" {
		in.Destinations = []string{testStore.ARN}
	}
	if in.Source == nil && in.ImportID == "" {
		in.Source = &S3Source{S3LocationUri: "s3://" + testBucket, S3BucketRegion: testRegion, S3BucketAccessRoleArn: testRole}
	}
	im, err := svc.Start(context.Background(), testRegion, in)
	if err != nil {
		t.Fatalf("StartImport: %v", err)
	}
	return im
}

func sorted(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

func TestImportCopiesEveryEventOnceWithStatistics(t *testing.T) {
	f := newFixture(t)
	var want []string
	day := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	for d := range 3 {
		for h := range 2 {
			want = append(want, f.putLog(t, "", day.AddDate(0, 0, d).Add(time.Duration(h)*time.Hour), 4)...)
		}
	}
	// Not log files: a digest and a stray object are skipped.
	f.src.Put(context.Background(), testBucket, "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/03/01/x.json.gz", strings.NewReader("x"), 1, objstore.PutOptions{})
	f.src.Put(context.Background(), testBucket, "notes.txt", strings.NewReader("x"), 1, objstore.PutOptions{})

	svc := f.service()
	im := f.start(t, svc, StartInput{})
	if im.Status != StatusInitializing {
		t.Fatalf("new import status %s, want INITIALIZING", im.Status)
	}
	got := f.run(t, svc, im.ID)
	if got.Status != StatusCompleted {
		t.Fatalf("status %s, want COMPLETED", got.Status)
	}
	wantStats := Statistics{PrefixesFound: 3, PrefixesCompleted: 3, FilesCompleted: 6, EventsCompleted: 24}
	if got.Stats != wantStats {
		t.Errorf("statistics %+v, want %+v", got.Stats, wantStats)
	}
	if ids := f.sink.eventIDs(t); strings.Join(ids, ",") != strings.Join(sorted(want), ",") {
		t.Errorf("stored %d events, want the %d of the files exactly once", len(ids), len(want))
	}
}

func TestImportKeepsOnlyTheTimeRangeAndRetention(t *testing.T) {
	f := newFixture(t)
	day := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	f.putLog(t, "logs/", day, 10)                   // 10:00–10:09
	f.putLog(t, "logs/", day.AddDate(0, 0, 2), 10)  // two days later
	f.putLog(t, "logs/", day.AddDate(-1, 0, 0), 10) // a year before: past retention
	f.stores.spec.RetentionDays = 30
	svc := f.service()
	start, end := day.Add(3*time.Minute), day.Add(6*time.Minute)
	im := f.start(t, svc, StartInput{
		Source: &S3Source{S3LocationUri: "s3://" + testBucket + "/logs/", S3BucketRegion: testRegion, S3BucketAccessRoleArn: testRole},
		Start:  &start, End: &end,
	})
	got := f.run(t, svc, im.ID)
	if got.Status != StatusCompleted || got.Stats.EventsCompleted != 4 || got.Stats.PrefixesFound != 1 {
		t.Fatalf("import %s with %+v, want COMPLETED with the 4 events of 10:03–10:06 from 1 prefix", got.Status, got.Stats)
	}
	if n := len(f.sink.eventIDs(t)); n != 4 {
		t.Errorf("stored %d events, want 4", n)
	}

	// Without a range, retention still drops the year-old file's events.
	f2 := newFixture(t)
	f2.putLog(t, "", f2.now.AddDate(-1, 0, 0), 5)
	f2.putLog(t, "", f2.now.AddDate(0, 0, -3), 5)
	f2.stores.spec.RetentionDays = 30
	svc2 := f2.service()
	got = f2.run(t, svc2, f2.start(t, svc2, StartInput{}).ID)
	if got.Stats.EventsCompleted != 5 || got.Stats.FilesCompleted != 2 {
		t.Errorf("retention 30 days: %+v, want 5 events from 2 files", got.Stats)
	}
}

// TestImportResumesAfterACrashWithoutDuplicates stops the worker in the
// middle of a file (after one of its chunks is written) as a crash would,
// then runs a new service over the same state: every event ends up stored
// exactly once.
func TestImportResumesAfterACrashWithoutDuplicates(t *testing.T) {
	f := newFixture(t)
	var want []string
	day := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	for h := range 5 {
		want = append(want, f.putLog(t, "", day.Add(time.Duration(h)*time.Hour), 7)...)
	}
	svc := f.service()
	im := f.start(t, svc, StartInput{})

	ctx, cancel := context.WithCancel(context.Background())
	f.sink.onWrite = func(calls int) {
		if calls == 7 { // the middle of the third file (3 chunks a file)
			cancel()
		}
	}
	svc.Run(ctx)
	mid, err := svc.Get(context.Background(), im.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Status != StatusInProgress || mid.Stats.FilesCompleted != 2 {
		t.Fatalf("after the crash: %s %+v, want IN_PROGRESS with 2 files done", mid.Status, mid.Stats)
	}
	f.sink.onWrite = nil
	got := f.run(t, f.service(), im.ID)
	if got.Status != StatusCompleted || got.Stats.FilesCompleted != 5 || got.Stats.EventsCompleted != 35 {
		t.Fatalf("after resuming: %s %+v, want COMPLETED, 5 files, 35 events", got.Status, got.Stats)
	}
	if ids := f.sink.eventIDs(t); strings.Join(ids, ",") != strings.Join(sorted(want), ",") {
		t.Errorf("stored %d events, want the %d events exactly once", len(ids), len(want))
	}
}

func TestImportFailuresAreListedAndRetried(t *testing.T) {
	f := newFixture(t)
	day := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	f.putLog(t, "", day, 2)
	badKey := fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/2024/03/01/%s_CloudTrail_%s_20240301T1100Z_bad.json.gz", testAccount, testRegion, testAccount, testRegion)
	f.src.Put(context.Background(), testBucket, badKey, strings.NewReader("not gzip, not json"), 18, objstore.PutOptions{})
	f.putLog(t, "", day.Add(2*time.Hour), 2)

	svc := f.service()
	im := f.start(t, svc, StartInput{})
	got := f.run(t, svc, im.ID)
	if got.Status != StatusFailed || got.Stats.FailedEntries != 1 || got.Stats.FilesCompleted != 2 || got.Stats.EventsCompleted != 4 {
		t.Fatalf("import with one bad file: %s %+v, want FAILED with 1 failed entry and 2 files, 4 events", got.Status, got.Stats)
	}
	fails, next, err := svc.ListFailures(context.Background(), im.ID, 0, "")
	if err != nil || next != "" || len(fails) != 1 {
		t.Fatalf("ListImportFailures: %v %q %+v", err, next, fails)
	}
	if fails[0].Location != badKey || fails[0].Status != FailureFailed || fails[0].ErrorType != "InvalidLogFile" || fails[0].Message == "" {
		t.Errorf("failure entry %+v", fails[0])
	}

	// Repair the file and retry: only it is read again.
	f.src.Delete(context.Background(), testBucket, badKey)
	good := f.putLogAt(t, badKey, day.Add(time.Hour), 3)
	before := f.sink.calls
	if _, err := svc.Start(context.Background(), testRegion, StartInput{ImportID: im.ID}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	got = f.run(t, svc, im.ID)
	if got.Status != StatusCompleted || got.Stats.FailedEntries != 0 || got.Stats.FilesCompleted != 3 || got.Stats.EventsCompleted != 7 {
		t.Fatalf("after retry: %s %+v, want COMPLETED, 3 files, 7 events", got.Status, got.Stats)
	}
	if f.sink.calls-before != 1 {
		t.Errorf("the retry wrote %d chunks, want only the repaired file's 1", f.sink.calls-before)
	}
	fails, _, _ = svc.ListFailures(context.Background(), im.ID, 0, "")
	if len(fails) != 1 || fails[0].Status != FailureSucceeded {
		t.Errorf("after retry the entry is %+v, want SUCCEEDED", fails)
	}
	if n := len(f.sink.eventIDs(t)); n != 4+len(good) {
		t.Errorf("stored %d events, want %d", n, 4+len(good))
	}
}

// putLogAt writes n events at t0 under an exact key.
func (f *fixture) putLogAt(t *testing.T, key string, t0 time.Time, n int) []string {
	t.Helper()
	tmp := newFixture(t)
	ids := tmp.putLog(t, "", t0, n)
	var found string
	tmp.src.List(context.Background(), testBucket, "", "", func(o objstore.ObjectInfo) error { found = o.Key; return nil })
	rc, info, err := tmp.src.Get(context.Background(), testBucket, found)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := f.src.Put(context.Background(), testBucket, key, rc, info.Size, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestStopAndResumeAnImport(t *testing.T) {
	f := newFixture(t)
	day := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	for h := range 4 {
		f.putLog(t, "", day.Add(time.Duration(h)*time.Hour), 3)
	}
	svc := f.service()
	im := f.start(t, svc, StartInput{})
	f.sink.onWrite = func(calls int) {
		if calls == 2 {
			if _, err := svc.Stop(context.Background(), im.ID); err != nil {
				t.Errorf("StopImport: %v", err)
			}
		}
	}
	got := f.run(t, svc, im.ID)
	if got.Status != StatusStopped || got.Stats.FilesCompleted >= 4 {
		t.Fatalf("stopped import: %s %+v", got.Status, got.Stats)
	}
	f.sink.onWrite = nil
	if _, err := svc.Start(context.Background(), testRegion, StartInput{ImportID: im.ID}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	got = f.run(t, svc, im.ID)
	if got.Status != StatusCompleted || got.Stats.EventsCompleted != 12 || len(f.sink.eventIDs(t)) != 12 {
		t.Fatalf("resumed import: %s %+v, %d stored; want COMPLETED with 12 events", got.Status, got.Stats, len(f.sink.eventIDs(t)))
	}
}

// TestASinkFailureFailsTheImportAndARetryFinishesIt: when the store cannot
// take events, the import stops at that file without passing it, and a
// retry picks up from there.
func TestASinkFailureFailsTheImportAndARetryFinishesIt(t *testing.T) {
	f := newFixture(t)
	day := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	for h := range 3 {
		f.putLog(t, "", day.Add(time.Duration(h)*time.Hour), 2)
	}
	f.sink.failAfter = 1
	svc := f.service()
	im := f.start(t, svc, StartInput{})
	got := f.run(t, svc, im.ID)
	if got.Status != StatusFailed || got.Stats.FilesCompleted != 1 {
		t.Fatalf("import over a failing store: %s %+v", got.Status, got.Stats)
	}
	f.sink.failAfter = 0
	if _, err := svc.Start(context.Background(), testRegion, StartInput{ImportID: im.ID}); err != nil {
		t.Fatal(err)
	}
	got = f.run(t, svc, im.ID)
	if got.Status != StatusCompleted || got.Stats.FilesCompleted != 3 || len(f.sink.eventIDs(t)) != 6 {
		t.Fatalf("after retry: %s %+v, %d stored", got.Status, got.Stats, len(f.sink.eventIDs(t)))
	}
}

func TestImportOfTheFlawsDataset(t *testing.T) {
	root := filepath.Join(datasets.Dir(t), "flaws2-cloud")
	f := newFixture(t)
	var want []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json.gz") {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if err := f.src.Put(context.Background(), testBucket, "flaws/"+filepath.ToSlash(rel), bytes.NewReader(body), int64(len(body)), objstore.PutOptions{}); err != nil {
			return err
		}
		return event.ReadRecords(bytes.NewReader(body), func(raw []byte) error {
			rec, err := event.Parse(raw)
			if err != nil {
				return err
			}
			want = append(want, rec.EventID)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := f.service()
	im := f.start(t, svc, StartInput{Source: &S3Source{S3LocationUri: "s3://" + testBucket + "/flaws", S3BucketRegion: testRegion, S3BucketAccessRoleArn: testRole}})
	got := f.run(t, svc, im.ID)
	if got.Status != StatusCompleted || got.Stats.EventsCompleted != int64(len(want)) || got.Stats.FilesCompleted != 8 {
		t.Fatalf("flaws2 import: %s %+v, want COMPLETED with %d events from 8 files", got.Status, got.Stats, len(want))
	}
	if ids := f.sink.eventIDs(t); strings.Join(ids, ",") != strings.Join(sorted(want), ",") {
		t.Errorf("stored events differ from the dataset's")
	}
}

func TestStartImportErrors(t *testing.T) {
	f := newFixture(t)
	svc := f.service()
	src := func(uri string) *S3Source {
		return &S3Source{S3LocationUri: uri, S3BucketRegion: testRegion, S3BucketAccessRoleArn: testRole}
	}
	ok := src("s3://" + testBucket)
	cases := []struct {
		name string
		in   StartInput
		code string
	}{
		{"no destination", StartInput{Source: ok}, "InvalidParameterException"},
		{"two destinations", StartInput{Destinations: []string{testStore.ARN, testStore.ARN}, Source: ok}, "InvalidParameterException"},
		{"no source", StartInput{Destinations: []string{testStore.ARN}}, "InvalidParameterException"},
		{"id and source", StartInput{ImportID: "x", Source: ok}, "InvalidParameterException"},
		{"not s3", StartInput{Destinations: []string{testStore.ARN}, Source: src("https://x/y")}, "InvalidImportSourceException"},
		{"bad bucket", StartInput{Destinations: []string{testStore.ARN}, Source: src("s3://Bad_Bucket")}, "InvalidImportSourceException"},
		{"missing bucket", StartInput{Destinations: []string{testStore.ARN}, Source: src("s3://no-such-bucket")}, "InvalidImportSourceException"},
		{"bad role", StartInput{Destinations: []string{testStore.ARN}, Source: &S3Source{S3LocationUri: "s3://" + testBucket, S3BucketRegion: testRegion, S3BucketAccessRoleArn: "role"}}, "InvalidParameterException"},
		{"unknown store", StartInput{Destinations: []string{"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/nope"}, Source: ok}, "EventDataStoreNotFoundException"},
		{"unknown import", StartInput{ImportID: "nope"}, "ImportNotFoundException"},
	}
	start, end := time.Unix(200, 0), time.Unix(100, 0)
	cases = append(cases, struct {
		name string
		in   StartInput
		code string
	}{"start after end", StartInput{Destinations: []string{testStore.ARN}, Source: ok, Start: &start, End: &end}, "InvalidParameterException"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := svc.Start(context.Background(), testRegion, c.in)
			var ae *awsproto.Error
			if !errors.As(err, &ae) || ae.Code != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}

	t.Run("store states", func(t *testing.T) {
		for _, c := range []struct {
			status, category, code string
		}{
			{lake.StatusPendingDeletion, lake.CategoryManagement, "InactiveEventDataStoreException"},
			{lake.StatusEnabled, lake.CategoryActivityAuditLog, "InvalidEventDataStoreCategoryException"},
			{lake.StatusStartingIngestion, lake.CategoryManagement, "InvalidEventDataStoreStatusException"},
		} {
			f.stores.spec.Status, f.stores.spec.Category = c.status, c.category
			_, err := svc.Start(context.Background(), testRegion, StartInput{Destinations: []string{testStore.ARN}, Source: ok})
			var ae *awsproto.Error
			if !errors.As(err, &ae) || ae.Code != c.code {
				t.Errorf("%s %s store: got %v, want %s", c.status, c.category, err, c.code)
			}
		}
		f.stores.spec = testStore
	})

	t.Run("one ongoing import per account", func(t *testing.T) {
		first := f.start(t, svc, StartInput{})
		_, err := svc.Start(context.Background(), testRegion, StartInput{Destinations: []string{testStore.ARN}, Source: ok})
		var ae *awsproto.Error
		if !errors.As(err, &ae) || ae.Code != "AccountHasOngoingImportException" {
			t.Fatalf("second import: %v", err)
		}
		if _, err := svc.Start(context.Background(), testRegion, StartInput{ImportID: first.ID}); err == nil {
			t.Errorf("retrying an ongoing import succeeded")
		}
		if _, err := svc.Stop(context.Background(), first.ID); err != nil {
			t.Fatal(err)
		}
		list, _, err := svc.List(context.Background(), ListInput{Status: StatusStopped})
		if err != nil || len(list) != 1 || list[0].ID != first.ID {
			t.Errorf("ListImports STOPPED: %v %+v", err, list)
		}
		if _, _, err := svc.List(context.Background(), ListInput{NextToken: "bogus"}); err == nil {
			t.Errorf("a bogus NextToken was accepted")
		}
	})
}
