package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/audit"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// env is a real in-process Cairn with one channel.
type env struct {
	h          *servertest.Harness
	channelARN string
}

func startCairn(t testing.TB) *env {
	t.Helper()
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	out, err := h.CloudTrail.CreateChannel(ctx, &cloudtrail.CreateChannelInput{
		Name: aws.String("middleware"), Source: aws.String("Custom"),
		Destinations: []cttypes.Destination{{Type: cttypes.DestinationTypeEventDataStore,
			Location: aws.String(servertest.AuditStore(t, ctx, h.CloudTrail, "middleware-store"))}},
	})
	if err != nil {
		t.Fatalf("create channel: %v", err)
	}
	return &env{h: h, channelARN: aws.ToString(out.ChannelArn)}
}

// config is a Config for this Cairn with fast retries; endpoint may be a
// proxy in front of it ("" means Cairn itself).
func (e *env) config(endpoint, source string) audit.Config {
	if endpoint == "" {
		endpoint = e.h.URL
	}
	return audit.Config{
		Endpoint:      endpoint,
		ChannelARN:    e.channelARN,
		Credentials:   credentials.NewStaticCredentialsProvider(e.h.AdminKeyID, e.h.AdminSecret, ""),
		EventSource:   source,
		FlushInterval: time.Hour, // only full batches and Close send, unless a test says otherwise
		Retry:         audit.RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func newClient(t testing.TB, cfg audit.Config) *audit.Client {
	t.Helper()
	c, err := audit.NewClient(cfg)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func closeClient(t testing.TB, c *audit.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// lookup polls the event history until it holds want events of source
// (it indexes asynchronously) and returns them.
func (e *env) lookup(t testing.TB, source string, want int) []cttypes.Event {
	t.Helper()
	ctx := servertest.Context(t)
	var got []cttypes.Event
	for {
		got = got[:0]
		in := &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{
			AttributeKey: cttypes.LookupAttributeKeyEventSource, AttributeValue: aws.String(source)}}}
		pages := cloudtrail.NewLookupEventsPaginator(e.h.CloudTrail, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatalf("LookupEvents: %v", err)
			}
			got = append(got, page.Events...)
		}
		if len(got) >= want {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("event history has %d events of %s, want %d", len(got), source, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// record is the part of a stored channel record the tests read.
type record struct {
	EventName         string `json:"eventName"`
	EventSource       string `json:"eventSource"`
	EventCategory     string `json:"eventCategory"`
	ErrorCode         string `json:"errorCode"`
	SourceIPAddress   string `json:"sourceIPAddress"`
	UserAgent         string `json:"userAgent"`
	RequestParameters map[string]any
	UserIdentity      struct {
		Type        string         `json:"type"`
		PrincipalID string         `json:"principalId"`
		Details     map[string]any `json:"details"`
	} `json:"userIdentity"`
	EventData struct {
		UID                 string         `json:"UID"`
		RequestParameters   map[string]any `json:"requestParameters"`
		AdditionalEventData map[string]any `json:"additionalEventData"`
	} `json:"eventData"`
}

func parseRecord(t testing.TB, ev cttypes.Event) record {
	t.Helper()
	var r record
	if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &r); err != nil {
		t.Fatalf("decode CloudTrailEvent %s: %v", aws.ToString(ev.CloudTrailEvent), err)
	}
	return r
}

// TestEventsReachEventHistory: requests served through the middleware over
// real HTTP become channel events that LookupEvents finds, with the route
// pattern as eventName, the identity, the parameters (secrets hidden) and
// the HTTP status as errorCode.
func TestEventsReachEventHistory(t *testing.T) {
	e := startCairn(t)
	cfg := e.config("", "history.test")
	cfg.Identify = func(r *http.Request) audit.Identity {
		return audit.Identity{Type: "User", PrincipalID: r.Header.Get("X-User"), Details: map[string]any{"team": "ops"}}
	}
	c := newClient(t, cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "note %s", r.PathValue("id")) })
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	srv := httptest.NewServer(c.Middleware(mux))
	defer srv.Close()

	call := func(method, path, user string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-User", user)
		req.Header.Set("User-Agent", "audit-test/1")
		req.Header.Set("Authorization", "Bearer s3cr3t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	call("GET", "/notes/7?verbose=1&access_token=s3cr3t", "alice")
	call("POST", "/notes", "bob")
	call("GET", "/nowhere", "carol")
	closeClient(t, c)
	if s := c.Stats(); s.Sent != 3 || s.Failed != 0 || s.Dropped != 0 || s.Buffered != 0 {
		t.Fatalf("stats %+v", s)
	}

	byName := map[string]record{}
	for _, ev := range e.lookup(t, "history.test", 3) {
		r := parseRecord(t, ev)
		if aws.ToString(ev.EventName) != r.EventName {
			t.Errorf("LookupEvents EventName %q, record %q", aws.ToString(ev.EventName), r.EventName)
		}
		byName[r.EventName] = r
	}
	get, ok := byName["GET /notes/{id}"]
	if !ok {
		t.Fatalf("no GET /notes/{id} event among %v", byName)
	}
	if get.UserIdentity.Type != "User" || get.UserIdentity.PrincipalID != "alice" || get.UserIdentity.Details["team"] != "ops" {
		t.Errorf("userIdentity %+v", get.UserIdentity)
	}
	if get.EventCategory != "ActivityAuditLog" || get.EventSource != "history.test" || get.UserAgent != "audit-test/1" || get.SourceIPAddress != "127.0.0.1" || get.ErrorCode != "" {
		t.Errorf("record %+v", get)
	}
	if p := get.EventData.RequestParameters; p["id"] != "7" || p["verbose"] != "1" || p["access_token"] != "HIDDEN_DUE_TO_SECURITY_REASONS" || len(p) != 3 {
		t.Errorf("requestParameters %v", p)
	}
	if a := get.EventData.AdditionalEventData; a["status"] != 200.0 || a["httpMethod"] != "GET" || a["path"] != "/notes/7" || a["responseBytes"] != 6.0 {
		t.Errorf("additionalEventData %v", a)
	}
	if len(get.EventData.UID) != 36 {
		t.Errorf("UID %q", get.EventData.UID)
	}
	if r := byName["POST /notes"]; r.UserIdentity.PrincipalID != "bob" || r.ErrorCode != "" || r.EventData.AdditionalEventData["status"] != 201.0 {
		t.Errorf("POST record %+v", r)
	}
	if r := byName["GET /nowhere"]; r.ErrorCode != "NotFound" || r.EventData.AdditionalEventData["status"] != 404.0 {
		t.Errorf("unmatched route record %+v", r)
	}
	for _, ev := range e.lookup(t, "history.test", 3) {
		if bytes.Contains([]byte(aws.ToString(ev.CloudTrailEvent)), []byte("s3cr3t")) {
			t.Errorf("a secret reached the event: %s", aws.ToString(ev.CloudTrailEvent))
		}
	}
}

// proxy is a real reverse proxy in front of Cairn that counts and inspects
// PutAuditEvents calls and can misbehave on purpose through intercept,
// which returns true when it has answered the call itself.
type proxy struct {
	srv       *httptest.Server
	mu        sync.Mutex
	calls     int
	batchSize []int // events per call that reached Cairn
	bodyBytes []int
	intercept func(n int, w http.ResponseWriter, r *http.Request) bool
	modify    func(n int, resp *http.Response) error
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		mod, n := p.modify, p.calls
		p.mu.Unlock()
		if mod == nil {
			return nil
		}
		return mod(n, resp)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.calls++
		n, icpt := p.calls, p.intercept
		p.mu.Unlock()
		if icpt != nil && icpt(n, w, r) {
			return
		}
		var shape struct {
			AuditEvents []json.RawMessage `json:"auditEvents"`
		}
		if err := json.Unmarshal(body, &shape); err != nil {
			t.Errorf("proxy: body is not a PutAuditEvents request: %v", err)
		}
		p.mu.Lock()
		p.batchSize = append(p.batchSize, len(shape.AuditEvents))
		p.bodyBytes = append(p.bodyBytes, len(body))
		p.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) stats() (calls int, sizes, bodies []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, append([]int(nil), p.batchSize...), append([]int(nil), p.bodyBytes...)
}

// serve runs n requests through h without a network (the service side of
// these tests is not what they are about).
func serve(h http.Handler, n int, target string) {
	for range n {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", target, nil))
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })

// TestBatching: full batches go out as soon as they fill, never more than
// 100 events or 1 MB per call, and Close sends the rest.
func TestBatching(t *testing.T) {
	e := startCairn(t)
	p := startProxy(t, e.h.URL)
	c := newClient(t, e.config(p.srv.URL, "batching.test"))
	h := c.Middleware(okHandler)
	serve(h, 250, "/items")
	// 50 remain below a full batch; the flush interval is an hour.
	ctx := servertest.Context(t)
	for c.Stats().Sent < 200 {
		select {
		case <-ctx.Done():
			t.Fatalf("full batches not sent: %+v", c.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	closeClient(t, c)
	calls, sizes, _ := p.stats()
	if calls != 3 || sizes[0] != 100 || sizes[1] != 100 || sizes[2] != 50 {
		t.Fatalf("calls %d with %v events", calls, sizes)
	}
	if s := c.Stats(); s.Sent != 250 || s.Batches != 3 || s.Buffered != 0 {
		t.Fatalf("stats %+v", s)
	}
	e.lookup(t, "batching.test", 250)

	// Events of ~70 KB: a 1 MB call holds far fewer than 100.
	c2 := newClient(t, e.config(p.srv.URL, "big.test"))
	q := url.Values{}
	for i := range 70 {
		q.Set(fmt.Sprintf("p%02d", i), string(bytes.Repeat([]byte{'v'}, 1000)))
	}
	serve(c2.Middleware(okHandler), 40, "/big?"+q.Encode())
	closeClient(t, c2)
	calls2, sizes2, bodies2 := p.stats()
	sizes2, bodies2 = sizes2[calls:], bodies2[calls:]
	total := 0
	for i, n := range sizes2 {
		total += n
		if bodies2[i] > audit.MaxBatchBytes {
			t.Errorf("call of %d bytes", bodies2[i])
		}
	}
	if total != 40 || calls2-calls < 3 {
		t.Fatalf("big events: %d calls with %v events, %v bytes", calls2-calls, sizes2, bodies2)
	}
	if s := c2.Stats(); s.Sent != 40 || s.Failed != 0 {
		t.Fatalf("big events stats %+v", s)
	}
	evs := e.lookup(t, "big.test", 40)
	if r := parseRecord(t, evs[0]); len(r.EventData.RequestParameters) != 64 {
		t.Errorf("requestParameters has %d members, want the first 64", len(r.EventData.RequestParameters))
	}
}

// TestRetryWhenUnavailable: a batch that meets 503, a dropped connection
// and throttling is sent again until Cairn takes it, and nothing is lost.
func TestRetryWhenUnavailable(t *testing.T) {
	e := startCairn(t)
	p := startProxy(t, e.h.URL)
	p.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
		switch n {
		case 1:
			w.Header().Set("X-Amzn-ErrorType", "ServiceUnavailableException")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"message":"journal not accepting writes"}`))
		case 2:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return true
			}
			conn.Close()
		case 3:
			w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"Rate exceeded"}`))
		default:
			return false
		}
		return true
	}
	c := newClient(t, e.config(p.srv.URL, "retry.test"))
	serve(c.Middleware(okHandler), 10, "/r")
	closeClient(t, c)
	if s := c.Stats(); s.Sent != 10 || s.Retried != 30 || s.Batches != 4 || s.Failed != 0 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
	e.lookup(t, "retry.test", 10)
}

// TestGiveUp: a batch that keeps failing is given up after MaxAttempts, and
// one Cairn refuses (a bad key) is not retried at all; both are counted and
// reported through OnDrop.
func TestGiveUp(t *testing.T) {
	e := startCairn(t)
	p := startProxy(t, e.h.URL)
	p.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	}
	var mu sync.Mutex
	drops := map[audit.DropReason]int{}
	onDrop := func(r audit.DropReason, n int) {
		mu.Lock()
		drops[r] += n
		mu.Unlock()
	}
	cfg := e.config(p.srv.URL, "giveup.test")
	cfg.Retry.MaxAttempts = 3
	cfg.OnDrop = onDrop
	c := newClient(t, cfg)
	serve(c.Middleware(okHandler), 5, "/g")
	closeClient(t, c)
	if s := c.Stats(); s.Sent != 0 || s.Failed != 5 || s.Retried != 10 || s.Batches != 3 {
		t.Fatalf("stats %+v", s)
	}

	cfg = e.config("", "badkey.test")
	cfg.Credentials = credentials.NewStaticCredentialsProvider(e.h.AdminKeyID, "wrong-secret", "")
	cfg.OnDrop = onDrop
	c2 := newClient(t, cfg)
	serve(c2.Middleware(okHandler), 4, "/g")
	closeClient(t, c2)
	if s := c2.Stats(); s.Sent != 0 || s.Failed != 4 || s.Retried != 0 || s.Batches != 1 {
		t.Fatalf("bad key stats %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if drops[audit.DropRetriesExhausted] != 5 || drops[audit.DropRejected] != 4 || len(drops) != 2 {
		t.Fatalf("OnDrop saw %v", drops)
	}
}

// TestPartialFailures: failed[] entries with a retryable code are sent again,
// the others are given up; the rest of the batch is not resent. The failures
// are written into Cairn's real answer by the proxy, because this client
// never sends an event Cairn would refuse. The retried event was in fact
// stored by the first call too: it is in the history twice, with one UID —
// delivery is at-least-once.
func TestPartialFailures(t *testing.T) {
	e := startCairn(t)
	p := startProxy(t, e.h.URL)
	p.modify = func(n int, resp *http.Response) error {
		if n != 1 {
			return nil
		}
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var out map[string][]map[string]string
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		ok := out["successful"]
		out["failed"] = append(out["failed"],
			map[string]string{"id": ok[0]["id"], "errorCode": "InternalFailure", "errorMessage": "try again"},
			map[string]string{"id": ok[1]["id"], "errorCode": "InvalidData", "errorMessage": "no"})
		out["successful"] = ok[2:]
		raw, err = json.Marshal(out)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		resp.ContentLength = int64(len(raw))
		resp.Header.Del("Content-Length")
		return nil
	}
	c := newClient(t, e.config(p.srv.URL, "partial.test"))
	serve(c.Middleware(okHandler), 6, "/p")
	closeClient(t, c)
	_, sizes, _ := p.stats()
	if s := c.Stats(); s.Sent != 5 || s.Failed != 1 || s.Retried != 1 || s.Batches != 2 || len(sizes) != 2 || sizes[1] != 1 {
		t.Fatalf("stats %+v, calls with %v events", c.Stats(), sizes)
	}
	uids := map[string]int{}
	for _, ev := range e.lookup(t, "partial.test", 7) {
		uids[parseRecord(t, ev).EventData.UID]++
	}
	if len(uids) != 6 {
		t.Fatalf("UIDs in history %v", uids)
	}
}

// TestBoundedBuffer: while Cairn does not answer, the buffer holds at most
// MaxBufferedEvents (the call in flight included); further requests drop
// their event at once (EnqueueBudget 0) or after waiting at most the budget,
// and are never blocked beyond it. A request that finds space within its
// budget loses nothing.
func TestBoundedBuffer(t *testing.T) {
	e := startCairn(t)
	p := startProxy(t, e.h.URL)
	release := make(chan struct{})
	var held atomic.Int32
	p.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
		held.Add(1)
		<-release
		return false
	}
	var dropped atomic.Int64
	cfg := e.config(p.srv.URL, "bounded.test")
	cfg.MaxBatch = 1
	cfg.MaxBufferedEvents = 5
	cfg.OnDrop = func(r audit.DropReason, n int) {
		if r != audit.DropBufferFull {
			t.Errorf("drop reason %s", r)
		}
		dropped.Add(int64(n))
	}
	c := newClient(t, cfg)
	h := c.Middleware(okHandler)
	serve(h, 1, "/b")
	ctx := servertest.Context(t)
	for held.Load() == 0 { // the sender is now stuck in its first call
		select {
		case <-ctx.Done():
			t.Fatal("first call never reached the proxy")
		case <-time.After(5 * time.Millisecond):
		}
	}
	serve(h, 4, "/b") // fills the buffer
	if s := c.Stats(); s.Buffered != 5 || s.Dropped != 0 {
		t.Fatalf("stats after filling %+v", s)
	}
	serve(h, 10, "/b") // returns although nothing can be buffered: budget 0
	if s := c.Stats(); s.Buffered != 5 || s.Dropped != 10 || dropped.Load() != 10 {
		t.Fatalf("stats after overflowing %+v, OnDrop %d", s, dropped.Load())
	}
	close(release)
	closeClient(t, c)
	if s := c.Stats(); s.Sent != 5 || s.Dropped != 10 || s.Buffered != 0 {
		t.Fatalf("final stats %+v", s)
	}

	// With a budget, a full buffer makes the request wait at most that long.
	release2 := make(chan struct{})
	held.Store(0)
	p.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
		held.Add(1)
		<-release2
		return false
	}
	cfg = e.config(p.srv.URL, "budget.test")
	cfg.MaxBatch, cfg.MaxBufferedEvents, cfg.EnqueueBudget = 1, 2, 20*time.Millisecond
	c2 := newClient(t, cfg)
	h2 := c2.Middleware(okHandler)
	serve(h2, 2, "/b")
	start := time.Now()
	serve(h2, 1, "/b")
	if waited := time.Since(start); waited < cfg.EnqueueBudget {
		t.Errorf("a request gave up after %v, before its budget", waited)
	}
	if s := c2.Stats(); s.Dropped != 1 {
		t.Fatalf("budget stats %+v", s)
	}
	// A long budget: the request waits until the held call completes and
	// frees space, and its event is kept.
	c2done := make(chan struct{})
	cfg.EnqueueBudget = time.Minute
	c3 := newClient(t, cfg)
	h3 := c3.Middleware(okHandler)
	serve(h3, 2, "/b")
	go func() {
		defer close(c2done)
		serve(h3, 1, "/b")
	}()
	close(release2)
	<-c2done
	closeClient(t, c2)
	closeClient(t, c3)
	if s := c3.Stats(); s.Sent != 3 || s.Dropped != 0 {
		t.Fatalf("long budget stats %+v", s)
	}
}

// TestClose: nothing is sent before the flush interval or a full batch,
// Close sends everything, later events are dropped as closed, and a Close
// whose context ends while Cairn hangs returns an error counting the loss.
func TestClose(t *testing.T) {
	e := startCairn(t)
	p := startProxy(t, e.h.URL)
	c := newClient(t, e.config(p.srv.URL, "close.test"))
	h := c.Middleware(okHandler)
	serve(h, 7, "/c")
	if s := c.Stats(); s.Batches != 0 || s.Buffered != 7 {
		t.Fatalf("before Close %+v", s)
	}
	closeClient(t, c)
	serve(h, 2, "/c")
	if s := c.Stats(); s.Sent != 7 || s.Dropped != 2 || s.Batches != 1 {
		t.Fatalf("after Close %+v", s)
	}
	e.lookup(t, "close.test", 7)

	hang := make(chan struct{})
	defer close(hang)
	p.intercept = func(n int, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return true
	}
	c2 := newClient(t, e.config(p.srv.URL, "hang.test"))
	serve(c2.Middleware(okHandler), 3, "/c")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c2.Close(ctx); err == nil {
		t.Fatal("Close returned nil with Cairn hanging")
	}
	if s := c2.Stats(); s.Dropped != 3 || s.Sent != 0 || s.Buffered != 0 {
		t.Fatalf("abandoned stats %+v", s)
	}
}

// TestConcurrentRequests: many goroutines through a real HTTP server; with
// room enough every event arrives exactly once. Run with -race.
func TestConcurrentRequests(t *testing.T) {
	e := startCairn(t)
	cfg := e.config("", "concurrent.test")
	cfg.FlushInterval = 20 * time.Millisecond
	cfg.EnqueueBudget = 10 * time.Second
	cfg.MaxBufferedEvents = 64
	c := newClient(t, cfg)
	srv := httptest.NewServer(c.Middleware(okHandler))
	defer srv.Close()
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				resp, err := srv.Client().Get(fmt.Sprintf("%s/w/%d/%d", srv.URL, w, i))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				_ = c.Stats()
			}
		})
	}
	wg.Wait()
	closeClient(t, c)
	if s := c.Stats(); s.Sent != workers*each || s.Dropped != 0 || s.Failed != 0 {
		t.Fatalf("stats %+v", s)
	}
	seen := map[string]bool{}
	for _, ev := range e.lookup(t, "concurrent.test", workers*each) {
		seen[parseRecord(t, ev).EventData.UID] = true
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct UIDs", len(seen))
	}
}
