package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
)

const (
	lakeTestStoreARN = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds-0123456789abcdef"
	lakeTestStoreID  = "eds-0123456789abcdef"
	lakeTestRows     = 120
)

// lakeBackend answers the Lake operations with canned JSON in the AWS
// shapes, and keeps every call, read and record it gets.
type lakeBackend struct {
	benchBackend
	readOnly bool
	// status is what DescribeQuery says of every query.
	status string
	// unknown makes every Lake read an unknown operation, as on a server
	// without the Lake.
	unknown   bool
	recordErr error

	mu      sync.Mutex
	reads   []Call
	calls   []Call
	records []event.APICall
}

func (b *lakeBackend) Caller(_ context.Context, id string) (api.Caller, bool, error) {
	return api.Caller{AccessKeyID: id, UserName: "tester", ReadOnlyKey: b.readOnly}, true, nil
}

func (b *lakeBackend) Record(_ context.Context, rec event.APICall) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recordErr != nil {
		return b.recordErr
	}
	b.records = append(b.records, rec)
	return nil
}

// lakeToken is the i-th row's NextToken: with the characters a query
// string must escape.
func lakeToken(i int) string { return fmt.Sprintf("tok/%d+.=&", i) }

func (b *lakeBackend) Read(_ context.Context, c Call) ([]byte, error) {
	b.mu.Lock()
	b.reads = append(b.reads, c)
	b.mu.Unlock()
	if b.unknown {
		return nil, awsproto.Errorf("UnknownOperationException", "Unknown operation %s", c.Operation)
	}
	var in map[string]any
	_ = json.Unmarshal(c.Body, &in)
	switch c.Operation {
	case "ListEventDataStores":
		return []byte(`{"EventDataStores":[{"EventDataStoreArn":"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds-stopped","Name":"old","Status":"STOPPED_INGESTION"},` +
			`{"EventDataStoreArn":"` + lakeTestStoreARN + `","Name":"audit","Status":"ENABLED"}]}`), nil
	case "SearchSampleQueries":
		return []byte(`{"SearchResults":[` +
			`{"Name":"Count events by name","Description":"The most frequent events.","SQL":"SELECT eventname, count(*) FROM $EDS_ID GROUP BY 1","Relevance":0.9},` +
			`{"Name":"Console sign-ins","Description":"Who signed in.","SQL":"SELECT useridentity.arn FROM $EDS_ID WHERE eventname = 'ConsoleLogin'","Relevance":0.5}]}`), nil
	case "ListQueries":
		if in["EventDataStore"] != lakeTestStoreARN {
			return nil, awsproto.Errorf("EventDataStoreNotFoundException", "no store %v", in["EventDataStore"])
		}
		if in["NextToken"] == "older" {
			return []byte(`{"Queries":[{"QueryId":"q-old","QueryStatus":"FAILED","CreationTime":1.7e9}]}`), nil
		}
		return []byte(`{"Queries":[{"QueryId":"q-done","QueryStatus":"FINISHED","CreationTime":1764800000.5},{"QueryId":"q-run","QueryStatus":"RUNNING","CreationTime":1764800100}],"NextToken":"older"}`), nil
	case "DescribeQuery":
		id, _ := in["QueryId"].(string)
		if alias, ok := in["QueryAlias"].(string); ok {
			if in["RefreshId"] != "r-1" {
				return nil, awsproto.Errorf("QueryIdNotFoundException", "no refresh %v", in["RefreshId"])
			}
			id = "q-" + alias
		}
		if id == "q-missing" {
			return nil, awsproto.Errorf("QueryIdNotFoundException", "The query ID q-missing does not exist.")
		}
		status := b.status
		if status == "" {
			status = "FINISHED"
		}
		return fmt.Appendf(nil, `{"QueryId":%q,"QueryString":"SELECT eventid, eventname FROM %s","QueryStatus":%q,`+
			`"QueryStatistics":{"EventsMatched":%d,"EventsScanned":4242,"BytesScanned":987654,"ExecutionTimeInMillis":321,"CreationTime":1764800000}}`,
			id, lakeTestStoreID, status, lakeTestRows), nil
	case "GetQueryResults":
		id, _ := in["QueryId"].(string)
		if b.status != "" && b.status != "FINISHED" {
			return fmt.Appendf(nil, `{"QueryStatus":%q,"QueryResultRows":[]}`, b.status), nil
		}
		if strings.HasPrefix(id, "q-board-widget-") {
			return []byte(`{"QueryStatus":"FINISHED","QueryStatistics":{"ResultsCount":3,"TotalResultsCount":3},"QueryResultRows":[` +
				`[{"eventname":"GetObject"},{"n":"12"}],[{"eventname":"PutObject"},{"n":"7"}],[{"eventname":"DeleteObject"},{"n":null}]]}`), nil
		}
		max := int(in["MaxQueryResults"].(float64))
		start := 0
		if tok, ok := in["NextToken"].(string); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(tok, "tok/"), "+.=&"))
			if err != nil || lakeToken(n) != tok {
				return nil, awsproto.Errorf("InvalidNextTokenException", "bad token %q", tok)
			}
			start = n
		}
		end := min(start+max, lakeTestRows)
		out := queryResultsOutput{QueryStatus: "FINISHED"}
		out.QueryStatistics.ResultsCount, out.QueryStatistics.TotalResultsCount = int64(end-start), lakeTestRows
		for i := start; i < end; i++ {
			id, name := fmt.Sprintf("ev-%03d", i), "Describe"
			if i == 7 {
				name = "=HYPERLINK(\"x\")" // a formula a spreadsheet would run
			}
			out.QueryResultRows = append(out.QueryResultRows, []map[string]*string{{"eventid": &id}, {"eventname": &name}})
		}
		if end < lakeTestRows {
			out.NextToken = lakeToken(end)
		}
		// Lake's shape: each row a list of single-entry maps, in column order.
		return json.Marshal(out)
	case "ListDashboards":
		return []byte(`{"Dashboards":[{"DashboardArn":"arn:aws:cloudtrail:us-east-1:123456789012:dashboard/board","Type":"CUSTOM"}]}`), nil
	case "GetDashboard":
		if in["DashboardId"] != "board" {
			return nil, awsproto.Errorf("ResourceNotFoundException", "The dashboard %v does not exist.", in["DashboardId"])
		}
		return []byte(`{"DashboardArn":"arn:aws:cloudtrail:us-east-1:123456789012:dashboard/board","Type":"CUSTOM","Status":"CREATED",` +
			`"Widgets":[{"QueryAlias":"board-widget-1","QueryStatement":"SELECT eventname, count(*) AS n FROM x GROUP BY 1","ViewProperties":{"View":"Table","Title":"By name"}},` +
			`{"QueryAlias":"board-widget-2","QueryStatement":"SELECT eventname, count(*) AS n FROM x GROUP BY 1","ViewProperties":{"View":"BarChart","Title":"Bars"}}],` +
			`"LastRefreshId":"r-1","RefreshSchedule":{"Frequency":{"Unit":"HOURS","Value":6},"Status":"ENABLED"},"UpdatedTimestamp":1764800000}`), nil
	}
	return nil, awsproto.Errorf("UnknownOperationException", "Unknown operation %s", c.Operation)
}

