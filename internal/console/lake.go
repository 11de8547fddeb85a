package console

// The CloudTrail Lake pages: the query editor with the sample library and
// the query history, a query's status, statistics and paged results with a
// CSV download, and the dashboards with their widgets drawn from their
// latest refresh.
//
// They speak only the Lake operations of the API, through Backend.Read for
// what only reads and Backend.Call for what starts or stops work
// (StartQuery, CancelQuery, StartDashboardRefresh), so that every change
// made here is checked and recorded as the API's own calls are, and the
// console needs no access to the Lake's packages.

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
)

const (
	// lakePageRows is a results page: GetQueryResults' MaxQueryResults.
	lakePageRows = 50
	// lakeDownloadRows is a download's GetQueryResults page, the API's
	// largest.
	lakeDownloadRows = 1000
	// lakeWidgetRows bounds what a dashboard widget reads of its query's
	// results (one GetQueryResults page) and lakeWidgetTableRows what its
	// table shows of them.
	lakeWidgetRows      = 1000
	lakeWidgetTableRows = 100
	// lakeListPages bounds the pages a listing (stores, dashboards) chains.
	lakeListPages = 10
	// lakeHistoryRows is one page of the query history.
	lakeHistoryRows = 25
	// lakeSampleRows is SearchSampleQueries' largest page.
	lakeSampleRows = 50
	// defaultSamplePhrase is searched when the library's search box is
	// empty: SearchSampleQueries needs a phrase of at least two characters,
	// and nearly every sample mentions events.
	defaultSamplePhrase = "events"
	// maxStatement bounds the statement the editor posts (StartQuery's
	// QueryStatement is at most 10,000 characters).
	maxStatement = 10000
)

// epoch is a JSON 1.1 timestamp: seconds since the epoch, with a fraction.
type epoch struct{ time.Time }

func (e *epoch) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("timestamp %s: %w", b, err)
	}
	sec, frac := math.Modf(f)
	e.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// lakeRead runs a read-only Lake operation in the session's region and
// decodes its answer into out.
func (c *Console) lakeRead(r *http.Request, s *session, op string, in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", op, err)
	}
	body, err := c.be.Read(r.Context(), Call{Caller: s.Caller(), Meta: meta(r), Region: s.Region(), Operation: op, Body: raw})
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return awsproto.Internal(fmt.Errorf("decode %s response: %w", op, err))
		}
	}
	return nil
}

// lakeMessage is what a page says about a failed Lake operation: the
// API's own message, or that the server has no such operation, or (for an
// internal failure, logged) that it could not be done.
func (c *Console) lakeMessage(op string, err error) string {
	if errors.Is(err, context.Canceled) {
		return "The request was cancelled."
	}
	ae := awsproto.AsError(err)
	switch {
	case ae.Code == "UnknownOperationException":
		return "This Cairn server does not offer CloudTrail Lake's " + op + " operation."
	case ae.Code == "InternalFailure":
		c.log.Error("console: lake operation", "op", op, "err", err)
		return op + " failed inside Cairn. Try again."
	case ae.Message != "":
		return ae.Message
	}
	return ae.Code
}

type lakeStore struct {
	ID, ARN, Name, Status string
}

