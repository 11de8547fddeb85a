package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// With profiling on, /debug/pprof/ is served on its own loopback listener
// and not on the main one, which any network client can reach unsigned.
func TestPprofOnlyOnItsLoopbackListener(t *testing.T) {
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.PprofListen = "127.0.0.1:0" }})
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		if code, body := get(h.URL + p); code == http.StatusOK {
			t.Errorf("main listener serves %s: %d %.80q", p, code, body)
		}
	}
	addr := h.Server.PprofAddr()
	if addr == "" {
		t.Fatal("no profiling listener")
	}
	if code, body := get("http://" + addr + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("profiling listener: %d %.80q", code, body)
	}
	// A web page that rebinds its name to 127.0.0.1 reaches the listener
	// with its own host name: refused (found by review).
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/debug/pprof/cmdline", nil)
	req.Host = "attacker.example:" + strings.Split(addr, ":")[1]
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a rebound host name got %d from the profiling listener, want 403", resp.StatusCode)
	}
}

// A profiling address that is not loopback is refused at start.
func TestPprofRefusesNonLoopbackAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "no-port"} {
		srv, err := server.Open(context.Background(), server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PprofListen: addr,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			_ = srv.Close()
			t.Errorf("--pprof %s was accepted", addr)
			continue
		}
		if !strings.Contains(err.Error(), "--pprof") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--pprof %s: %v does not say why", addr, err)
		}
	}
}
