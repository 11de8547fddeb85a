package httpproxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/httpproxy"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

const source = "users.example.com"

// upstream is a tiny real API behind the proxy.
type upstream struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last http.Header
	// handler, when set, serves instead of the users API.
	handler atomic.Pointer[http.Handler]
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id == "missing" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"UserNotFound","message":"no user missing"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req-"+id)
		_, _ = io.WriteString(w, `{"id":"`+id+`"}`)
	})
	mux.HandleFunc("POST /v1/users", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Location", "/v1/users/new")
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("DELETE /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Header.Clone()
		u.mu.Unlock()
		if h := u.handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) lastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// routes is the route table most tests use.
func routes() []httpproxy.Route {
	arn := "arn:example:users:{region}:{account}:user/{id}"
	return []httpproxy.Route{
		{Method: "GET", Path: "/v1/users/{id}", EventName: "GetUser", ReadOnly: true, ResourceType: "Example::Users::User", ResourceARN: arn},
		{Method: "POST", Path: "/v1/users", EventName: "CreateUser", ResponseHeaders: []string{"Location"}},
		{Method: "DELETE", Path: "/v1/users/{id}", EventName: "DeleteUser", ResourceType: "Example::Users::User", ResourceARN: arn},
		{Path: "/files/{path...}", EventName: "GetFile", ReadOnly: true, DataEvent: true},
	}
}

// stack is a real cairn server with the proxy as a capture, in front of a
// real upstream.
type stack struct {
	h  *servertest.Harness
	p  *httpproxy.Proxy
	up *upstream
	// url is the proxy's base URL.
	url string
}

func startStack(t testing.TB, cfg httpproxy.Config, configure ...func(*server.Config)) *stack {
	t.Helper()
	s := &stack{up: newUpstream(t)}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Upstream == "" {
		cfg.Upstream = s.up.URL
	}
	if cfg.EventSource == "" {
		cfg.EventSource = source
	}
	if cfg.Routes == nil {
		cfg.Routes = routes()
	}
	p, err := httpproxy.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.p = p
	s.h = servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.Captures = append(c.Captures, p)
		for _, f := range configure {
			f(c)
		}
	}})
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	s.url = scheme + p.Addr()
	return s
}

// do sends a request through the proxy and returns the status and body.
func (s *stack) do(t testing.TB, c *http.Client, method, path string, hdr map[string]string, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// rec is a journal record with its JSON decoded for assertions.
type rec struct {
	*event.Record
	m map[string]any
}

func (r rec) str(path string) string {
	v := r.get(path)
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (r rec) get(path string) any {
	var v any = r.m
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// records are the proxy's events in the journal, in order. The proxy
// appends before it answers, so no waiting is needed.
func (s *stack) records(t testing.TB) []rec {
	t.Helper()
	var out []rec
	_, err := s.h.Server.Journal().Read(context.Background(), 0, 1<<20, func(_ uint64, entry []byte) error {
		r, err := event.Parse(entry)
		if err != nil {
			return err
		}
		if r.EventSource != source {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(r.Raw, &m); err != nil {
			return err
		}
		out = append(out, rec{r, m})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lastRecord is the proxy's latest event.
func (s *stack) lastRecord(t testing.TB) rec {
	t.Helper()
	rs := s.records(t)
	if len(rs) == 0 {
		t.Fatal("the proxy recorded nothing")
	}
	return rs[len(rs)-1]
}

// metric reads one sample of the server's /metrics.
func (s *stack) metric(t testing.TB, prefix string) string {
	t.Helper()
	resp, err := http.Get(s.h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	return ""
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
