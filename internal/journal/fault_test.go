package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/client_golang/prometheus"
)

// faultFS injects I/O errors into the real filesystem on demand. While
// walErr is set, every write, preallocation and sync of a WAL file fails with
// it; while allErr is set, every create, write and sync of any file does.
// avail, when non-zero, replaces the free space GetDiskUsage reports.
type faultFS struct {
	*errorfs.FS
	walErr atomic.Pointer[error]
	allErr atomic.Pointer[error]
	// syncOnly restricts walErr to syncs, so that the data of the failed
	// commit does reach the file (page cache) before its fsync fails.
	syncOnly atomic.Bool
	avail    atomic.Uint64
	injected atomic.Int64
	// manifestErr fails opening MANIFEST files, i.e. reopening the database.
	// (Failing their creation instead would crash the process: Pebble's
	// flush after WAL replay creates one in the background and treats the
	// error as fatal.)
	manifestErr atomic.Pointer[error]
}

func newFaultFS() *faultFS {
	f := &faultFS{}
	f.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(f.maybeError))
	return f
}

func (f *faultFS) maybeError(op errorfs.Op) error {
	isWrite := false
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate:
		isWrite = true
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	case errorfs.OpOpen:
		if e := f.manifestErr.Load(); e != nil && strings.Contains(op.Path, "MANIFEST") {
			f.injected.Add(1)
			return *e
		}
		return nil
	case errorfs.OpCreate:
		if e := f.allErr.Load(); e != nil {
			f.injected.Add(1)
			return *e
		}
		return nil
	default:
		return nil
	}
	if e := f.allErr.Load(); e != nil {
		f.injected.Add(1)
		return *e
	}
	if e := f.walErr.Load(); e != nil && strings.HasSuffix(op.Path, ".log") && !(isWrite && f.syncOnly.Load()) {
		f.injected.Add(1)
		return *e
	}
	return nil
}

func (f *faultFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	if a := f.avail.Load(); a != 0 {
		du.AvailBytes = a
	}
	return du, err
}

// waitInjected waits until n more faults have been injected (failed
// probes, refused writes).
func waitInjected(t *testing.T, f *faultFS, n int64) {
	t.Helper()
	n0 := f.injected.Load()
	waitFor(t, fmt.Sprintf("%d more injected faults", n), func() bool { return f.injected.Load() >= n0+n })
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
	}
}

func (f *faultFS) failWAL(err error) { f.walErr.Store(&err) }
func (f *faultFS) failAll(err error) { f.allErr.Store(&err) }
func (f *faultFS) heal()             { f.walErr.Store(nil); f.allErr.Store(nil) }

