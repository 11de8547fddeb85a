package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/state"
)

// BenchmarkPrepareAuditEvents is the server's per-event CPU for
// PutAuditEvents without HTTP, SigV4 or the journal: decoding the body
// that `cairn bench ingest` sends (100 generated events of ~1.3 KB),
// validating every event and building its record. One op is one request;
// µs/event is the number to compare with the ingest budget.
//
//	go test ./internal/bench -run '^$' -bench PrepareAuditEvents -benchmem
func BenchmarkPrepareAuditEvents(b *testing.B) {
	svc, arn, bodies := prepareEnv(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		body := bodies[i%len(bodies)]
		i++
		batch, err := svc.PrepareAuditEvents(ctx, &channel.PutAuditEventsRequest{Region: "us-east-1", ChannelARN: arn, Body: body.body})
		if err != nil {
			b.Fatal(err)
		}
		if batch.Rejected() != 0 {
			b.Fatalf("%d events rejected", batch.Rejected())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100), "µs/event")
	// Process CPU time is what the machine's other load distorts least.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*100), "cpu-µs/event")
}

// BenchmarkPrepareAndCommit adds the journal: the same requests from 16
// goroutines, each batch committed (fsynced) before the next.
func BenchmarkPrepareAndCommit(b *testing.B) {
	svc, arn, bodies := prepareEnv(b)
	j, err := journal.Open(context.Background(), b.TempDir(), journal.Options{Logger: quiet(), MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			body := bodies[i%len(bodies)]
			i++
			batch, err := svc.PrepareAuditEvents(ctx, &channel.PutAuditEventsRequest{Region: "us-east-1", ChannelARN: arn, Body: body.body})
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := batch.Commit(ctx, j); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func prepareEnv(b *testing.B) (*channel.Service, string, []ingestBody) {
	b.Helper()
	st, err := state.Open(context.Background(), b.TempDir(), state.Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	const account = "000000000000"
	svc, err := channel.New(st, account, channel.Options{Logger: quiet(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := svc.Create(context.Background(), "us-east-1", channel.CreateInput{
		Name: "bench", Source: channel.SourceCustom,
		Destinations: []channel.Destination{{Type: channel.DestinationEventDataStore, Location: "arn:aws:cloudtrail:us-east-1:" + account + ":eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	// Event times end now: the history skips events older than its
	// retention. They spread over the generator's default day, as in
	// `cairn bench ingest`, unless CAIRN_BENCH_SPAN says otherwise.
	opts := Options{Seed: 1, AccountID: account, End: time.Now()}
	if v := os.Getenv("CAIRN_BENCH_SPAN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		opts.Span = d
	}
	gen := New(opts)
	bodies := buildIngestBodies(gen, 16, 100)
	total := 0
	for _, body := range bodies {
		total += len(body.body)
	}
	b.SetBytes(int64(total / len(bodies)))
	return svc, c.ARN(), bodies
}
