package delivery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

// The kill -9 test re-executes the test binary as a child that appends
// events to a journal and delivers them to a file store, and kills it at
// chosen points of a delivery.
const (
	crashChildEnv = "CAIRN_DELIVERY_CRASH_CHILD" // the data directory
	crashModeEnv  = "CAIRN_DELIVERY_CRASH_MODE"  // "run" or "drain"
	crashTrail    = "crash-trail"
	crashBucket   = "crash-logs"
	crashRegion   = "us-east-1"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if err := crashChild(dir, os.Getenv(crashModeEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashRecord is record n of the crash test: three regions, management,
// data and KMS events, some of which the trail does not select.
func crashRecord(n int) []byte {
	r := rec{Region: []string{"us-east-1", "eu-west-1", "ap-south-1"}[n%3], Pad: strings.Repeat("x", n%200)}
	switch n % 5 {
	case 1:
		r.Source, r.Name, r.ReadOnly = "kms.amazonaws.com", "Decrypt", "true" // excluded source
	case 2:
		r.Source, r.Name, r.ReadOnly, r.Category = "s3.amazonaws.com", "GetObject", "true", "Data"
		r.Resources = [][2]string{{"AWS::S3::Object", "arn:aws:s3:::data/" + fmt.Sprint(n)}}
	case 3:
		r.Source, r.Name, r.ReadOnly, r.Category = "s3.amazonaws.com", "PutObject", "false", "Data"
		r.Resources = [][2]string{{"AWS::S3::Object", "arn:aws:s3:::other/" + fmt.Sprint(n)}} // not selected
	case 4:
		r.Source, r.Name, r.ReadOnly = "iam.amazonaws.com", "CreateUser", "false"
		r.Region = "us-east-1"
	}
	return r.json(n)
}

// printingStore reports every successful Put with the SHA-256 of what it
// wrote, one write(2) per line.
type printingStore struct {
	objstore.Store
	mu sync.Mutex
}

func (s *printingStore) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objstore.PutOptions) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if err := s.Store.Put(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = fmt.Fprintf(os.Stdout, "PUT %s %s\n", key, hex.EncodeToString(sum[:]))
	return err
}

type crashStores struct {
	j      *journal.Journal
	st     *state.Store
	store  objstore.Store
	trails *trail.Service
}

func openCrashStores(dir string, log *slog.Logger) (*crashStores, error) {
	ctx := context.Background()
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: log, MinFreeBytes: -1, MemTableSize: 4 << 20, CacheSize: 4 << 20})
	if err != nil {
		return nil, err
	}
	st, err := state.Open(ctx, filepath.Join(dir, "state"), state.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	fs, err := file.New(filepath.Join(dir, "buckets"), file.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	return &crashStores{j: j, st: st, store: fs, trails: trail.New(st, fs, testAccount, nil, trail.WithLogger(log))}, nil
}

func (c *crashStores) close() {
	c.j.Close()
	c.st.Close()
	c.store.Close()
}

// crashChild runs delivery; in "run" mode it also appends events until
// killed, in "drain" mode it exits once everything is delivered.
func crashChild(dir, mode string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := openCrashStores(dir, log)
	if err != nil {
		return err
	}
	defer c.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The parent holds our stdin: if it dies, so do we.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	if _, err := c.trails.ByARN(ctx, trail.TrailARN(crashRegion, testAccount, crashTrail)); err != nil {
		if err := c.store.CreateBucket(ctx, crashBucket); err != nil && !strings.Contains(err.Error(), "exists") {
			return err
		}
		if _, err := c.trails.Create(ctx, crashRegion, trail.CreateInput{Name: crashTrail, S3BucketName: crashBucket, IsMultiRegionTrail: ptr(true)}); err != nil {
			return err
		}
		if _, err := c.trails.PutEventSelectors(ctx, crashRegion, crashTrail, []selector.EventSelector{{
			ReadWriteType: ptr("All"), IncludeManagementEvents: ptr(true),
			ExcludeManagementEventSources: []string{"kms.amazonaws.com"},
			DataResources:                 []selector.DataResource{{Type: ptr("AWS::S3::Object"), Values: []string{"arn:aws:s3:::data/"}}},
		}}, nil); err != nil {
			return err
		}
		if err := c.trails.StartLogging(ctx, crashRegion, crashTrail); err != nil {
			return err
		}
	}
	var outMu sync.Mutex
	m, err := NewManager(c.j, c.st, c.trails, &printingStore{Store: c.store}, Options{
		Interval:     MinInterval,
		PollInterval: 100 * time.Millisecond,
		RetryMin:     10 * time.Millisecond,
		RetryMax:     100 * time.Millisecond,
		Logger:       log,
		testHook: func(stage string, p *Plan) {
			outMu.Lock()
			fmt.Fprintf(os.Stdout, "STAGE %s %d %d\n", stage, p.First, p.Last)
			outMu.Unlock()
			// Linger so that a kill aimed at this stage lands in it.
			time.Sleep(100 * time.Millisecond)
		},
	})
	if err != nil {
		return err
	}
	if err := m.TrailChanged(ctx); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	arn := trail.TrailARN(crashRegion, testAccount, crashTrail)
	if mode == "drain" {
		sst := stateStore{c.st}
		for {
			st, err := sst.load(ctx, arn)
			if err != nil {
				return err
			}
			if st.Plan == nil && c.j.Cursor(CursorName(arn)).Position() == c.j.LastSeq() {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			return err
		}
		fmt.Fprintln(os.Stdout, "DRAINED")
		return nil
	}
	// Entry n of the journal is record n-1: the child is the only writer
	// and every Append's entries are consecutive.
	next := int(c.j.LastSeq())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for {
		k := 1 + rng.IntN(12)
		entries := make([][]byte, k)
		for i := range entries {
			entries[i] = crashRecord(next + i)
		}
		first, err := c.j.Append(ctx, entries)
		if err != nil {
			return err
		}
		if int(first) != next+1 {
			return fmt.Errorf("append got seq %d, expected %d", first, next+1)
		}
		next += k
		time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
	}
}

// child is a running crash child.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr bytes.Buffer
}

func startChild(t *testing.T, dir, mode string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), lines: make(chan string, 1<<16)}
	c.cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashModeEnv+"="+mode)
	c.cmd.Stderr = &c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	return c
}

