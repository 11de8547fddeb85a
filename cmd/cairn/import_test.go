package main

import (
	"bytes"
	"context"
	"errors"
	"github.com/cairn-audit/cairn/internal/datasets"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestImportDatasets imports every Stratus and flaws2 file by directory,
// then finds each management record by its EventId in its own region
// (history retention is stretched: the data sets are years old).
func TestImportDatasets(t *testing.T) {
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.HistoryRetention = 20 * 365 * 24 * time.Hour }})
	root := datasets.Dir(t)
	dirs := []string{filepath.Join(root, "stratus-red-team-detonation-logs"), filepath.Join(root, "flaws2-cloud")}
	var out, errOut bytes.Buffer
	if err := runImport(context.Background(), append(remoteArgs(h, t), dirs...), &out, &errOut); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Imported 43 files") || !strings.Contains(out.String(), "Accepted: 347\nRejected: 0\n") {
		t.Fatalf("summary:\n%s", out.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("progress output on a non-terminal: %q", errOut.String())
	}

	files, err := importFiles(dirs)
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ id, region string }
	var mgmt []want
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		err = event.ReadRecords(fh, func(raw []byte) error {
			r, err := event.Parse(raw)
			if err == nil && r.IsManagementEvent() && r.EventID != "" {
				mgmt = append(mgmt, want{r.EventID, r.AWSRegion})
			}
			return err
		})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(mgmt) < 300 {
		t.Fatalf("only %d management records in the data sets", len(mgmt))
	}
	// The records keep their anonymised regions, which no request can be
	// signed for (Cairn serves known regions only): the history is read
	// directly, as the console's region picker reads it.
	ctx := context.Background()
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	for _, w := range mgmt {
		got, err := h.Server.History().Lookup(ctx, history.Query{Region: w.region, Attributes: []history.Attribute{{Key: "EventId", Value: w.id}}})
		if err != nil {
			t.Fatalf("lookup %s in %s: %v", w.id, w.region, err)
		}
		if len(got.Events) != 1 {
			t.Fatalf("imported event %s (%s) is not in the history", w.id, w.region)
		}
	}
	_, err = h.Client(h.AdminKeyID, h.AdminSecret, mgmt[0].region).LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String(mgmt[0].id)}}})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Errorf("LookupEvents signed for the anonymised region %s: %v, want InvalidSignatureException", mgmt[0].region, err)
	}
	t.Logf("%d imported management events found by EventId", len(mgmt))
}

// TestImportReportsRejections: bad records are listed as file:line, the
// good ones are imported, and the command exits 1.
func TestImportReportsRejections(t *testing.T) {
	h := servertest.Start(t)
	dir := t.TempDir()
	now := time.Now().UTC().Format(time.RFC3339)
	good := func(id string) string {
		return `{"eventVersion":"1.09","eventID":"` + id + `","eventTime":"` + now + `","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","awsRegion":"us-east-1","readOnly":true,"eventType":"AwsApiCall"}`
	}
	lines := []string{good("a1"), good("a2"), `{"eventTime":"` + now + `"}`, good("a3"), `{"eventName":"X","eventTime":"yesterday"}`}
	path := filepath.Join(dir, "mixed.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := runImport(context.Background(), append(remoteArgs(h, t), "--batch", "2", path), &out, &errOut)
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 {
		t.Fatalf("exit %v, want exitCode(1)\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"Records: 5\nAccepted: 3\n", "Rejected: 2\n", path + ":3: invalid CloudTrail record", path + ":5: invalid CloudTrail record"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	got, lerr := h.CloudTrail.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String("a3")}}})
	_ = got
	if lerr != nil {
		t.Fatal(lerr)
	}
}

// TestImportRefusesReadOnlyKey: the server refuses the import and the
// command says why.
func TestImportRefusesReadOnlyKey(t *testing.T) {
	h := servertest.Start(t)
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.WriteFile(ro, []byte("[cairn]\naws_access_key_id = "+h.ReadOnlyKeyID+"\naws_secret_access_key = "+h.ReadOnlySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "one.json")
	rec := `{"eventID":"b1","eventTime":"2024-01-01T00:00:00Z","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","awsRegion":"us-east-1"}`
	if err := os.WriteFile(path, []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := runImport(context.Background(), []string{"--endpoint-url", h.URL, "--credentials-file", ro, path}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("read-only import: %v, want AccessDeniedException", err)
	}
}

func TestImportFileSelection(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.json", "b.json.gz", "c.jsonl", "d.NDJSON", "notes.txt", "sub/e.json"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := importFiles([]string{dir, filepath.Join(dir, "notes.txt")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		names = append(names, rel)
	}
	if got := strings.Join(names, " "); got != "a.json b.json.gz c.jsonl d.NDJSON sub/e.json notes.txt" {
		t.Errorf("files: %s", got)
	}
	if _, err := importFiles([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing path was accepted")
	}
}

// TestImportJSONLinesReadsEveryLine runs the real binary against a
// `cairn serve` child: a JSON Lines file (named .json, recognised by its
// first line) with bad lines between good ones. Every line is read, every
// bad one is reported with its file and line number, the totals add up to
// the file's non-blank lines, and the good records after the bad lines are
// in the event history.
func TestImportJSONLinesReadsEveryLine(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	good := func(id string) string {
		return `{"eventVersion":"1.09","eventID":"` + id + `","eventTime":"` + at + `","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","awsRegion":"us-east-1","readOnly":true,"eventType":"AwsApiCall"}`
	}
	lines := []string{
		good("l1"),
		`this line is not JSON`,
		good("l3"),
		``,
		`{"eventTime":"` + at + `"}`,
		good("l6"),
		`{"eventID":"l7","eventTime":"` + at + `","eventName":"GetCallerIdentity"}`,
		`{"eventID":"l8","eventTime":`,
		good("l9"),
	}
	path := filepath.Join(work, "export.json")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runCairnFails(t, work, "import", "--endpoint-url", srv.URL, "--data-dir", dataDir, "--batch", "2", path)
	for _, want := range []string{
		"Records: 8\nAccepted: 4\nRejected: 4\n",
		path + ":2: invalid CloudTrail record: not a JSON object",
		path + ":5: invalid CloudTrail record: eventName: missing",
		path + ":7: invalid CloudTrail record: awsRegion: missing",
		path + ":8: invalid CloudTrail record",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The history indexes after the import is acknowledged: wait for each.
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range []string{"l1", "l3", "l6", "l9"} {
		for {
			got := runCairn(t, work, "lookup", "--endpoint-url", srv.URL, "--data-dir", dataDir, "--attr", "EventId="+id, "--output", "json")
			if strings.Contains(got, `"eventID":"`+id+`"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("record on the line of %s is not in the history: %q", id, got)
			}
		}
	}
}
