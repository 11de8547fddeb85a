package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	for range 1000 {
		l.Error("refused", "n", 1)
		l.Error("other")
		now = now.Add(time.Millisecond) // 1000 calls in 1 s
	}
	now = now.Add(10 * time.Second)
	l.Error("refused")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3 (one per message, then one with the count):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[2], "suppressed=999") {
		t.Errorf("last line %q does not count the 999 left out", lines[2])
	}
}
