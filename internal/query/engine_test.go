package query

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cairn-audit/cairn/internal/query/querytest"
)

// collect is a Sink keeping everything.
type collect struct {
	cols []string
	rows [][]*string
}

func (c *collect) Columns(n []string) error { c.cols = n; return nil }
func (c *collect) Row(v []*string) error {
	c.rows = append(c.rows, append([]*string(nil), v...))
	return nil
}

// fixture is an engine over the datasets' store and a second store.
type fixture struct {
	eng     *Engine
	cat     *testCatalog
	recs    []record
	id      string // the datasets' store
	otherID string // a second store with a few records
	goneID  string // a store PENDING_DELETION
}

const (
	fixtureID = "0a1b2c3d-0000-4000-8000-000000000001"
	otherID   = "0a1b2c3d-0000-4000-8000-000000000002"
	goneID    = "0a1b2c3d-0000-4000-8000-000000000003"
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	recs := querytest.Fixture(t)
	dir := t.TempDir()
	cat := newTestCatalog()
	cat.add(fixtureID, writeStore(t, filepath.Join(dir, fixtureID), recs, 100), true)
	cat.add(otherID, writeStore(t, filepath.Join(dir, otherID), recs[:5], 100), true)
	cat.add(goneID, writeStore(t, filepath.Join(dir, goneID), recs[:1], 100), false)
	eng, err := NewEngine(context.Background(), cat, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return &fixture{eng: eng, cat: cat, recs: recs, id: fixtureID, otherID: otherID, goneID: goneID}
}

// run checks and runs a statement.
func (f *fixture) run(ctx context.Context, stmt string) (*collect, error) {
	q, err := f.eng.Check(ctx, testRegion, testAccount, stmt)
	if err != nil {
		return nil, err
	}
	c := &collect{}
	if _, err := f.eng.Run(ctx, q, c); err != nil {
		return nil, err
	}
	return c, nil
}