// storeID is an event data store's ID: the end of its ARN.
func storeID(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func (c *Console) lakeStores(r *http.Request, s *session) ([]lakeStore, error) {
	var out []lakeStore
	in := map[string]any{}
	for range lakeListPages {
		var page struct {
			EventDataStores []struct {
				EventDataStoreArn, Name, Status string
			}
			NextToken string
		}
		if err := c.lakeRead(r, s, "ListEventDataStores", in, &page); err != nil {
			return out, err
		}
		for _, e := range page.EventDataStores {
			out = append(out, lakeStore{ID: storeID(e.EventDataStoreArn), ARN: e.EventDataStoreArn, Name: e.Name, Status: e.Status})
		}
		if page.NextToken == "" {
			break
		}
		in["NextToken"] = page.NextToken
	}
	return out, nil
}

type lakeSample struct {
	Name, Description, SQL, URL string
	Chosen                      bool
}

type lakeHistoryRow struct {
	ID, Status, URL string
	Created         time.Time
}

type lakeData struct {
	Stores      []lakeStore
	Store       lakeStore
	Statement   string
	Search      string
	Samples     []lakeSample
	SampleErr   string
	History     []lakeHistoryRow
	HistoryErr  string
	HistoryNext string
	HistoryTop  string
	StoresErr   string
	Now         time.Time
}

// lakeURL is the Lake page's address for a store, a library search, a
// chosen sample and a history page.
func lakeURL(store, search string, sample int, history string) string {
	v := url.Values{}
	if store != "" {
		v.Set("store", store)
	}
	if search != "" {
		v.Set("search", search)
	}
	if sample >= 0 {
		v.Set("sample", strconv.Itoa(sample))
	}
	if history != "" {
		v.Set("history", history)
	}
	u := Prefix + "lake"
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

// lakeData gathers the Lake page: the stores (the chosen one, else the
// first enabled one), the sample library, the store's query history.
func (c *Console) lakeData(r *http.Request, s *session, storeWanted, search, historyToken string, sample int) lakeData {
	d := lakeData{Search: search, Now: c.now()}
	stores, err := c.lakeStores(r, s)
	if err != nil {
		d.StoresErr = c.lakeMessage("ListEventDataStores", err)
	}
	d.Stores = stores
	for _, st := range stores {
		if st.ID == storeWanted || st.ARN == storeWanted || st.Name == storeWanted {
			d.Store = st
		}
	}
	if d.Store.ID == "" {
		for _, st := range stores {
			if st.Status == "ENABLED" {
				d.Store = st
				break
			}
		}
	}
	if d.Store.ID == "" && len(stores) > 0 {
		d.Store = stores[0]
	}

	phrase := strings.TrimSpace(search)
	if len([]rune(phrase)) < 2 {
		phrase = defaultSamplePhrase
	}
	var samples struct {
		SearchResults []struct{ Name, Description, SQL string }
	}
	if err := c.lakeRead(r, s, "SearchSampleQueries", map[string]any{"SearchPhrase": phrase, "MaxResults": lakeSampleRows}, &samples); err != nil {
		d.SampleErr = c.lakeMessage("SearchSampleQueries", err)
	}
	for i, sq := range samples.SearchResults {
		d.Samples = append(d.Samples, lakeSample{Name: sq.Name, Description: sq.Description, SQL: sq.SQL,
			URL: lakeURL(d.Store.ID, search, i, "") + "#editor", Chosen: i == sample})
		if i == sample {
			d.Statement = sq.SQL
		}
	}

	if d.Store.ID != "" {
		in := map[string]any{"EventDataStore": d.Store.ARN, "MaxResults": lakeHistoryRows}
		if historyToken != "" {
			in["NextToken"] = historyToken
			d.HistoryTop = lakeURL(d.Store.ID, search, -1, "")
		}
		var page struct {
			Queries []struct {
				QueryId, QueryStatus string
				CreationTime         epoch
			}
			NextToken string
		}
		if err := c.lakeRead(r, s, "ListQueries", in, &page); err != nil {
			d.HistoryErr = c.lakeMessage("ListQueries", err)
		}
		for _, q := range page.Queries {
			d.History = append(d.History, lakeHistoryRow{ID: q.QueryId, Status: q.QueryStatus, Created: q.CreationTime.Time, URL: queryURL(q.QueryId, nil)})
		}
		if page.NextToken != "" {
			d.HistoryNext = lakeURL(d.Store.ID, search, -1, page.NextToken)
		}
	}
	return d
}

func (c *Console) lakePage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	sample := -1
	if n, err := strconv.Atoi(q.Get("sample")); err == nil && n >= 0 {
		sample = n
	}
	d := c.lakeData(r, s, q.Get("store"), q.Get("search"), q.Get("history"), sample)
	c.render(w, r, http.StatusOK, "lake", view{Title: "Lake", Nav: "lake", Data: d})
}

// storePlaceholder matches the ways published sample queries name their
// store: CloudTrail console's $EDS_ID and the spellings of the
// documentation's and the samples repository's queries.
var storePlaceholder = regexp.MustCompile(`\$EDS_ID\b|<EDS[ _]ID>|<event[-_]data[-_]store[-_]ID>|<event_data_store_id>|\beds-ID\b`)

// lakeRun starts the editor's statement on the chosen store, with the
// store's ID in place of $EDS_ID, and goes to the query's page.
func (c *Console) lakeRun(w http.ResponseWriter, r *http.Request, s *session) {
	statement := strings.TrimSpace(r.PostFormValue("statement"))
	search := r.PostFormValue("search")
	d := c.lakeData(r, s, r.PostFormValue("store"), search, "", -1)
	d.Statement = statement
	fail := func(msg string) {
		c.render(w, r, http.StatusBadRequest, "lake", view{Title: "Lake", Nav: "lake", Error: msg, Data: d})
	}
	switch {
	case statement == "":
		fail("Enter a SQL statement to run.")
		return
	case len(statement) > maxStatement:
		fail(fmt.Sprintf("The statement is %d characters long; a query is at most %d.", len(statement), maxStatement))
		return
	case storePlaceholder.MatchString(statement) && d.Store.ID == "":
		fail("The statement reads " + storePlaceholder.FindString(statement) + ", but there is no event data store to put in its place. Create one first.")
		return
	}
	if d.Store.ID != "" {
		statement = storePlaceholder.ReplaceAllLiteralString(statement, d.Store.ID)
	}
	out, err := c.call(r, s, s.Region(), "StartQuery", map[string]any{"QueryStatement": statement})
	if err != nil {
		fail(c.lakeMessage("StartQuery", err))
		return
	}
	var started struct{ QueryId string }
	if err := json.Unmarshal(out, &started); err != nil || started.QueryId == "" {
		c.log.Error("console: StartQuery answered without a query ID", "err", err)
		fail("The query was started, but Cairn did not say under which ID. Find it in the query history.")
		return
	}
	http.Redirect(w, r, queryURL(started.QueryId, nil), http.StatusSeeOther)
}

// queryURL is a query's page, with v's paging parameters.
func queryURL(id string, v url.Values) string {
	u := Prefix + "lake/queries/" + url.PathEscape(id)
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

type queryStats struct {
	EventsMatched, EventsScanned, BytesScanned, ExecutionTimeInMillis int64
	CreationTime                                                      epoch
}

type describeQueryOutput struct {
	QueryId, QueryString, QueryStatus, ErrorMessage string
	DeliveryS3Uri, DeliveryStatus                   string
	QueryStatistics                                 queryStats
}

type queryResultsOutput struct {
	QueryStatus     string
	QueryStatistics struct{ ResultsCount, TotalResultsCount, BytesScanned int64 }
	QueryResultRows [][]map[string]*string
	NextToken       string
	ErrorMessage    string
}

// table turns Lake's rows (each a list of single-entry maps, in column
// order) into column names and rows of values; a null is "".
func (o queryResultsOutput) table() ([]string, [][]string) {
	var cols []string
	rows := make([][]string, 0, len(o.QueryResultRows))
	for i, raw := range o.QueryResultRows {
		row := make([]string, 0, len(raw))
		for _, cell := range raw {
			for k, v := range cell {
				if i == 0 {
					cols = append(cols, k)
				}
				if v != nil {
					row = append(row, *v)
				} else {
					row = append(row, "")
				}
			}
		}
		rows = append(rows, row)
	}
	return cols, rows
}

func queryRunning(status string) bool { return status == "QUEUED" || status == "RUNNING" }

// maxQueryBack bounds the token stack a results page carries in its URL.
const maxQueryBack = 64

type queryData struct {
	Q          describeQueryOutput
	Running    bool
	PollURL    string
	Columns    []string
	Rows       [][]string
	ResultsErr string
	Results    int64
	Total      int64
	PageStart  int
	Next       string
	Prev       string
	First      string
	CSVURL     string
	CancelURL  string
	Self       string
	Now        time.Time
}

func (c *Console) queryPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	var q describeQueryOutput
	if err := c.lakeRead(r, s, "DescribeQuery", map[string]any{"QueryId": id}, &q); err != nil {
		c.render(w, r, http.StatusNotFound, "error", view{Title: "Query not found", Nav: "lake", Error: c.lakeMessage("DescribeQuery", err)})
		return
	}
	if q.QueryId == "" {
		q.QueryId = id
	}
	qv := r.URL.Query()
	token, back := qv.Get("token"), qv["back"]
	if len(back) > maxQueryBack {
		back = back[len(back)-maxQueryBack:]
	}
	d := queryData{Q: q, Running: queryRunning(q.QueryStatus), Now: c.now(), Self: queryURL(id, nil)}
	d.CancelURL = queryURL(id, nil) + "/cancel"
	if d.Running {
		d.PollURL = queryURL(id, nil)
	}
	if q.QueryStatus == "FINISHED" {
		in := map[string]any{"QueryId": id, "MaxQueryResults": lakePageRows}
		if token != "" {
			in["NextToken"] = token
		}
		var res queryResultsOutput
		if err := c.lakeRead(r, s, "GetQueryResults", in, &res); err != nil {
			d.ResultsErr = c.lakeMessage("GetQueryResults", err)
		} else {
			d.Columns, d.Rows = res.table()
			d.Results, d.Total = res.QueryStatistics.ResultsCount, res.QueryStatistics.TotalResultsCount
			if res.NextToken != "" {
				nb := slices.Clone(back)
				cur := token
				if cur == "" {
					cur = "-" // the first page, which has no token
				}
				nb = append(nb, cur)
				if len(nb) > maxQueryBack {
					nb = nb[len(nb)-maxQueryBack:]
				}
				d.Next = queryURL(id, url.Values{"token": {res.NextToken}, "back": nb})
			}
		}
		if len(back) > 0 {
			pv := url.Values{}
			if t := back[len(back)-1]; t != "-" {
				pv.Set("token", t)
			}
			if len(back) > 1 {
				pv["back"] = back[:len(back)-1]
			}
			d.Prev = queryURL(id, pv)
		}
		if token != "" {
			d.First = queryURL(id, nil)
		}
		d.PageStart = len(back)*lakePageRows + 1
		// As the event history's: a download is recorded, so its link
		// carries the session's CSRF token.
		d.CSVURL = queryURL(id, nil) + "/download?" + url.Values{csrfField: {s.csrf}}.Encode()
	}
	c.render(w, r, http.StatusOK, "lake_query", view{Title: "Query " + id, Nav: "lake", Data: d})
}

func (c *Console) queryCancel(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if _, err := c.call(r, s, s.Region(), "CancelQuery", map[string]any{"QueryId": id}); err != nil {
		s.setFlash(c.lakeMessage("CancelQuery", err), true)
	} else {
		s.setFlash("Query cancelled.", false)
	}
	http.Redirect(w, r, queryURL(id, nil), http.StatusSeeOther)
}

// queryDownload streams every row of a finished query as CSV, page by
// page, so that memory stays flat whatever the result's size. Like the
// event history's download it takes data out of Cairn, so it is recorded
// first and refused when its record cannot be written.
func (c *Console) queryDownload(w http.ResponseWriter, r *http.Request, s *session) {
	if tok := r.URL.Query().Get(csrfField); tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) != 1 {
		http.Error(w, "The download link was stale or came from another site (CSRF check failed). Reload the query's page and try again.", http.StatusForbidden)
		return
	}
	id := r.PathValue("id")
	in := map[string]any{"QueryId": id, "MaxQueryResults": lakeDownloadRows}
	var page queryResultsOutput
	if err := c.lakeRead(r, s, "GetQueryResults", in, &page); err != nil {
		http.Error(w, c.lakeMessage("GetQueryResults", err), http.StatusBadRequest)
		return
	}
	if page.QueryStatus != "" && page.QueryStatus != "FINISHED" {
		http.Error(w, "The query is "+page.QueryStatus+"; only a finished query's results can be downloaded.", http.StatusConflict)
		return
	}
	m := meta(r)
	rp, _ := json.Marshal(map[string]any{"queryId": id, "format": "csv", "region": s.Region()})
	if err := c.be.Record(r.Context(), event.APICall{
		Time: c.now().UTC(), Source: "cloudtrail.amazonaws.com", Name: "DownloadQueryResults", EventType: "AwsConsoleAction",
		Region: s.Region(), SourceIP: m.SourceIP, UserAgent: m.UserAgent, Identity: s.Caller().Identity(),
		ReadOnly: true, RequestParameters: rp, FromConsole: true,
	}); err != nil {
		c.log.Error("console: record query results download; refusing it", "err", err)
		http.Error(w, "Cairn could not record this download in its audit journal, so it was refused. Try again later.", http.StatusServiceUnavailable)
		return
	}
	name := "query_results_" + safeFileName(id) + ".csv"
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	header := false
	seen := map[string]bool{}
	for {
		cols, rows := page.table()
		if !header && len(cols) > 0 {
			_ = cw.Write(csvSafe(cols...))
			header = true
		}
		for _, row := range rows {
			_ = cw.Write(csvSafe(row...))
		}
		cw.Flush()
		if cw.Error() != nil {
			return // the client went away
		}
		// A token seen before would loop forever: a server bug, but the
		// download must end.
		if page.NextToken == "" || seen[page.NextToken] || r.Context().Err() != nil {
			return
		}
		seen[page.NextToken] = true
		in["NextToken"] = page.NextToken
		page = queryResultsOutput{}
		if err := c.lakeRead(r, s, "GetQueryResults", in, &page); err != nil {
			// Headers are out; the truncated body is all that can signal it.
			c.log.Error("console: query results download stopped", "query", id, "err", err)
			return
		}
	}
}

