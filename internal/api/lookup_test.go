package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/journal"
)

// The -update flag regenerates golden files; whichever test file of the
// package initialises first registers it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func lookupUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// lookupNow is the clock of the LookupEvents tests: nine days after the
// Stratus records in testdata/lookup_records.json, well inside the retention.
var lookupNow = time.Date(2024, 8, 10, 0, 0, 0, 0, time.UTC)

const (
	lookupIAMRegion = "ap-isob-central-3r" // 3 IAM events at 2024-08-01T13:33:28Z
	lookupOrgRegion = "euiso-south-3r"     // 2 AssumeRole + LeaveOrganization, 2024-08-02T08:29:59-08:30:00Z
)

// lookupEnv is a real journal and event history in a temporary directory,
// fed with the six Stratus Red Team records of testdata/lookup_records.json
// (from aws.persistence.iam-create-admin-user.json and
// aws.defense-evasion.organizations-leave.json, Apache-2.0).
type lookupEnv struct {
	t   *testing.T
	j   *journal.Journal
	h   *history.History
	reg *api.Registry
	// records are the original records by eventID.
	records map[string]json.RawMessage
}

func newLookupEnv(t *testing.T) *lookupEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: log, MinFreeBytes: -1})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	h, err := history.Open(ctx, filepath.Join(dir, "history"), j, history.Options{Logger: log, Now: func() time.Time { return lookupNow }})
	if err != nil {
		t.Fatalf("open history: %v", err)
	}
	t.Cleanup(func() {
		_ = h.Close()
		_ = j.Close()
	})
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := api.NewRegistry(api.LookupOperations(h))
	if err != nil {
		t.Fatal(err)
	}
	e := &lookupEnv{t: t, j: j, h: h, reg: reg, records: map[string]json.RawMessage{}}

	b, err := os.ReadFile(filepath.Join("testdata", "lookup_records.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for _, r := range recs {
		var c bytes.Buffer
		if err := json.Compact(&c, r); err != nil {
			t.Fatal(err)
		}
		var id struct{ EventID string }
		_ = json.Unmarshal(r, &id)
		e.records[id.EventID] = r
		entries = append(entries, c.Bytes())
	}
	first, err := j.Append(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.WaitIndexed(wctx, first+uint64(len(entries))-1); err != nil {
		t.Fatal(err)
	}
	return e
}

// call runs LookupEvents through the registry as the server does.
func (e *lookupEnv) call(region, body string) ([]byte, *awsproto.Error) {
	e.t.Helper()
	op, ok := e.reg.Lookup("LookupEvents")
	if !ok || !op.ReadOnly {
		e.t.Fatal("LookupEvents is not registered as a read-only operation")
	}
	req := &api.Request{Operation: "LookupEvents", Region: region, AccountID: "229654561268", RequestID: "req-1", Time: lookupNow}
	out, err := op.Handle(context.Background(), req, []byte(body))
	if err != nil {
		ae := awsproto.AsError(err)
		if ae.Code == "InternalFailure" {
			e.t.Fatalf("LookupEvents %s: internal failure: %v", body, err)
		}
		return nil, ae
	}
	b, encErr := api.Encode(out)
	if encErr != nil {
		e.t.Fatal(encErr)
	}
	return b, nil
}

// lookupOut is the decoded response, for assertions.
type lookupOut struct {
	Events []struct {
		EventId, EventName, ReadOnly, AccessKeyId, EventSource, Username string
		EventTime                                                        json.Number
		Resources                                                        []struct{ ResourceType, ResourceName string }
		CloudTrailEvent                                                  string
	}
	NextToken *string
}

var tokenRE = regexp.MustCompile(`"NextToken": "[^"]*"`)

// TestLookupEventsGolden pins the wire form of LookupEvents responses and
// errors. NextTokens are random per database, so the transcript shows them
// as <token>; the calls that continue a query substitute the real one for
// $TOKEN.
func TestLookupEventsGolden(t *testing.T) {
	e := newLookupEnv(t)
	var buf bytes.Buffer
	token := ""
	calls := []struct{ title, region, body string }{
		{"everything in a region, newest first", lookupOrgRegion, `{}`},
		{"by EventName", lookupIAMRegion, `{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"CreateUser"}]}`},
		{"by ResourceName, one per page", lookupIAMRegion, `{"LookupAttributes":[{"AttributeKey":"ResourceName","AttributeValue":"malicious-iam-user"}],"MaxResults":1}`},
		{"next page with the token", lookupIAMRegion, `{"LookupAttributes":[{"AttributeKey":"ResourceName","AttributeValue":"malicious-iam-user"}],"MaxResults":2,"NextToken":"$TOKEN"}`},
		{"time range, epoch seconds, inclusive at both ends", lookupOrgRegion, `{"StartTime":1722587399,"EndTime":1722587399}`},
		{"AND of two attributes (Cairn extension)", lookupOrgRegion, `{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"AssumeRole"},{"AttributeKey":"ReadOnly","AttributeValue":"true"}],"StartTime":"2024-08-02T08:30:00Z"}`},
		{"by EventId in another region finds nothing", lookupOrgRegion, `{"LookupAttributes":[{"AttributeKey":"EventId","AttributeValue":"3346344c-5a3e-429e-8405-420f98f75d6e"}]}`},
		{"Insights events", lookupIAMRegion, `{"EventCategory":"insight"}`},
		{"unknown attribute key", lookupIAMRegion, `{"LookupAttributes":[{"AttributeKey":"UserName","AttributeValue":"x"}]}`},
		{"empty attribute value", lookupIAMRegion, `{"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":""}]}`},
		{"attribute without a value", lookupIAMRegion, `{"LookupAttributes":[{"AttributeKey":"Username"}]}`},
		{"end before start", lookupIAMRegion, `{"StartTime":1722519209,"EndTime":1722519208}`},
		{"MaxResults 0", lookupIAMRegion, `{"MaxResults":0}`},
		{"MaxResults 51", lookupIAMRegion, `{"MaxResults":51}`},
		{"EventCategory other than insight", lookupIAMRegion, `{"EventCategory":"Management"}`},
		{"token reused with other parameters", lookupIAMRegion, `{"LookupAttributes":[{"AttributeKey":"ResourceName","AttributeValue":"christophe"}],"NextToken":"$TOKEN"}`},
		{"garbage token", lookupIAMRegion, `{"NextToken":"not-a-token"}`},
		{"timestamp that is not one", lookupIAMRegion, `{"StartTime":"yesterday"}`},
	}
	for _, c := range calls {
		body := strings.ReplaceAll(c.body, "$TOKEN", token)
		out, err := e.call(c.region, body)
		fmt.Fprintf(&buf, "### %s\n%s LookupEvents %s\n", c.title, c.region, c.body)
		if err != nil {
			fmt.Fprintf(&buf, "-> HTTP %d\n", err.HTTPStatus())
			b, _ := json.MarshalIndent(struct {
				Type    string `json:"__type"`
				Message string
			}{err.Code, err.Message}, "", "  ")
			buf.Write(b)
		} else {
			var o lookupOut
			if err := json.Unmarshal(out, &o); err != nil {
				t.Fatal(err)
			}
			if o.NextToken != nil {
				token = *o.NextToken
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteString("-> HTTP 200\n")
			buf.Write(tokenRE.ReplaceAll(pretty.Bytes(), []byte(`"NextToken": "<token>"`)))
		}
		buf.WriteString("\n\n")
	}
	path := filepath.Join("testdata", "lookup_events.golden")
	if lookupUpdate() {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./internal/api -run TestLookupEventsGolden -update to create it): %v", err)
	}
	if got := buf.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run with -update and review the diff)", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length: got %d lines, want %d", path, len(gl), len(wl))
	}
}