func (b *lakeBackend) Call(_ context.Context, c Call) ([]byte, error) {
	b.mu.Lock()
	b.calls = append(b.calls, c)
	b.mu.Unlock()
	if c.Caller.ReadOnlyKey {
		return nil, awsproto.Errorf("AccessDeniedException", "The access key is read-only: %s is not allowed.", c.Operation)
	}
	var in map[string]any
	_ = json.Unmarshal(c.Body, &in)
	switch c.Operation {
	case "StartQuery":
		if s, _ := in["QueryStatement"].(string); strings.HasPrefix(s, "DROP") {
			return nil, awsproto.Errorf("InvalidQueryStatementException", "Only SELECT statements are supported: line 1:1 DROP")
		}
		return []byte(`{"QueryId":"q-new"}`), nil
	case "CancelQuery":
		return []byte(`{"QueryId":"q-run","QueryStatus":"CANCELLED"}`), nil
	case "StartDashboardRefresh":
		return []byte(`{"RefreshId":"r-2"}`), nil
	}
	return nil, awsproto.Errorf("UnknownOperationException", "Unknown operation %s", c.Operation)
}

func (b *lakeBackend) callsOf(op string) []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Call
	for _, c := range b.calls {
		if c.Operation == op {
			out = append(out, c)
		}
	}
	return out
}

