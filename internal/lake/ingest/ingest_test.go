package ingest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/selector"
)

// TestSelectionAndPartitions: each store takes exactly the events its
// selectors, region setting, status and channels give it, in files
// partitioned by event day and sorted by event time; the journal is read
// once for all of them.
func TestSelectionAndPartitions(t *testing.T) {
	e := newEnv(t)
	mgmt := managementStore("mgmt-east", "us-east-1")
	multi := managementStore("writes-all", "us-east-1")
	multi.MultiRegion = true
	multi.Selectors = []selector.AdvancedEventSelector{{FieldSelectors: []selector.FieldSelector{
		{Field: "eventCategory", Equals: []string{"Management"}},
		{Field: "readOnly", Equals: []string{"false"}},
	}}}
	data := managementStore("data", "us-east-1")
	data.Category = lake.CategoryData
	data.Selectors = []selector.AdvancedEventSelector{{FieldSelectors: []selector.FieldSelector{
		{Field: "eventCategory", Equals: []string{"Data"}},
	}}}
	stopped := managementStore("stopped", "us-east-1")
	stopped.Ingesting, stopped.Status = false, lake.StatusStoppedIngestion
	audit := lake.Spec{ID: "audit", Region: "us-east-1", Category: lake.CategoryActivityAuditLog, Ingesting: true, Queryable: true,
		Selectors: []selector.AdvancedEventSelector{{FieldSelectors: []selector.FieldSelector{{Field: "eventCategory", Equals: []string{"ActivityAuditLog"}}}}},
		Channels:  []string{testChannelARN}, RetentionDays: 366}
	e.specs.set(mgmt, multi, data, stopped, audit)
	e.start(nil)
	all := []string{"mgmt-east", "writes-all", "data", "stopped", "audit"}
	e.known(all...)

	day1 := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	day2 := day1.Add(24 * time.Hour)
	var recs [][]byte
	add := func(r rec) { recs = append(recs, r.json()) }
	add(rec{i: 1, at: day2, readOnly: true})                              // mgmt-east
	add(rec{i: 2, at: day1, readOnly: false})                             // mgmt-east, writes-all
	add(rec{i: 3, at: day1, region: "eu-west-1", readOnly: false})        // writes-all
	add(rec{i: 4, at: day2, region: "eu-west-1", readOnly: true})         // nobody
	add(rec{i: 5, at: day2, category: "Data", name: "GetObject"})         // data
	add(rec{i: 6, at: day1.Add(time.Hour), readOnly: true})               // mgmt-east
	add(rec{i: 7, at: day1.Add(-time.Minute), readOnly: false})           // mgmt-east, writes-all
	recs = append(recs, auditRecord(t, 8, testChannelARN, day2))          // audit
	recs = append(recs, auditRecord(t, 9, testChannelARN+"-other", day2)) // nobody
	e.append(recs...)
	e.caughtUp(all...)

	exactlyOnce(t, e.storeRows("mgmt-east"), []int{1, 2, 6, 7})
	exactlyOnce(t, e.storeRows("writes-all"), []int{2, 3, 7})
	exactlyOnce(t, e.storeRows("data"), []int{5})
	if rows := e.storeRows("stopped"); len(rows) != 0 {
		t.Errorf("a stopped store took %d events", len(rows))
	}
	ar := e.auditRows("audit")
	if len(ar) != 1 || ar[0].EventID != "aaaaaaaa-0000-4000-8000-000000000008" || *ar[0].Metadata.ChannelARN != testChannelARN || *ar[0].EventData.UID != "uid-8" {
		t.Errorf("audit store rows: %+v", ar)
	}

	// Partitions by event day; rows sorted by event time in each file.
	keys := e.objectKeys("mgmt-east")
	if len(keys) != 2 {
		t.Fatalf("mgmt-east objects: %v", keys)
	}
	for i, day := range []time.Time{day1, day2} {
		if !strings.Contains(keys[i], "/eventdate="+day.Format("2006-01-02")+"/") {
			t.Errorf("object %s is not in the partition of %s", keys[i], day)
		}
	}
	rows := e.storeRows("mgmt-east")
	if got := []string{rows[0].EventID, rows[1].EventID, rows[2].EventID}; got[0] != eventIDOf(7) || got[1] != eventIDOf(2) || got[2] != eventIDOf(6) {
		t.Errorf("day 1 rows are not in eventtime order: %v", got)
	}

	// Lag is exported per store, from the stores Cairn made.
	if n := seriesCount(t, e.reg, "cairn_lake_store_lag_entries"); n != len(all) {
		t.Errorf("%d lag series, want %d", n, len(all))
	}
	if got := counterValue(t, e.in.m.skipped.WithLabelValues("invalid")); got != 0 {
		t.Errorf("skipped invalid = %v", got)
	}
}

