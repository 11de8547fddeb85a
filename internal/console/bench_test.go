package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/trail"
)

// The event-history benchmark runs only on request:
//
//	go test ./internal/console -run '^$' -bench EventHistory -benchtime 50x
//	CAIRN_BENCH_EVENTS=10000000 go test ./internal/console -run '^$' -bench EventHistory -timeout 2h
//
// It builds a real history of 1,000,000 events (once, cached in
// $TMPDIR/cairn-console-bench-<events>-v<history format>; delete it to rebuild) and measures
// the server time of the event-history page: lookup plus rendering, through
// the console's real handler and session check.

var benchNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// benchRecord is the i-th of n synthetic management events spread over the
// 80 days before benchNow, by 500 users calling 12 APIs.
func benchRecord(i, n int) []byte {
	apis := []string{"DescribeInstances", "GetObject", "AssumeRole", "RunInstances", "ListBuckets", "GetCallerIdentity",
		"PutBucketPolicy", "CreateAccessKey", "StopLogging", "DeleteUser", "DescribeKey", "GetSecretValue"}
	name := apis[(i*7+i/3)%len(apis)]
	user := fmt.Sprintf("user-%03d", (i*31)%500)
	t := benchNow.Add(-80 * 24 * time.Hour).Add(time.Duration(i) * (80 * 24 * time.Hour / time.Duration(n)))
	errPart := ""
	if i%17 == 0 {
		errPart = `"errorCode":"AccessDenied","errorMessage":"denied",`
	}
	return fmt.Appendf(nil, `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDA%012d","arn":"arn:aws:iam::123456789012:user/%s","accountId":"123456789012","accessKeyId":"AKIA%016d","userName":"%s"},`+
		`"eventTime":"%s","eventSource":"ec2.amazonaws.com","eventName":"%s","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.%d","userAgent":"aws-cli/2.17.0",%s`+
		`"requestParameters":{"instanceId":"i-%017x"},"responseElements":null,"requestID":"%s","eventID":"%s","readOnly":%t,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}`,
		(i*31)%500, user, (i*31)%500, user, event.FormatTime(t), name, i%250, errPart, i%5000, uuid.NewString(), uuid.NewString(), strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List"))
}

// openBenchHistory opens the cached history of n events, building it first
// when needed.
func openBenchHistory(b *testing.B, n int) *history.History {
	b.Helper()
	ctx := context.Background()
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("cairn-console-bench-%d-v%d", n, history.FormatVersion))
	done := filepath.Join(cache, "complete")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := history.Options{Logger: quiet, Now: func() time.Time { return benchNow }, CacheSize: 64 << 20}
	if _, err := os.Stat(done); err != nil {
		_ = os.RemoveAll(cache)
		j, err := journal.Open(ctx, filepath.Join(b.TempDir(), "journal"), journal.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		h, err := history.Open(ctx, filepath.Join(cache, "history"), j, opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Start(ctx); err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		batch := make([][]byte, 0, 2000)
		for i := range n {
			batch = append(batch, benchRecord(i, n))
			if len(batch) == cap(batch) || i == n-1 {
				if _, err := j.Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
			if (i+1)%250_000 == 0 {
				b.Logf("console bench: %d/%d events appended in %v", i+1, n, time.Since(began).Round(time.Second))
			}
		}
		if err := h.WaitIndexed(ctx, j.LastSeq()); err != nil {
			b.Fatal(err)
		}
		b.Logf("console bench: %d events indexed in %v", n, time.Since(began).Round(time.Second))
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	j, err := journal.Open(ctx, filepath.Join(b.TempDir(), "journal"), journal.Options{Logger: quiet}) // empty: lookups do not read it
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	h, err := history.Open(ctx, filepath.Join(cache, "history"), j, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	return h
}

// benchBackend serves lookups from a real history; the page under test
// needs nothing else.
type benchBackend struct{ h *history.History }

func (benchBackend) Authenticate(context.Context, string, string) (api.Caller, bool, error) {
	return api.Caller{}, false, nil
}
func (benchBackend) Caller(_ context.Context, id string) (api.Caller, bool, error) {
	return api.Caller{AccessKeyID: id, UserName: "bench"}, true, nil
}
func (benchBackend) Call(context.Context, Call) ([]byte, error) {
	return nil, fmt.Errorf("not in the benchmark")
}
func (benchBackend) Read(context.Context, Call) ([]byte, error) {
	return nil, fmt.Errorf("not in the benchmark")
}
func (benchBackend) Record(context.Context, event.APICall) error   { return nil }
func (benchBackend) Trails(context.Context) ([]trail.Trail, error) { return nil, nil }
func (benchBackend) Buckets(context.Context) ([]string, error)     { return nil, nil }
func (benchBackend) CreateBucket(context.Context, api.Caller, Meta, string, string) error {
	return fmt.Errorf("not in the benchmark")
}
func (benchBackend) Journal() JournalState { return JournalState{} }
func (b benchBackend) Count(ctx context.Context, region string, start, end time.Time, bucket time.Duration) ([]int, error) {
	return b.h.Count(ctx, region, start, end, bucket)
}

func (b benchBackend) Lookup(ctx context.Context, q history.Query) (history.Page, error) {
	return b.h.Lookup(ctx, q)
}

// BenchmarkEventHistory measures the event-history page's server time
// with 1,000,000 events stored: the first page, the first page under two
// filters, and a page deep into the results (the 20th).
func BenchmarkEventHistory(b *testing.B) {
	n := benchEvents()
	h := openBenchHistory(b, n)
	c, err := New(Options{Backend: benchBackend{h}, AccountID: "123456789012", Now: func() time.Time { return benchNow },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Mount(mux)
	s := c.sessions.create(api.Caller{AccessKeyID: "CKIABENCH", UserName: "bench"}, "us-east-1")
	get := func(b *testing.B, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: s.id})
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body.String())
		}
		return rec
	}
	// The 20th page's URL, found by following "Older" links.
	deep := "/console/events"
	for range 19 {
		body := get(b, deep).Body.String()
		i := strings.Index(body, `rel="next" id="next-page"`)
		if i < 0 {
			b.Fatal("no next page")
		}
		j := strings.LastIndex(body[:i], `href="`)
		deep = strings.ReplaceAll(body[j+6:i-2], "&amp;", "&")
	}
	cases := []struct{ name, target string }{
		{"FirstPage", "/console/events"},
		{"FirstPage200", "/console/events?size=200"},
		{"TwoFilters", "/console/events?k=Username&v=user-007&k=EventName&v=RunInstances"},
		{"Page20", deep},
	}
	// The dashboard's chart counts three hours of events per minute
	// unless its cache answers: Dashboard measures the uncached page.
	cases = append(cases, struct{ name, target string }{"Dashboard", "/console/"})
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			body := get(b, tc.target).Body.String()
			rows := strings.Count(body, "<tr data-t=")
			if tc.name == "Dashboard" {
				rows = strings.Count(body, `href="/console/events/`)
			}
			if rows <= 0 {
				b.Fatalf("%s shows no events", tc.target)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				c.charts.mu.Lock()
				clear(c.charts.data)
				c.charts.mu.Unlock()
				get(b, tc.target)
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