// kill sends SIGKILL and reaps the child.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.stdin.Close()
}

// TestKillDuringDelivery kills a delivering process with SIGKILL at every
// step of a delivery (after the plan is stored, between file writes, after
// the writes, after the cursor commit) and at random moments, restarting
// it each time, while it keeps appending events. In the end every event
// the trail selects is in exactly one delivered file, byte-identical to
// its journal entry, and every rewrite of a file was byte-identical.
func TestKillDuringDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test takes ~20 s")
	}
	dir := t.TempDir()
	stages := []string{"planned", "put", "written", "committed", "random", "put", "planned", "finished", "random", "written"}
	puts := map[string]map[string]bool{} // key -> set of SHA-256 written
	putCount := map[string]int{}
	killedAt := map[string]int{}
	record := func(line string) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "PUT" {
			if puts[f[1]] == nil {
				puts[f[1]] = map[string]bool{}
			}
			puts[f[1]][f[2]] = true
			putCount[f[1]]++
		}
	}
	for round, stage := range stages {
		c := startChild(t, dir, "run")
		deadline := time.After(20 * time.Second)
		var randomKill <-chan time.Time
		if stage == "random" {
			randomKill = time.After(time.Duration(300+rand.IntN(2500)) * time.Millisecond)
		}
	wait:
		for {
			select {
			case line, ok := <-c.lines:
				if !ok {
					c.kill()
					t.Fatalf("round %d: child exited early:\n%s", round, c.stderr.String())
				}
				record(line)
				if strings.HasPrefix(line, "STAGE "+stage+" ") {
					break wait
				}
			case <-randomKill:
				break wait
			case <-deadline:
				c.kill()
				t.Fatalf("round %d: no %q stage within 20 s:\n%s", round, stage, c.stderr.String())
			}
		}
		c.kill()
		for line := range c.lines {
			record(line) // lines written before the kill
		}
		killedAt[stage]++
	}
	// A last run appends nothing and exits once all is delivered.
	c := startChild(t, dir, "drain")
	drained := false
	timeout := time.After(60 * time.Second)
	for !drained {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("drain child exited without draining: %v\n%s", c.cmd.Wait(), c.stderr.String())
			}
			record(line)
			drained = line == "DRAINED"
		case <-timeout:
			c.kill()
			t.Fatalf("drain child did not finish:\n%s", c.stderr.String())
		}
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("drain child: %v\n%s", err, c.stderr.String())
	}
	c.stdin.Close()

	s, err := openCrashStores(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ctx := context.Background()
	arn := trail.TrailARN(crashRegion, testAccount, crashTrail)
	tr, err := s.trails.ByARN(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stateStore{s.st}.load(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Windows) != 1 || st.Windows[0] != (Window{From: 1}) || st.Plan != nil {
		t.Fatalf("delivery state %+v, want one open window from 1 and no plan", st)
	}
	sel := SelectionOf(&tr)
	entries := map[string][]byte{}
	var want []string
	total := 0
	if _, err := s.j.Read(ctx, 0, int(s.j.LastSeq()), func(seq uint64, entry []byte) error {
		total++
		r, err := event.Parse(entry)
		if err != nil {
			return err
		}
		if sel.Selects(r) {
			want = append(want, r.EventID)
			entries[r.EventID] = bytes.Clone(entry)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fs := files(t, s.store, crashBucket)
	exactlyOnce(t, delivered(t, fs), want)
	for _, f := range fs {
		checkKey(t, f.Key, "", time.Time{})
		for _, r := range f.Records {
			if id := eventIDOf(t, r); !bytes.Equal(r, entries[id]) {
				t.Errorf("%s: record %s is not its journal entry", f.Key, id)
			}
		}
		sum := sha256.Sum256(f.Raw)
		final := hex.EncodeToString(sum[:])
		for sha := range puts[f.Key] {
			if sha != final {
				t.Errorf("%s was written with different contents (%d versions)", f.Key, len(puts[f.Key]))
				break
			}
		}
	}
	rewritten := 0
	for k, n := range putCount {
		if !strings.HasPrefix(k, "AWSLogs/") {
			t.Errorf("unexpected key %s", k)
		}
		if n > 1 {
			rewritten++
		}
	}
	// Kills after a file write and before the cursor commit make the next
	// process rewrite those files.
	if rewritten < 2 {
		t.Errorf("only %d files were rewritten after a kill: the replay path was not exercised", rewritten)
	}
	t.Logf("%d kills %v; %d journal entries, %d selected, %d files, %d rewritten identically after a kill", len(stages), killedAt, total, len(want), len(fs), rewritten)
	if len(want) < 100 {
		t.Errorf("only %d selected events: the test did not exercise much", len(want))
	}
}