func (b *lakeBackend) readsOf(op string) []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Call
	for _, c := range b.reads {
		if c.Operation == op {
			out = append(out, c)
		}
	}
	return out
}

// lakeClient is a signed-in browser against the console's handler.
type lakeClient struct {
	t   *testing.T
	c   *Console
	mux *http.ServeMux
	s   *session
}

func newLakeClient(t *testing.T, be *lakeBackend) *lakeClient {
	t.Helper()
	c, err := New(Options{Backend: be, AccountID: "123456789012", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Mount(mux)
	s := c.sessions.create(api.Caller{AccessKeyID: "CKIATEST", UserName: "tester", ReadOnlyKey: be.readOnly}, "us-east-1")
	return &lakeClient{t: t, c: c, mux: mux, s: s}
}

func (lc *lakeClient) do(req *http.Request) *httptest.ResponseRecorder {
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: lc.s.id})
	rec := httptest.NewRecorder()
	lc.mux.ServeHTTP(rec, req)
	return rec
}

func (lc *lakeClient) get(target string) *httptest.ResponseRecorder {
	return lc.do(httptest.NewRequest(http.MethodGet, target, nil))
}

func (lc *lakeClient) post(target string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return lc.do(req)
}

var hrefOf = regexp.MustCompile(`href="([^"]*)"[^>]*id="(next-page|prev-page)"|id="(next-page|prev-page)"[^>]*href="([^"]*)"`)

// link finds the href of the element with the id in a page.
func link(body, id string) string {
	for _, m := range hrefOf.FindAllStringSubmatch(body, -1) {
		if m[2] == id {
			return html.UnescapeString(m[1])
		}
		if m[3] == id {
			return html.UnescapeString(m[4])
		}
	}
	return ""
}

var firstEventID = regexp.MustCompile(`<td>(ev-\d{3})</td>`)

