package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestBenchIngestSmoke runs `cairn bench ingest` briefly against a real
// in-process server.
func TestBenchIngestSmoke(t *testing.T) {
	h := servertest.Start(t)
	var out, errOut bytes.Buffer
	args := append([]string{"ingest"}, remoteArgs(h, t)...)
	args = append(args, "--clients", "2", "--events", "1000", "--pool", "4", "--json")
	if err := runBench(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var res struct {
		Channel  string  `json:"channel"`
		Accepted int64   `json:"events_accepted"`
		Errors   int64   `json:"request_errors"`
		Rate     float64 `json:"events_per_s"`
		Latency  struct {
			P99 float64 `json:"p99_ms"`
		} `json:"latency"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Accepted != 1000 || res.Errors != 0 || !strings.Contains(res.Channel, ":channel/") || res.Latency.P99 <= 0 {
		t.Errorf("result %s", out.String())
	}

	out.Reset()
	args = append([]string{"ingest"}, remoteArgs(h, t)...)
	args = append(args, "--clients", "2", "--events", "200")
	if err := runBench(context.Background(), args, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "events acknowledged  200") {
		t.Errorf("table output:\n%s", out.String())
	}
}

// TestBenchLookupSmoke fills a little through PutAuditEvents and measures
// every key the channel events have.
func TestBenchLookupSmoke(t *testing.T) {
	h := servertest.Start(t)
	var out, errOut bytes.Buffer
	args := append([]string{"lookup"}, remoteArgs(h, t)...)
	saved := filepath.Join(t.TempDir(), "queries.json")
	args = append(args, "--fill", "600", "--fill-span", "1h", "--clients", "2", "--requests", "6", "--save-queries", saved)
	if err := runBench(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	// A later run repeats exactly the saved queries.
	var again bytes.Buffer
	args = append(append([]string{"lookup"}, remoteArgs(h, t)...), "--queries", saved, "--clients", "1", "--requests", "3")
	if err := runBench(context.Background(), args, &again, &errOut); err != nil {
		t.Fatalf("repeat with --queries: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"EventName", "ResourceName", "time range (1h)"} {
		if !strings.Contains(again.String(), want) {
			t.Errorf("--queries run lacks %q:\n%s", want, again.String())
		}
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"fill: 600 events through PutAuditEvents", "EventName", "ResourceName", "time range (1h)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "first error") {
		t.Errorf("lookups failed:\n%s", out.String())
	}
}

// TestBenchLakeSmoke runs `cairn bench lake` small: every query answers
// through the sandboxed engine and the JSON baseline, and the byte counts
// are there.
func TestBenchLakeSmoke(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runBench(context.Background(), []string{"lake", "--events", "3000", "--days", "3", "--reps", "1", "--dir", t.TempDir()}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"3000 events over 3 days", "GROUP BY eventname, all days", "needle eventid, 7 days", "useridentity.arn, 7 days", "B/event"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "failed") {
		t.Errorf("a query failed:\n%s", out.String())
	}
}

// TestBenchManual runs `cairn bench` with the arguments in CAIRN_BENCH_ARGS
// against a server started separately, for measurements before the
// command is wired into main (go test -run TestBenchManual -v ./cmd/cairn).
func TestBenchManual(t *testing.T) {
	args := os.Getenv("CAIRN_BENCH_ARGS")
	if args == "" {
		t.Skip("set CAIRN_BENCH_ARGS to run a benchmark")
	}
	fields := strings.Fields(args)
	if os.Getenv("CAIRN_BENCH_INPROC") != "" {
		// Against an in-process server, so that -test.cpuprofile sees the
		// server's side too.
		h := servertest.Start(t)
		fields = append(fields, remoteArgs(h, t)...)
	}
	if err := runBench(context.Background(), fields, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}
