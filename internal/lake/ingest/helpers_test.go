package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/selector"
)

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// specList is a mutable store list, as the store service would give it.
type specList struct {
	mu    sync.Mutex
	specs []lake.Spec
}

func (l *specList) get(context.Context) ([]lake.Spec, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]lake.Spec(nil), l.specs...), nil
}

func (l *specList) set(specs ...lake.Spec) {
	l.mu.Lock()
	l.specs = specs
	l.mu.Unlock()
}

// env is a real journal and a real file object store in a temporary
// directory, and an Ingester run over them.
type env struct {
	t     *testing.T
	dir   string
	j     *journal.Journal
	obj   objstore.Store
	specs *specList
	reg   *prometheus.Registry
	in    *Ingester
	stop  func()
	clock *clock
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), specs: &specList{}, clock: &clock{}}
	e.openStores()
	t.Cleanup(e.close)
	return e
}

func (e *env) openStores() {
	t := e.t
	var err error
	e.j, err = journal.Open(context.Background(), filepath.Join(e.dir, "journal"), journal.Options{Logger: quietLogger(), MinFreeBytes: -1, MemTableSize: 4 << 20, CacheSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := file.New(filepath.Join(e.dir, "buckets"), file.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.obj = fs
}

func (e *env) close() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	if e.j != nil {
		e.j.Close()
		e.j = nil
	}
	if e.obj != nil {
		e.obj.Close()
		e.obj = nil
	}
}

// testOptions flush quickly and never compact on their own.
func (e *env) testOptions() Options {
	return Options{
		Journal:         e.j,
		Store:           e.obj,
		Specs:           e.specs.get,
		CacheDir:        filepath.Join(e.dir, "cache"),
		FlushInterval:   20 * time.Millisecond,
		CompactInterval: time.Hour,
		Now:             e.clock.now,
		Logger:          quietLogger(),
	}
}

// start runs an Ingester with the options (after tweak) until stop.
func (e *env) start(tweak func(*Options)) *Ingester {
	e.t.Helper()
	opts := e.testOptions()
	if tweak != nil {
		tweak(&opts)
	}
	e.reg = prometheus.NewRegistry()
	opts.Registerer = e.reg
	in, err := New(context.Background(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.Run(ctx)
	}()
	e.in = in
	e.stop = func() {
		cancel()
		<-done
		in.Close()
	}
	return in
}

func (e *env) restart(tweak func(*Options)) *Ingester {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	return e.start(tweak)
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// known waits until the Ingester has taken up every listed store.
func (e *env) known(ids ...string) {
	e.t.Helper()
	e.in.Reload()
	waitFor(e.t, 10*time.Second, "stores to be taken up", func() bool {
		e.in.mu.Lock()
		defer e.in.mu.Unlock()
		for _, id := range ids {
			if e.in.stores[id] == nil {
				return false
			}
		}
		return true
	})
}

// caughtUp waits until every store's cursor is at the journal's end.
func (e *env) caughtUp(ids ...string) {
	e.t.Helper()
	last := e.j.LastSeq()
	waitFor(e.t, time.Minute, "stores to catch up", func() bool {
		cur := e.j.Cursors()
		for _, id := range ids {
			if cur[CursorName(id)] < last {
				return false
			}
		}
		return true
	})
}

// append appends records and returns the first sequence number.
func (e *env) append(recs ...[]byte) uint64 {
	e.t.Helper()
	first, err := e.j.Append(context.Background(), recs)
	if err != nil {
		e.t.Fatal(err)
	}
	return first
}

// rec is a realistic CloudTrail record.
type rec struct {
	i        int
	region   string
	category string
	name     string
	readOnly bool
	at       time.Time
}

func eventIDOf(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }

func (r rec) json() []byte {
	if r.region == "" {
		r.region = "us-east-1"
	}
	if r.category == "" {
		r.category = "Management"
	}
	if r.name == "" {
		r.name = "DescribeInstances"
	}
	if r.at.IsZero() {
		r.at = time.Now().UTC().Truncate(time.Second)
	}
	mgmt := r.category == "Management"
	return fmt.Appendf(nil, `{"eventVersion":"1.10","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE%d","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE","userName":"alice"},`+
		`"eventTime":%q,"eventSource":"ec2.amazonaws.com","eventName":%q,"awsRegion":%q,"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2.15",`+
		`"requestParameters":{"instancesSet":{"items":[{"instanceId":"i-%d"}]},"filterSet":{}},"responseElements":null,"requestID":"req-%d","eventID":%q,`+
		`"readOnly":%t,"eventType":"AwsApiCall","managementEvent":%t,"recipientAccountId":"123456789012","eventCategory":%q,`+
		`"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"ec2.%s.amazonaws.com"}}`,
		r.i, r.at.Format(time.RFC3339), r.name, r.region, r.i, r.i, eventIDOf(r.i), r.readOnly, mgmt, r.category, r.region)
}

// managementStore is a store of all management events of one region.
func managementStore(id, region string) lake.Spec {
	return lake.Spec{
		ID: id, ARN: "arn:aws:cloudtrail:" + region + ":123456789012:eventdatastore/" + id,
		Region: region, AccountID: "123456789012", Status: lake.StatusEnabled, Category: lake.CategoryManagement,
		Selectors: []selector.AdvancedEventSelector{{FieldSelectors: []selector.FieldSelector{
			{Field: "eventCategory", Equals: []string{"Management"}},
		}}},
		RetentionDays: 366, Created: time.Now(), Ingesting: true, Queryable: true,
	}
}

// storeRows reads every row of the store's current files.
func (e *env) storeRows(id string) []Row {
	e.t.Helper()
	paths, err := e.in.Files(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []Row
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatal(err)
		}
		rows, err := readRows[Row](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			e.t.Fatalf("%s: %v", p, err)
		}
		out = append(out, rows...)
	}
	return out
}

func (e *env) auditRows(id string) []AuditRow {
	e.t.Helper()
	paths, err := e.in.Files(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []AuditRow
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatal(err)
		}
		rows, err := readRows[AuditRow](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			e.t.Fatalf("%s: %v", p, err)
		}
		out = append(out, rows...)
	}
	return out
}

// ids counts the rows by eventid.
func ids(rows []Row) map[string]int {
	m := map[string]int{}
	for _, r := range rows {
		m[r.EventID]++
	}
	return m
}

// exactlyOnce checks that rows hold each of the events want exactly once
// and nothing else.
func exactlyOnce(t *testing.T, rows []Row, want []int) {
	t.Helper()
	got := ids(rows)
	if len(rows) != len(want) || len(got) != len(want) {
		t.Errorf("%d rows, %d distinct eventids, want %d", len(rows), len(got), len(want))
	}
	for _, i := range want {
		if got[eventIDOf(i)] != 1 {
			t.Errorf("event %d is there %d times", i, got[eventIDOf(i)])
		}
	}
}

// objectKeys lists the store's objects.
func (e *env) objectKeys(id string) []string {
	e.t.Helper()
	var keys []string
	if err := e.obj.List(context.Background(), DefaultBucket, storePrefix(id), "", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return keys
}

func osStat(p string) (os.FileInfo, error) { return os.Stat(p) }

// seriesCount counts the series of a metric in a registry.
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

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// storeIngested is how many events this process wrote to the store.
func (in *Ingester) storeIngested(id string) uint64 {
	in.mu.Lock()
	s := in.stores[id]
	in.mu.Unlock()
	if s == nil {
		return 0
	}
	return s.ingested.Load()
}
