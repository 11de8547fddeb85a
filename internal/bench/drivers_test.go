package bench_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

func adminClient(h *servertest.Harness) *apiclient.Client {
	return apiclient.NewClient(h.URL, servertest.DefaultRegion, aws.Credentials{AccessKeyID: h.AdminKeyID, SecretAccessKey: h.AdminSecret}, nil)
}

// TestIngestSmoke runs the PutAuditEvents driver briefly against a real
// in-process server: 2 clients, 1,000 events, every one acknowledged.
func TestIngestSmoke(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	arn, err := bench.EnsureChannel(ctx, h.CloudTrail, servertest.DefaultRegion, "bench", "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := bench.EnsureChannel(ctx, h.CloudTrail, servertest.DefaultRegion, "bench", "")
	if err != nil || again != arn {
		t.Fatalf("reusing the channel: %q, %v; want %q", again, err, arn)
	}
	res, err := bench.RunIngest(ctx, bench.IngestConfig{
		Client: adminClient(h), ChannelARN: arn, Clients: 2, Batch: 100, Events: 1050, Pool: 4,
		Gen: bench.Options{Seed: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events in %d requests, %.0f events/s, latency %+v", res.Accepted, res.Requests, res.EventsPerSec, res.Latency)
	if res.Accepted != 1050 || res.Failed != 0 || res.Errors != 0 || res.Requests != 11 {
		t.Fatalf("accepted %d failed %d errors %d (%v) requests %d; want 1050 events in 11 requests", res.Accepted, res.Failed, res.Errors, res.ErrorCounts, res.Requests)
	}
}

// TestFillAndLookupSmoke fills the history both ways, then measures every
// attribute key; each probe value must find events.
func TestFillAndLookupSmoke(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	arn, err := bench.EnsureChannel(ctx, h.CloudTrail, servertest.DefaultRegion, "bench", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, viaImport := range []bool{false, true} {
		if viaImport {
			requireImportRoute(t, h)
		}
		tr := bench.NewTracker(1)
		res, err := bench.Fill(ctx, bench.FillConfig{
			Client: adminClient(h), CloudTrail: h.CloudTrail, Events: 1500, Import: viaImport, ChannelARN: arn,
			Gen: bench.Options{Seed: 5, End: time.Now(), Span: time.Hour}, Tracker: tr, WaitTimeout: 20 * time.Second,
		})
		if err != nil {
			t.Fatalf("fill (import %v): %v", viaImport, err)
		}
		if res.Stored != 1500 || res.Rejected != 0 {
			t.Fatalf("fill (import %v): stored %d rejected %d", viaImport, res.Stored, res.Rejected)
		}
		stats, err := bench.RunLookup(ctx, bench.LookupConfig{CloudTrail: h.CloudTrail, Clients: 2, Requests: 12, Queries: bench.QueriesFromProbes(tr)})
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, st := range stats {
			t.Logf("import=%v %-16s pages %d events %d p99 %.1f ms errors %d %s", viaImport, st.Query, st.Pages, st.Events, st.Latency.P99, st.Errors, st.FirstError)
			if st.Errors > 0 || st.Pages == 0 || st.Events == 0 {
				t.Errorf("import=%v %s: %d pages, %d events, %d errors (%s)", viaImport, st.Query, st.Pages, st.Events, st.Errors, st.FirstError)
			}
			keys[st.Query] = true
		}
		for _, k := range event.AttributeKeys() {
			if !keys[k] && !(!viaImport && (k == event.AttrAccessKeyID || k == event.AttrReadOnly)) {
				// Channel events carry their identity in details and say
				// nothing about readOnly, so they have neither attribute.
				t.Errorf("import=%v: no lookup of %s", viaImport, k)
			}
		}
	}
}

// requireImportRoute fails the test when the server does not route
// /cairn/import (server.go wires handleImport): the fill's import half
// would otherwise pass without importing anything.
func requireImportRoute(t *testing.T, h *servertest.Harness) {
	t.Helper()
	_, err := adminClient(h).Import(context.Background(), []byte("\n"))
	var ae *apiclient.APIError
	if errors.As(err, &ae) && ae.Status == 404 {
		t.Fatalf("the server does not route POST /cairn/import: %v", err)
	}
}
