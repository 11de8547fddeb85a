package query

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/query/querytest"
	"github.com/cairn-audit/cairn/internal/state"
)

// killChildEnv names the directory of the child process of
// TestServiceSurvivesKill.
const killChildEnv = "CAIRN_QUERY_KILL_CHILD"

// killSetup opens, in dir, the fixture store, an engine and a service.
func killSetup(t *testing.T, dir string) (*testCatalog, *state.Store, *Service) {
	t.Helper()
	ctx := context.Background()
	cat := newTestCatalog()
	files, _ := filepath.Glob(filepath.Join(dir, "store", "*.parquet"))
	if len(files) == 0 {
		files = writeStore(t, filepath.Join(dir, "store"), querytest.Fixture(t), 100)
	}
	cat.add(fixtureID, files, true)
	eng, err := NewEngine(ctx, cat, Limits{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	st, err := state.Open(ctx, filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := NewService(ctx, Options{Engine: eng, State: st, Dir: filepath.Join(dir, "results"), MaxExecuting: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return cat, st, svc
}

// TestServiceSurvivesKill kills, with SIGKILL, a process that finished
// one query and is running another; a service opened on the same state
// afterwards serves the finished query's results and has the running one
// FAILED.
func TestServiceSurvivesKill(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		_, _, svc := killSetup(t, dir)
		done := wait(t, svc, start(t, svc, "SELECT eventid FROM "+fixtureID+" ORDER BY eventid").ID, ended)
		slow := start(t, svc, slowStatement())
		wait(t, svc, slow.ID, func(r *Record) bool { return r.Status == StatusRunning })
		if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(done.ID+" "+slow.ID), 0o600); err != nil {
			t.Fatal(err)
		}
		select {} // until killed
	}
	dir := t.TempDir()
	querytest.Fixture(t) // skip (or fail under CI) here rather than in the child
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestServiceSurvivesKill$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "ready"))
		if err == nil {
			ids = strings.Fields(string(b))
			break
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("child not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the child's file
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, _, svc := killSetup(t, dir)
	ctx := context.Background()
	slow, err := svc.Get(ctx, testRegion, testAccount, ids[1])
	if err != nil || slow.Status != StatusFailed {
		t.Fatalf("running query after SIGKILL: %v %+v", err, slow)
	}
	done, err := svc.Get(ctx, testRegion, testAccount, ids[0])
	if err != nil || done.Status != StatusFinished {
		t.Fatalf("finished query after SIGKILL: %v %+v", err, done)
	}
	page, err := svc.Results(ctx, done, "", 1000)
	if err != nil || int64(len(page.Rows)) != done.ResultsCount || done.ResultsCount == 0 {
		t.Fatalf("results after SIGKILL: %v, %d rows of %d", err, len(page.Rows), done.ResultsCount)
	}
}
