package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

// testClient is a Client whose sender never gets a full batch or a tick;
// render is called directly.
func testClient(t *testing.T, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Endpoint:      "http://127.0.0.1:1",
		ChannelARN:    "arn:aws:cloudtrail:eu-west-1:123456789012:channel/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c",
		Credentials:   credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		EventSource:   "unit.test",
		FlushInterval: time.Hour,
		Retry:         RetryPolicy{MaxAttempts: 1},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// eventData decodes the eventData of a rendered entry, checking that the
// entry is exactly what PutAuditEvents expects.
func eventData(t *testing.T, it item) map[string]any {
	t.Helper()
	var entry struct {
		ID        string `json:"id"`
		EventData string `json:"eventData"`
	}
	if err := json.Unmarshal(it.data, &entry); err != nil {
		t.Fatalf("entry %s: %v", it.data, err)
	}
	if entry.ID != it.id {
		t.Fatalf("entry id %q, item id %q", entry.ID, it.id)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(entry.EventData), &ev); err != nil {
		t.Fatalf("eventData %s: %v", entry.EventData, err)
	}
	if ev["UID"] != it.id {
		t.Fatalf("UID %v, id %s", ev["UID"], it.id)
	}
	return ev
}

func TestNewClientChecksConfig(t *testing.T) {
	good := Config{Endpoint: "http://127.0.0.1:4747", ChannelARN: "arn:aws:cloudtrail:us-east-1:000000000000:channel/x",
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""), EventSource: "s"}
	for name, mod := range map[string]func(*Config){
		"no endpoint":    func(c *Config) { c.Endpoint = "" },
		"bad endpoint":   func(c *Config) { c.Endpoint = "127.0.0.1:4747" },
		"no channel":     func(c *Config) { c.ChannelARN = "" },
		"uuid, no acct":  func(c *Config) { c.ChannelARN = "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c" },
		"no credentials": func(c *Config) { c.Credentials = nil },
		"no source":      func(c *Config) { c.EventSource = "" },
		"batch 101":      func(c *Config) { c.MaxBatch = 101 },
	} {
		cfg := good
		mod(&cfg)
		if c, err := NewClient(cfg); err == nil {
			_ = c.Close(context.Background())
			t.Errorf("%s: no error", name)
		}
	}
	c, err := NewClient(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.region != "us-east-1" || c.account != "000000000000" {
		t.Errorf("region %q account %q from the ARN", c.region, c.account)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRender: the event of a request, member by member.
func TestRender(t *testing.T) {
	c := testClient(t, func(cfg *Config) {
		cfg.Identify = func(*http.Request) Identity {
			return Identity{Type: strings.Repeat("T", 300), PrincipalID: "p\"1\n", Details: map[string]any{"n": 1}}
		}
		cfg.SensitiveParameters = []string{"Ssn"}
	})
	r := httptest.NewRequest("DELETE", "/a/b?x=1&x=2&user_ssn=123-45&x_signature=%ff&u=%ff&"+strings.Repeat("n", 129)+"=long", nil)
	r.Pattern = "DELETE example.com/a/{id}/{rest...}"
	r.SetPathValue("id", "b")
	r.SetPathValue("rest", "")
	r.Header.Set("User-Agent", "ua\x01")
	start := time.Date(2026, 11, 21, 15, 4, 5, 900_000_000, time.UTC)
	ev := eventData(t, c.render(r, &responseWriter{status: 403, bytes: 9}, start, start.Add(1500*time.Microsecond)))
	want := map[string]any{
		"version":     "1.0",
		"eventSource": "unit.test", "eventName": "DELETE example.com/a/{id}/{rest...}",
		"eventTime": "2026-11-21T15:04:05Z", "userAgent": "ua\x01",
		"errorCode": "Forbidden", "errorMessage": "Forbidden",
		"sourceIPAddress": "192.0.2.1", "recipientAccountId": "123456789012",
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %#v, want %#v", k, ev[k], v)
		}
	}
	id := ev["userIdentity"].(map[string]any)
	if id["type"] != strings.Repeat("T", 128) || id["principalId"] != "p\"1\n" || id["details"].(map[string]any)["n"] != 1.0 {
		t.Errorf("userIdentity %v", id)
	}
	params, _ := json.Marshal(ev["requestParameters"])
	if string(params) != `{"id":"b","rest":"","u":"�","user_ssn":"HIDDEN_DUE_TO_SECURITY_REASONS","x":["1","2"],"x_signature":"HIDDEN_DUE_TO_SECURITY_REASONS"}` {
		t.Errorf("requestParameters %s", params)
	}
	extra, _ := json.Marshal(ev["additionalEventData"])
	if string(extra) != `{"durationMs":1.5,"httpMethod":"DELETE","path":"/a/b","protocol":"HTTP/1.1","responseBytes":9,"status":403}` {
		t.Errorf("additionalEventData %s", extra)
	}
	if _, ok := ev["responseElements"]; ok {
		t.Error("responseElements present")
	}

	// No pattern: method and path; no status written: 200, no errorCode.
	r = httptest.NewRequest("GET", "/x/y", nil)
	r.RemoteAddr = "[2001:db8::1%eth0]:443"
	ev = eventData(t, c.render(r, &responseWriter{}, start, start))
	if ev["eventName"] != "GET /x/y" || ev["errorCode"] != nil || ev["sourceIPAddress"] != "2001:db8::1" || ev["requestParameters"] != nil {
		t.Errorf("plain request event %v", ev)
	}
}

// TestRenderBounds: what a client controls cannot make an event Cairn
// refuses (requestParameters over 100 KB, strings over their limits).
func TestRenderBounds(t *testing.T) {
	c := testClient(t, nil)
	var q strings.Builder
	for i := range 200 {
		if i > 0 {
			q.WriteByte('&')
		}
		q.WriteString(strings.Repeat("k", 100) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "=" + strings.Repeat("%01", 2000))
	}
	r := httptest.NewRequest("GET", "/?"+q.String(), nil)
	r.Header.Set("User-Agent", strings.Repeat("é", 1000))
	ev := eventData(t, c.render(r, &responseWriter{}, time.Now(), time.Now()))
	params, _ := json.Marshal(ev["requestParameters"])
	if len(params) > 100_000 || len(params) < 50_000 {
		t.Errorf("requestParameters of %d bytes", len(params))
	}
	ua := ev["userAgent"].(string)
	if len(ua) > 1024 || !utf8.ValidString(ua) || len(ua) < 1020 {
		t.Errorf("userAgent of %d bytes, valid %v", len(ua), utf8.ValidString(ua))
	}
}

func TestAppendStringIsJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x1f\x7f", "\xff\xfe", "é漢字🙂", "a\u2028b", "</script>"} {
		b := appendString(nil, s, 1024)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q -> %s: %v", s, b, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want && utf8.ValidString(s) {
			t.Errorf("%q round-trips to %q", s, got)
		}
	}
}

