package history

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestTrimmedBeforeIndexing: entries the journal trimmed before the history
// read them are counted as missed, and the history goes on with the rest,
// also when nothing at all is left to read.
func TestTrimmedBeforeIndexing(t *testing.T) {
	for _, trimBefore := range []uint64{5, 11} {
		t.Run(fmt.Sprint("trim before ", trimBefore), func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			j := openJournal(t, dir+"/journal")
			defer j.Close()
			var recs [][]byte
			for i := range 10 {
				recs = append(recs, mgmt(fmt.Sprintf("m%d", i), testNow.Add(-time.Duration(10-i)*time.Minute)).json())
			}
			if _, err := j.Append(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if err := j.Trim(ctx, trimBefore); err != nil {
				t.Fatal(err)
			}
			h := openHistory(t, dir+"/history", j, Options{})
			defer h.Close()
			if err := h.Start(ctx); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := h.WaitIndexed(wctx, 10); err != nil {
				t.Fatal(err)
			}
			if got, want := counterValue(t, h.metrics.missed), float64(trimBefore-1); got != want {
				t.Errorf("missed %v entries, want %v", got, want)
			}
			e := &env{t: t, h: h}
			if got, want := len(e.lookupAll(Query{Region: "us-east-1"})), int(11-trimBefore); got != want {
				t.Errorf("%d events indexed, want %d", got, want)
			}
			// Indexing goes on with new entries.
			last, err := j.Append(ctx, [][]byte{mgmt("later", testNow).json()})
			if err != nil {
				t.Fatal(err)
			}
			if err := h.WaitIndexed(wctx, last); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStartRefusesReplacedJournal: a history that is ahead of its journal
// was built from another journal; indexing would silently skip the new
// journal's first entries, so Start refuses.
func TestStartRefusesReplacedJournal(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e := &env{t: t, dir: dir, j: openJournal(t, dir+"/journal")}
	e.h = openHistory(t, dir+"/history", e.j, Options{})
	if err := e.h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.append(mgmt("a", testNow).json(), mgmt("b", testNow).json())
	e.close()

	j := openJournal(t, dir+"/journal2")
	defer j.Close()
	h := openHistory(t, dir+"/history", j, Options{})
	defer h.Close()
	err := h.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "beyond the journal") {
		t.Fatalf("Start with a replaced journal: %v", err)
	}
	// Lookups still work on what is indexed.
	if p, err := h.Lookup(ctx, Query{Region: "us-east-1"}); err != nil || len(p.Events) != 2 {
		t.Errorf("lookup: %v, %d events", err, len(p.Events))
	}
}

// TestMetricsRegistered: the metrics are exported on the Registerer and
// removed on Close, so a reopened history can register them again.
func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	ctx := context.Background()
	j := openJournal(t, dir+"/journal")
	defer j.Close()
	for round := range 2 {
		h := openHistory(t, dir+"/history", j, Options{Registerer: reg})
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		last, err := j.Append(ctx, [][]byte{mgmt(fmt.Sprint("m", round), testNow).json()})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.WaitIndexed(ctx, last); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Lookup(ctx, Query{Region: "us-east-1", Attributes: []Attribute{{"Username", "alice"}}}); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch {
				case m.GetCounter() != nil:
					got[mf.GetName()] += m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					got[mf.GetName()] += m.GetGauge().GetValue()
				case m.GetHistogram() != nil:
					got[mf.GetName()] += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		for name, want := range map[string]float64{
			"cairn_history_indexed_events_total":    1,
			"cairn_history_index_lag":               0,
			"cairn_history_cursor_position":         float64(last),
			"cairn_history_lookup_duration_seconds": 1,
		} {
			if v, ok := got[name]; !ok || v != want {
				t.Errorf("round %d: %s = %v (present %v), want %v", round, name, v, ok, want)
			}
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
