package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
)

// crashEnv names the data directory of a crash test child; crashMode is
// "run" (append and ingest until killed) or "finish" (ingest until caught
// up, then exit).
const (
	crashEnv  = "CAIRN_LAKE_CRASH_DIR"
	crashMode = "CAIRN_LAKE_CRASH_MODE"
)

// TestCrashChild is the child process of TestCrashKill9; it does nothing
// when run on its own.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("the child of TestCrashKill9")
	}
	ctx := context.Background()
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: quietLogger(), MinFreeBytes: -1, MemTableSize: 4 << 20, CacheSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	obj, err := file.New(filepath.Join(dir, "buckets"), file.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	_, persisted := j.Cursors()[CursorName("s")]
	cur := j.Cursor(CursorName("s"))
	if !persisted {
		// The store exists before the first event.
		if err := cur.Commit(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	specs := &specList{}
	sp := managementStore("s", "us-east-1")
	sp.MultiRegion = true
	specs.set(sp)
	in, err := New(ctx, Options{
		Journal: j, Store: obj, Specs: specs.get, CacheDir: filepath.Join(dir, "cache"),
		FlushInterval: 5 * time.Millisecond, MaxBatchRows: 64,
		CompactInterval: 20 * time.Millisecond, DeleteGrace: 10 * time.Millisecond,
		Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.Run(runCtx)
	}()
	if os.Getenv(crashMode) == "finish" {
		waitFor(t, 3*time.Minute, "the store to catch up", func() bool { return cur.Position() >= j.LastSeq() })
		// And for compaction to have run over what is there.
		in.maintain(ctx)
		cancel()
		<-done
		return
	}
	// Report the committed position (for the parent to kill at a time
	// when flushes are under way), and append events of three days, ids
	// from the journal's sequence numbers so that every run's are new.
	start := cur.Position()
	go func() {
		for runCtx.Err() == nil {
			p := filepath.Join(dir, "progress")
			os.WriteFile(p+".tmp", fmt.Appendf(nil, "%d %d", start, cur.Position()), 0o600)
			os.Rename(p+".tmp", p)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	now := time.Now().UTC().Truncate(time.Second)
	limit := j.LastSeq() + 300 // bounded, so that the last process catches up soon
	for j.LastSeq() < limit {
		next := int(j.LastSeq()) + 1
		var recs [][]byte
		for k := range 40 {
			i := next + k
			recs = append(recs, rec{i: i, at: now.Add(-time.Duration(i%3) * 24 * time.Hour), region: []string{"us-east-1", "eu-west-1"}[i%2]}.json())
		}
		if _, err := j.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	<-done // ingest until killed
}

// TestCrashKill9 kills a process with SIGKILL while it appends events and
// ingests them (flushes, compactions, deletions of covered files all under
// way), three times, then lets a last process catch up: the store then
// holds every event of the journal exactly once.
func TestCrashKill9(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	child := func(mode string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashMode+"="+mode)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			if t.Failed() {
				t.Logf("child (%s) output:\n%s", mode, out.String())
			}
		})
		return cmd
	}
	// progress is what the running child last reported: its store's
	// committed position when it started, and now.
	progress := func() (start, pos uint64) {
		b, _ := os.ReadFile(filepath.Join(dir, "progress"))
		fmt.Sscanf(string(b), "%d %d", &start, &pos)
		return start, pos
	}
	for round := 1; round <= 3; round++ {
		os.Remove(filepath.Join(dir, "progress"))
		cmd := child("run")
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// Kill it once it has committed some of its own events: flushes,
		// compactions and deletions are under way by then.
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if start, pos := progress(); pos > start+30*uint64(round) {
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("round %d: the child exited on its own: %v", round, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no progress", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		<-exited
	}
	cmd := child("finish")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the finishing child failed: %v", err)
	}

	ctx := context.Background()
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: quietLogger(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	appended := int(j.LastSeq())
	obj, err := file.New(filepath.Join(dir, "buckets"), file.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	var all []fileRef
	if err := obj.List(ctx, DefaultBucket, storePrefix("s"), "", func(o objstore.ObjectInfo) error {
		if f, ok := parseKey("s", o.Key); ok {
			all = append(all, f)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var rows []Row
	for _, f := range current(all) {
		p, _ := obj.LocalPath(DefaultBucket, f.Key)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readRows[Row](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", f.Key, err)
		}
		rows = append(rows, got...)
	}
	want := make([]int, appended)
	for i := range want {
		want[i] = i + 1
	}
	t.Logf("%d events appended over 4 processes (3 killed), %d files (%d current)", appended, len(all), len(current(all)))
	exactlyOnce(t, rows, want)
}

// lockedBuffer is a child's output, written by exec's copying goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
