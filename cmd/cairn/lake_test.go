package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLakeCommands drives `cairn lake` and `cairn query` against a real
// `cairn serve`: create a store, list it, import trail log files into it
// with --wait, list the import, and query the imported events (the store
// also takes Cairn's own management events: it selects them by default).
func TestLakeCommands(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	remote := []string{"--endpoint-url", srv.URL, "--data-dir", dataDir}
	lake := func(args ...string) string {
		return runCairn(t, work, append(append([]string{"lake"}, args...), remote...)...)
	}
	if out := lake("create", "copied", "--retention", "30", "--no-protection"); !strings.Contains(out, ":eventdatastore/") || !strings.Contains(out, "CREATED") {
		t.Errorf("lake create: %q", out)
	}
	if out := lake("stores"); !strings.Contains(out, "copied") || !strings.Contains(out, "ENABLED") || !strings.Contains(out, "30d") || !strings.Contains(out, "false") {
		t.Errorf("lake stores: %q", out)
	}
	putTrailLogs(t, filepath.Join(dataDir, "buckets"), "old-trail", 3, 50)
	if out := lake("import", "--store", "copied", "--wait", "s3://old-trail"); !strings.Contains(out, "COMPLETED: 1/1 prefixes, 3 files, 150 events, 0 failed") {
		t.Errorf("lake import --wait: %q", out)
	}
	if out := lake("imports"); !strings.Contains(out, "COMPLETED") {
		t.Errorf("lake imports: %q", out)
	}
	out := runCairn(t, work, append([]string{"query", "--quiet", "--store", "copied", "--output", "csv",
		"SELECT eventname, count(*) AS n FROM $EDS_ID WHERE eventsource = 's3.amazonaws.com' GROUP BY 1"}, remote...)...)
	if out != "eventname,n\nGetObject,150\n" {
		t.Errorf("cairn query: %q", out)
	}
	if out := runCairnFails(t, work, append([]string{"query", "--quiet", "SELECT * FROM read_csv('/etc/passwd')"}, remote...)...); !strings.Contains(out, "InvalidQueryStatementException") {
		t.Errorf("cairn query of an escape: %q", out)
	}
}
