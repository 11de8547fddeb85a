package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/golden"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestParseWhen(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
	}{
		{"1h", fixedNow.Add(-time.Hour)},
		{"30m", fixedNow.Add(-30 * time.Minute)},
		{"90s", fixedNow.Add(-90 * time.Second)},
		{"1h30m", fixedNow.Add(-90 * time.Minute)},
		{"7d", fixedNow.Add(-7 * 24 * time.Hour)},
		{"1.5d", fixedNow.Add(-36 * time.Hour)},
		{"2w", fixedNow.Add(-14 * 24 * time.Hour)},
		{"2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{"2024-05-01T10:20:30Z", time.Date(2024, 5, 1, 10, 20, 30, 0, time.UTC)},
		{"2024-05-01T12:20:30+02:00", time.Date(2024, 5, 1, 10, 20, 30, 0, time.UTC)},
	}
	for _, c := range cases {
		got, err := parseWhen(c.in, fixedNow)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-1h", "7x", "d", "2024-13-01"} {
		if _, err := parseWhen(bad, fixedNow); err == nil {
			t.Errorf("parseWhen(%q) accepted", bad)
		}
	}
}

func fixtureEvents() []types.Event {
	ev := func(id, name, user, source string, at time.Time, res ...string) types.Event {
		e := types.Event{EventId: aws.String(id), EventName: aws.String(name), EventSource: aws.String(source),
			EventTime: aws.Time(at), CloudTrailEvent: aws.String(`{"eventID":"` + id + `"}`)}
		if user != "" {
			e.Username = aws.String(user)
		}
		for _, r := range res {
			e.Resources = append(e.Resources, types.Resource{ResourceType: aws.String("AWS::X::Y"), ResourceName: aws.String(r)})
		}
		return e
	}
	return []types.Event{
		ev("6f1c2a8e-5d0b-4c55-9a3e-0d5b8f7e6a11", "ConsoleLogin", "alice", "signin.amazonaws.com", fixedNow.Add(-time.Minute)),
		ev("0b6d1f2a-8c3e-4f7a-b9d0-1e2f3a4b5c6d", "AssumeRole", "github-actions-deploy", "sts.amazonaws.com", fixedNow.Add(-time.Hour),
			"arn:aws:iam::123456789012:role/github-actions-deploy", "ASIAEXAMPLEKEY000001", "session-1"),
		ev("c0ffee00-1111-4222-8333-444455556666", "DescribeInstances", "", "ec2.amazonaws.com", fixedNow.Add(-25*time.Hour),
			"i-0123456789abcdef0"),
		ev("deadbeef-aaaa-4bbb-8ccc-dddddddddddd", "UpdateFunctionConfiguration20150331v2", "botocore-session-1717171717", "lambda.amazonaws.com", fixedNow.Add(-49*time.Hour),
			"orders-prod-handler"),
	}
}

// TestLookupTableGolden pins the table: aligned columns, no limit on a
// pipe, and resources then users cut with "…" on a narrow terminal.
func TestLookupTableGolden(t *testing.T) {
	var out bytes.Buffer
	for _, width := range []int{0, 120, 100} {
		out.WriteString("--- width " + map[int]string{0: "unlimited", 120: "120", 100: "100"}[width] + "\n")
		if err := writeEvents(&out, "table", fixtureEvents(), width, true, nil); err != nil {
			t.Fatal(err)
		}
	}
	out.WriteString("--- json\n")
	if err := writeEvents(&out, "json", fixtureEvents(), 0, true, nil); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "lookup_table.golden"), out.Bytes())
}

// lockedWriter lets a test read output a running command writes.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func remoteArgs(h *servertest.Harness, t *testing.T) []string {
	return []string{"--endpoint-url", h.URL, "--credentials-file", h.CredentialsFile(t), "--region", servertest.DefaultRegion}
}

