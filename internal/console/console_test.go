package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/history"
)

func TestFiltersRoundTrip(t *testing.T) {
	q, _ := url.ParseQuery("k=Username&v=alice&k=EventName&v=+RunInstances+&k=EventSource&v=&range=custom&start=2026-11-20T10:00&end=2026-11-20T11:30&size=100")
	f, problems := parseFilters(q)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	want := []history.Attribute{{Key: "Username", Value: "alice"}, {Key: "EventName", Value: "RunInstances"}}
	if len(f.Attrs) != 2 || f.Attrs[0] != want[0] || f.Attrs[1] != want[1] {
		t.Fatalf("attributes %v, want %v (empty values dropped, values trimmed)", f.Attrs, want)
	}
	hq, err := f.query("eu-west-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if hq.Region != "eu-west-1" || !hq.StartTime.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) ||
		!hq.EndTime.Equal(time.Date(2026, 11, 20, 11, 30, 59, 0, time.UTC)) {
		t.Errorf("absolute range %v–%v in %s", hq.StartTime, hq.EndTime, hq.Region)
	}
	again, _ := parseFilters(f.values())
	if again.Range != "custom" || again.PageSize != 100 || len(again.Attrs) != 2 {
		t.Errorf("the filters do not survive their own query string: %+v", again)
	}

	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rel, _ := parseFilters(url.Values{"range": {"3h"}})
	if hq, _ := rel.query("us-east-1", now); !hq.StartTime.Equal(now.Add(-3*time.Hour)) || !hq.EndTime.IsZero() {
		t.Errorf("relative range: %v–%v", hq.StartTime, hq.EndTime)
	}
	bad, _ := parseFilters(url.Values{"range": {"custom"}, "start": {"yesterday"}})
	if _, err := bad.query("us-east-1", now); err == nil {
		t.Error("an unparseable start time was accepted")
	}
}

func TestPagingLinks(t *testing.T) {
	f, _ := parseFilters(url.Values{"k": {"Username"}, "v": {"alice"}})
	next := f.nextURL("TOKEN1")
	u, _ := url.Parse(next)
	p2, _ := parseFilters(u.Query())
	if p2.Token != "TOKEN1" || len(p2.Back) != 1 || p2.Back[0] != "-" {
		t.Fatalf("page 2: %+v", p2)
	}
	u3, _ := url.Parse(p2.nextURL("TOKEN2"))
	p3, _ := parseFilters(u3.Query())
	prev, _ := url.Parse(p3.prevURL())
	back, _ := parseFilters(prev.Query())
	if back.Token != "TOKEN1" || len(back.Attrs) != 1 {
		t.Errorf("newer from page 3 goes to %+v, want page 2", back)
	}
	if f.prevURL() != "" {
		t.Error("the first page has a newer link")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/console/events?k=a":   "/console/events?k=a",
		"https://evil.example/": Prefix,
		"//evil.example/":       Prefix,
		"/console/\\evil":       Prefix,
		"":                      Prefix,
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := newSessionStore(clock)
	s := st.create(api.Caller{AccessKeyID: "CKIA1"}, "us-east-1")
	if len(s.id) != 43 || len(s.csrf) != 43 || s.id == s.csrf {
		t.Fatalf("session id %q and csrf %q: want two distinct 256-bit tokens", s.id, s.csrf)
	}
	now = now.Add(50 * time.Minute)
	if st.get(s.id, false) == nil {
		t.Fatal("a session expired before its idle limit")
	}
	now = now.Add(20 * time.Minute) // 70 min since last use: a poll did not count
	if st.get(s.id, true) != nil {
		t.Fatal("an idle session survived an hour without use")
	}
	s = st.create(api.Caller{AccessKeyID: "CKIA1"}, "us-east-1")
	for range 14 {
		now = now.Add(55 * time.Minute)
		st.get(s.id, true)
	}
	if st.get(s.id, true) != nil {
		t.Error("a busy session outlived its 12 h absolute limit")
	}
}

func TestSelectorsFromForm(t *testing.T) {
	f := defaultTrailForm()
	if body, err := f.selectorsBody("arn"); err != nil || body != nil {
		t.Errorf("the default form asks for selectors %v (%v); want CloudTrail's default", body, err)
	}
	f.MgmtRW, f.DataS3, f.DataS3Values, f.ExcludeKMS = "WriteOnly", true, "arn:aws:s3:::a/\narn:aws:s3:::b/", true
	body, err := f.selectorsBody("arn")
	if err != nil || body == nil {
		t.Fatal(err)
	}
	raw := string(mustJSON(body))
	for _, want := range []string{`"ReadWriteType":"WriteOnly"`, `"arn:aws:s3:::a/","arn:aws:s3:::b/"`, `"kms.amazonaws.com"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("selectors %s lack %s", raw, want)
		}
	}
	f.SelectorMode, f.Advanced = "advanced", "not json"
	if _, err := f.selectorsBody("arn"); err == nil {
		t.Error("invalid advanced selectors were accepted")
	}
}

// TestTemplatesParse catches a template error before a server fails to
// start with it.
func TestTemplatesParse(t *testing.T) {
	if _, err := New(Options{Backend: benchBackend{}}); err != nil {
		t.Fatal(err)
	}
}

// TestRateLimiterIsBounded: addresses beyond the limiter's capacity within
// one window must not grow its map (an IPv6 prefix holds plenty of them);
// they are refused until old entries expire.
func TestRateLimiterIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRateLimiter(func() time.Time { return now }, 10, time.Minute)
	for i := range rateLimiterKeys + 500 {
		l.allow("2001:db8::" + strconv.Itoa(i))
	}
	if n := len(l.seen); n > rateLimiterKeys {
		t.Fatalf("the limiter tracks %d addresses, more than its %d", n, rateLimiterKeys)
	}
	if l.allow("2001:db8::ffff:1") {
		t.Error("a new address was let through while the limiter was full")
	}
	if !l.allow("2001:db8::1") {
		t.Error("an address already tracked, under its limit, was refused")
	}
	now = now.Add(2 * time.Minute)
	if !l.allow("2001:db8::ffff:1") {
		t.Error("a new address was refused after the old entries expired")
	}
	if n := len(l.seen); n != 1 {
		t.Errorf("%d addresses tracked after the sweep, want 1", n)
	}
}

// TestSessionsPerKeyAreBounded: signing in again and again with one key
// (from many addresses, past the per-address limit) must not grow the
// session map; the least recently used session makes way.
func TestSessionsPerKeyAreBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := newSessionStore(func() time.Time { return now })
	first := st.create(api.Caller{AccessKeyID: "CKIA1"}, "us-east-1")
	other := st.create(api.Caller{AccessKeyID: "CKIA2"}, "us-east-1")
	var last *session
	for range 1000 {
		now = now.Add(time.Second)
		st.get(first.id, true) // in use: the others are older
		last = st.create(api.Caller{AccessKeyID: "CKIA1"}, "us-east-1")
	}
	if n := len(st.m); n > maxSessionsPerKey+1 {
		t.Fatalf("%d sessions after 1,000 sign-ins with one key, want at most %d", n, maxSessionsPerKey+1)
	}
	if st.get(first.id, false) == nil || st.get(last.id, false) == nil {
		t.Error("the session in use or the newest one was ended")
	}
	if st.get(other.id, false) == nil {
		t.Error("another key's session was ended")
	}
}

// sparseBackend answers every lookup as an AND-ed lookup over a large
// history answers a sparse filter: an empty page whose seek budget ran
// out, with a NextToken to resume.
type sparseBackend struct {
	benchBackend
	lookups atomic.Int64
}

func (b *sparseBackend) Count(_ context.Context, _ string, start, end time.Time, bucket time.Duration) ([]int, error) {
	return make([]int, int((end.Sub(start)+bucket-1)/bucket)), nil
}

func (b *sparseBackend) Lookup(context.Context, history.Query) (history.Page, error) {
	if b.lookups.Add(1) > 10000 {
		return history.Page{}, fmt.Errorf("too many lookups")
	}
	return history.Page{Events: []event.LookupEvent{}, NextToken: "more"}, nil
}

// TestFetchChainsBoundedLookups: a page, a live poll and a download each
// cost a bounded number of index lookups, however many pages a sparse
// filter's scan comes back empty.
func TestFetchChainsBoundedLookups(t *testing.T) {
	be := &sparseBackend{}
	c, err := New(Options{Backend: be, AccountID: "123456789012", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := c.sessions.create(api.Caller{AccessKeyID: "CKIATEST", UserName: "test"}, "us-east-1")
	for _, tc := range []struct {
		target string
		max    int64
	}{
		{"/console/events?size=200&k=Username&v=alice&k=EventName&v=RunInstances", 8},
		{"/console/events/live?k=Username&v=alice&k=EventName&v=RunInstances", 8},
		// The chart counts through Count; the newest events are one
		// chain of lookups.
		{"/console/", 8},
	} {
		target := tc.target
		be.lookups.Store(0)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+target, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: s.id})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := be.lookups.Load(); n > tc.max {
			t.Errorf("GET %s: %d lookups, want at most %d", target, n, tc.max)
		}
	}
}
