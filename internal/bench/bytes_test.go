package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/journal"
)

// BenchmarkBytesPerEvent measures what Cairn keeps on disk per event
// against what CloudTrail's own gzip log files take for the same events:
//
//	CAIRN_BENCH_EVENTS=10000000 go test ./internal/bench -run '^$' -bench BytesPerEvent -benchtime 1x -timeout 2h
//
// CAIRN_BENCH_EVENTS realistic management records (the Generator, spread
// over 85 days so all stay inside the 90-day retention) are appended to a
// journal, indexed by the event history, the journal is trimmed up to the
// history's durable position, and both databases are compacted. It
// reports the bytes per event of the history directory, of the journal
// directory, and of the same records written as CloudTrail log files
// ({"Records":[...]}, gzip at its default level, 3,500 records a file: one
// five-minute file at a million events a day), and the ratios the
// pipeline issue sets targets for (history ≤ 1×, everything ≤ 2×).
func BenchmarkBytesPerEvent(b *testing.B) {
	events := envInt(b, "CAIRN_BENCH_EVENTS", 200_000)
	ctx := context.Background()
	dir := b.TempDir()
	j, err := journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	end := time.Now().UTC().Truncate(time.Second)
	g := New(Options{Seed: 7, End: end, Span: 85 * 24 * time.Hour})

	const perFile = 3500
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	var gzTotal, rawTotal int64
	inFile := 0
	closeFile := func() {
		_, _ = zw.Write([]byte("]}"))
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		gzTotal += int64(gz.Len())
		gz.Reset()
		zw.Reset(&gz)
		inFile = 0
	}
	batch := make([][]byte, 0, 1000)
	for i := range events {
		rec := g.Record(nil)
		rawTotal += int64(len(rec))
		if inFile == 0 {
			_, _ = zw.Write([]byte(`{"Records":[`))
		} else {
			_, _ = zw.Write([]byte{','})
		}
		_, _ = zw.Write(rec)
		if inFile++; inFile == perFile {
			closeFile()
		}
		batch = append(batch, rec)
		if len(batch) == cap(batch) || i == events-1 {
			if _, err := j.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if inFile > 0 {
		closeFile()
	}

	h, err := history.Open(ctx, filepath.Join(dir, "history"), j, history.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = h.Close() }()
	b.ResetTimer()
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := h.WaitIndexed(ctx, j.LastSeq()); err != nil {
		b.Fatal(err)
	}
	if err := h.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	// What the server's trimmer does once every cursor is past.
	if err := j.Trim(ctx, j.Cursors()[history.DefaultCursorName]+1); err != nil {
		b.Fatal(err)
	}
	if err := h.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	if err := j.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	// Pebble deletes the files a compaction made obsolete in the
	// background, paced; it deletes the rest when a database is opened.
	// Close and open both so that only live files are counted.
	if err := h.Close(); err != nil {
		b.Fatal(err)
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	if j, err = journal.Open(ctx, filepath.Join(dir, "journal"), journal.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()}); err != nil {
		b.Fatal(err)
	}
	if h, err = history.Open(ctx, filepath.Join(dir, "history"), j, history.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()}); err != nil {
		b.Fatal(err)
	}
	n := float64(events)
	usage, err := h.DiskUsage()
	if err != nil {
		b.Fatal(err)
	}
	for part, bytes := range usage {
		b.ReportMetric(float64(bytes)/n, "history-"+part+"-B/event")
	}
	// Opening removes obsolete files in the background: count once both
	// are closed again.
	if err := h.Close(); err != nil {
		b.Fatal(err)
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	hist, jour := dirSize(b, filepath.Join(dir, "history")), dirSize(b, filepath.Join(dir, "journal"))
	gzPer := float64(gzTotal) / n
	b.ReportMetric(float64(rawTotal)/n, "raw-B/event")
	b.ReportMetric(gzPer, "gzip-B/event")
	b.ReportMetric(float64(hist)/n, "history-B/event")
	b.ReportMetric(float64(jour)/n, "journal-B/event")
	b.ReportMetric(float64(hist)/n/gzPer, "history/gzip")
	b.ReportMetric(float64(hist+jour)/n/gzPer, "total/gzip")
	b.ReportMetric(0, "ns/op")
}

// dirSize is the bytes of the regular files under dir.
func dirSize(b *testing.B, dir string) int64 {
	b.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since it was listed
		}
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}