// TestLookupEventsCloudTrailEvent: every record comes back, by EventId in
// its region, with CloudTrailEvent equal to the original record and the
// Event members derived from it.
func TestLookupEventsCloudTrailEvent(t *testing.T) {
	e := newLookupEnv(t)
	for id, orig := range e.records {
		var r struct {
			AWSRegion string `json:"awsRegion"`
			EventTime string `json:"eventTime"`
			EventName string `json:"eventName"`
		}
		_ = json.Unmarshal(orig, &r)
		out, aerr := e.call(r.AWSRegion, `{"LookupAttributes":[{"AttributeKey":"EventId","AttributeValue":"`+id+`"}]}`)
		if aerr != nil {
			t.Fatalf("%s: %v", id, aerr)
		}
		var o lookupOut
		if err := json.Unmarshal(out, &o); err != nil {
			t.Fatal(err)
		}
		if len(o.Events) != 1 {
			t.Fatalf("%s: %d events", id, len(o.Events))
		}
		ev := o.Events[0]
		if !jsonEquivalent(t, []byte(ev.CloudTrailEvent), orig) {
			t.Errorf("%s: CloudTrailEvent differs from the record", id)
		}
		tm, _ := time.Parse(time.RFC3339, r.EventTime)
		if ev.EventTime.String() != fmt.Sprint(tm.Unix()) || ev.EventName != r.EventName || ev.EventId != id {
			t.Errorf("%s: EventTime %s EventName %s", id, ev.EventTime, ev.EventName)
		}
	}
}

