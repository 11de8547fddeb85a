package console

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/history"
)

// lookupKeys are the attributes the filter offers, in the CloudTrail
// console's order, with its labels.
var lookupKeys = []struct{ Key, Label string }{
	{"EventName", "Event name"},
	{"Username", "User name"},
	{"EventSource", "Event source"},
	{"ResourceType", "Resource type"},
	{"ResourceName", "Resource name"},
	{"AccessKeyId", "AWS access key"},
	{"ReadOnly", "Read-only"},
	{"EventId", "Event ID"},
}

// columns are the event-history columns; the chooser hides and shows them
// in the browser (remembered there), so every page carries all of them.
var columns = []struct {
	ID, Label string
	Default   bool
}{
	{"time", "Event time", true},
	{"user", "User name", true},
	{"name", "Event name", true},
	{"source", "Event source", true},
	{"rtype", "Resource type", true},
	{"rname", "Resource name", true},
	{"key", "AWS access key", false},
	{"ip", "Source IP address", true},
	{"error", "Error code", true},
	{"readonly", "Read-only", false},
	{"region", "AWS region", false},
	{"id", "Event ID", false},
}

// ranges are the relative time ranges; "" is everything the retention keeps.
var ranges = []struct {
	ID    string
	Label string
	D     time.Duration
}{
	{"15m", "Last 15 minutes", 15 * time.Minute},
	{"1h", "Last hour", time.Hour},
	{"3h", "Last 3 hours", 3 * time.Hour},
	{"12h", "Last 12 hours", 12 * time.Hour},
	{"1d", "Last day", 24 * time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour},
	{"30d", "Last 30 days", 30 * 24 * time.Hour},
	{"all", "Everything retained", 0},
}

var pageSizes = []int{25, 50, 100, 200}

// filterSet is the event history's query as the page's form carries it.
type filterSet struct {
	Attrs    []history.Attribute
	Range    string // a ranges ID or "custom"
	Start    string // datetime-local, UTC, for "custom"
	End      string
	PageSize int
	Token    string
	Back     []string // tokens of the pages before this one
	Live     bool
	// At pins "now" (Unix seconds) for a relative range while paging: the
	// history binds its NextTokens to the query's time bounds, so every
	// page of one listing must compute the same start time.
	At int64
}

const timeInput = "2006-01-02T15:04"

func parseFilters(q url.Values) (filterSet, []string) {
	f := filterSet{Range: q.Get("range"), Start: q.Get("start"), End: q.Get("end"), Token: q.Get("token"), Live: q.Get("live") == "1"}
	var problems []string
	keys, vals := q["k"], q["v"]
	for i := range keys {
		if i >= len(vals) || strings.TrimSpace(vals[i]) == "" || keys[i] == "" {
			continue
		}
		f.Attrs = append(f.Attrs, history.Attribute{Key: keys[i], Value: strings.TrimSpace(vals[i])})
	}
	if len(f.Attrs) > history.MaxAttributes {
		problems = append(problems, fmt.Sprintf("At most %d filters apply at once; the rest were dropped.", history.MaxAttributes))
		f.Attrs = f.Attrs[:history.MaxAttributes]
	}
	if f.Range == "" {
		f.Range = "all"
	}
	f.PageSize = 50
	if n, err := strconv.Atoi(q.Get("size")); err == nil && slices.Contains(pageSizes, n) {
		f.PageSize = n
	}
	if at, err := strconv.ParseInt(q.Get("at"), 10, 64); err == nil && at > 0 {
		f.At = at
	}
	if b := q.Get("back"); b != "" {
		f.Back = strings.Split(b, ".")
	}
	return f, problems
}

// values is the query string of f without paging (for downloads, live
// mode and the pager to extend).
func (f filterSet) values() url.Values {
	v := url.Values{}
	for _, a := range f.Attrs {
		v.Add("k", a.Key)
		v.Add("v", a.Value)
	}
	v.Set("range", f.Range)
	if f.Range == "custom" {
		v.Set("start", f.Start)
		v.Set("end", f.End)
	}
	if f.PageSize != 50 {
		v.Set("size", strconv.Itoa(f.PageSize))
	}
	return v
}

// maxBack bounds the "newer" stack in the URL; beyond it the first page
// is one click away.
const maxBack = 64

func (f filterSet) nextURL(next string) string {
	v := f.values()
	v.Set("token", next)
	// "-" stands for the first page, which has no token.
	tok := f.Token
	if tok == "" {
		tok = "-"
	}
	back := append(slices.Clone(f.Back), tok)
	if len(back) > maxBack {
		back = back[len(back)-maxBack:]
	}
	v.Set("back", strings.Join(back, "."))
	f.pin(v)
	return Prefix + "events?" + v.Encode()
}

