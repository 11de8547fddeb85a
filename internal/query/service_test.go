package query

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
)

// slowStatement runs for minutes on the fixture: four self-joins.
func slowStatement() string {
	id := fixtureID
	return "SELECT count(*) FROM " + id + " a, " + id + " b, " + id + " c, " + id + " d WHERE a.eventid < b.eventid OR c.eventid < d.eventid"
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type svcEnv struct {
	f     *fixture
	dir   string
	st    *state.Store
	clock *clock
}

func newSvcEnv(t *testing.T) *svcEnv {
	t.Helper()
	f := newFixture(t)
	dir := t.TempDir()
	st, err := state.Open(context.Background(), filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &svcEnv{f: f, dir: dir, st: st, clock: &clock{t: time.Now()}}
}

func (e *svcEnv) open(t *testing.T, eng *Engine, mod func(*Options)) *Service {
	t.Helper()
	if eng == nil {
		eng = e.f.eng
	}
	o := Options{Engine: eng, State: e.st, Dir: filepath.Join(e.dir, "results"), Now: e.clock.now}
	if mod != nil {
		mod(&o)
	}
	s, err := NewService(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func start(t *testing.T, s *Service, stmt string) *Record {
	t.Helper()
	rec, err := s.Start(context.Background(), StartInput{Region: testRegion, AccountID: testAccount, Statement: stmt})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// wait polls a query's record until cond holds.
func wait(t *testing.T, s *Service, id string, cond func(*Record) bool) *Record {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rec, err := s.Get(context.Background(), testRegion, testAccount, id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s: still %s", id, rec.Status)
		}
		time.Sleep(10 * time.Millisecond) // polling a status
	}
}

func ended(r *Record) bool { return !r.Active() }

// TestServiceTimedOut: a query over its time limit is TIMED_OUT, DuckDB
// is interrupted (the run ends and its slot is free for the next query).
func TestServiceTimedOut(t *testing.T) {
	e := newSvcEnv(t)
	eng, err := NewEngine(context.Background(), e.f.cat, Limits{Timeout: 300 * time.Millisecond, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s := e.open(t, eng, func(o *Options) { o.MaxExecuting = 1 })
	rec := wait(t, s, start(t, s, slowStatement()).ID, ended)
	if rec.Status != StatusTimedOut || !strings.Contains(rec.ErrorMessage, "time limit") {
		t.Fatalf("status %s %q", rec.Status, rec.ErrorMessage)
	}
	// The one execution slot was released: a quick query runs.
	rec = wait(t, s, start(t, s, "SELECT count(*) FROM "+fixtureID).ID, ended)
	if rec.Status != StatusFinished {
		t.Fatalf("after a timeout: %s %q", rec.Status, rec.ErrorMessage)
	}
}

// TestServiceRestart: queries and results survive a restart; a query
// running when the service stopped is FAILED afterwards.
func TestServiceRestart(t *testing.T) {
	e := newSvcEnv(t)
	s := e.open(t, nil, func(o *Options) { o.MaxExecuting = 1 })
	done := wait(t, s, start(t, s, "SELECT eventid FROM "+fixtureID+" ORDER BY eventid LIMIT 3").ID, ended)
	slow := start(t, s, slowStatement())
	wait(t, s, slow.ID, func(r *Record) bool { return r.Status == StatusRunning })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := e.open(t, nil, nil)
	rec, err := s2.Get(context.Background(), testRegion, testAccount, slow.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusFailed || !strings.Contains(rec.ErrorMessage, "interrupted") {
		t.Fatalf("running query after restart: %s %q", rec.Status, rec.ErrorMessage)
	}
	rec, err = s2.Get(context.Background(), testRegion, testAccount, done.ID)
	if err != nil || rec.Status != StatusFinished {
		t.Fatalf("finished query after restart: %v %+v", err, rec)
	}
	page, err := s2.Results(context.Background(), rec, "", 10)
	if err != nil || len(page.Rows) != 3 || *page.Rows[0][0].Value != str(e.f.recs[0]["eventID"]) {
		t.Fatalf("results after restart: %v %+v", err, page)
	}
}

// TestServiceRetention: queries older than seven days are dropped with
// their results.
func TestServiceRetention(t *testing.T) {
	e := newSvcEnv(t)
	t0 := time.Now()
	e.clock.set(t0.Add(-8 * 24 * time.Hour))
	s := e.open(t, nil, nil)
	old := wait(t, s, start(t, s, "SELECT 1 AS x FROM "+fixtureID+" LIMIT 1").ID, ended)
	e.clock.set(t0)
	fresh := wait(t, s, start(t, s, "SELECT 2 AS x FROM "+fixtureID+" LIMIT 1").ID, ended)
	if _, err := os.Stat(filepath.Join(e.dir, "results", old.ID+".jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open(t, nil, nil) // expires at start (and hourly)
	if _, err := s.Get(context.Background(), testRegion, testAccount, old.ID); !awsproto.IsCode(err, "QueryIdNotFoundException") {
		t.Fatalf("old query: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "results", old.ID+".jsonl")); !os.IsNotExist(err) {
		t.Fatalf("old results still on disk: %v", err)
	}
	if _, err := s.Get(context.Background(), testRegion, testAccount, fresh.ID); err != nil {
		t.Fatal(err)
	}
}

// TestServiceResultBound: a query whose results exceed the bound FAILS
// and leaves no result file.
func TestServiceResultBound(t *testing.T) {
	e := newSvcEnv(t)
	s := e.open(t, nil, func(o *Options) { o.MaxResultBytes = 4096 })
	rec := wait(t, s, start(t, s, "SELECT eventjson FROM "+fixtureID).ID, ended)
	if rec.Status != StatusFailed || !strings.Contains(rec.ErrorMessage, "exceed 4096 bytes") {
		t.Fatalf("status %s %q", rec.Status, rec.ErrorMessage)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "results", rec.ID+".jsonl")); !os.IsNotExist(err) {
		t.Fatalf("result file left: %v", err)
	}
}

// TestServiceAlias: dashboard queries by QueryAlias with QueryParameters.
func TestServiceAlias(t *testing.T) {
	e := newSvcEnv(t)
	s := e.open(t, nil, func(o *Options) {
		o.Aliases = MapAliases{"events-by-name": "SELECT count(*) AS n FROM " + fixtureID + " WHERE eventname = ?"}
	})
	rec, err := s.Start(context.Background(), StartInput{Region: testRegion, AccountID: testAccount, Alias: "events-by-name", Parameters: []string{"ConsoleLogin"}})
	if err != nil {
		t.Fatal(err)
	}
	rec = wait(t, s, rec.ID, ended)
	page, err := s.Results(context.Background(), rec, "", 10)
	if err != nil || len(page.Rows) != 1 || *page.Rows[0][0].Value != "1" {
		t.Fatalf("alias query: %v %+v", err, page)
	}
	_, err = s.Start(context.Background(), StartInput{Region: testRegion, AccountID: testAccount, Alias: "events-by-name", Parameters: []string{"a", "b"}})
	if !awsproto.IsCode(err, "InvalidParameterException") {
		t.Fatalf("two parameters for one: %v", err)
	}
}