func TestLakePageSamplesHistoryAndRun(t *testing.T) {
	be := &lakeBackend{}
	lc := newLakeClient(t, be)
	rec := lc.get("/console/lake?sample=1")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /console/lake: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`<a href="/console/lake" aria-current="page">Lake</a>`,
		`<option value="` + lakeTestStoreID + `" selected>audit (ENABLED)</option>`, // the enabled store is chosen
		`FROM $EDS_ID WHERE eventname = &#39;ConsoleLogin&#39;</textarea>`,          // the sample fills the editor
		`aria-current="true">Console sign-ins</a>`,
		`href="/console/lake/queries/q-done"`, `href="/console/lake/queries/q-run"`,
		`id="run-query"`,
		`<label for="statement" class="sr-only">SQL statement</label>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the Lake page lacks %s", want)
		}
	}
	if reads := be.readsOf("SearchSampleQueries"); len(reads) != 1 || !strings.Contains(string(reads[0].Body), `"SearchPhrase":"events"`) {
		t.Errorf("the library was searched with %v, want the default phrase", reads)
	}
	if older := lc.get("/console/lake?history=older&store=" + lakeTestStoreID).Body.String(); !strings.Contains(older, "q-old") || !strings.Contains(older, "« Newest") {
		t.Error("the history's older page does not show the older queries with a way back")
	}

	rec = lc.post("/console/lake/run", url.Values{csrfField: {lc.s.csrf}, "store": {lakeTestStoreID}, "statement": {"SELECT count(*) FROM $EDS_ID"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/lake/queries/q-new" {
		t.Fatalf("Run answered %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	starts := be.callsOf("StartQuery")
	if len(starts) != 1 {
		t.Fatalf("%d StartQuery calls through Backend.Call, want 1", len(starts))
	}
	if got := string(starts[0].Body); got != `{"QueryStatement":"SELECT count(*) FROM `+lakeTestStoreID+`"}` {
		t.Errorf("StartQuery got %s: $EDS_ID must become the store's ID", got)
	}
	if len(be.readsOf("StartQuery")) != 0 {
		t.Error("StartQuery went through Read, which does not record it")
	}
}

// TestStorePlaceholders: every spelling of the store in the published
// sample queries becomes the chosen store's ID, and nothing else does.
func TestStorePlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1 FROM $EDS_ID":                                "SELECT 1 FROM eds-1",
		"FROM <EDS ID> a JOIN <EDS_ID> b":                      "FROM eds-1 a JOIN eds-1 b",
		"FROM <event-data-store-ID>, <event_data_store_id>":    "FROM eds-1, eds-1",
		"FROM eds-ID WHERE x = 'needs-IDs' AND $EDS_IDENTITY":  "FROM eds-1 WHERE x = 'needs-IDs' AND $EDS_IDENTITY",
		"WHERE eventsource = 'ec2.amazonaws.com' AND <region>": "WHERE eventsource = 'ec2.amazonaws.com' AND <region>",
	} {
		if got := storePlaceholder.ReplaceAllLiteralString(in, "eds-1"); got != want {
			t.Errorf("%q became %q, want %q", in, got, want)
		}
	}
}

func TestLakeRunShowsAPIErrors(t *testing.T) {
	be := &lakeBackend{}
	lc := newLakeClient(t, be)
	rec := lc.post("/console/lake/run", url.Values{csrfField: {lc.s.csrf}, "store": {lakeTestStoreID}, "statement": {"DROP TABLE x"}})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("an invalid statement answered %d", rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, `<div class="flash err" role="alert">Only SELECT statements are supported: line 1:1 DROP</div>`) {
		t.Errorf("the InvalidQueryStatementException message is not a flash:\n%s", body)
	}
	if !strings.Contains(body, ">DROP TABLE x</textarea>") {
		t.Error("the editor lost the statement")
	}
	rec = lc.post("/console/lake/run", url.Values{csrfField: {lc.s.csrf}, "statement": {"  "}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Enter a SQL statement") {
		t.Errorf("an empty statement: %d", rec.Code)
	}

	// A query ID that does not exist: the API's message.
	rec = lc.get("/console/lake/queries/q-missing")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "The query ID q-missing does not exist.") {
		t.Errorf("a missing query: %d %s", rec.Code, rec.Body)
	}
	// A server without the Lake says so rather than failing.
	lc = newLakeClient(t, &lakeBackend{unknown: true})
	rec = lc.get("/console/lake")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "does not offer CloudTrail Lake&#39;s ListEventDataStores operation") {
		t.Errorf("without the Lake: %d %s", rec.Code, rec.Body)
	}
}

func TestLakeRefusesWithoutCSRF(t *testing.T) {
	be := &lakeBackend{}
	lc := newLakeClient(t, be)
	for _, target := range []string{"/console/lake/run", "/console/lake/queries/q-run/cancel", "/console/lake/dashboards/board/refresh"} {
		rec := lc.post(target, url.Values{"statement": {"SELECT 1"}})
		if rec.Code != http.StatusForbidden {
			t.Errorf("POST %s without a CSRF token: %d", target, rec.Code)
		}
		rec = lc.post(target, url.Values{csrfField: {"forged"}, "statement": {"SELECT 1"}})
		if rec.Code != http.StatusForbidden {
			t.Errorf("POST %s with a wrong CSRF token: %d", target, rec.Code)
		}
	}
	for _, target := range []string{"/console/lake/queries/q-done/download", "/console/lake/queries/q-done/download?csrf=forged"} {
		if rec := lc.get(target); rec.Code != http.StatusForbidden {
			t.Errorf("GET %s: %d", target, rec.Code)
		}
	}
	if len(be.calls) != 0 || len(be.records) != 0 {
		t.Errorf("refused requests made %d calls and %d records", len(be.calls), len(be.records))
	}
}

func TestLakeResultsPaging(t *testing.T) {
	be := &lakeBackend{}
	lc := newLakeClient(t, be)
	page := func(target string) (string, string) {
		t.Helper()
		rec := lc.get(target)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
		body := rec.Body.String()
		m := firstEventID.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("GET %s shows no rows", target)
		}
		return body, m[1]
	}
	body, first := page("/console/lake/queries/q-done")
	if first != "ev-000" || strings.Count(body, "<tr><td>ev-") != lakePageRows {
		t.Fatalf("page 1 starts at %s with %d rows", first, strings.Count(body, "<tr><td>ev-"))
	}
	for _, want := range []string{"Rows 1–50 of 120", `<th scope="col">eventid</th><th scope="col">eventname</th>`,
		`id="stat-matched">120<`, `id="stat-scanned">4242<`, "321 ms", "2025-12-03 22:13:20"} {
		if !strings.Contains(body, want) {
			t.Errorf("page 1 lacks %q", want)
		}
	}
	if link(body, "prev-page") != "" {
		t.Error("page 1 has a Previous link")
	}
	p2 := link(body, "next-page")
	body, first = page(p2)
	if first != "ev-050" || !strings.Contains(body, "Rows 51–100 of 120") {
		t.Fatalf("page 2 (%s) starts at %s", p2, first)
	}
	p3 := link(body, "next-page")
	body, first = page(p3)
	if first != "ev-100" || strings.Count(body, "<tr><td>ev-") != 20 || link(body, "next-page") != "" {
		t.Fatalf("page 3 starts at %s, next %q", first, link(body, "next-page"))
	}
	body, first = page(link(body, "prev-page"))
	if first != "ev-050" {
		t.Errorf("Previous from page 3 goes to %s, want page 2", first)
	}
	if _, first = page(link(body, "prev-page")); first != "ev-000" {
		t.Errorf("Previous from page 2 goes to %s, want page 1", first)
	}
	for _, r := range be.readsOf("GetQueryResults") {
		if !strings.Contains(string(r.Body), `"MaxQueryResults":50`) {
			t.Errorf("a results page asked for %s", r.Body)
		}
	}
	// A forged token is the API's error, shown on the page.
	body = lc.get("/console/lake/queries/q-done?token=forged").Body.String()
	if !strings.Contains(body, "bad token &#34;forged&#34;") {
		t.Error("an invalid NextToken's error is not shown")
	}
}

func TestLakeRunningQueryPollsAndCancels(t *testing.T) {
	be := &lakeBackend{status: "RUNNING"}
	lc := newLakeClient(t, be)
	body := lc.get("/console/lake/queries/q-run").Body.String()
	for _, want := range []string{`hx-get="/console/lake/queries/q-run" hx-trigger="every 1s"`, `id="cancel-query"`, "Running"} {
		if !strings.Contains(body, want) {
			t.Errorf("a running query's page lacks %s", want)
		}
	}
	if strings.Contains(body, "dl-csv") || len(be.readsOf("GetQueryResults")) != 0 {
		t.Error("a running query offers results")
	}
	req := httptest.NewRequest(http.MethodGet, "/console/lake/queries/q-run", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Target", "query-body")
	part := lc.do(req).Body.String()
	if !strings.HasPrefix(strings.TrimSpace(part), `<section id="query-body"`) || strings.Contains(part, "<html") {
		t.Errorf("the poll answered more than the query's section:\n%s", part)
	}
	rec := lc.post("/console/lake/queries/q-run/cancel", url.Values{csrfField: {lc.s.csrf}})
	if rec.Code != http.StatusSeeOther || len(be.callsOf("CancelQuery")) != 1 || string(be.callsOf("CancelQuery")[0].Body) != `{"QueryId":"q-run"}` {
		t.Errorf("Cancel: %d, calls %v", rec.Code, be.callsOf("CancelQuery"))
	}
	// Once finished, the poll's answer stops polling.
	be.status = "FINISHED"
	if part := lc.do(req).Body.String(); strings.Contains(part, "hx-trigger") || !strings.Contains(part, "dl-csv") {
		t.Error("a finished query's section keeps polling or has no download")
	}
}

func TestLakeDownloadCSV(t *testing.T) {
	be := &lakeBackend{}
	lc := newLakeClient(t, be)
	body := lc.get("/console/lake/queries/q-done").Body.String()
	dl := html.UnescapeString(regexp.MustCompile(`href="([^"]*)" id="dl-csv"`).FindStringSubmatch(body)[1])
	if !strings.Contains(dl, "csrf="+url.QueryEscape(lc.s.csrf)) {
		t.Fatalf("the download link %s carries no CSRF token", dl)
	}
	be.mu.Lock()
	be.reads = nil
	be.mu.Unlock()
	rec := lc.get(dl)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Disposition") != `attachment; filename="query_results_q-done.csv"` {
		t.Fatalf("download: %d %v", rec.Code, rec.Header())
	}
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != lakeTestRows+1 || rows[0][0] != "eventid" || rows[0][1] != "eventname" || rows[lakeTestRows][0] != "ev-119" {
		t.Fatalf("the CSV has %d lines, header %v, want every page's %d rows", len(rows), rows[0], lakeTestRows)
	}
	if rows[8][1] != `'=HYPERLINK("x")` {
		t.Errorf("a formula cell is %q, want it neutralised", rows[8][1])
	}
	for _, r := range be.readsOf("GetQueryResults") {
		if !strings.Contains(string(r.Body), `"MaxQueryResults":1000`) {
			t.Errorf("a download page asked for %s", r.Body)
		}
	}
	if len(be.records) != 1 {
		t.Fatalf("%d records for one download", len(be.records))
	}
	r := be.records[0]
	if r.Name != "DownloadQueryResults" || r.EventType != "AwsConsoleAction" || !r.FromConsole || !r.ReadOnly ||
		!strings.Contains(string(r.RequestParameters), `"queryId":"q-done"`) || r.Identity.UserName != "tester" {
		t.Errorf("the download's record is %+v (%s)", r, r.RequestParameters)
	}

	// A download that cannot be recorded does not happen.
	be.recordErr = errors.New("journal full")
	if rec := lc.get(dl); rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "ev-000") {
		t.Errorf("an unrecorded download answered %d", rec.Code)
	}
	// Nor does one of a query still running.
	be.recordErr, be.status = nil, "RUNNING"
	if rec := lc.get(dl); rec.Code != http.StatusConflict {
		t.Errorf("a running query's download answered %d", rec.Code)
	}
}

