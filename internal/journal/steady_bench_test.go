package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSteadyState is the journal as the server runs it under ingest
// load: 16 goroutines append 100-entry batches of channel-sized records
// (~2.7 KB: a record that carries a copy of itself, as a channel event's
// record carries its eventData), while a consumer reads everything behind
// them, commits its cursor every 5 s (the history's mirror interval;
// CAIRN_BENCH_COMMIT overrides it) and
// the journal is trimmed to the cursor every trim interval
// (CAIRN_BENCH_TRIM, default 1m as in the server). It runs for
// CAIRN_BENCH_SECONDS (default 20) whatever b.N is (paced to
// CAIRN_BENCH_RATE events/s when set), and reports events/s,
// process CPU µs per event (appenders, committer, consumer and Pebble's
// flushes and compactions together) and Pebble's write amplification.
//
//	go test ./internal/journal -run '^$' -bench SteadyState -benchtime 1x
func BenchmarkSteadyState(b *testing.B) {
	seconds := envInt(b, "CAIRN_BENCH_SECONDS", 20)
	trimEvery := time.Minute
	if v := os.Getenv("CAIRN_BENCH_TRIM"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		trimEvery = d
	}
	commitEvery := 5 * time.Second
	if v := os.Getenv("CAIRN_BENCH_COMMIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		commitEvery = d
	}
	pool := benchEntries(b, 4096)
	for i, e := range pool {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(e, &m); err != nil {
			b.Fatal(err)
		}
		m["eventData"] = e
		pool[i], _ = json.Marshal(m)
	}
	b.Logf("average entry %d bytes", avgLen(pool))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// CAIRN_BENCH_MEMTABLE_MB and CAIRN_BENCH_CACHE_MB override the
	// defaults, to measure what they cost and save.
	j, err := Open(ctx, b.TempDir(), Options{Logger: testLogger(b),
		MemTableSize: uint64(envInt(b, "CAIRN_BENCH_MEMTABLE_MB", 0)) << 20, CacheSize: int64(envInt(b, "CAIRN_BENCH_CACHE_MB", 0)) << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()

	var wg sync.WaitGroup
	// Consumer: reads everything, commits every 5 s.
	cur := j.Cursor("history")
	var consumed atomic.Uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		var pos uint64
		lastCommit := time.Now()
		for ctx.Err() == nil {
			last, err := j.Read(ctx, pos, 8192, func(uint64, []byte) error { return nil })
			if err != nil {
				return
			}
			if last == pos {
				if err := j.Wait(ctx, pos); err != nil {
					return
				}
				continue
			}
			pos = last
			consumed.Store(pos)
			if time.Since(lastCommit) >= commitEvery {
				if err := cur.Commit(ctx, pos); err != nil {
					return
				}
				lastCommit = time.Now()
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(trimEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_ = j.Trim(ctx, cur.Position()+1)
		}
	}()

	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	deadline := start.Add(time.Duration(seconds) * time.Second)
	var next atomic.Int64
	var awg sync.WaitGroup
	// CAIRN_BENCH_RATE paces the appenders to that many events/s in total.
	var tick <-chan time.Time
	if rate := envInt(b, "CAIRN_BENCH_RATE", 0); rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate/100))
		defer t.Stop()
		tick = t.C
	}
	for range 16 {
		awg.Add(1)
		go func() {
			defer awg.Done()
			batch := make([][]byte, 100)
			for time.Now().Before(deadline) {
				if tick != nil {
					<-tick
				}
				off := int(next.Add(100))
				for k := range batch {
					batch[k] = pool[(off+k)%len(pool)]
				}
				if _, err := j.Append(ctx, batch); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	awg.Wait()
	elapsed := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cancel()
	wg.Wait()
	n := float64(j.LastSeq())
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(n/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/event")
	b.ReportMetric(float64(ru1.Maxrss)/1024, "maxrss-MB")
	m := j.db.Metrics()
	tot := m.Total()
	b.ReportMetric(tot.WriteAmp(), "write-amp")
	b.Logf("consumed %d of %d\n%s", consumed.Load(), j.LastSeq(), m)
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		tb.Fatal(fmt.Errorf("%s: %w", name, err))
	}
	return n
}