// readAllRetrying reads the whole journal, retrying while the journal
// briefly has no database open (it is reopening its storage).
func readAllRetrying(t *testing.T, j *Journal) map[uint64][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := make(map[uint64][]byte)
		_, err := j.Read(context.Background(), 0, 1<<30, func(seq uint64, e []byte) error {
			out[seq] = bytes.Clone(e)
			return nil
		})
		if err == nil {
			return out
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Read: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// appendUntilOK retries an Append until the journal accepts it again.
func appendUntilOK(t *testing.T, j *Journal, batch [][]byte) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		first, err := j.Append(context.Background(), batch)
		if err == nil {
			return first
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Append did not recover: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWALWriteFaultFailsClosedAndRecoversInPlace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := newFaultFS()
	reg := prometheus.NewRegistry()
	j := openTest(t, dir, Options{FS: fs, RetryInterval: 50 * time.Millisecond, Registerer: reg})
	defer j.Close()

	want := map[uint64][]byte{}
	for i := range 20 {
		batch := [][]byte{entryFor(uint64(i), 1300), entryFor(uint64(i+1000), 300)}
		first, err := j.Append(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		want[first], want[first+1] = batch[0], batch[1]
	}
	if err := j.Cursor("history").Commit(ctx, 10); err != nil {
		t.Fatal(err)
	}
	acked := j.LastSeq()

	fs.failWAL(syscall.ENOSPC)
	_, err := j.Append(ctx, [][]byte{[]byte("lost")})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append during fault: %v; want ErrUnavailable wrapping ENOSPC", err)
	}
	t.Logf("refused with: %v", err)
	if j.LastSeq() != acked {
		t.Fatalf("LastSeq moved to %d during fault (acked %d)", j.LastSeq(), acked)
	}
	// Later appends fail fast, without waiting for a sync.
	for range 20 {
		start := time.Now()
		if _, err := j.Append(ctx, [][]byte{[]byte("refused")}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Append during fault: %v", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("refusal took %v", d)
		}
	}
	if err := j.Available(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Available during fault: %v", err)
	}
	if got := metricValue(t, reg, "cairn_journal_available", ""); got != 0 {
		t.Fatalf("cairn_journal_available = %v during fault", got)
	}
	if err := j.Cursor("history").Commit(ctx, 12); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cursor commit during fault: %v", err)
	}
	// Everything acknowledged is readable during the fault.
	got := readAllRetrying(t, j)
	if len(got) != len(want) {
		t.Fatalf("read %d entries during fault, want %d", len(got), len(want))
	}
	for seq, w := range want {
		if !bytes.Equal(got[seq], w) {
			t.Fatalf("entry %d differs during fault", seq)
		}
	}
	// Let the journal probe a few times against the still-broken disk.
	waitInjected(t, fs, 3)
	if _, err := j.Append(ctx, [][]byte{[]byte("refused")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append while fault persists: %v", err)
	}

	fs.heal()
	first := appendUntilOK(t, j, [][]byte{[]byte("after")})
	if first != acked+1 {
		t.Fatalf("first append after recovery got seq %d, want %d (dense, failed entries discarded)", first, acked+1)
	}
	want[first] = []byte("after")
	if err := j.Cursor("history").Commit(ctx, 12); err != nil {
		t.Fatalf("cursor commit after recovery: %v", err)
	}
	if got := metricValue(t, reg, "cairn_journal_reopens_total", ""); got < 1 {
		t.Fatalf("reopens_total = %v", got)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	j = openTest(t, dir, Options{})
	defer j.Close()
	got = readAll(t, j, 0)
	if len(got) != len(want) || j.LastSeq() != first {
		t.Fatalf("after restart: %d entries, LastSeq %d; want %d, %d", len(got), j.LastSeq(), len(want), first)
	}
	for seq, w := range want {
		if !bytes.Equal(got[seq], w) {
			t.Fatalf("entry %d differs after restart", seq)
		}
	}
	if pos := j.Cursor("history").Position(); pos != 12 {
		t.Fatalf("cursor after restart at %d, want 12", pos)
	}
}

// A failed fsync leaves the commit's data in the WAL file (page cache), so a
// reopen replays it; the journal must discard it rather than let a commit
// that reported failure surface later.
func TestFailedSyncIsNotAppended(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := newFaultFS()
	j := openTest(t, dir, Options{FS: fs, RetryInterval: 20 * time.Millisecond})
	defer j.Close()
	for i := range 5 {
		if _, err := j.Append(ctx, [][]byte{entryFor(uint64(i+1), 100)}); err != nil {
			t.Fatal(err)
		}
	}
	fs.syncOnly.Store(true)
	fs.failWAL(syscall.EIO)
	if _, err := j.Append(ctx, [][]byte{[]byte("ghost-1"), []byte("ghost-2")}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with failing fsync: %v", err)
	}
	fs.heal()
	first := appendUntilOK(t, j, [][]byte{[]byte("real-6")})
	if first != 6 {
		t.Fatalf("append after recovery got %d, want 6", first)
	}
	check := func() {
		t.Helper()
		for seq, e := range readAllRetrying(t, j) {
			if strings.HasPrefix(string(e), "ghost") {
				t.Fatalf("failed append visible at seq %d", seq)
			}
		}
		if e, err := j.Get(ctx, 7); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(7) = %q, %v; want ErrNotFound", e, err)
		}
	}
	check()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir, Options{})
	check()
	if j.LastSeq() != 6 {
		t.Fatalf("LastSeq after restart %d, want 6", j.LastSeq())
	}
}

// While every file operation fails, even the probe fails, so the journal
// keeps its failed database open for reads and does not try to reopen it.
func TestWholeDiskFaultThenRecovery(t *testing.T) {
	ctx := context.Background()
	fs := newFaultFS()
	j := openTest(t, t.TempDir(), Options{FS: fs, RetryInterval: 20 * time.Millisecond})
	defer j.Close()
	if _, err := j.Append(ctx, [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	fs.failAll(syscall.EIO)
	if _, err := j.Append(ctx, [][]byte{[]byte("b")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append: %v", err)
	}
	waitInjected(t, fs, 3) // several failed probes
	if e, err := j.Get(ctx, 1); err != nil || string(e) != "a" {
		t.Fatalf("Get during whole-disk fault = %q, %v", e, err)
	}
	err := j.Available()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "probe") {
		t.Fatalf("Available during whole-disk fault: %v", err)
	}
	fs.heal()
	if first := appendUntilOK(t, j, [][]byte{[]byte("c")}); first != 2 {
		t.Fatalf("append after recovery got %d, want 2", first)
	}
}

func TestLowDiskSpaceRefusesAppendsOnly(t *testing.T) {
	ctx := context.Background()
	fs := newFaultFS()
	reg := prometheus.NewRegistry()
	j := openTest(t, t.TempDir(), Options{FS: fs, MinFreeBytes: 1 << 30, Registerer: reg})
	defer j.Close()
	fs.avail.Store(8 << 30)
	for i := range 10 {
		if _, err := j.Append(ctx, [][]byte{entryFor(uint64(i+1), 100)}); err != nil {
			t.Fatal(err)
		}
	}
	fs.avail.Store(100 << 20)
	time.Sleep(2 * spaceTTL) // the free-space check is cached that long
	_, err := j.Append(ctx, [][]byte{[]byte("x")})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bytes free") {
		t.Fatalf("Append on a nearly full disk: %v", err)
	}
	if err := j.Available(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Available: %v", err)
	}
	if got := metricValue(t, reg, "cairn_journal_available", ""); got != 0 {
		t.Fatalf("cairn_journal_available = %v", got)
	}
	// Consumers keep making progress and retention can free space.
	if err := j.Cursor("history").Commit(ctx, 10); err != nil {
		t.Fatalf("cursor commit on a nearly full disk: %v", err)
	}
	if err := j.Trim(ctx, 5); err != nil {
		t.Fatalf("Trim on a nearly full disk: %v", err)
	}
	fs.avail.Store(2 << 30)
	time.Sleep(2 * spaceTTL)
	if first, err := j.Append(ctx, [][]byte{[]byte("y")}); err != nil || first != 11 {
		t.Fatalf("Append after space freed = %d, %v", first, err)
	}
	if err := j.Available(); err != nil {
		t.Fatalf("Available after space freed: %v", err)
	}
}

// Many appenders race against repeated faults. Whatever the interleaving,
// the journal must hold exactly the acknowledged entries, densely numbered.
//
// Each phase writes less than Pebble's first memtable (256 KB after every
// open) before its fault starts: a fault that hits Pebble's WAL rotation
// crashes the process by design (see the package doc; the kill -9 test
// covers what a crash leaves), so the storm targets the commit path.
func TestFaultStormKeepsExactlyTheAcknowledgedEntries(t *testing.T) {
	dir := t.TempDir()
	fs := newFaultFS()
	j := openTest(t, dir, Options{FS: fs, RetryInterval: 5 * time.Millisecond})
	defer j.Close()

	const phaseEntries = 600 // x ~130 bytes of memtable each, well below 256 KB
	var (
		mu      sync.Mutex
		acked   = map[uint64][]byte{}
		refused atomic.Int64
		budget  atomic.Int64 // entries the writers may still append this phase
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				batch := make([][]byte, 1+i%7)
				if budget.Add(-int64(len(batch))) < 0 {
					budget.Add(int64(len(batch)))
					time.Sleep(time.Millisecond)
					continue
				}
				for k := range batch {
					batch[k] = fmt.Appendf(nil, "g%d-i%d-k%d-%s", g, i, k, strings.Repeat("z", (i*31+k*17)%64))
				}
				first, err := j.Append(context.Background(), batch)
				if err != nil {
					if !errors.Is(err, ErrUnavailable) {
						t.Errorf("Append: %v", err)
						return
					}
					refused.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				for k, e := range batch {
					if _, dup := acked[first+uint64(k)]; dup {
						t.Errorf("seq %d acknowledged twice", first+uint64(k))
					}
					acked[first+uint64(k)] = e
				}
				mu.Unlock()
			}
		}()
	}
	errs := []error{syscall.ENOSPC, syscall.EIO}
	for round := range 8 {
		budget.Store(phaseEntries)
		for budget.Load() > phaseEntries/2 {
			time.Sleep(100 * time.Microsecond)
		}
		r0 := refused.Load()
		fs.syncOnly.Store(round%2 == 1)
		fs.failWAL(errs[round%2])
		// Make sure the fault hits a commit in every phase, so that every
		// phase ends with a reopened database (and a fresh memtable).
		if _, err := j.Append(context.Background(), [][]byte{[]byte("during fault")}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("round %d: Append during fault: %v", round, err)
		}
		// Let the concurrent writers run into the fault too.
		waitFor(t, "a concurrent append refused", func() bool { return refused.Load() > r0 || budget.Load() <= 0 })
		budget.Store(0)
		fs.heal()
		deadline := time.Now().Add(10 * time.Second)
		for j.Available() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no recovery: %v", round, j.Available())
			}
			time.Sleep(time.Millisecond)
		}
	}
	// A last phase without faults: the writers append after recovery.
	budget.Store(phaseEntries)
	waitFor(t, "appends after the last recovery", func() bool { return budget.Load() <= phaseEntries/2 })
	stop.Store(true)
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatalf("no fault hit a concurrent append (injected %d)", fs.injected.Load())
	}

	verify := func(j *Journal) {
		t.Helper()
		got := readAllRetrying(t, j)
		if len(got) != len(acked) {
			t.Fatalf("journal holds %d entries, %d were acknowledged", len(got), len(acked))
		}
		seqs := make([]uint64, 0, len(got))
		for seq := range got {
			seqs = append(seqs, seq)
		}
		sort.Slice(seqs, func(a, b int) bool { return seqs[a] < seqs[b] })
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				t.Fatalf("gap: entry %d at position %d", seq, i+1)
			}
			if !bytes.Equal(got[seq], acked[seq]) {
				t.Fatalf("entry %d is not what was acknowledged", seq)
			}
		}
		if j.LastSeq() != uint64(len(acked)) {
			t.Fatalf("LastSeq %d, acknowledged %d", j.LastSeq(), len(acked))
		}
	}
	appendUntilOK(t, j, [][]byte{[]byte("final")})
	acked[uint64(len(acked)+1)] = []byte("final")
	verify(j)
	t.Logf("%d entries acknowledged, %d appends refused, %d faults injected", len(acked), refused.Load(), fs.injected.Load())
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir, Options{})
	defer j.Close()
	verify(j)
}

