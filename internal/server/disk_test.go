package server_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// spaceFS is the real filesystem with a free-space figure the test sets:
// filling and freeing a disk without needing to mount one.
type spaceFS struct {
	vfs.FS
	avail atomic.Uint64
}

func (f *spaceFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	du.AvailBytes = f.avail.Load()
	return du, err
}

// waitUntil polls cond until it holds or the timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHealthFollowsDiskWithoutTraffic (issue 12, defect 8): /healthz turns
// unhealthy when free space falls below the reserve and healthy again when
// it is freed, with no API call in between (a readiness probe must let
// traffic back by itself), says why while unhealthy, and the refusals the
// calls meet meanwhile are logged a bounded number of times.
func TestHealthFollowsDiskWithoutTraffic(t *testing.T) {
	const reserve = 64 << 20
	fs := &spaceFS{FS: vfs.Default}
	fs.avail.Store(1 << 30)
	var logs syncBuffer
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.JournalFS = fs
		c.JournalReserve = reserve
		c.DiskProbeInterval = 20 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}})
	health := func() (int, string) {
		resp, err := http.Get(h.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != http.StatusOK {
		t.Fatalf("healthz with space: %d %s", code, body)
	}

	fs.avail.Store(reserve / 2)
	var body string
	waitUntil(t, 10*time.Second, "/healthz to notice the full disk without a write", func() bool {
		var code int
		code, body = health()
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "reserve") || !strings.Contains(body, "free") {
		t.Errorf("unhealthy /healthz does not say why: %q", body)
	}

	ctx := servertest.Context(t)
	const calls = 300
	for range calls {
		_, err := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
			t.Fatalf("call on a full disk: err = %v, want a 503", err)
		}
	}

	fs.avail.Store(1 << 30)
	waitUntil(t, 10*time.Second, "/healthz to recover without an API call", func() bool {
		code, _ := health()
		return code == http.StatusOK
	})
	if _, err := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Fatalf("call after space was freed: %v", err)
	}

	out := logs.String()
	refusals := strings.Count(out, "audit journal refused a record")
	if refusals < 1 || refusals > 3 {
		t.Errorf("%d calls were refused and logged %d times, want 1 to 3 lines (rate-limited):\n%s", calls, refusals, out)
	}
	if n := strings.Count(out, "\n"); n > 60 {
		t.Errorf("the log has %d lines for %d refused calls:\n%s", n, calls, out)
	}
}