// safeFileName keeps letters, digits and - _ . of s, for a
// Content-Disposition file name.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return -1
	}, s)
}

// dashboardName is a dashboard's name: the end of its ARN.
func dashboardName(arn string) string { return storeID(arn) }

type lakeDashboardRow struct {
	Name, ARN, Type, URL string
}

func (c *Console) lakeDashboards(w http.ResponseWriter, r *http.Request, s *session) {
	var rows []lakeDashboardRow
	var problem string
	in := map[string]any{}
	for range lakeListPages {
		var page struct {
			Dashboards []struct{ DashboardArn, Type string }
			NextToken  string
		}
		if err := c.lakeRead(r, s, "ListDashboards", in, &page); err != nil {
			problem = c.lakeMessage("ListDashboards", err)
			break
		}
		for _, d := range page.Dashboards {
			n := dashboardName(d.DashboardArn)
			rows = append(rows, lakeDashboardRow{Name: n, ARN: d.DashboardArn, Type: d.Type, URL: Prefix + "lake/dashboards/" + url.PathEscape(n)})
		}
		if page.NextToken == "" {
			break
		}
		in["NextToken"] = page.NextToken
	}
	slices.SortFunc(rows, func(a, b lakeDashboardRow) int { return strings.Compare(a.Name, b.Name) })
	c.render(w, r, http.StatusOK, "lake_dashboards", view{Title: "Lake dashboards", Nav: "lake", Error: problem, Data: rows})
}

