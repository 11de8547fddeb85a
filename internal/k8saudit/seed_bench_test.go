package k8saudit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/journal"
)

// BenchmarkSeedDedupe measures the start-up cost of filling the retry
// window from a journal whose newest 2×65,536 entries are this cluster's
// records of about 2 KB (the worst case: every entry read is parsed).
func BenchmarkSeedDedupe(b *testing.B) {
	ctx := context.Background()
	j, err := journal.Open(ctx, b.TempDir(), journal.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	pad := strings.Repeat("x", 1800)
	const n = seedScanFactor * DefaultDedupeWindow
	batch := make([][]byte, 0, 1024)
	for i := range n {
		batch = append(batch, fmt.Appendf(nil, `{"eventVersion":"1.09","eventTime":"2026-11-21T17:00:00Z","eventSource":"kubernetes.io","eventName":"GetPod","requestParameters":{"pad":%q},"eventID":%q,"recipientAccountId":"123456789012"}`,
			pad, uuid.New().String()))
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := j.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	for range b.N {
		c, err := New(Config{Token: "t", Cluster: "c"})
		if err != nil {
			b.Fatal(err)
		}
		c.mapper = Mapper{Cluster: "c", AccountID: "123456789012"}
		seeded, err := c.seedDedupe(ctx, j)
		if err != nil || seeded != DefaultDedupeWindow*seedScanFactor {
			b.Fatalf("seeded %d, %v", seeded, err)
		}
	}
}