// describeTrails makes n audited calls, which become events in the history.
func describeTrails(t *testing.T, h *servertest.Harness, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := h.CloudTrail.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON record line: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func waitForEvents(t *testing.T, h *servertest.Harness, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out lockedWriter
		err := lookupMain(context.Background(), append(remoteArgs(h, t), "--attr", "EventName="+name, "--max", "0", "--output", "json"), &out, &out, time.Now)
		if err == nil && len(jsonLines(t, out.String())) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("history has not got %d %s events: %v %s", n, name, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLookupAgainstServer(t *testing.T) {
	h := servertest.Start(t)
	describeTrails(t, h, 60)
	waitForEvents(t, h, "DescribeTrails", 60)

	var out, errOut bytes.Buffer
	args := append(remoteArgs(h, t), "--attr", "EventName=DescribeTrails", "--attr", "Username=admin", "--max", "55", "--output", "json", "--start", "1h")
	if err := lookupMain(context.Background(), args, &out, &errOut, time.Now); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	recs := jsonLines(t, out.String())
	if len(recs) != 55 {
		t.Fatalf("--max 55 printed %d records", len(recs))
	}
	for _, r := range recs {
		if r["eventName"] != "DescribeTrails" || r["eventSource"] != "cloudtrail.amazonaws.com" {
			t.Fatalf("unexpected record %v", r)
		}
	}

	out.Reset()
	args = append(remoteArgs(h, t), "--attr", "EventName=DescribeTrails", "--max", "3")
	if err := lookupMain(context.Background(), args, &out, &errOut, time.Now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME ") || !strings.Contains(lines[1], "DescribeTrails  admin  cloudtrail") {
		t.Errorf("table:\n%s", out.String())
	}

	out.Reset()
	args = append(remoteArgs(h, t), "--attr", "EventName=NoSuchEvent")
	if err := lookupMain(context.Background(), args, &out, &errOut, time.Now); err != nil || out.String() != "No events.\n" {
		t.Errorf("empty result: %q, %v", out.String(), err)
	}

	// The read-only key may look up (LookupEvents is read-only).
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.WriteFile(ro, []byte("[auditor]\naws_access_key_id = "+h.ReadOnlyKeyID+"\naws_secret_access_key = "+h.ReadOnlySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	args = []string{"--endpoint-url", h.URL, "--credentials-file", ro, "--profile", "auditor", "--attr", "EventName=DescribeTrails", "--max", "1", "--output", "json"}
	if err := lookupMain(context.Background(), args, &out, &errOut, time.Now); err != nil || len(jsonLines(t, out.String())) != 1 {
		t.Errorf("read-only lookup: %v %q", err, out.String())
	}

	if err := lookupMain(context.Background(), append(remoteArgs(h, t), "--attr", "NoEquals"), &out, &errOut, time.Now); err == nil {
		t.Error("--attr without = accepted")
	}
	err := lookupMain(context.Background(), append(remoteArgs(h, t), "--attr", "Bogus=x"), &out, &errOut, time.Now)
	if err == nil || !strings.Contains(err.Error(), "InvalidLookupAttributes") {
		t.Errorf("bad attribute key: %v", err)
	}
}

// TestLookupFollow follows the history while new events arrive: each is
// printed once, in time order, after the ones that existed before.
func TestLookupFollow(t *testing.T) {
	h := servertest.Start(t)
	describeTrails(t, h, 3)
	waitForEvents(t, h, "DescribeTrails", 3)

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedWriter
	done := make(chan error, 1)
	go func() {
		done <- lookupMain(ctx, append(remoteArgs(h, t), "-f", "--interval", "100ms", "--attr", "EventName=DescribeTrails", "--output", "json"), &out, &errOut, time.Now)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for len(jsonLines(t, out.String())) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	describeTrails(t, h, 4)
	for len(jsonLines(t, out.String())) < 7 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond) // a few more polls: nothing may repeat
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow: %v %s", err, errOut.String())
	}
	recs := jsonLines(t, out.String())
	if len(recs) != 7 {
		t.Fatalf("followed %d events, want 7 (3 before + 4 new):\n%s", len(recs), out.String())
	}
	seen := map[any]bool{}
	for i, r := range recs {
		if seen[r["eventID"]] {
			t.Errorf("event %v printed twice", r["eventID"])
		}
		seen[r["eventID"]] = true
		if i > 0 && r["eventTime"].(string) < recs[i-1]["eventTime"].(string) {
			t.Errorf("follow output is not in time order at %d", i)
		}
	}
}

// TestLookupTimesAreTotal runs the real binary against a `cairn serve`
// child: times beyond what the SDK carries (int64 nanoseconds, 1678-2262)
// are clamped instead of wrapping around, so `--end 9999-12-31` and
// `--start 0001-01-01` mean "unbounded" and find today's events, and an age
// longer than a Duration reaches back past every event.
func TestLookupTimesAreTotal(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	if _, err := sdkClient(t, dataDir, srv.URL).DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Fatal(err)
	}
	remote := []string{"lookup", "--endpoint-url", srv.URL, "--data-dir", dataDir, "--attr", "EventName=DescribeTrails", "--output", "json"}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(runCairn(t, work, remote...), `"eventName":"DescribeTrails"`) {
		if time.Now().After(deadline) {
			t.Fatal("the DescribeTrails call never reached the history")
		}
	}
	for _, bounds := range [][]string{
		{"--end", "9999-12-31"},
		{"--end", "9999-12-31T23:59:59Z"},
		{"--start", "0001-01-01", "--end", "9999-12-31"},
		{"--start", "100000000w"},
		{"--start", "1e300d"},
	} {
		out := runCairn(t, work, append(remote, bounds...)...)
		if !strings.Contains(out, `"eventName":"DescribeTrails"`) {
			t.Errorf("lookup %v: the event is missing: %q", bounds, out)
		}
	}
	for _, bad := range [][]string{{"--start", "NaNd"}, {"--start", "Infw"}, {"-f", "--interval", "0s"}} {
		out := runCairnFails(t, work, append(remote, bad...)...)
		if !strings.Contains(out, bad[len(bad)-1]) {
			t.Errorf("lookup %v: the error does not name the value: %q", bad, out)
		}
	}
}

// A record stored with a time the SDK cannot carry is printed with the
// time the record states, not the SDK's wrapped-around one.
func TestLookupTablePrintsTheRecordsTime(t *testing.T) {
	far := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	wrapped := time.Unix(0, far.UnixNano()).UTC() // what the SDK makes of it
	e := types.Event{EventId: aws.String("x"), EventName: aws.String("N"), EventTime: aws.Time(wrapped),
		CloudTrailEvent: aws.String(`{"eventID":"x","eventTime":"9999-12-31T23:59:59Z"}`)}
	if got := eventRow(e, nil)[0]; got != "9999-12-31 23:59:59" {
		t.Errorf("time column %q, want the record's 9999-12-31 23:59:59 (the SDK said %s)", got, wrapped)
	}
}

// TestLookupShowsImportProvenance runs the real binary against a `cairn
// serve` child: events brought in by `cairn import` are marked in the
// table and carry "cairnProvenance" (which import, which key, when) at the
// end of their JSON line, after the record's members as imported; native
// events show neither.
func TestLookupShowsImportProvenance(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	if _, err := sdkClient(t, dataDir, srv.URL).DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	rec := `{"eventVersion":"1.08","eventID":"prov-1","eventTime":"` + at + `","eventName":"DescribeTrails","eventSource":"cloudtrail.amazonaws.com","awsRegion":"us-east-1","eventType":"AwsApiCall","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAIMPORTED"}}`
	path := filepath.Join(work, "one.jsonl")
	if err := os.WriteFile(path, []byte(rec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runCairn(t, work, "import", "--endpoint-url", srv.URL, "--data-dir", dataDir, path)
	remote := []string{"lookup", "--endpoint-url", srv.URL, "--data-dir", dataDir, "--attr", "EventName=DescribeTrails"}
	var lines []string
	deadline := time.Now().Add(20 * time.Second)
	for len(lines) < 2 {
		lines = strings.Split(strings.TrimSpace(runCairn(t, work, append(remote, "--output", "json")...)), "\n")
		if time.Now().After(deadline) {
			t.Fatalf("want the native and the imported DescribeTrails: %q", lines)
		}
	}
	var sawImported, sawNative bool
	for _, l := range lines {
		if !strings.Contains(l, `"eventID":"prov-1"`) {
			sawNative = true
			if strings.Contains(l, "cairnProvenance") {
				t.Errorf("native event carries provenance: %s", l)
			}
			continue
		}
		sawImported = true
		if !strings.HasPrefix(l, strings.TrimSuffix(rec, "}")+`,"cairnProvenance":{"source":"import","importId":"`) {
			t.Errorf("imported event's line:\n got %s\nwant the imported record, then cairnProvenance", l)
		}
		var p struct {
			CairnProvenance struct {
				AccessKeyID string `json:"accessKeyId"`
				ImportTime  string `json:"importTime"`
				Sha256      string `json:"sha256"`
			} `json:"cairnProvenance"`
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		var creds []byte
		creds, _ = os.ReadFile(filepath.Join(dataDir, "credentials"))
		if c := p.CairnProvenance; c.AccessKeyID == "" || !strings.Contains(string(creds), c.AccessKeyID) || c.ImportTime == "" || len(c.Sha256) != 64 {
			t.Errorf("provenance %+v does not name the admin key, the time and the SHA-256", c)
		}
	}
	if !sawImported || !sawNative {
		t.Fatalf("lines: %q", lines)
	}
	table := runCairn(t, work, remote...)
	if !strings.Contains(table, "prov-1 [imported]") || strings.Count(table, "[imported]") != 1 {
		t.Errorf("table does not mark exactly the imported event:\n%s", table)
	}
}
