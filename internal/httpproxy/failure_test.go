package httpproxy_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/httpproxy"
	"github.com/cairn-audit/cairn/internal/journal/journaltest"
	"github.com/cairn-audit/cairn/internal/server"
)

// TestFailClosed: with the journal failing, calls are refused with 503 and
// once the journal says it is unavailable the upstream sees nothing; the
// proxy recovers by itself when the disk does.
func TestFailClosed(t *testing.T) {
	disk := journaltest.NewFullDisk()
	s := startStack(t, httpproxy.Config{}, func(c *server.Config) { c.JournalFS = disk })
	if code, _, _ := s.do(t, nil, "GET", "/v1/users/1", nil, ""); code != 200 {
		t.Fatalf("before the fault: %d", code)
	}
	disk.Full.Store(true)
	// The first call finds the fault: the upstream answers, but its answer
	// is withheld because the event could not be made durable.
	code, body, _ := s.do(t, nil, "DELETE", "/v1/users/1", nil, "")
	if code != 503 || !strings.Contains(body, `"error":"ServiceUnavailable"`) || !strings.Contains(body, "journal") {
		t.Fatalf("call when the append fails: %d %s, want 503 naming the journal", code, body)
	}
	if err := s.h.Server.Journal().Available(); err == nil {
		t.Fatal("the journal still says it is available")
	}
	hits := s.up.hits.Load()
	for range 3 {
		code, body, h := s.do(t, nil, "DELETE", "/v1/users/1", nil, "")
		if code != 503 || h.Get("Content-Type") != "application/json" || !strings.Contains(body, "was not forwarded") {
			t.Fatalf("call while the journal is unavailable: %d %s", code, body)
		}
	}
	if got := s.up.hits.Load(); got != hits {
		t.Fatalf("the upstream saw %d calls while the journal was unavailable, want none", got-hits)
	}
	if got := s.metric(t, "cairn_http_proxy_requests_total{outcome=\"unavailable\""); got != "4" {
		t.Errorf("unavailable outcome counted %q, want 4", got)
	}
	disk.Full.Store(false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _, _ := s.do(t, nil, "DELETE", "/v1/users/2", nil, "")
		if code == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 20s after the disk was freed: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var deletes []string
	for _, r := range s.records(t) {
		if r.EventName == "DeleteUser" {
			deletes = append(deletes, r.str("requestParameters.id"))
		}
	}
	if strings.Join(deletes, ",") != "2" {
		t.Errorf("recorded deletes %v, want only the one after recovery", deletes)
	}
}

// TestFailOpen forwards calls whose events cannot be recorded and counts
// them.
func TestFailOpen(t *testing.T) {
	disk := journaltest.NewFullDisk()
	s := startStack(t, httpproxy.Config{FailurePolicy: httpproxy.FailOpen}, func(c *server.Config) { c.JournalFS = disk })
	disk.Full.Store(true)
	for range 3 {
		if code, _, _ := s.do(t, nil, "GET", "/v1/users/1", nil, ""); code != 200 {
			t.Fatalf("fail open: %d, want the upstream's 200", code)
		}
	}
	if s.up.hits.Load() != 3 {
		t.Errorf("upstream saw %d calls, want 3", s.up.hits.Load())
	}
	if got := s.metric(t, "cairn_http_proxy_events_lost_total"); got != "3" {
		t.Errorf("cairn_http_proxy_events_lost_total = %q, want 3", got)
	}
}

func TestRefusalsAndUpstreamFailures(t *testing.T) {
	s := startStack(t, httpproxy.Config{Unmatched: httpproxy.UnmatchedDeny})
	for _, c := range []struct {
		method, path string
		status       int
		code, msg    string
	}{
		{"GET", "/admin", 403, "AccessDenied", "no route allows GET /admin"},
		{"POST", "/v1/users/1", 403, "AccessDenied", "no route allows POST"},
		{"GET", "/v1/users/%2e%2e/admin", 400, "BadRequest", "dot segment"},
		// Dot segments behind an encoded slash or backslash: an upstream
		// that decodes before normalising would serve /admin while the
		// proxy matched GET /v1/users/{id}.
		{"GET", "/v1/users/..%2Fadmin", 400, "BadRequest", "dot segment"},
		{"GET", "/v1/users/..%2F..%2Fadmin", 400, "BadRequest", "dot segment"},
		{"GET", "/v1/users/..%5Cadmin", 400, "BadRequest", "dot segment"},
		// A query the record could not name whole: an upstream that
		// splits on ';' would act on role=admin, which the record would
		// leave out.
		{"GET", "/v1/users/1?role=user;role=admin", 400, "BadRequest", "query is refused"},
		{"GET", "/v1/users/1?a=%zz&role=admin", 400, "BadRequest", "query is refused"},
	} {
		code, body, _ := s.do(t, nil, c.method, c.path, nil, "")
		if code != c.status || !strings.Contains(body, c.code) {
			t.Errorf("%s %s: %d %s", c.method, c.path, code, body)
		}
		r := s.lastRecord(t)
		if r.ErrorCode != c.code || !strings.Contains(r.str("errorMessage"), c.msg) {
			t.Errorf("%s %s recorded as %s", c.method, c.path, r.Raw)
		}
	}
	if s.up.hits.Load() != 0 {
		t.Errorf("the upstream saw %d refused calls", s.up.hits.Load())
	}
	// HEAD takes the GET route, as in Go's ServeMux, not the deny.
	if code, _, _ := s.do(t, nil, "HEAD", "/v1/users/42", nil, ""); code != 200 {
		t.Errorf("HEAD on a GET route: %d", code)
	}
	if r := s.lastRecord(t); r.str("eventName") != "GetUser" || r.str("readOnly") != "true" || r.ErrorCode != "" {
		t.Errorf("HEAD on a GET route recorded as %s", r.Raw)
	}
	// A status with no body field configured maps through the table.
	if code, _, _ := s.do(t, nil, "GET", "/v1/users/missing", nil, ""); code != 404 {
		t.Fatal(code)
	}
	if r := s.lastRecord(t); r.ErrorCode != "NotFound" || r.str("errorMessage") != "Not Found" {
		t.Errorf("404 recorded as %s", r.Raw)
	}
	s.up.Close()
	code, body, _ := s.do(t, nil, "GET", "/v1/users/1", nil, "")
	if code != http.StatusBadGateway || !strings.Contains(body, "BadGateway") {
		t.Errorf("upstream down: %d %s", code, body)
	}
	if r := s.lastRecord(t); r.ErrorCode != "BadGateway" || r.str("additionalEventData.httpStatus") != "502" {
		t.Errorf("upstream down recorded as %s", r.Raw)
	}
}

// TestCloseWaitsForCallsInFlight: a call the upstream is still working on
// when the proxy closes gets its answer and its event.
func TestCloseWaitsForCallsInFlight(t *testing.T) {
	s := startStack(t, httpproxy.Config{})
	arrived, release := make(chan struct{}), make(chan struct{})
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	s.up.handler.Store(&h)
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("DELETE", s.url+"/v1/users/8", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-arrived
	closed := make(chan error, 1)
	go func() { closed <- s.p.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a call was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if code := <-got; code != http.StatusNoContent {
		t.Fatalf("the call in flight got %d, want the upstream's 204", code)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if r := s.lastRecord(t); r.EventName != "DeleteUser" || r.str("requestParameters.id") != "8" {
		t.Errorf("last event %s", r.Raw)
	}
	if _, err := http.Get(s.url + "/v1/users/1"); err == nil {
		t.Error("the proxy still takes calls after Close")
	}
}

// TestBodyLimitFitsTheJournal: body_limit is bounded so that a record
// always fits the journal's 1 MiB entry; with a larger one a big recorded
// body made the append fail, and a fail-closed proxy answered 503 after
// the upstream had acted. At the bound, a full body and a long query are
// recorded.
func TestBodyLimitFitsTheJournal(t *testing.T) {
	cfg := httpproxy.Config{Listen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", EventSource: source, RecordRequestBody: true, BodyLimit: 2 << 20}
	if _, err := httpproxy.New(cfg); err == nil || !strings.Contains(err.Error(), "body_limit") {
		t.Fatalf("body_limit of 2 MiB: %v, want refused", err)
	}
	s := startStack(t, httpproxy.Config{RecordRequestBody: true, BodyLimit: httpproxy.MaxBodyLimit})
	pad := httpproxy.MaxBodyLimit - len(`{"name":"","pad":""}`) - 4
	body := `{"name":"ann","pad":"` + strings.Repeat(`\u0001`, pad/6) + strings.Repeat("x", pad%6) + `"}`
	query := "?note=" + strings.Repeat("%01", 18000)
	code, resp, _ := s.do(t, nil, "POST", "/v1/users"+query, map[string]string{"Content-Type": "application/json"}, body)
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, resp)
	}
	r := s.lastRecord(t)
	if r.EventName != "CreateUser" || r.str("requestParameters.body.name") != "ann" || len(r.Raw) < httpproxy.MaxBodyLimit {
		t.Fatalf("recorded as %.300s (%d bytes)", r.Raw, len(r.Raw))
	}
}

// TestRedactionIgnoresCase: a listed name hides its value whatever the
// case the caller wrote it in, in the query and in a recorded body.
func TestRedactionIgnoresCase(t *testing.T) {
	s := startStack(t, httpproxy.Config{RecordRequestBody: true, RedactParameters: []string{"password"}})
	code, resp, _ := s.do(t, nil, "POST", "/v1/users?Access_Token=tok-leak-1&PASSWORD=pw-leak-2&mode=fast",
		map[string]string{"Content-Type": "application/json"}, `{"name":"ann","Password":"pw-leak-3"}`)
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, resp)
	}
	r := s.lastRecord(t)
	for _, leak := range []string{"tok-leak-1", "pw-leak-2", "pw-leak-3"} {
		if strings.Contains(string(r.Raw), leak) {
			t.Errorf("%s recorded: %s", leak, r.Raw)
		}
	}
	if r.str("requestParameters.mode") != "fast" || r.str("requestParameters.body.name") != "ann" || r.str("requestParameters.body.Password") != "HIDDEN_DUE_TO_SECURITY_REASONS" {
		t.Errorf("recorded as %s", r.Raw)
	}
}