// TestSourceIP: X-Forwarded-For counts only from trusted proxies, read
// from the right.
func TestSourceIP(t *testing.T) {
	c := testClient(t, func(cfg *Config) {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	for _, tc := range []struct{ remote, xff, want string }{
		{"203.0.113.9:1", "1.2.3.4", "203.0.113.9"},             // untrusted peer: header ignored
		{"10.0.0.2:1", "1.2.3.4, 198.51.100.7", "198.51.100.7"}, // nearest untrusted hop
		{"10.0.0.2:1", "198.51.100.7, 10.1.1.1", "198.51.100.7"},
		{"10.0.0.2:1", "", "10.0.0.2"},
		{"10.0.0.2:1", "garbage, 10.0.0.3", "10.0.0.3"},
		{"pipe", "1.2.3.4", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		got := c.sourceIP(r)
		if (tc.want == "" && got.IsValid()) || (tc.want != "" && got.String() != tc.want) {
			t.Errorf("%s %q: %v, want %q", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// TestWriterKeepsInterfaces: behind the middleware, a handler can still
// flush, hijack, set deadlines through http.ResponseController and use
// informational responses; the recorded status is the final one.
func TestWriterKeepsInterfaces(t *testing.T) {
	statuses := make(chan *responseWriter, 10)
	var deadlineErr, flushErr error
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		deadlineErr = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute))
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "part1\n")
		w.(http.Flusher).Flush()
		flushErr = http.NewResponseController(w).Flush()
		_, _ = io.Copy(w, strings.NewReader("part2\n"))
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
		_ = brw.Flush()
		conn.Close()
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w}
		mux.ServeHTTP(rw, r)
		statuses <- rw
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || line != "part1\n" {
		t.Fatalf("stream: %d %q", resp.StatusCode, line)
	}
	if rw := <-statuses; rw.status != http.StatusAccepted || rw.bytes != 12 || deadlineErr != nil || flushErr != nil {
		t.Errorf("stream recorded %d, %d bytes; deadline %v flush %v", rw.status, rw.bytes, deadlineErr, flushErr)
	}

	resp, err = http.Get(srv.URL + "/hijack")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hi" {
		t.Fatalf("hijacked body %q", body)
	}
	if rw := <-statuses; !rw.hijacked || rw.status != http.StatusSwitchingProtocols {
		t.Errorf("hijack recorded %+v", rw)
	}
}

// TestPanicIsAudited: a handler that panics is still audited, as a 500,
// and the panic reaches net/http.
func TestPanicIsAudited(t *testing.T) {
	c := testClient(t, nil)
	h := c.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/p", nil))
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) != 1 {
		t.Fatalf("%d events buffered", len(c.queue))
	}
	ev := eventData(t, c.queue[0])
	if ev["errorCode"] != "InternalServerError" || ev["additionalEventData"].(map[string]any)["panicked"] != true {
		t.Errorf("event %v", ev)
	}
}

// TestSkip: skipped requests are served but not audited.
func TestSkip(t *testing.T) {
	c := testClient(t, func(cfg *Config) { cfg.Skip = func(r *http.Request) bool { return r.URL.Path == "/healthz" } })
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/other", nil))
	if rec.Code != 204 || c.Stats().Buffered != 1 {
		t.Fatalf("code %d, stats %+v", rec.Code, c.Stats())
	}
}

func TestBackoffIsBounded(t *testing.T) {
	c := testClient(t, func(cfg *Config) {
		cfg.Retry = RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
	})
	for attempt := 1; attempt < 40; attempt++ {
		ceil := min(10*time.Millisecond<<min(attempt-1, 20), 80*time.Millisecond)
		for range 20 {
			if d := c.backoff(attempt); d < 0 || d > ceil {
				t.Fatalf("attempt %d: wait %v beyond [0, %v]", attempt, d, ceil)
			}
		}
	}
}

// BenchmarkRender is the request path's own work without the buffer or a
// sender competing for the cores: capturing the status, building the
// event and its PutAuditEvents entry.
func BenchmarkRender(b *testing.B) {
	c, err := NewClient(Config{
		Endpoint: "http://127.0.0.1:1", ChannelARN: "arn:aws:cloudtrail:us-east-1:000000000000:channel/x",
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""), EventSource: "bench.test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close(context.Background()) }()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"id":"` + r.PathValue("id") + `"}`))
	})
	r := httptest.NewRequest("GET", "/notes/42?verbose=1", nil)
	r.Header.Set("User-Agent", "bench/1.0")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rw := &responseWriter{ResponseWriter: w}
		mux.ServeHTTP(rw, r)
		it := c.render(r, rw, time.Now(), time.Now())
		size = len(it.data)
	}
	b.ReportMetric(float64(size), "entry-bytes")
}