// If the filesystem works for the probe but the database cannot be reopened
// (here: its MANIFEST cannot be read), the journal stays offline, keeps
// retrying, and comes back once it can.
func TestReopenFailureKeepsRetrying(t *testing.T) {
	ctx := context.Background()
	fs := newFaultFS()
	j := openTest(t, t.TempDir(), Options{FS: fs, RetryInterval: 20 * time.Millisecond})
	defer j.Close()
	if _, err := j.Append(ctx, [][]byte{[]byte("a"), []byte("b")}); err != nil {
		t.Fatal(err)
	}
	manifestErr := error(syscall.EIO)
	fs.manifestErr.Store(&manifestErr)
	fs.failWAL(syscall.EIO)
	if _, err := j.Append(ctx, [][]byte{[]byte("c")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append: %v", err)
	}
	fs.heal() // the WAL works again, but reopening still fails
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := j.Available()
		if err != nil && strings.Contains(err.Error(), "reopening storage") {
			t.Logf("while reopening fails: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reopen failure reported; Available = %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := j.Append(ctx, [][]byte{[]byte("c")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append while reopen fails: %v", err)
	}
	// Without a database, reads are refused too (and say why).
	if _, err := j.Get(ctx, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get while reopen fails: %v", err)
	}
	fs.manifestErr.Store(nil)
	if first := appendUntilOK(t, j, [][]byte{[]byte("c")}); first != 3 {
		t.Fatalf("append after recovery got %d, want 3", first)
	}
	if got := readAllRetrying(t, j); len(got) != 3 || string(got[1]) != "a" || string(got[3]) != "c" {
		t.Fatalf("contents after recovery: %d entries", len(got))
	}
}
