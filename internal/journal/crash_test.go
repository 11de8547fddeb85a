package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv switches the test binary into the crash-test child: it
// appends to the journal in the named directory until it is killed.
const (
	crashChildEnv = "CAIRN_JOURNAL_CRASH_CHILD"
	crashBaseEnv  = "CAIRN_JOURNAL_CRASH_BASE"
	// crashCycles is how many times the test kills a child on the same
	// journal; each cycle also recovers what the previous kills left.
	crashCycles = 3
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashAppendSize is the deterministic number of entries of writer w's i-th
// Append.
func crashAppendSize(w, i int) int { return 1 + (i*7+w*3)%20 }

// crashEntry is the deterministic content of entry k of writer w's i-th
// Append: sizes from tens of bytes to 20 KB, and every 97th Append carries a
// 300 KB entry.
func crashEntry(w, i, k int) []byte {
	size := (w*7919 + i*104729 + k*1299709) % 20000
	if i%97 == 0 && k == 0 {
		size = 300 << 10
	}
	b := fmt.Appendf(make([]byte, 0, size+64), `{"w":%d,"i":%d,"k":%d,"pad":"`, w, i, k)
	for n := range size {
		b = append(b, byte('a'+(n*31+i+k)%26))
	}
	return append(b, `"}`...)
}

// crashChild appends from several goroutines and prints every acknowledged
// Append ("A first w i n") and cursor commit ("C pos") to stdout, one line
// per write(2), only after the journal returned success.
func crashChild(dir string) {
	ctx := context.Background()
	j, err := Open(ctx, dir, Options{
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		MemTableSize: 1 << 20, // rotate WALs and flush often inside the crash window
		CacheSize:    8 << 20,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: open: %v\n", err)
		os.Exit(2)
	}
	var out sync.Mutex
	emit := func(format string, args ...any) {
		line := fmt.Sprintf(format+"\n", args...)
		out.Lock()
		_, _ = os.Stdout.WriteString(line)
		out.Unlock()
	}
	emit("START %d", j.LastSeq())
	// Each incarnation numbers its Appends from its own base, so entries of
	// different incarnations never collide.
	base, _ := strconv.Atoi(os.Getenv(crashBaseEnv))
	for w := range 4 {
		go func() {
			for i := base; ; i++ {
				n := crashAppendSize(w, i)
				batch := make([][]byte, n)
				for k := range batch {
					batch[k] = crashEntry(w, i, k)
				}
				first, err := j.Append(ctx, batch)
				if err != nil {
					fmt.Fprintf(os.Stderr, "child: append: %v\n", err)
					os.Exit(3)
				}
				emit("A %d %d %d %d", first, w, i, n)
			}
		}()
	}
	c := j.Cursor("consumer")
	for {
		time.Sleep(5 * time.Millisecond)
		pos := j.LastSeq() / 2
		if pos > c.Position() {
			if err := c.Commit(ctx, pos); err != nil {
				fmt.Fprintf(os.Stderr, "child: cursor commit: %v\n", err)
				os.Exit(4)
			}
			emit("C %d", pos)
		}
	}
}

type crashAck struct{ first, w, i, n int }

// runCrashChild starts a child on dir, kills it with SIGKILL after it has
// run for about killAfter, and returns the acknowledgements it printed.
func runCrashChild(t *testing.T, dir string, base int, killAfter time.Duration) (acks []crashAck, cursor int, start int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashBaseEnv, base))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	parsed := make(chan struct{})
	start = -1
	go func() {
		defer close(parsed)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // a last line without its newline was cut by the kill
			}
			var a crashAck
			switch {
			case strings.HasPrefix(line, "START "):
				if _, err := fmt.Sscanf(line, "START %d\n", &start); err != nil {
					t.Errorf("bad line %q", line)
				}
				close(started)
			case strings.HasPrefix(line, "A "):
				if _, err := fmt.Sscanf(line, "A %d %d %d %d\n", &a.first, &a.w, &a.i, &a.n); err != nil {
					t.Errorf("bad line %q", line)
				}
				acks = append(acks, a)
			case strings.HasPrefix(line, "C "):
				if _, err := fmt.Sscanf(line, "C %d\n", &cursor); err != nil {
					t.Errorf("bad line %q", line)
				}
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("child did not start: %s", stderr.String())
	}
	time.Sleep(killAfter)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v", err)
	}
	err = cmd.Wait()
	<-parsed
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL (%v): %s", err, stderr.String())
	}
	return acks, cursor, start
}