// pin carries the listing's "now" into a paging URL.
func (f filterSet) pin(v url.Values) {
	if f.At != 0 && f.Range != "custom" && f.Range != "all" {
		v.Set("at", strconv.FormatInt(f.At, 10))
	}
}

// now is the instant a relative range counts back from: the pinned one
// while paging, else the clock's, in whole seconds so that it survives
// the round trip through the URL.
func (f filterSet) now(clock time.Time) time.Time {
	if f.At != 0 {
		return time.Unix(f.At, 0).UTC()
	}
	return clock.Truncate(time.Second)
}

func (f filterSet) prevURL() string {
	if len(f.Back) == 0 {
		return ""
	}
	v := f.values()
	if tok := f.Back[len(f.Back)-1]; tok != "-" {
		v.Set("token", tok)
	}
	if len(f.Back) > 1 {
		v.Set("back", strings.Join(f.Back[:len(f.Back)-1], "."))
	}
	f.pin(v)
	return Prefix + "events?" + v.Encode()
}

// query turns f into a history query for region.
func (f filterSet) query(region string, now time.Time) (history.Query, error) {
	q := history.Query{Region: region, Attributes: f.Attrs}
	if f.Range == "custom" {
		var err error
		if f.Start != "" {
			if q.StartTime, err = time.Parse(timeInput, f.Start); err != nil {
				return q, fmt.Errorf("the start time %q is not a date and time", f.Start)
			}
		}
		if f.End != "" {
			if q.EndTime, err = time.Parse(timeInput, f.End); err != nil {
				return q, fmt.Errorf("the end time %q is not a date and time", f.End)
			}
			q.EndTime = q.EndTime.Add(time.Minute - time.Second) // the whole end minute
		}
		return q, nil
	}
	for _, r := range ranges {
		if r.ID == f.Range && r.D > 0 {
			q.StartTime = now.Add(-r.D)
		}
	}
	return q, nil
}

// row is one event as the table shows it. Source IP, region and error
// code are not LookupEvents members; they come from the record itself.
type row struct {
	ID, Name, Source, User, AccessKey, ReadOnly string
	Time                                        time.Time
	ResourceTypes, ResourceNames                string
	SourceIP, Region, ErrorCode                 string
}

// recordFields are the record members a row needs beyond LookupEvents'.
type recordFields struct {
	SourceIP  string `json:"sourceIPAddress"`
	Region    string `json:"awsRegion"`
	ErrorCode string `json:"errorCode"`
}

func toRow(e event.LookupEvent) row {
	r := row{ID: e.EventID, Name: e.EventName, Source: e.EventSource, User: e.Username, AccessKey: e.AccessKeyID, ReadOnly: e.ReadOnly, Time: e.EventTime}
	var types, names []string
	for _, res := range e.Resources {
		if res.ResourceType != "" && !slices.Contains(types, res.ResourceType) {
			types = append(types, res.ResourceType)
		}
		if res.ResourceName != "" {
			names = append(names, res.ResourceName)
		}
	}
	r.ResourceTypes, r.ResourceNames = strings.Join(types, ", "), strings.Join(names, ", ")
	var rf recordFields
	if json.Unmarshal([]byte(e.CloudTrailEvent), &rf) == nil {
		r.SourceIP, r.Region, r.ErrorCode = rf.SourceIP, rf.Region, rf.ErrorCode
	}
	return r
}

// fetch reads up to n events starting at token, chaining the index's
// pages of at most 50. An AND-ed lookup may end a page early, even empty,
// when its seek budget runs out; fetch chains at most maxFetchLookups
// pages, so that a sparse filter over a large history (live mode polls it
// every 2 s) costs a bounded amount per request: the page is then shorter
// and its "Older" link resumes the scan.
func (c *Console) fetch(ctx context.Context, q history.Query, token string, n int) ([]event.LookupEvent, string, error) {
	var out []event.LookupEvent
	q.NextToken = token
	for lookups := 0; len(out) < n && lookups < maxFetchLookups(n); lookups++ {
		q.MaxResults = min(history.MaxMaxResults, n-len(out))
		p, err := c.be.Lookup(ctx, q)
		if err != nil {
			return nil, "", err
		}
		out = append(out, p.Events...)
		q.NextToken = p.NextToken
		if p.NextToken == "" {
			break
		}
	}
	return out, q.NextToken, nil
}

// maxFetchLookups bounds the index pages one fetch of n events chains:
// twice the pages n needs, and at least eight.
func maxFetchLookups(n int) int {
	return max(8, 2*((n+history.MaxMaxResults-1)/history.MaxMaxResults))
}