type widgetView struct {
	N         int
	Alias     string
	Title     string
	View      string // "Table", "LineChart" or "BarChart" as drawn
	Statement string
	QueryID   string
	QueryURL  string
	Status    string
	Error     string
	Columns   []string
	Rows      [][]string
	Shown     int
	Total     int64
	More      bool // the table shows only some of the rows
	Chart     *widgetChart
}

// widgetChart is what app.js draws with uPlot: one label per row (the first
// column) and one series per numeric column.
type widgetChart struct {
	Kind   string        `json:"kind"` // "line" or "bar"
	Labels []string      `json:"labels"`
	Series []chartSeries `json:"series"`
}

type chartSeries struct {
	Name   string     `json:"name"`
	Values []*float64 `json:"values"`
}

// chartOf makes the chart of a widget's results: the first column labels
// the x axis, every other column whose values are all numbers (or empty)
// is a series. nil means nothing to draw.
func chartOf(kind string, cols []string, rows [][]string) *widgetChart {
	if len(cols) < 2 {
		return nil
	}
	ch := &widgetChart{Kind: kind, Labels: make([]string, len(rows))}
	for i, r := range rows {
		if len(r) > 0 {
			ch.Labels[i] = r[0]
		}
	}
	for j := 1; j < len(cols); j++ {
		vals := make([]*float64, len(rows))
		numeric := true
		for i, r := range rows {
			if j >= len(r) || r[j] == "" {
				continue
			}
			f, err := strconv.ParseFloat(r[j], 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				numeric = false
				break
			}
			vals[i] = &f
		}
		if numeric {
			ch.Series = append(ch.Series, chartSeries{Name: cols[j], Values: vals})
		}
	}
	if len(ch.Series) == 0 {
		return nil
	}
	return ch
}

