package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestCrashIndexesExactlyOnce simulates a crash of the process: the history
// database loses everything it had not fsynced (index batches are committed
// without sync), while the journal keeps everything it acknowledged. After
// reopening, the cursor and the index must agree (a prefix of the journal),
// the journal cursor must not be ahead of that prefix, and catching up must
// index every event exactly once: no duplicate is even attempted.
func TestCrashIndexesExactlyOnce(t *testing.T) {
	for _, unsynced := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("unsynced_kept=%d%%", unsynced), func(t *testing.T) { testCrash(t, unsynced) })
	}
}

func testCrash(t *testing.T, unsyncedPercent int) {
	dir := t.TempDir()
	mem := vfs.NewCrashableMem()
	ctx := context.Background()
	j := openJournal(t, dir+"/journal")
	defer func() { _ = j.Close() }()
	opts := Options{FS: mem, MemTableSize: 1 << 20, MirrorInterval: time.Hour, BatchEntries: 100}
	h := openHistory(t, "history", j, opts)
	runCtx, stop := context.WithCancel(ctx)
	if err := h.Start(runCtx); err != nil {
		t.Fatal(err)
	}

	g := newGenerator(7)
	appendN := func(n int, from time.Time) uint64 {
		var recs [][]byte
		for i := range n {
			r := mgmt(fmt.Sprintf("c%06d-%d", i, from.Unix()), from.Add(time.Duration(i)*time.Second))
			r.Extra = map[string]any{"padding": string(g.next(from))} // ~1 KB per record
			recs = append(recs, r.json())
		}
		first, err := j.Append(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		last := first + uint64(n) - 1
		if err := h.WaitIndexed(ctx, last); err != nil {
			t.Fatal(err)
		}
		return last
	}
	durable := appendN(1000, testNow.Add(-10*time.Hour))
	if err := h.mirror(ctx); err != nil { // what the mirror loop does every interval
		t.Fatal(err)
	}
	if got := j.Cursor(DefaultCursorName).Position(); got != durable {
		t.Fatalf("journal cursor at %d after mirroring, want %d", got, durable)
	}
	// 3000 more events, indexed and visible but never fsynced here (the
	// 1 MiB memtable does flush some of them to sstables, which are synced).
	total := appendN(3000, testNow.Add(-5*time.Hour))

	// Crash: stop the goroutines and keep the disk as a crash would leave
	// it: what was synced, plus (depending on the case) none, some or all
	// of the unsynced writes.
	stop()
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent, RNG: rand.New(rand.NewPCG(uint64(unsyncedPercent), 1))})
	if err := j.Close(); err != nil { // the journal keeps its cursor where the crash left it
		t.Fatal(err)
	}
	_ = h.Close()

	opts.FS = crashed
	j = openJournal(t, dir+"/journal")
	h = openHistory(t, "history", j, opts)
	defer h.Close()
	recovered := h.Position()
	t.Logf("durable mirror %d, indexed %d, recovered cursor %d", durable, total, recovered)
	if recovered < durable || recovered > total {
		t.Fatalf("recovered cursor %d outside [%d, %d]", recovered, durable, total)
	}
	if jc := j.Cursor(DefaultCursorName).Position(); jc > recovered {
		t.Fatalf("journal cursor %d is ahead of the recovered history %d: the journal could trim unindexed entries", jc, recovered)
	}
	if n := countPrefix(t, h, prefixEvent); uint64(n) != recovered {
		t.Fatalf("recovered database holds %d events but its cursor says %d: index and cursor disagree", n, recovered)
	}

	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitIndexed(ctx, total); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(t, h, prefixEvent); uint64(n) != total {
		t.Errorf("after catching up the history holds %d events, want %d", n, total)
	}
	if d := counterValue(t, h.metrics.skipped.WithLabelValues("duplicate")); d != 0 {
		t.Errorf("%v entries were re-indexed after the crash and caught as duplicates", d)
	}
	e := &env{t: t, h: h}
	if got := len(e.lookupAll(Query{Region: "us-east-1", Attributes: []Attribute{{"Username", "alice"}}})); got != int(total) {
		t.Errorf("lookup finds %d events, want %d", got, total)
	}
}

func countPrefix(t testing.TB, h *History, prefix byte) int {
	t.Helper()
	it, err := h.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if it.Key()[0] == prefix {
			n++
		}
	}
	return n
}

// TestDuplicateEventIDsIndexedOnce: a journal may hold an event twice (a
// client retried an append whose acknowledgement it lost); the history
// shows it once.
func TestDuplicateEventIDsIndexedOnce(t *testing.T) {
	e := newEnv(t, Options{})
	a := mgmt("dup", testNow.Add(-time.Hour)).json()
	b := mgmt("other", testNow.Add(-time.Minute)).json()
	e.append(a, b, a)
	e.append(a)
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1"}), "other", "dup")
	if d := counterValue(t, e.h.metrics.skipped.WithLabelValues("duplicate")); d != 2 {
		t.Errorf("duplicates counted: %v, want 2", d)
	}
}

// TestRestartContinuesFromCursor: a clean restart indexes only what is new.
func TestRestartContinuesFromCursor(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	j := openJournal(t, dir+"/journal")
	defer j.Close()
	h := openHistory(t, dir+"/history", j, Options{})
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := j.Append(ctx, [][]byte{mgmt("one", testNow.Add(-time.Hour)).json()})
	if err := h.WaitIndexed(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := j.Cursor(DefaultCursorName).Position(); got != first {
		t.Errorf("journal cursor %d after Close, want %d", got, first)
	}
	if err := h.WaitIndexed(ctx, first+1); err == nil {
		t.Error("WaitIndexed after Close did not fail")
	}
	second, _ := j.Append(ctx, [][]byte{mgmt("two", testNow.Add(-time.Minute)).json()})
	h = openHistory(t, dir+"/history", j, Options{})
	defer h.Close()
	if err := h.WaitIndexed(ctx, second); err == nil {
		t.Error("WaitIndexed before Start did not fail")
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitIndexed(ctx, second); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h}
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1"}), "two", "one")
	if n := counterValue(t, h.metrics.indexed); n != 1 {
		t.Errorf("indexed %v events after the restart, want 1", n)
	}
}

// counterValue reads a counter without a registry.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