type eventsData struct {
	Filters   filterSet
	Keys      any
	Columns   any
	Ranges    any
	Sizes     []int
	Rows      []row
	Next      string
	Prev      string
	First     string
	Problems  []string
	CSVURL    string
	JSONURL   string
	LiveURL   string
	LiveOn    string
	LiveOff   string
	Elapsed   time.Duration
	PageStart int
}

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, s *session) {
	start := time.Now()
	f, problems := parseFilters(r.URL.Query())
	d := eventsData{Filters: f, Keys: lookupKeys, Columns: columns, Ranges: ranges, Sizes: pageSizes, Problems: problems}
	status := http.StatusOK
	now := f.now(c.now())
	f.At = now.Unix()
	d.Filters = f
	q, err := f.query(s.Region(), now)
	if err == nil {
		var events []event.LookupEvent
		var next string
		events, next, err = c.fetch(r.Context(), q, f.Token, f.PageSize)
		if err == nil {
			d.Rows = make([]row, len(events))
			for i, e := range events {
				d.Rows[i] = toRow(e)
			}
			if next != "" && !f.Live {
				d.Next = f.nextURL(next)
			}
		}
	}
	if err != nil {
		status = http.StatusBadRequest
		if ae := awsproto.AsError(err); ae.Code == "InternalFailure" {
			c.log.Error("console: event history lookup", "err", err)
			status = http.StatusInternalServerError
			d.Problems = append(d.Problems, "The event history could not be read. Try again.")
		} else {
			d.Problems = append(d.Problems, ae.Message)
		}
		if d.Problems[len(d.Problems)-1] == "" {
			d.Problems[len(d.Problems)-1] = err.Error()
		}
	}
	d.Prev = f.prevURL()
	d.PageStart = len(f.Back)*f.PageSize + 1
	v := f.values()
	if f.Token != "" {
		d.First = Prefix + "events?" + v.Encode()
	}
	// A download writes an audit record, so its link carries the
	// session's CSRF token: another page of the same site (SameSite lets
	// its requests carry the cookie) must not make records in the user's
	// name with an <img> or a link.
	dl := f.values()
	dl.Set(csrfField, s.csrf)
	d.CSVURL = Prefix + "events/download?format=csv&" + dl.Encode()
	d.JSONURL = Prefix + "events/download?format=json&" + dl.Encode()
	d.LiveOff = Prefix + "events?" + v.Encode()
	v.Set("live", "1")
	d.LiveOn = Prefix + "events?" + v.Encode()
	v.Del("live")
	d.LiveURL = Prefix + "events/live?" + v.Encode()
	d.Elapsed = time.Since(start)
	w.Header().Set("Server-Timing", fmt.Sprintf("lookup;dur=%.2f", float64(d.Elapsed.Microseconds())/1000))
	c.render(w, r, status, "events", view{Title: "Event history", Nav: "events", Data: d})
}

// eventsLive answers live mode's poll with the rows newer than the newest
// the browser shows (after, a Unix second) that it has not seen (the IDs of
// the rows in that same second, since event times have second precision).
func (c *Console) eventsLive(w http.ResponseWriter, r *http.Request, s *session) {
	f, _ := parseFilters(r.URL.Query())
	q, err := f.query(s.Region(), c.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64); err == nil {
		if t := time.Unix(after, 0); t.After(q.StartTime) {
			q.StartTime = t
		}
	}
	seen := map[string]bool{}
	for _, id := range strings.Split(r.URL.Query().Get("seen"), ",") {
		seen[id] = true
	}
	events, _, err := c.fetch(r.Context(), q, "", 100)
	if err != nil {
		c.log.Warn("console: live event poll", "err", err)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var rows []row
	for _, e := range events {
		if !seen[e.EventID] {
			rows = append(rows, toRow(e))
		}
	}
	if len(rows) == 0 {
		w.WriteHeader(http.StatusNoContent) // htmx swaps nothing
		return
	}
	c.render(w, r, http.StatusOK, "events_live", view{Data: eventsData{Rows: rows, Columns: columns}})
}

type detailData struct {
	Row       row
	Event     event.LookupEvent
	Pretty    string
	Record    map[string]any
	Identity  string
	UserAgent string
	EventType string
}

func (c *Console) eventDetail(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	p, err := c.be.Lookup(r.Context(), history.Query{Region: s.Region(), Attributes: []history.Attribute{{Key: "EventId", Value: id}}, MaxResults: 1})
	if err != nil || len(p.Events) == 0 {
		msg := "No event with this ID in region " + s.Region() + "'s history."
		if err != nil {
			msg = awsproto.AsError(err).Message
		}
		c.render(w, r, http.StatusNotFound, "error", view{Title: "Event not found", Nav: "events", Error: msg})
		return
	}
	e := p.Events[0]
	d := detailData{Row: toRow(e), Event: e}
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(e.CloudTrailEvent), "", "  ") == nil {
		d.Pretty = buf.String()
	} else {
		d.Pretty = e.CloudTrailEvent
	}
	var rec struct {
		UserAgent    string `json:"userAgent"`
		EventType    string `json:"eventType"`
		UserIdentity struct {
			Type string `json:"type"`
			ARN  string `json:"arn"`
		} `json:"userIdentity"`
	}
	if json.Unmarshal([]byte(e.CloudTrailEvent), &rec) == nil {
		d.UserAgent, d.EventType = rec.UserAgent, rec.EventType
		d.Identity = strings.TrimSpace(rec.UserIdentity.Type + " " + rec.UserIdentity.ARN)
	}
	c.render(w, r, http.StatusOK, "event", view{Title: "Event " + e.EventName, Nav: "events", Data: d})
}