type dashboardView struct {
	Name, ARN, Type, Status string
	LastRefreshID           string
	RefreshFailure          string
	Schedule                string
	Updated                 time.Time
	Widgets                 []widgetView
	Running                 bool
	PollURL                 string
	RefreshURL              string
	Now                     time.Time
}

func (c *Console) lakeDashboard(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	var g struct {
		DashboardArn, Type, Status string
		Widgets                    []struct {
			QueryAlias, QueryStatement string
			ViewProperties             map[string]string
		}
		RefreshSchedule *struct {
			Frequency *struct {
				Unit  string
				Value int
			}
			Status, TimeOfDay string
		}
		LastRefreshId, LastRefreshFailureReason string
		UpdatedTimestamp                        epoch
	}
	if err := c.lakeRead(r, s, "GetDashboard", map[string]any{"DashboardId": name}, &g); err != nil {
		c.render(w, r, http.StatusNotFound, "error", view{Title: "Dashboard not found", Nav: "lake", Error: c.lakeMessage("GetDashboard", err)})
		return
	}
	self := Prefix + "lake/dashboards/" + url.PathEscape(name)
	d := dashboardView{Name: name, ARN: g.DashboardArn, Type: g.Type, Status: g.Status, LastRefreshID: g.LastRefreshId,
		RefreshFailure: g.LastRefreshFailureReason, Updated: g.UpdatedTimestamp.Time, RefreshURL: self + "/refresh", Now: c.now()}
	if rs := g.RefreshSchedule; rs != nil && rs.Frequency != nil {
		unit := strings.TrimSuffix(strings.ToLower(rs.Frequency.Unit), "s") // HOURS, DAYS
		if rs.Frequency.Value != 1 {
			unit += "s"
		}
		d.Schedule = fmt.Sprintf("every %d %s", rs.Frequency.Value, unit)
		if rs.TimeOfDay != "" {
			d.Schedule += " at " + rs.TimeOfDay + " UTC"
		}
		if rs.Status != "" && rs.Status != "ENABLED" {
			d.Schedule += " (" + strings.ToLower(rs.Status) + ")"
		}
	}
	for i, wd := range g.Widgets {
		wv := widgetView{N: i + 1, Alias: wd.QueryAlias, Statement: wd.QueryStatement, View: wd.ViewProperties["View"], Title: wd.ViewProperties["Title"]}
		if wv.Title == "" {
			wv.Title = wd.QueryAlias
		}
		if wv.View != "LineChart" && wv.View != "BarChart" {
			wv.View = "Table"
		}
		if g.LastRefreshId != "" && wd.QueryAlias != "" {
			c.widgetResults(r, s, g.LastRefreshId, &wv)
		}
		if queryRunning(wv.Status) {
			d.Running = true
		}
		d.Widgets = append(d.Widgets, wv)
	}
	if d.Running {
		d.PollURL = self
	}
	c.render(w, r, http.StatusOK, "lake_dashboard", view{Title: "Dashboard " + name, Nav: "lake", Data: d})
}

