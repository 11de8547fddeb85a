package audit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discardWriter is the cheapest ResponseWriter, so that the benchmarks
// measure the middleware rather than httptest.ResponseRecorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"id":"` + r.PathValue("id") + `"}`))
	})
	return mux
}

func benchRequest() *http.Request {
	r := httptest.NewRequest("GET", "/notes/42?verbose=1", nil)
	r.Header.Set("User-Agent", "bench/1.0")
	return r
}

// BenchmarkBaseline is the handler alone, to subtract from
// BenchmarkMiddleware.
func BenchmarkBaseline(b *testing.B) {
	h := benchMux()
	w := &discardWriter{h: http.Header{}}
	r := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkMiddleware is the same handler audited into a real Cairn: the
// request path (status capture, rendering the event, a non-blocking
// enqueue). The sender runs meanwhile on the same cores; when it cannot
// keep up the buffer fills and events are dropped (reported as dropped/op),
// which costs the request the same rendering but no buffering.
func BenchmarkMiddleware(b *testing.B) {
	e := startCairn(b)
	cfg := e.config("", "bench.test")
	cfg.FlushInterval = 100 * time.Millisecond
	c := newClient(b, cfg)
	h := c.Middleware(benchMux())
	w := &discardWriter{h: http.Header{}}
	r := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.Close(ctx)
	s := c.Stats()
	b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
	b.ReportMetric(float64(s.Sent)/float64(b.N), "sent/op")
}

// BenchmarkMiddlewareParallel is BenchmarkMiddleware from GOMAXPROCS
// goroutines: contention on the buffer.
func BenchmarkMiddlewareParallel(b *testing.B) {
	e := startCairn(b)
	cfg := e.config("", "bench.test")
	cfg.FlushInterval = 100 * time.Millisecond
	c := newClient(b, cfg)
	h := c.Middleware(benchMux())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		r := benchRequest()
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.Close(ctx)
	s := c.Stats()
	b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
}
