package history

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal"
)

// Benchmarks. They are only run on request:
//
//	go test ./internal/history -run '^$' -bench Index -benchtime 200000x
//	go test ./internal/history -run '^$' -bench Lookup -benchtime 1x   # 1,000,000 events
//	CAIRN_BENCH_EVENTS=10000000 go test ./internal/history -run '^$' -bench Lookup -benchtime 1x -timeout 2h
//
// The lookup benchmarks build their index once per size into
// $TMPDIR/cairn-history-bench-<events>-v<format> (delete it to rebuild) and
// report per-page latency percentiles as custom metrics.

// benchNow is the fixed clock of the benchmark index: its events span the
// 85 days before it, inside the default 90-day retention.
var benchNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

const benchSpan = 85 * 24 * time.Hour

// fillJournal appends n generated events to j, spread evenly over the
// benchmark span ending at benchNow, starting at event number from.
func fillJournal(tb testing.TB, j *journal.Journal, g *generator, from, n, total int, sample func(i int, raw []byte)) {
	tb.Helper()
	ctx := context.Background()
	step := benchSpan / time.Duration(total)
	start := benchNow.Add(-benchSpan)
	batch := make([][]byte, 0, 1000)
	for i := from; i < from+n; i++ {
		raw := g.next(start.Add(time.Duration(i) * step))
		if sample != nil {
			sample(i, raw)
		}
		batch = append(batch, raw)
		if len(batch) == cap(batch) || i == from+n-1 {
			if _, err := j.Append(ctx, batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkIndex measures indexing throughput: b.N events are appended to
// the journal first (not timed), then the history indexes them all.
func BenchmarkIndex(b *testing.B) {
	dir := b.TempDir()
	j := openJournal(b, filepath.Join(dir, "journal"))
	defer j.Close()
	fillJournal(b, j, newGenerator(1), 0, b.N, b.N, nil)
	h := openHistory(b, filepath.Join(dir, "history"), j, Options{Now: func() time.Time { return benchNow }, MemTableSize: benchMemTable(), BatchEntries: benchBatch(), CacheSize: 64 << 20})
	defer h.Close()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	if err := h.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := h.WaitIndexed(context.Background(), j.LastSeq()); err != nil {
		b.Fatal(err)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	// CPU time is what the machine's other load cannot distort: it bounds
	// the rate one free core would reach.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIndexFollow measures the realistic case: a writer appends to
// the journal in batches of 1,000 while the history follows it, either as
// fast as the journal takes them ("unpaced") or at a steady 50,000 events/s
// ("50k"). It reports the append and index rates, the largest lag seen
// (sampled every 10 ms), the lag left when the appends end, and how long the
// history took to catch up after the last append.
func BenchmarkIndexFollow(b *testing.B) {
	b.Run("unpaced", func(b *testing.B) { benchFollow(b, 0) })
	b.Run("50k", func(b *testing.B) { benchFollow(b, 50_000) })
}

func benchFollow(b *testing.B, rate int) {
	dir := b.TempDir()
	j := openJournal(b, filepath.Join(dir, "journal"))
	defer j.Close()
	h := openHistory(b, filepath.Join(dir, "history"), j, Options{Now: func() time.Time { return benchNow }, MemTableSize: benchMemTable(), BatchEntries: benchBatch(), CacheSize: 64 << 20})
	defer h.Close()
	g := newGenerator(2)
	// Generate first so the generator's cost is not on the clock.
	step := benchSpan / time.Duration(b.N)
	start := benchNow.Add(-benchSpan)
	recs := make([][]byte, b.N)
	for i := range recs {
		recs[i] = g.next(start.Add(time.Duration(i) * step))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	began, cpu0 := time.Now(), cpuTime()
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	var maxLag uint64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if lag := j.LastSeq() - min(j.LastSeq(), h.Position()); lag > maxLag {
					maxLag = lag
				}
			}
		}
	}()
	const batch = 1000
	for i := 0; len(recs) > 0; i++ {
		if rate > 0 {
			due := began.Add(time.Duration(i) * batch * time.Second / time.Duration(rate))
			time.Sleep(time.Until(due))
		}
		n := min(len(recs), batch)
		if _, err := j.Append(ctx, recs[:n]); err != nil {
			b.Fatal(err)
		}
		recs = recs[n:]
	}
	appended := time.Since(began)
	lag := j.LastSeq() - h.Position()
	if err := h.WaitIndexed(ctx, j.LastSeq()); err != nil {
		b.Fatal(err)
	}
	indexed, cpu := time.Since(began), cpuTime()-cpu0
	b.StopTimer()
	cancel()
	<-sampled
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(b.N)/appended.Seconds(), "appended/s")
	b.ReportMetric(float64(b.N)/indexed.Seconds(), "indexed/s")
	b.ReportMetric(float64(maxLag), "max-lag")
	b.ReportMetric(float64(lag), "lag-at-end")
	b.ReportMetric(float64((indexed - appended).Milliseconds()), "catch-up-ms")
	b.ReportMetric(0, "ns/op")
}

// benchIndex is a prebuilt history for lookup benchmarks.
type benchIndex struct {
	h *History
	// samples are attribute values of sampled events, per key: drawn by
	// event (frequent values dominate) and, in distinct, each value once
	// (rare values as likely as frequent ones).
	samples  map[string][]string
	distinct map[string][]string
}

// openBenchIndex opens (building it first if needed) the cached index of n
// events.
func openBenchIndex(b *testing.B, n int) *benchIndex {
	b.Helper()
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("cairn-history-bench-%d-v%d", n, formatVersion))
	samplesPath := filepath.Join(cache, "samples.json")
	if _, err := os.Stat(samplesPath); err != nil {
		buildBenchIndex(b, cache, n)
	}
	var samples map[string][]string
	raw, err := os.ReadFile(samplesPath)
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(raw, &samples); err != nil {
		b.Fatal(err)
	}
	distinct := map[string][]string{}
	for k, vs := range samples {
		d := slices.Clone(vs)
		sort.Strings(d)
		distinct[k] = slices.Compact(d)
	}
	j := openJournal(b, filepath.Join(b.TempDir(), "journal")) // empty: lookups do not read it
	b.Cleanup(func() { _ = j.Close() })
	h := openHistory(b, filepath.Join(cache, "history"), j, Options{Now: func() time.Time { return benchNow }, CacheSize: 256 << 20})
	b.Cleanup(func() { _ = h.Close() })
	return &benchIndex{h: h, samples: samples, distinct: distinct}
}

// buildBenchIndex generates n events through a journal into the history at
// cache/history, in chunks, trimming the journal behind the history so that
// the disk only ever holds one chunk of journal.
func buildBenchIndex(b *testing.B, cache string, n int) {
	b.Helper()
	_ = os.RemoveAll(cache)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	tmp := b.TempDir()
	j := openJournal(b, filepath.Join(tmp, "journal"))
	h := openHistory(b, filepath.Join(cache, "history"), j, Options{Now: func() time.Time { return benchNow }, CacheSize: 128 << 20})
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	samples := map[string][]string{}
	every := max(1, n/4000)
	sample := func(i int, raw []byte) {
		if i%every != 0 {
			return
		}
		r, err := event.Parse(raw)
		if err != nil || r.AWSRegion != "us-east-1" {
			return
		}
		for _, k := range event.AttributeKeys() {
			samples[k] = append(samples[k], r.AttributeValues(k)...)
		}
	}
	g := newGenerator(42)
	began := time.Now()
	const chunk = 250_000
	for from := 0; from < n; from += chunk {
		fillJournal(b, j, g, from, min(chunk, n-from), n, sample)
		if err := h.WaitIndexed(ctx, j.LastSeq()); err != nil {
			b.Fatal(err)
		}
		if err := h.mirror(ctx); err != nil {
			b.Fatal(err)
		}
		if err := j.Trim(ctx, h.Position()+1); err != nil {
			b.Fatal(err)
		}
		b.Logf("bench index: %d/%d events in %v", min(from+chunk, n), n, time.Since(began).Round(time.Second))
	}
	// Settle the LSM as a long-running server would have it.
	if err := h.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	if err := h.Close(); err != nil {
		b.Fatal(err)
	}
	_ = j.Close()
	raw, _ := json.Marshal(samples)
	if err := os.WriteFile(filepath.Join(cache, "samples.json"), raw, 0o644); err != nil {
		b.Fatal(err)
	}
}

func benchEvents() int {
	if s := os.Getenv("CAIRN_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err == nil && n > 0 {
			return n
		}
	}
	return 1_000_000
}

// latencies collects per-page durations and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	q := func(p float64) float64 {
		return float64(l[min(len(l)-1, int(p*float64(len(l))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(l[len(l)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLookup measures LookupEvents pages on the cached index: for each
// attribute key (values drawn both by event and by distinct value) and for
// a time range alone, the first page and up to four following pages, with
// no time range and with a random one-day window.
func BenchmarkLookup(b *testing.B) {
	n := benchEvents()
	ix := openBenchIndex(b, n)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	const queries = 400
	window := func() (time.Time, time.Time) {
		end := benchNow.Add(-time.Duration(rng.Int64N(int64(benchSpan))))
		return end.Add(-24 * time.Hour), end
	}
	run := func(b *testing.B, mk func(i int) Query) {
		var lat latencies
		results := 0
		for b.Loop() {
			lat = lat[:0]
			for i := range queries {
				q := mk(i)
				for page := 0; page < 5; page++ {
					t0 := time.Now()
					p, err := ix.h.Lookup(ctx, q)
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					results += len(p.Events)
					if p.NextToken == "" {
						break
					}
					q.NextToken = p.NextToken
				}
			}
		}
		lat.report(b)
		b.ReportMetric(float64(len(lat)), "pages")
	}
	for _, key := range event.AttributeKeys() {
		vals, dist := ix.samples[key], ix.distinct[key]
		if len(vals) == 0 {
			b.Fatalf("no samples for %s", key)
		}
		pick := func(i int) string {
			if i%2 == 0 {
				return vals[rng.IntN(len(vals))]
			}
			return dist[rng.IntN(len(dist))]
		}
		b.Run(key, func(b *testing.B) {
			run(b, func(i int) Query {
				return Query{Region: "us-east-1", Attributes: []Attribute{{key, pick(i)}}}
			})
		})
		b.Run(key+"/1day", func(b *testing.B) {
			run(b, func(i int) Query {
				s, e := window()
				return Query{Region: "us-east-1", Attributes: []Attribute{{key, pick(i)}}, StartTime: s, EndTime: e}
			})
		})
	}
	b.Run("TimeRange/all", func(b *testing.B) {
		run(b, func(int) Query { return Query{Region: "us-east-1"} })
	})
	b.Run("TimeRange/1day", func(b *testing.B) {
		run(b, func(int) Query { s, e := window(); return Query{Region: "us-east-1", StartTime: s, EndTime: e} })
	})
	b.Run("TimeRange/1hour", func(b *testing.B) {
		run(b, func(int) Query {
			_, e := window()
			return Query{Region: "us-east-1", StartTime: e.Add(-time.Hour), EndTime: e}
		})
	})
	// AND-ed pairs (Cairn extension), including pairs that rarely co-occur.
	pairs := [][2]string{
		{event.AttrUsername, event.AttrEventName},
		{event.AttrReadOnly, event.AttrEventSource},
		{event.AttrEventName, event.AttrResourceName},
		{event.AttrAccessKeyID, event.AttrReadOnly},
	}
	for _, pr := range pairs {
		b.Run("AND/"+pr[0]+"+"+pr[1], func(b *testing.B) {
			run(b, func(int) Query {
				a, c := ix.samples[pr[0]], ix.samples[pr[1]]
				return Query{Region: "us-east-1", Attributes: []Attribute{{pr[0], a[rng.IntN(len(a))]}, {pr[1], c[rng.IntN(len(c))]}}}
			})
		})
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchMemTable and benchBatch let CAIRN_BENCH_MEMTABLE_MB and
// CAIRN_BENCH_BATCH override Options.MemTableSize and BatchEntries (zero:
// the package defaults), to compare settings.
func benchMemTable() uint64 { return uint64(envInt("CAIRN_BENCH_MEMTABLE_MB", 0)) << 20 }
func benchBatch() int       { return envInt("CAIRN_BENCH_BATCH", 0) }
