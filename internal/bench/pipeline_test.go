package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/journal"
)

// BenchmarkPipeline is the server's ingest pipeline in one process, without
// HTTP and SigV4: 16 goroutines run PrepareAuditEvents + Commit on the
// bodies `cairn bench ingest` sends, into a journal with the server's
// options, while a consumer follows the journal and the journal is
// trimmed behind it every second. The consumer is either the event history
// with the server's options ("history") or a reader that only commits its
// cursor ("reader"), so that the difference is the history's cost.
//
// It runs for CAIRN_BENCH_SECONDS (default 20) whatever b.N is, then waits
// for the consumer to catch up, and reports events/s acknowledged, the
// process CPU per event including the catch-up (cpu-µs/event) and the peak
// RSS. The machine's other load does not change the CPU per event much;
// it does change events/s.
//
//	go test ./internal/bench -run '^$' -bench Pipeline -benchtime 1x
func BenchmarkPipeline(b *testing.B) {
	b.Run("reader", func(b *testing.B) { benchPipeline(b, false) })
	b.Run("history", func(b *testing.B) { benchPipeline(b, true) })
}

func benchPipeline(b *testing.B, withHistory bool) {
	seconds := envInt(b, "CAIRN_BENCH_SECONDS", 20)
	svc, arn, bodies := prepareEnv(b)
	dir := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()

	var position func() uint64
	var wg sync.WaitGroup
	if withHistory {
		h, err := history.Open(ctx, filepath.Join(dir, "history"), j, historyOptions(b))
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		if err := h.Start(ctx); err != nil {
			b.Fatal(err)
		}
		position = h.Position
	} else {
		cur := j.Cursor("reader")
		var pos atomic.Uint64
		position = pos.Load
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := time.Now()
			for ctx.Err() == nil {
				p := pos.Load()
				n, err := j.Read(ctx, p, 8192, func(uint64, []byte) error { return nil })
				if err != nil {
					return
				}
				if n == p {
					if err := j.Wait(ctx, p); err != nil {
						return
					}
					continue
				}
				pos.Store(n)
				if time.Since(last) > 5*time.Second {
					_ = cur.Commit(ctx, n)
					last = time.Now()
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the server's trimJournal, every second instead of every minute
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			low := j.LastSeq()
			for _, p := range j.Cursors() {
				low = min(low, p)
			}
			_ = j.Trim(ctx, low+1)
		}
	}()

	var peak atomic.Int64
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := RSS(os.Getpid()); err == nil && v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stopRSS:
				return
			case <-t.C:
			}
		}
	}()

	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(time.Duration(seconds) * time.Second)
	var next atomic.Int64
	var awg sync.WaitGroup
	for range 16 {
		awg.Add(1)
		go func() {
			defer awg.Done()
			for time.Now().Before(deadline) {
				body := bodies[int(next.Add(1))%len(bodies)]
				batch, err := svc.PrepareAuditEvents(ctx, &channel.PutAuditEventsRequest{Region: "us-east-1", ChannelARN: arn, Body: body.body})
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := batch.Commit(ctx, j); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	awg.Wait()
	elapsed := time.Since(start)
	cpuRun := cpuTime() - cpu0
	appended := j.LastSeq()
	for position() < appended {
		time.Sleep(10 * time.Millisecond)
	}
	caughtUp := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	close(stopRSS)
	<-rssDone
	cancel()
	wg.Wait()
	n := float64(appended)
	b.ReportMetric(n/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpuRun.Microseconds())/n, "run-cpu-µs/event")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/event")
	b.ReportMetric((caughtUp - elapsed).Seconds(), "catchup-s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-rss-MB")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHistoryCatchUp is the event history's cost per channel event
// when it lags: the journal first receives CAIRN_BENCH_EVENTS (default
// 200,000) events through PrepareAuditEvents + Commit, then the history
// (server options) indexes them all. This is what the server does after
// an ingest burst the history could not follow.
//
//	go test ./internal/bench -run '^$' -bench HistoryCatchUp -benchtime 1x
func BenchmarkHistoryCatchUp(b *testing.B) {
	events := envInt(b, "CAIRN_BENCH_EVENTS", 200_000)
	svc, arn, bodies := prepareEnv(b)
	dir := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for i := 0; int(j.LastSeq()) < events; i++ {
		batch, err := svc.PrepareAuditEvents(ctx, &channel.PutAuditEventsRequest{Region: "us-east-1", ChannelARN: arn, Body: bodies[i%len(bodies)].body})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := batch.Commit(ctx, j); err != nil {
			b.Fatal(err)
		}
	}
	h, err := history.Open(ctx, filepath.Join(dir, "history"), j, historyOptions(b))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := h.WaitIndexed(ctx, j.LastSeq()); err != nil {
		b.Fatal(err)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	n := float64(j.LastSeq())
	b.ReportMetric(n/el.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/event")
}

// historyOptions are the server's history options, except for the ones
// CAIRN_HISTORY_MEMTABLE_MB and CAIRN_HISTORY_BATCH override (to measure
// what they would change).
func historyOptions(b *testing.B) history.Options {
	o := history.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()}
	if v := os.Getenv("CAIRN_HISTORY_MEMTABLE_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		o.MemTableSize = uint64(n) << 20
	}
	if v := os.Getenv("CAIRN_HISTORY_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		o.BatchEntries = n
	}
	return o
}

// envInt is the integer in the environment variable name, or def.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}