// TestKill9LosesNothingAcknowledged kills a child process that appends from
// several goroutines with SIGKILL at random moments, several times over the
// same journal, and checks after each kill that every acknowledged entry is
// there with its content, sequence numbers are dense, every Append is all
// or nothing, cursors hold, and appends continue after the last entry.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	totalAcked := 0
	for cycle := range crashCycles {
		killAfter := time.Duration(150+rng.IntN(900)) * time.Millisecond
		acks, cursor, start := runCrashChild(t, dir, cycle*100_000_000, killAfter)
		if len(acks) == 0 {
			t.Fatalf("cycle %d: child acknowledged nothing in %v", cycle, killAfter)
		}
		totalAcked += len(acks)

		j := openTest(t, dir, Options{MinFreeBytes: -1})
		last := j.LastSeq()
		if uint64(start) > last {
			t.Fatalf("cycle %d: LastSeq went back from %d to %d", cycle, start, last)
		}
		// Every acknowledged Append is present with its exact content.
		for _, a := range acks {
			for k := range a.n {
				seq := uint64(a.first + k)
				e, err := j.Get(ctx, seq)
				if err != nil {
					t.Fatalf("cycle %d: acknowledged entry %d (writer %d append %d) lost: %v", cycle, seq, a.w, a.i, err)
				}
				if !bytes.Equal(e, crashEntry(a.w, a.i, k)) {
					t.Fatalf("cycle %d: entry %d has the wrong content", cycle, seq)
				}
			}
		}
		// Dense numbering, valid content everywhere, and Appends atomic (an
		// Append that made it without its acknowledgement is whole too).
		type key struct{ w, i int }
		seen := map[key]int{}
		next := uint64(1)
		_, err := j.Read(ctx, 0, 1<<30, func(seq uint64, e []byte) error {
			if seq != next {
				return fmt.Errorf("gap: entry %d follows %d", seq, next-1)
			}
			next++
			var w, i, k int
			if _, err := fmt.Sscanf(string(e[:min(len(e), 64)]), `{"w":%d,"i":%d,"k":%d,`, &w, &i, &k); err != nil {
				return fmt.Errorf("entry %d: unparsable %q", seq, e[:min(len(e), 64)])
			}
			if !bytes.Equal(e, crashEntry(w, i, k)) {
				return fmt.Errorf("entry %d: corrupt content", seq)
			}
			if k != seen[key{w, i}] {
				return fmt.Errorf("entry %d: writer %d append %d entry %d out of order", seq, w, i, k)
			}
			seen[key{w, i}]++
			return nil
		})
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		if next-1 != last {
			t.Fatalf("cycle %d: read up to %d, LastSeq %d", cycle, next-1, last)
		}
		for k, n := range seen {
			if n != crashAppendSize(k.w, k.i) {
				t.Fatalf("cycle %d: writer %d append %d is torn: %d of %d entries", cycle, k.w, k.i, n, crashAppendSize(k.w, k.i))
			}
		}
		if pos := j.Cursor("consumer").Position(); pos < uint64(cursor) {
			t.Fatalf("cycle %d: cursor at %d, %d was acknowledged", cycle, pos, cursor)
		}
		t.Logf("cycle %d: killed after %v; %d appends acknowledged, journal holds %d entries (%d appends)",
			cycle, killAfter, len(acks), last, len(seen))
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Appends continue after the last entry.
	j := openTest(t, dir, Options{MinFreeBytes: -1})
	defer j.Close()
	last := j.LastSeq()
	first, err := j.Append(ctx, [][]byte{[]byte("after the crashes")})
	if err != nil || first != last+1 {
		t.Fatalf("Append after crashes = %d, %v; want %d", first, err, last+1)
	}
	t.Logf("%d acknowledged appends verified over %d kills", totalAcked, crashCycles)
}