func jsonEquivalent(t *testing.T, a, b []byte) bool {
	t.Helper()
	dec := func(x []byte) any {
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	ja, _ := json.Marshal(dec(a))
	jb, _ := json.Marshal(dec(b))
	return bytes.Equal(ja, jb)
}

// lookupServer serves the registry over HTTP with the JSON 1.1 framing, so
// the real aws-sdk-go-v2 client (serializer, deserializer, paginator, typed
// errors) can talk to LookupEvents. Authentication is the server package's
// business and is not exercised here.
func (e *lookupEnv) server() *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		name := target[strings.LastIndexByte(target, '.')+1:]
		// The region is the one of the SigV4 credential scope.
		m := regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/`).FindStringSubmatch(r.Header.Get("Authorization"))
		if m == nil {
			awsproto.WriteError(w, "req", awsproto.ContentTypeJSON11, awsproto.Errorf("MissingAuthenticationTokenException", "no credential scope"))
			return
		}
		op, ok := e.reg.Lookup(name)
		if !ok {
			awsproto.WriteError(w, "req", awsproto.ContentTypeJSON11, awsproto.Errorf("UnknownOperationException", "%s", name))
			return
		}
		body, _ := io.ReadAll(r.Body)
		out, err := op.Handle(r.Context(), &api.Request{Operation: name, Region: m[1], RequestID: "req"}, body)
		if err != nil {
			awsproto.WriteError(w, "req", awsproto.ContentTypeJSON11, err)
			return
		}
		awsproto.WriteJSON11(w, "req", out)
	}))
	e.t.Cleanup(srv.Close)
	return srv
}

func (e *lookupEnv) sdk(region string) *cloudtrail.Client {
	srv := e.server()
	return cloudtrail.New(cloudtrail.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

// TestLookupEventsSDK drives LookupEvents with aws-sdk-go-v2: its
// paginator over one-event pages, its decoding of every Event member and
// its typed errors.
func TestLookupEventsSDK(t *testing.T) {
	e := newLookupEnv(t)
	ctx := context.Background()
	c := e.sdk(lookupOrgRegion)
	var got []types.Event
	pages := 0
	p := cloudtrail.NewLookupEventsPaginator(c, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		got = append(got, out.Events...)
	}
	if pages != 3 || len(got) != 3 {
		t.Fatalf("%d pages with %d events, want 3 and 3", pages, len(got))
	}
	ev := got[0]
	if aws.ToString(ev.EventId) != "16903cbd-fdff-4818-82f2-d66ad09aaf57" || aws.ToString(ev.EventName) != "LeaveOrganization" ||
		aws.ToString(ev.ReadOnly) != "false" || aws.ToString(ev.AccessKeyId) != "ASIA36EV31F1RB3OA8IG" ||
		!aws.ToTime(ev.EventTime).Equal(time.Date(2024, 8, 2, 8, 30, 0, 0, time.UTC)) ||
		aws.ToString(ev.EventSource) != "organizations.amazonaws.com" || ev.Resources == nil {
		t.Errorf("first event: %+v", ev)
	}
	if !jsonEquivalent(t, []byte(aws.ToString(ev.CloudTrailEvent)), e.records[aws.ToString(ev.EventId)]) {
		t.Error("CloudTrailEvent differs from the record")
	}
	if r := got[1].Resources; len(r) != 5 || aws.ToString(r[4].ResourceType) != "AWS::IAM::Role" {
		t.Errorf("AssumeRole resources: %+v", r)
	}

	_, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{AttributeKey: "Nope", AttributeValue: aws.String("x")}}})
	var badAttr *types.InvalidLookupAttributesException
	if !errors.As(err, &badAttr) {
		t.Errorf("unknown key: %v", err)
	}
	_, err = c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{StartTime: aws.Time(lookupNow), EndTime: aws.Time(lookupNow.Add(-time.Hour))})
	var badRange *types.InvalidTimeRangeException
	if !errors.As(err, &badRange) {
		t.Errorf("inverted range: %v", err)
	}
	_, err = c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{NextToken: aws.String("forged")})
	var badToken *types.InvalidNextTokenException
	if !errors.As(err, &badToken) {
		t.Errorf("forged token: %v", err)
	}
	_, err = c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{EventCategory: "management"})
	var badCat *types.InvalidEventCategoryException
	if !errors.As(err, &badCat) {
		t.Errorf("bad category: %v", err)
	}
	_, err = c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)})
	var badMax *types.InvalidMaxResultsException
	if !errors.As(err, &badMax) {
		t.Errorf("MaxResults 0: %v", err)
	}
	// The AND extension through the SDK, in the IAM region.
	iam := e.sdk(lookupIAMRegion)
	out, err := iam.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyResourceType, AttributeValue: aws.String("AWS::IAM::Policy")},
		{AttributeKey: types.LookupAttributeKeyUsername, AttributeValue: aws.String("christophe")},
	}})
	if err != nil || len(out.Events) != 1 || aws.ToString(out.Events[0].EventName) != "AttachUserPolicy" {
		t.Errorf("AND lookup: %v %+v", err, out)
	}
}