// TestNewStoreStartsAtJournalEnd: a store takes the events recorded after
// it was created, not the journal's past.
func TestNewStoreStartsAtJournalEnd(t *testing.T) {
	e := newEnv(t)
	e.append(rec{i: 1}.json(), rec{i: 2}.json())
	e.specs.set(managementStore("late", "us-east-1"))
	e.start(nil)
	e.known("late")
	e.append(rec{i: 3}.json())
	e.caughtUp("late")
	exactlyOnce(t, e.storeRows("late"), []int{3})
}

// TestStopIngestion: events recorded while a store's ingestion is stopped
// are never ingested (as on AWS), the cursor moves past them, and events
// after a restart of ingestion are taken again.
func TestStopIngestion(t *testing.T) {
	e := newEnv(t)
	sp := managementStore("s", "us-east-1")
	e.specs.set(sp)
	e.start(nil)
	e.known("s")
	e.append(rec{i: 1}.json())
	e.caughtUp("s")
	sp.Ingesting, sp.Status = false, lake.StatusStoppedIngestion
	e.specs.set(sp)
	e.in.Reload()
	waitFor(t, 5*time.Second, "the stop to be seen", func() bool {
		e.in.mu.Lock()
		defer e.in.mu.Unlock()
		return !e.in.stores["s"].spec.Ingesting
	})
	e.append(rec{i: 2}.json())
	e.caughtUp("s")
	sp.Ingesting, sp.Status = true, lake.StatusEnabled
	e.specs.set(sp)
	e.in.Reload()
	waitFor(t, 5*time.Second, "the start to be seen", func() bool {
		e.in.mu.Lock()
		defer e.in.mu.Unlock()
		return e.in.stores["s"].spec.Ingesting
	})
	e.append(rec{i: 3}.json())
	e.caughtUp("s")
	exactlyOnce(t, e.storeRows("s"), []int{1, 3})
}

