package delivery

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

// BenchmarkDeliver measures journal-to-file throughput of one trail (a
// multi-region trail taking every management event) on the file store,
// from a journal holding benchEvents records. The trail's window is
// closed at the last record, so the last batch is cut as soon as it is
// read rather than after the interval.
func BenchmarkDeliver(b *testing.B) {
	const benchEvents = 20000
	e := &env{t: b, dir: b.TempDir()}
	e.open(nil)
	defer e.close()
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	// Realistic records (~1.3 KB, internal/bench's generator) from three
	// regions.
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gens := []*bench.Generator{
		bench.New(bench.Options{Seed: 1, AccountID: testAccount, Region: "us-east-1", End: end}),
		bench.New(bench.Options{Seed: 2, AccountID: testAccount, Region: "eu-west-1", End: end}),
		bench.New(bench.Options{Seed: 3, AccountID: testAccount, Region: "us-west-2", End: end}),
	}
	var size int64
	for i := 0; i < benchEvents; i += 1000 {
		entries := make([][]byte, 1000)
		for k := range entries {
			entries[k] = gens[(i+k)%len(gens)].Record(nil)
			size += int64(len(entries[k]))
		}
		if _, err := e.j.Append(ctx, entries); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("bench-%d", i)
		tr, err := e.trails.Create(ctx, "us-east-1", trail.CreateInput{Name: name, S3BucketName: "bench", IsMultiRegionTrail: ptr(true)})
		if err != nil {
			b.Fatal(err)
		}
		// Deliver the journal's existing contents, as a trail stopped after
		// they arrived would: a closed window, so the last batch is cut as
		// soon as it is read instead of waiting for the interval.
		if err := (stateStore{e.st}).update(ctx, tr.ARN(), func(st *trailState, _ *state.Tx) error {
			st.Windows = []Window{{From: 1, To: e.j.LastSeq()}}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		opts := testOptions()
		opts.Interval = time.Second
		m, err := NewManager(e.j, e.st, e.trails, e.store, opts)
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = m.Run(runCtx); close(done) }()
		cursor := e.j.Cursor(CursorName(tr.ARN()))
		for cursor.Position() < e.j.LastSeq() {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		b.StopTimer()
		if err := e.trails.Delete(ctx, "us-east-1", name); err != nil {
			b.Fatal(err)
		}
		if err := e.j.DeleteCursor(ctx, CursorName(tr.ARN())); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(benchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
}
