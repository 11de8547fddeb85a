package httpproxy_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/httpproxy"
	"github.com/cairn-audit/cairn/internal/journal"
)

// TestProxyStartsAgainOnTheSameRegistry: a proxy closed (or one that
// failed to start) takes its metrics off the registry, so that a proxy
// on the same address can start again in the same process (a reload).
func TestProxyStartsAgainOnTheSameRegistry(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := journal.Open(ctx, t.TempDir(), journal.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	reg := prometheus.NewRegistry()
	env := capture.Env{Journal: j, AccountID: "123456789012", Logger: quiet, Registerer: reg}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := httpproxy.Config{Listen: busy.Addr().String(), Upstream: "http://127.0.0.1:1", EventSource: source, Routes: routes()}
	start := func() (*httpproxy.Proxy, error) {
		p, err := httpproxy.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p, p.Start(ctx, env)
	}
	// The address is taken: Start fails, and leaves nothing registered.
	if _, err := start(); err == nil {
		t.Fatal("Start on a taken address succeeded")
	}
	busy.Close()
	p, err := start()
	if err != nil {
		t.Fatalf("Start after a failed Start: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, err = start()
	if err != nil {
		t.Fatalf("Start after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