// TestExactlyOnceAcrossRestarts stops the Ingester at arbitrary points
// (cancelling Run abandons flushes between their Put and their cursor
// commit, the window a crash hits) and reopens the journal and the object
// store between runs; the store ends with every event exactly once. A
// file left by a flush that never committed (here planted with other
// rows, as a crashed flush under an older configuration would leave) is
// removed and its range written again.
func TestExactlyOnceAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	e.specs.set(managementStore("s", "us-east-1"))
	tweak := func(o *Options) { o.FlushInterval = time.Millisecond; o.MaxBatchRows = 20 }
	e.start(tweak)
	e.known("s")
	var want []int
	n := 0
	for round := 0; round < 8; round++ {
		var recs [][]byte
		for k := 0; k < 25; k++ {
			n++
			recs = append(recs, rec{i: n, at: time.Now().UTC().Add(time.Duration(n%3) * -24 * time.Hour)}.json())
			want = append(want, n)
		}
		e.append(recs...)
		if round%4 == 2 {
			// Let some flushes commit before this restart.
			waitFor(t, time.Minute, "a flush to commit", func() bool {
				return e.j.Cursors()[CursorName("s")] > e.j.LastSeq()-25
			})
		}
		if round%2 == 1 {
			// Simulate a restart of the whole process.
			e.stop()
			e.stop = nil
			e.j.Close()
			e.obj.Close()
			e.openStores()
		}
		e.restart(tweak)
		e.known("s")
	}
	// An orphan beyond the cursor: a flush that wrote and never committed.
	e.stop()
	e.stop = nil
	pos := e.j.Cursors()[CursorName("s")]
	t.Logf("after %d restarts the store had committed %d of %d entries", 8, pos, e.j.LastSeq())
	bogus, err := encodeBytes([]Row{{EventID: "bogus", EventTime: time.Now().UTC(), EventJSON: "{}"}}, []int32{0}, pos+1, pos+40)
	if err != nil {
		t.Fatal(err)
	}
	key := fileKey("s", dayOf(time.Now()), pos+1, pos+40)
	if err := e.obj.Put(context.Background(), DefaultBucket, key, bytes.NewReader(bogus), int64(len(bogus)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	e.start(tweak)
	e.known("s")
	e.caughtUp("s")
	exactlyOnce(t, e.storeRows("s"), want)
	for _, k := range e.objectKeys("s") {
		if k == key {
			t.Errorf("the uncommitted file %s is still there", key)
		}
	}
}

// TestCompaction: small files of a partition are merged into one that
// covers their ranges; readers see each event once throughout; the
// covered files are deleted after the grace period; the merged file is
// sorted by event time.
func TestCompaction(t *testing.T) {
	e := newEnv(t)
	e.specs.set(managementStore("s", "us-east-1"))
	e.start(func(o *Options) { o.FlushInterval = time.Millisecond; o.MaxBatchRows = 5 })
	e.known("s")
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
	if base.After(time.Now()) {
		base = base.Add(-24 * time.Hour)
	}
	var want []int
	for i := 1; i <= 60; i++ {
		// Out of order in time, all in one day.
		e.append(rec{i: i, at: base.Add(time.Duration((i*37)%60) * time.Minute)}.json())
		want = append(want, i)
	}
	e.caughtUp("s")
	before := len(e.objectKeys("s"))
	if before < 5 {
		t.Fatalf("only %d files before compaction", before)
	}
	// A pass merges up to maxMergeInputs files; the next one merges the
	// merged files.
	var paths []string
	for pass := 0; pass < 4; pass++ {
		e.in.maintain(context.Background())
		var err error
		if paths, err = e.in.Files(context.Background(), "s"); err != nil {
			t.Fatal(err)
		}
		exactlyOnce(t, e.storeRows("s"), want)
	}
	if len(paths) != 1 {
		t.Errorf("%d current files after compaction, want 1", len(paths))
	}
	rows := e.storeRows("s")
	exactlyOnce(t, rows, want)
	for i := 1; i < len(rows); i++ {
		if rows[i].EventTime.Before(rows[i-1].EventTime) {
			t.Fatalf("merged file not sorted at row %d", i)
		}
	}
	if got := len(e.objectKeys("s")); got <= before {
		t.Errorf("%d objects right after compaction, want more than the %d before (covered files wait for the grace period)", got, before)
	}
	e.clock.advance(2 * defaultDeleteGrace)
	e.in.maintain(context.Background())
	if got := len(e.objectKeys("s")); got != 1 {
		t.Errorf("%d objects after the grace period, want 1", got)
	}
	exactlyOnce(t, e.storeRows("s"), want)

	// A restart finds the same single current file.
	e.restart(nil)
	e.known("s")
	exactlyOnce(t, e.storeRows("s"), want)
}

// TestRetention: partitions whose whole day is past the store's retention
// are dropped with their events; events already past it on arrival are not
// written.
func TestRetention(t *testing.T) {
	e := newEnv(t)
	sp := managementStore("s", "us-east-1")
	sp.RetentionDays = 7
	e.specs.set(sp)
	e.start(nil)
	e.known("s")
	now := time.Now().UTC().Truncate(time.Second)
	e.append(
		rec{i: 1, at: now.AddDate(0, 0, -3)}.json(),
		rec{i: 2, at: now.AddDate(0, 0, -1)}.json(),
		rec{i: 3, at: now.AddDate(0, 0, -30)}.json(), // past retention on arrival
	)
	e.caughtUp("s")
	exactlyOnce(t, e.storeRows("s"), []int{1, 2})
	if got := counterValue(t, e.in.m.skipped.WithLabelValues("expired")); got != 1 {
		t.Errorf("expired = %v, want 1", got)
	}
	// Five days later the first event's day is past the 7 days.
	e.clock.advance(5 * 24 * time.Hour)
	e.in.maintain(context.Background())
	exactlyOnce(t, e.storeRows("s"), []int{2})
	for _, k := range e.objectKeys("s") {
		if strings.Contains(k, dayOf(now.AddDate(0, 0, -3))) {
			t.Errorf("expired partition object %s is still there", k)
		}
	}
}

// TestDrop: a purged store's files, cursor and cache go, and it is never
// ingested again.
func TestDrop(t *testing.T) {
	e := newEnv(t)
	e.specs.set(managementStore("s", "us-east-1"), managementStore("keep", "us-east-1"))
	e.start(nil)
	e.known("s", "keep")
	e.append(rec{i: 1}.json())
	e.caughtUp("s", "keep")
	if err := e.in.Drop(context.Background(), "s"); err != nil {
		t.Fatal(err)
	}
	if keys := e.objectKeys("s"); len(keys) != 0 {
		t.Errorf("objects left: %v", keys)
	}
	if _, ok := e.j.Cursors()[CursorName("s")]; ok {
		t.Error("the dropped store's cursor is still there")
	}
	e.append(rec{i: 2}.json())
	e.caughtUp("keep")
	if keys := e.objectKeys("s"); len(keys) != 0 {
		t.Errorf("the dropped store was ingested again: %v", keys)
	}
	exactlyOnce(t, e.storeRows("keep"), []int{1, 2})
}

// hidePaths is an object store without local paths (as S3).
type hidePaths struct{ objstore.Store }

// TestFilesFromCache: with an object store that keeps no local files the
// query engine gets copies in the cache directory, downloaded when
// missing, evicted when no longer current (after the grace period), and
// Dirs names the cache.
func TestFilesFromCache(t *testing.T) {
	e := newEnv(t)
	e.specs.set(managementStore("s", "us-east-1"))
	e.start(func(o *Options) {
		o.Store = hidePaths{e.obj}
		o.FlushInterval = time.Millisecond
		o.MaxBatchRows = 2
	})
	e.known("s")
	for i := 1; i <= 6; i++ {
		e.append(rec{i: i}.json())
	}
	e.caughtUp("s")
	dirs := e.in.Dirs()
	paths, err := e.in.Files(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 2 {
		t.Fatalf("files: %v", paths)
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, dirs[0]+"/") {
			t.Errorf("%s is not under %v", p, dirs)
		}
	}
	exactlyOnce(t, e.storeRows("s"), []int{1, 2, 3, 4, 5, 6})
	e.in.maintain(context.Background())
	e.clock.advance(2 * defaultDeleteGrace)
	e.in.maintain(context.Background())
	exactlyOnce(t, e.storeRows("s"), []int{1, 2, 3, 4, 5, 6})
	e.clock.advance(2 * defaultDeleteGrace)
	now, err := e.in.Files(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(now) != 1 {
		t.Errorf("current files after compaction: %v", now)
	}
	for _, p := range paths {
		if _, err := osStat(p); err == nil {
			t.Errorf("stale cached copy %s was not evicted", p)
		}
	}
}

// TestPartitionDay reads a file path's day.
func TestPartitionDay(t *testing.T) {
	if d, ok := PartitionDay("/data/buckets/cairn-lake/" + fileKey("s", "2025-03-14", 1, 9)); !ok || d != "2025-03-14" {
		t.Errorf("PartitionDay = %q, %v", d, ok)
	}
	for _, p := range []string{"/x/y.parquet", "/x/eventdate=2025-13-01/y.parquet", "eventdate=2025-01-01"} {
		if d, ok := PartitionDay(p); ok {
			t.Errorf("PartitionDay(%q) = %q", p, d)
		}
	}
}

// TestMemoryBudget: past MaxBufferBytes the largest batch is written at
// once (after the journal chunk being read), long before its flush
// interval.
func TestMemoryBudget(t *testing.T) {
	e := newEnv(t)
	e.specs.set(managementStore("a", "us-east-1"), managementStore("b", "us-east-1"))
	e.start(func(o *Options) { o.FlushInterval = time.Hour; o.MaxBufferBytes = 8 << 10 })
	e.known("a", "b")
	var recs [][]byte
	for i := 1; i <= 60; i++ {
		recs = append(recs, rec{i: i}.json())
	}
	e.append(recs...)
	e.caughtUp("a", "b") // an hour early
	exactlyOnce(t, e.storeRows("a"), idsUpTo(60))
	exactlyOnce(t, e.storeRows("b"), idsUpTo(60))
}

func idsUpTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}
