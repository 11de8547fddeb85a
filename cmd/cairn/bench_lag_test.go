package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// benchIngestJSON is the part of `cairn bench ingest --json` the lag tests
// read.
type benchIngestJSON struct {
	Accepted   int64   `json:"events_accepted"`
	Rate       float64 `json:"events_per_s"`
	TargetRate float64 `json:"target_events_per_s"`
	LoadGen    *struct {
		CPUSec     float64 `json:"cpu_s"`
		MachinePct float64 `json:"cpu_pct_of_machine"`
		Cores      int     `json:"cores"`
	} `json:"load_generator"`
	Lag *struct {
		Samples        int      `json:"samples"`
		ScrapeErrors   int      `json:"scrape_errors"`
		AtEnd          int64    `json:"lag_at_end"`
		AtEndSec       float64  `json:"lag_at_end_s"`
		Max            int64    `json:"lag_max"`
		CatchUpSec     *float64 `json:"catch_up_s"`
		LagAfterWait   int64    `json:"lag_after_wait"`
		CursorStart    int64    `json:"cursor_start"`
		CursorEnd      int64    `json:"cursor_end"`
		CursorCaughtUp int64    `json:"cursor_caught_up"`
	} `json:"history_lag"`
	Server *struct {
		PID    int     `json:"pid"`
		PeakMB float64 `json:"peak_rss_during_run_mb"`
	} `json:"server"`
	ServerCPU *struct {
		PID     int `json:"pid"`
		Sending struct {
			CPUSec float64 `json:"cpu_s"`
		} `json:"sending"`
		UntilCaughtUp *struct {
			CPUSec float64 `json:"cpu_s"`
		} `json:"until_caught_up"`
	} `json:"server_cpu"`
}

// TestBenchIngestHistoryLag runs `cairn bench ingest` against a `cairn
// serve` child and checks the history-lag report against what the run
// must have done: the history's cursor advanced past every acknowledged
// event by the time the report says it caught up, with no lag left; the
// server's CPU and RSS were read from its process and this process's CPU
// share is a share. A second run checks that --rate holds the senders back.
func TestBenchIngestHistoryLag(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	remote := []string{"--endpoint-url", srv.URL, "--data-dir", dataDir}
	ctx := context.Background()

	var out, errOut bytes.Buffer
	args := append(append([]string{"ingest"}, remote...), "--clients", "4", "--events", "6000", "--pool", "8", "--catch-up-timeout", "60s", "--json")
	if err := runBench(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Logf("%s%s", out.String(), errOut.String())
	var res benchIngestJSON
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Accepted != 6000 {
		t.Fatalf("%d events acknowledged, want 6000", res.Accepted)
	}
	l := res.Lag
	switch {
	case l == nil:
		t.Fatal("no history_lag in the output")
	case l.Samples < 2 || l.ScrapeErrors != 0:
		t.Errorf("%d scrapes of /metrics, %d failed", l.Samples, l.ScrapeErrors)
	case l.CatchUpSec == nil || *l.CatchUpSec < 0:
		t.Errorf("catch_up_s %v: the history of a server that took 6,000 events did not catch up in 60s", l.CatchUpSec)
	case l.LagAfterWait != 0:
		t.Errorf("lag after catching up %d, want 0", l.LagAfterWait)
	case l.Max < l.AtEnd || l.AtEnd < 0 || l.AtEndSec < 0:
		t.Errorf("lag at end %d (%.2fs), max %d", l.AtEnd, l.AtEndSec, l.Max)
	case l.CursorCaughtUp-l.CursorStart < res.Accepted:
		// Every event is one journal entry, so a report that reads the
		// right gauges saw the cursor pass all of them.
		t.Errorf("the history's cursor went from %d to %d when caught up: fewer than the %d events acknowledged", l.CursorStart, l.CursorCaughtUp, res.Accepted)
	case l.CursorEnd+l.AtEnd < l.CursorStart+res.Accepted:
		t.Errorf("at the end of the sending cursor %d + lag %d < cursor at start %d + %d events", l.CursorEnd, l.AtEnd, l.CursorStart, res.Accepted)
	}
	if g := res.LoadGen; g == nil || g.Cores < 1 || g.MachinePct < 0 || g.MachinePct > 100 {
		t.Errorf("load generator CPU share %+v", g)
	}
	if s := res.Server; s == nil || s.PID != srv.cmd.Process.Pid || s.PeakMB <= 0 {
		t.Errorf("server memory %+v, want the child's (pid %d)", s, srv.cmd.Process.Pid)
	}
	if c := res.ServerCPU; c == nil || c.PID != srv.cmd.Process.Pid || c.Sending.CPUSec <= 0 || c.UntilCaughtUp == nil || c.UntilCaughtUp.CPUSec < c.Sending.CPUSec {
		t.Errorf("server CPU %+v", c)
	}

	// The senders are paced to --rate: 2,000 events in batches of 100 at
	// 4,000/s are scheduled over 475 ms, so they cannot be acknowledged
	// faster than about 4,200/s (slower is a loaded machine, not a fault).
	out.Reset()
	args = append(append([]string{"ingest"}, remote...), "--clients", "4", "--events", "2000", "--rate", "4000", "--pool", "4", "--catch-up-timeout", "0")
	if err := runBench(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Logf("%s", out.String())
	for _, want := range []string{"target 4000 events/s", "events acknowledged  2000", "history lag at end", "history lag trend", "history indexed", "load generator CPU", "server CPU"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table output lacks %q", want)
		}
	}
	out.Reset()
	args = append(append([]string{"ingest"}, remote...), "--clients", "4", "--events", "2000", "--rate", "4000", "--pool", "4", "--catch-up-timeout", "0", "--json")
	if err := runBench(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	res = benchIngestJSON{}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.TargetRate != 4000 || res.Rate > 4400 {
		t.Errorf("--rate 4000: target %.0f, achieved %.0f events/s", res.TargetRate, res.Rate)
	}
	srv.stop(t)
}