// eventsDownload streams every event the filters select, as CSV (the
// event history's columns) or JSON (a CloudTrail log file's shape), page by
// page so that memory stays flat whatever the count.
func (c *Console) eventsDownload(w http.ResponseWriter, r *http.Request, s *session) {
	if tok := r.URL.Query().Get(csrfField); tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) != 1 {
		http.Error(w, "The download link was stale or came from another site (CSRF check failed). Reload the event history and try again.", http.StatusForbidden)
		return
	}
	f, _ := parseFilters(r.URL.Query())
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		http.Error(w, "format must be csv or json", http.StatusBadRequest)
		return
	}
	q, err := f.query(s.Region(), c.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Validate the query with the first page before any header goes out.
	q.MaxResults = history.MaxMaxResults
	first, err := c.be.Lookup(r.Context(), q)
	if err != nil {
		http.Error(w, awsproto.AsError(err).Message, http.StatusBadRequest)
		return
	}
	m := meta(r)
	params := map[string]any{"format": format, "region": s.Region()}
	if len(f.Attrs) > 0 {
		params["lookupAttributes"] = f.Attrs
	}
	if !q.StartTime.IsZero() {
		params["startTime"] = event.FormatTime(q.StartTime)
	}
	if !q.EndTime.IsZero() {
		params["endTime"] = event.FormatTime(q.EndTime)
	}
	rp, _ := json.Marshal(params)
	// A download takes data out of Cairn: it is recorded, and refused when
	// its record cannot be written.
	if err := c.be.Record(r.Context(), event.APICall{
		Time: c.now().UTC(), Source: "cloudtrail.amazonaws.com", Name: "DownloadEventHistory", EventType: "AwsConsoleAction",
		Region: s.Region(), SourceIP: m.SourceIP, UserAgent: m.UserAgent, Identity: s.Caller().Identity(),
		ReadOnly: true, RequestParameters: rp, FromConsole: true,
	}); err != nil {
		c.log.Error("console: record download; refusing it", "err", err)
		http.Error(w, "Cairn could not record this download in its audit journal, so it was refused. Try again later.", http.StatusServiceUnavailable)
		return
	}
	name := "event_history_" + c.now().UTC().Format("20060102T150405Z") + "." + format
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	var cw *csv.Writer
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw = csv.NewWriter(w)
		_ = cw.Write([]string{"Event ID", "Event time", "User name", "Event name", "Event source", "Resource type", "Resource name", "AWS access key", "Read-only", "AWS region", "Error code", "Source IP address"})
	} else {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Records":[`))
	}
	n := 0
	page := first
	for {
		for _, e := range page.Events {
			if cw != nil {
				rw := toRow(e)
				_ = cw.Write(csvSafe(rw.ID, rw.Time.UTC().Format(time.RFC3339), rw.User, rw.Name, rw.Source, rw.ResourceTypes, rw.ResourceNames, rw.AccessKey, rw.ReadOnly, rw.Region, rw.ErrorCode, rw.SourceIP))
			} else {
				if n > 0 {
					_, _ = w.Write([]byte(","))
				}
				_, _ = w.Write([]byte(e.CloudTrailEvent))
			}
			n++
		}
		if cw != nil {
			cw.Flush()
			if cw.Error() != nil {
				return // the client went away
			}
		}
		if page.NextToken == "" || r.Context().Err() != nil {
			break
		}
		q.NextToken = page.NextToken
		if page, err = c.be.Lookup(r.Context(), q); err != nil {
			// Headers are out; the truncated body is all that can signal it.
			c.log.Error("console: download stopped", "events", n, "err", err)
			return
		}
	}
	if cw == nil {
		_, _ = w.Write([]byte("]}\n"))
	}
}

// csvSafe neutralises spreadsheet formulas: most of a record's values are
// whatever a caller sent (a user name, a resource name, the access key ID
// typed into a failed sign-in), and a spreadsheet would run a cell that
// starts with = + - @ (or a tab or carriage return before one) as a
// formula. Such a cell gets a leading apostrophe, which spreadsheets take
// as "text" and do not show, as OWASP recommends.
func csvSafe(cells ...string) []string {
	for i, v := range cells {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			cells[i] = "'" + v
		}
	}
	return cells
}