func TestLakeReadOnlySession(t *testing.T) {
	be := &lakeBackend{readOnly: true}
	lc := newLakeClient(t, be)
	if body := lc.get("/console/lake").Body.String(); strings.Contains(body, `id="run-query"`) || !strings.Contains(body, "cannot run queries") {
		t.Error("a read-only key is offered Run")
	}
	if body := lc.get("/console/lake/dashboards/board").Body.String(); strings.Contains(body, `id="refresh-dashboard"`) {
		t.Error("a read-only key is offered Refresh")
	}
	be.status = "RUNNING"
	if body := lc.get("/console/lake/queries/q-run").Body.String(); strings.Contains(body, `id="cancel-query"`) {
		t.Error("a read-only key is offered Cancel")
	}
	// Posting anyway goes to the API, which refuses; the page says why.
	rec := lc.post("/console/lake/run", url.Values{csrfField: {lc.s.csrf}, "statement": {"SELECT 1"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "The access key is read-only") {
		t.Errorf("a read-only Run: %d", rec.Code)
	}
	rec = lc.post("/console/lake/dashboards/board/refresh", url.Values{csrfField: {lc.s.csrf}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("a read-only Refresh: %d", rec.Code)
	}
	if body := lc.get(rec.Header().Get("Location")).Body.String(); !strings.Contains(body, `<div class="flash err" role="alert">The access key is read-only: StartDashboardRefresh is not allowed.</div>`) {
		t.Error("the refused refresh is not a flash message")
	}
}

func TestLakeDashboards(t *testing.T) {
	be := &lakeBackend{}
	lc := newLakeClient(t, be)
	body := lc.get("/console/lake/dashboards").Body.String()
	if !strings.Contains(body, `<a href="/console/lake/dashboards/board"><strong>board</strong></a>`) {
		t.Errorf("the dashboard list lacks the dashboard:\n%s", body)
	}
	body = html.UnescapeString(lc.get("/console/lake/dashboards/board").Body.String())
	for _, want := range []string{
		`<h2 id="w1-h">By name</h2>`, `<th scope="col">eventname</th><th scope="col">n</th>`, `<td>GetObject</td><td>12</td>`,
		`<h2 id="w2-h">Bars</h2>`, `id="w2-chart" data-chart=`,
		`{"kind":"bar","labels":["GetObject","PutObject","DeleteObject"],"series":[{"name":"n","values":[12,7,null]}]}`,
		"refreshes every 6 hours</p>", `id="refresh-dashboard"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the dashboard lacks %s", want)
		}
	}
	for _, r := range be.readsOf("DescribeQuery") {
		if !strings.Contains(string(r.Body), `"RefreshId":"r-1"`) {
			t.Errorf("a widget's query was described with %s", r.Body)
		}
	}
	rec := lc.post("/console/lake/dashboards/board/refresh", url.Values{csrfField: {lc.s.csrf}})
	if rec.Code != http.StatusSeeOther || len(be.callsOf("StartDashboardRefresh")) != 1 {
		t.Fatalf("Refresh: %d", rec.Code)
	}
	if body := lc.get(rec.Header().Get("Location")).Body.String(); !strings.Contains(body, "Refresh r-2 started.") {
		t.Error("the refresh is not confirmed")
	}
	if rec := lc.get("/console/lake/dashboards/nope"); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "The dashboard nope does not exist.") {
		t.Errorf("a missing dashboard: %d", rec.Code)
	}
	// While a widget's query runs, the widgets poll.
	be.status = "RUNNING"
	if body := lc.get("/console/lake/dashboards/board").Body.String(); !strings.Contains(body, `hx-get="/console/lake/dashboards/board" hx-trigger="every 2s"`) {
		t.Error("a running refresh does not poll")
	}
}

func TestChartOf(t *testing.T) {
	if chartOf("line", []string{"only"}, [][]string{{"a"}}) != nil {
		t.Error("one column made a chart")
	}
	if chartOf("line", []string{"a", "b"}, [][]string{{"x", "not a number"}}) != nil {
		t.Error("a text column made a series")
	}
	ch := chartOf("line", []string{"day", "n", "who"}, [][]string{{"d1", "1.5", "alice"}, {"d2", "", "bob"}})
	if ch == nil || len(ch.Series) != 1 || ch.Series[0].Name != "n" || *ch.Series[0].Values[0] != 1.5 || ch.Series[0].Values[1] != nil {
		t.Errorf("chart %+v", ch)
	}
}
