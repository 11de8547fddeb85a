package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func openTest(t testing.TB, dir string, opts Options) *Journal {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = -1
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 4 << 20
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 8 << 20
	}
	j, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

// entryFor is the deterministic content of the i-th test entry.
func entryFor(i uint64, size int) []byte {
	b := fmt.Appendf(nil, `{"eventID":"%d","pad":"`, i)
	for len(b) < size-2 {
		b = append(b, byte('a'+i%26))
	}
	return append(b, `"}`...)
}

func readAll(t testing.TB, j *Journal, after uint64) map[uint64][]byte {
	t.Helper()
	out := make(map[uint64][]byte)
	prev := after
	last, err := j.Read(context.Background(), after, 1<<30, func(seq uint64, e []byte) error {
		if seq <= prev {
			t.Fatalf("Read out of order: %d after %d", seq, prev)
		}
		prev = seq
		out[seq] = bytes.Clone(e)
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if last != prev {
		t.Fatalf("Read returned %d, last delivered %d", last, prev)
	}
	return out
}

func TestAppendReadGetReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j := openTest(t, dir, Options{})
	if got := j.LastSeq(); got != 0 {
		t.Fatalf("empty journal LastSeq = %d", got)
	}
	var want [][]byte
	for i := range 10 {
		batch := [][]byte{entryFor(uint64(len(want)+1), 100+i), entryFor(uint64(len(want)+2), 5000)}
		first, err := j.Append(ctx, batch)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if first != uint64(len(want)+1) {
			t.Fatalf("Append first = %d, want %d", first, len(want)+1)
		}
		want = append(want, batch...)
	}
	check := func(j *Journal) {
		t.Helper()
		if got := j.LastSeq(); got != uint64(len(want)) {
			t.Fatalf("LastSeq = %d, want %d", got, len(want))
		}
		got := readAll(t, j, 0)
		for i, w := range want {
			if !bytes.Equal(got[uint64(i+1)], w) {
				t.Fatalf("entry %d mismatch", i+1)
			}
		}
		e, err := j.Get(ctx, 7)
		if err != nil || !bytes.Equal(e, want[6]) {
			t.Fatalf("Get(7) = %q, %v", e, err)
		}
		if _, err := j.Get(ctx, uint64(len(want)+1)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get beyond end: %v, want ErrNotFound", err)
		}
		if _, err := j.Get(ctx, 0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(0): %v, want ErrNotFound", err)
		}
	}
	check(j)
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	j = openTest(t, dir, Options{})
	defer j.Close()
	check(j)
	first, err := j.Append(ctx, [][]byte{[]byte("after restart")})
	if err != nil || first != uint64(len(want)+1) {
		t.Fatalf("Append after reopen = %d, %v; want %d", first, err, len(want)+1)
	}
}

func TestReadLimitsAndErrors(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, t.TempDir(), Options{})
	defer j.Close()
	var batch [][]byte
	for i := range 3000 {
		batch = append(batch, entryFor(uint64(i+1), 200))
	}
	if _, err := j.Append(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var n int
	last, err := j.Read(ctx, 10, 2500, func(seq uint64, e []byte) error {
		n++
		if seq != uint64(10+n) || !bytes.Equal(e, batch[seq-1]) {
			t.Fatalf("seq %d (call %d) wrong", seq, n)
		}
		return nil
	})
	if err != nil || last != 2510 || n != 2500 {
		t.Fatalf("Read = %d, %v after %d calls; want 2510", last, err, n)
	}
	stop := errors.New("stop")
	last, err = j.Read(ctx, 0, 100, func(seq uint64, _ []byte) error {
		if seq == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || last != 4 {
		t.Fatalf("Read with failing fn = %d, %v; want 4, stop", last, err)
	}
	last, err = j.Read(ctx, 3000, 10, func(uint64, []byte) error { t.Fatal("called past the end"); return nil })
	if err != nil || last != 3000 {
		t.Fatalf("Read at end = %d, %v", last, err)
	}
}

func TestConcurrentAppendsAreDenseAndAtomic(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, t.TempDir(), Options{})
	defer j.Close()
	type span struct {
		first uint64
		batch [][]byte
	}
	var (
		mu    sync.Mutex
		spans []span
		wg    sync.WaitGroup
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 40 {
				n := 1 + rng.IntN(30)
				batch := make([][]byte, n)
				for k := range batch {
					batch[k] = fmt.Appendf(nil, "g%d-i%d-k%d-%s", g, i, k, strings.Repeat("x", rng.IntN(3000)))
				}
				first, err := j.Append(ctx, batch)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				spans = append(spans, span{first, batch})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(spans, func(a, b int) bool { return spans[a].first < spans[b].first })
	next := uint64(1)
	got := readAll(t, j, 0)
	for _, s := range spans {
		if s.first != next {
			t.Fatalf("span starts at %d, want %d (gap or overlap)", s.first, next)
		}
		for k, e := range s.batch {
			if !bytes.Equal(got[s.first+uint64(k)], e) {
				t.Fatalf("entry %d does not match its Append", s.first+uint64(k))
			}
		}
		next += uint64(len(s.batch))
	}
	if j.LastSeq() != next-1 || uint64(len(got)) != next-1 {
		t.Fatalf("LastSeq %d, read %d entries, want %d", j.LastSeq(), len(got), next-1)
	}
}

func TestInvalidAppends(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, t.TempDir(), Options{})
	defer j.Close()
	for name, batch := range map[string][][]byte{
		"none":    nil,
		"empty":   {[]byte("a"), {}},
		"too big": {make([]byte, MaxEntrySize+1)},
		"too much": func() [][]byte {
			b := make([][]byte, 40)
			for i := range b {
				b[i] = make([]byte, MaxEntrySize)
			}
			return b
		}(),
	} {
		if _, err := j.Append(ctx, batch); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Append error %v, want ErrInvalid", name, err)
		}
	}
	if j.LastSeq() != 0 {
		t.Fatalf("invalid appends wrote something: LastSeq %d", j.LastSeq())
	}
	big := make([]byte, MaxEntrySize)
	if first, err := j.Append(ctx, [][]byte{big}); err != nil || first != 1 {
		t.Fatalf("Append of a max-size entry = %d, %v", first, err)
	}
}

func TestCursorsPersistAndExportLag(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	j := openTest(t, dir, Options{Registerer: reg})
	for range 5 {
		if _, err := j.Append(ctx, [][]byte{[]byte("a"), []byte("b")}); err != nil {
			t.Fatal(err)
		}
	}
	h := j.Cursor("history")
	if h.Position() != 0 || h.Name() != "history" {
		t.Fatalf("new cursor at %d", h.Position())
	}
	if err := h.Commit(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := j.Cursor("trail/a").Commit(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := h.Commit(ctx, 11); !errors.Is(err, ErrInvalid) {
		t.Fatalf("commit beyond LastSeq: %v, want ErrInvalid", err)
	}
	if err := j.Cursor("").Commit(ctx, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("commit of unnamed cursor: %v, want ErrInvalid", err)
	}
	if h.Lag() != 6 {
		t.Fatalf("Lag = %d, want 6", h.Lag())
	}
	for _, c := range []struct {
		name, cursor string
		want         float64
	}{
		{"cairn_journal_cursor_lag", "history", 6},
		{"cairn_journal_cursor_lag", "trail/a", 0},
		{"cairn_journal_cursor_position", "history", 4},
		{"cairn_journal_last_seq", "", 10},
		{"cairn_journal_entries_total", "", 10},
		{"cairn_journal_appends_total", "", 5},
		{"cairn_journal_available", "", 1},
	} {
		if got := metricValue(t, reg, c.name, c.cursor); got != c.want {
			t.Errorf("%s{cursor=%q} = %v, want %v", c.name, c.cursor, got, c.want)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// Same registry: Close unregistered the metrics.
	j = openTest(t, dir, Options{Registerer: reg})
	defer j.Close()
	if got := j.Cursors(); got["history"] != 4 || got["trail/a"] != 10 || len(got) != 2 {
		t.Fatalf("cursors after reopen: %v", got)
	}
	if err := j.DeleteCursor(ctx, "trail/a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Cursors()["trail/a"]; ok {
		t.Fatal("deleted cursor still listed")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir, Options{})
	defer j.Close()
	if got := j.Cursors(); len(got) != 1 || got["history"] != 4 {
		t.Fatalf("cursors after delete and reopen: %v", got)
	}
}

func TestTrimKeepsSequenceNumbers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j := openTest(t, dir, Options{})
	for i := range 10 {
		if _, err := j.Append(ctx, [][]byte{entryFor(uint64(i+1), 50)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Trim(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if j.FirstSeq() != 4 {
		t.Fatalf("FirstSeq = %d, want 4", j.FirstSeq())
	}
	if _, err := j.Get(ctx, 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get trimmed: %v", err)
	}
	var seqs []uint64
	if _, err := j.Read(ctx, 0, 100, func(seq uint64, _ []byte) error { seqs = append(seqs, seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 7 || seqs[0] != 4 {
		t.Fatalf("Read after trim: %v", seqs)
	}
	// Trimming beyond the end is capped: everything goes, numbering stays.
	if err := j.Trim(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if j.FirstSeq() != 11 || j.LastSeq() != 10 {
		t.Fatalf("after full trim First %d Last %d", j.FirstSeq(), j.LastSeq())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir, Options{})
	defer j.Close()
	if j.FirstSeq() != 11 || j.LastSeq() != 10 {
		t.Fatalf("after reopen First %d Last %d", j.FirstSeq(), j.LastSeq())
	}
	first, err := j.Append(ctx, [][]byte{[]byte("x")})
	if err != nil || first != 11 {
		t.Fatalf("Append after full trim = %d, %v; want 11", first, err)
	}
}

func TestWaitWakesOnAppend(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, t.TempDir(), Options{})
	woke := make(chan error, 1)
	go func() { woke <- j.Wait(ctx, 0) }()
	select {
	case err := <-woke:
		t.Fatalf("Wait returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := j.Append(ctx, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := j.Wait(ctx, 0); err != nil {
		t.Fatalf("Wait for an existing entry: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := j.Wait(cctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with deadline: %v", err)
	}
	go func() { woke <- j.Wait(ctx, 1) }()
	time.Sleep(10 * time.Millisecond)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait across Close: %v", err)
	}
}

func TestClosedJournal(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, t.TempDir(), Options{})
	if _, err := j.Append(ctx, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := j.Append(ctx, [][]byte{[]byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := j.Get(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := j.Read(ctx, 0, 1, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if err := j.Cursor("c").Commit(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
}

func TestSecondOpenOfSameDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, Options{})
	defer j.Close()
	if _, err := Open(context.Background(), dir, Options{Logger: testLogger(t)}); err == nil {
		t.Fatal("second Open of a locked journal succeeded")
	}
}

func TestCancelledAppendWritesNothing(t *testing.T) {
	j := openTest(t, t.TempDir(), Options{})
	defer j.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := j.Append(ctx, [][]byte{[]byte("x")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with cancelled ctx: %v", err)
	}
	if first, err := j.Append(context.Background(), [][]byte{[]byte("y")}); err != nil || first != 1 {
		t.Fatalf("Append after a cancelled one = %d, %v; want 1", first, err)
	}
}

// metricValue returns the value of a gauge or counter series in reg (with
// the given cursor label, if not empty); it fails the test if absent.
func metricValue(t testing.TB, reg prometheus.Gatherer, name, cursor string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := cursor == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "cursor" && l.GetValue() == cursor {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s{cursor=%q} not found", name, cursor)
	return 0
}
