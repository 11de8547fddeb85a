package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// echoCapture is the smallest real capture: a webhook on Cairn's listener
// that records each POST as an event.
type echoCapture struct {
	mu      sync.Mutex
	started bool
	closed  bool
	fail    error
}

func (c *echoCapture) Name() string { return "echo webhook" }

func (c *echoCapture) Start(_ context.Context, env capture.Env) error {
	if c.fail != nil {
		return c.fail
	}
	env.Mux.HandleFunc("POST /test/echo", func(w http.ResponseWriter, r *http.Request) {
		rec, err := event.APICall{Time: env.Now(), Source: "echo.example.com", Name: "Echo", Region: "us-east-1",
			Identity: event.UserIdentity{Type: "Unknown"}, RecipientAccountID: env.AccountID, DataEvent: true}.Record()
		if err == nil {
			_, err = env.Journal.Append(r.Context(), [][]byte{rec.Raw})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	return nil
}

func (c *echoCapture) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func TestCaptureRunsWithTheServer(t *testing.T) {
	c := &echoCapture{}
	t.Cleanup(func() { // runs after the harness has stopped the server
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.started || !c.closed {
			t.Errorf("started %v closed %v", c.started, c.closed)
		}
	})
	h := servertest.Start(t, servertest.Options{Configure: func(cfg *server.Config) { cfg.Captures = []capture.Capture{c} }})
	resp, err := http.Post(h.URL+"/test/echo", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var found *event.Record
	for _, r := range records(t, h) {
		if r.EventSource == "echo.example.com" {
			found = r
		}
	}
	if found == nil || found.EventCategory != "Data" || found.RecipientAccountID != "000000000000" {
		t.Fatalf("the capture's event is not in the journal as a data event: %+v", found)
	}
}

func TestACaptureThatCannotStartStopsTheServer(t *testing.T) {
	_, err := server.Open(context.Background(), server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Captures: []capture.Capture{&echoCapture{fail: errors.New("port taken")}}, Now: time.Now})
	if err == nil || !strings.Contains(err.Error(), "start echo webhook: port taken") {
		t.Fatalf("Open = %v, want the capture's error", err)
	}
}
