package ingest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore/file"
)

// BenchmarkIngest measures a store's ingestion from the journal into
// Parquet, and the bytes it keeps per event against CloudTrail's gzip log
// files of the same events:
//
//	GOMEMLIMIT=320MiB go test ./internal/lake/ingest -run '^$' -bench Ingest -benchtime 1x
//	GOMEMLIMIT=320MiB CAIRN_BENCH_EVENTS=2000000 go test ./internal/lake/ingest -run '^$' -bench Ingest -benchtime 1x -timeout 1h
//
// (GOMEMLIMIT as `cairn serve` sets it by default, --memory-limit-mb 320.)
//
// CAIRN_BENCH_EVENTS (default 300,000) realistic management records (the
// bench Generator: ~1.3 KB each, skewed sources and identities) are
// appended to a real journal, spread over as many days as keep 333,333
// events a day (10,000,000 over 30 days, the store). The timed
// part is one management store reading them all from its cursor into the
// file object store, flushes of 16,384 rows, until its cursor reaches the
// journal's end. It reports events/s, the process's CPU time per event
// (user+system, load-independent), and after compaction the store's
// Parquet bytes per event next to the same records as CloudTrail log
// files ({"Records":[...]}, gzip at its default level as Cairn's trails
// write them, 3,500 records a file), and the process's peak RSS after the
// setup, after ingestion and at the end (compaction included).
func BenchmarkIngest(b *testing.B) {
	events := 300_000
	if v := os.Getenv("CAIRN_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("CAIRN_BENCH_EVENTS=%q: want a positive number", v)
		}
		events = n
	}
	for range b.N {
		benchIngest(b, events)
	}
}

func benchIngest(b *testing.B, events int) {
	b.StopTimer()
	ctx := context.Background()
	dir := b.TempDir()
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: quietLogger(), MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	obj, err := file.New(filepath.Join(dir, "buckets"), file.Options{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer obj.Close()

	days := max(1, events/333_333)
	end := time.Now().UTC().Truncate(time.Second)
	g := bench.New(bench.Options{Seed: 11, End: end, Span: time.Duration(days) * 24 * time.Hour})
	const perFile = 3500
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	var gzTotal, rawTotal int64
	inFile := 0
	closeFile := func() {
		_, _ = zw.Write([]byte("]}"))
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		gzTotal += int64(gz.Len())
		gz.Reset()
		zw.Reset(&gz)
		inFile = 0
	}
	batch := make([][]byte, 0, 1000)
	for i := range events {
		rec := g.Record(nil)
		rawTotal += int64(len(rec))
		if inFile == 0 {
			_, _ = zw.Write([]byte(`{"Records":[`))
		} else {
			_, _ = zw.Write([]byte{','})
		}
		_, _ = zw.Write(rec)
		if inFile++; inFile == perFile {
			closeFile()
		}
		batch = append(batch, rec)
		if len(batch) == cap(batch) || i == events-1 {
			if _, err := j.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if inFile > 0 {
		closeFile()
	}

	sp := managementStore("bench", g.Options().Region)
	sp.MultiRegion = true
	specs := &specList{}
	specs.set(sp)
	// The store existed before the events: its cursor starts at 0.
	if err := j.Cursor(CursorName(sp.ID)).Commit(ctx, 0); err != nil {
		b.Fatal(err)
	}
	clk := &clock{}
	in, err := New(ctx, Options{
		Journal: j, Store: obj, Specs: specs.get, CacheDir: filepath.Join(dir, "cache"),
		FlushInterval: 200 * time.Millisecond, CompactInterval: time.Hour,
		Now: clk.now, Logger: quietLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})

	if p := os.Getenv("CAIRN_BENCH_CPUPROFILE"); p != "" {
		// Only the timed part, unlike -cpuprofile.
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	b.ReportMetric(maxRSSMB(), "setup-RSS-MB")
	cpu0 := cpuTime()
	start := time.Now()
	b.StartTimer()
	go func() {
		defer close(done)
		in.Run(runCtx)
	}()
	last := j.LastSeq()
	cur := j.Cursor(CursorName(sp.ID))
	for cur.Position() < last {
		if err := waitCommit(cur, last); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	pprof.StopCPUProfile()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	cancel()
	<-done

	b.ReportMetric(maxRSSMB(), "ingest-RSS-MB")
	// Compact and let the covered files go, as the store settles.
	in.maintain(ctx)
	clk.advance(2 * defaultDeleteGrace)
	in.maintain(ctx)
	paths, err := in.Files(ctx, sp.ID)
	if err != nil {
		b.Fatal(err)
	}
	var storeBytes int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		storeBytes += st.Size()
	}
	if got := in.storeIngested(sp.ID); got != uint64(events) {
		b.Fatalf("ingested %d events, appended %d", got, events)
	}
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(events), "cpu-µs/event")
	b.ReportMetric(float64(storeBytes)/float64(events), "parquet-B/event")
	b.ReportMetric(float64(gzTotal)/float64(events), "gzip-B/event")
	b.ReportMetric(float64(rawTotal)/float64(events), "json-B/event")
	b.ReportMetric(float64(len(paths)), "files")
	b.ReportMetric(maxRSSMB(), "peak-RSS-MB")
}

// maxRSSMB is the process's peak resident set so far, in MiB.
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// waitCommit waits a little for the cursor to move.
func waitCommit(cur *journal.Cursor, last uint64) error {
	deadline := time.Now().Add(10 * time.Millisecond)
	for cur.Position() < last && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return nil
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