// widgetResults fills a widget from its query of the refresh: status, and
// the first page of its results when it has finished.
func (c *Console) widgetResults(r *http.Request, s *session, refreshID string, wv *widgetView) {
	var q describeQueryOutput
	if err := c.lakeRead(r, s, "DescribeQuery", map[string]any{"QueryAlias": wv.Alias, "RefreshId": refreshID}, &q); err != nil {
		wv.Error = c.lakeMessage("DescribeQuery", err)
		return
	}
	wv.QueryID, wv.Status, wv.Error = q.QueryId, q.QueryStatus, q.ErrorMessage
	if q.QueryId != "" {
		wv.QueryURL = queryURL(q.QueryId, nil)
	}
	if q.QueryStatus != "FINISHED" {
		return
	}
	var res queryResultsOutput
	if err := c.lakeRead(r, s, "GetQueryResults", map[string]any{"QueryId": q.QueryId, "MaxQueryResults": lakeWidgetRows}, &res); err != nil {
		wv.Error = c.lakeMessage("GetQueryResults", err)
		return
	}
	wv.Columns, wv.Rows = res.table()
	wv.Total = res.QueryStatistics.TotalResultsCount
	if wv.Total == 0 {
		wv.Total = int64(len(wv.Rows))
	}
	switch wv.View {
	case "LineChart":
		wv.Chart = chartOf("line", wv.Columns, wv.Rows)
	case "BarChart":
		wv.Chart = chartOf("bar", wv.Columns, wv.Rows)
	}
	if wv.Chart == nil {
		// Nothing numeric to draw: the rows as a table instead.
		wv.View = "Table"
	}
	if len(wv.Rows) > lakeWidgetTableRows {
		wv.Rows = wv.Rows[:lakeWidgetTableRows]
	}
	wv.Shown = len(wv.Rows)
	wv.More = int64(wv.Shown) < wv.Total
}

// chartJSON is a widget's chart as JSON text for a data attribute (the
// template escapes it as attribute text).
func chartJSON(ch *widgetChart) (string, error) {
	b, err := json.Marshal(ch)
	return string(b), err
}

// resultArgs bundles a results table's inputs (templates have no struct
// literals).
func resultArgs(caption string, cols []string, rows [][]string) resultTable {
	return resultTable{Caption: caption, Columns: cols, Rows: rows}
}

type resultTable struct {
	Caption string
	Columns []string
	Rows    [][]string
}

func (c *Console) lakeDashboardRefresh(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	out, err := c.call(r, s, s.Region(), "StartDashboardRefresh", map[string]any{"DashboardId": name})
	if err != nil {
		s.setFlash(c.lakeMessage("StartDashboardRefresh", err), true)
	} else {
		var started struct{ RefreshId string }
		_ = json.Unmarshal(out, &started)
		s.setFlash("Refresh "+started.RefreshId+" started.", false)
	}
	http.Redirect(w, r, Prefix+"lake/dashboards/"+url.PathEscape(name), http.StatusSeeOther)
}
