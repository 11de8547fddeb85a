package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPutAuditEvents measures the PutAuditEvents handler in process,
// without a network: SigV4 verification, decoding and validating 100
// events of ~400 bytes, building their records, and the one fsynced
// journal Append per request. It reports events/s. The parallel variant
// shows what group commit gives concurrent callers.
//
//	go test ./internal/server -run '^$' -bench PutAuditEvents -benchtime 200x
func BenchmarkPutAuditEvents(b *testing.B) {
	e := startDataEnv(b)
	arn := e.createChannel(b, "bench")
	var evs []auditEvent
	for i := range 100 {
		d := appEvent(map[string]any{"UID": fmt.Sprintf("u-%d", i)})
		evs = append(evs, auditEvent{ID: fmt.Sprintf("evt-%d", i), EventData: d, EventDataChecksum: sha256b64(d)})
	}
	body := auditBody(evs...)
	signed := e.newPutRequest(b, arn, body, putOpts{})
	handler := e.srv.putAuditEventsHandler(e.channels)
	do := func(b *testing.B) {
		req := signed.Clone(signed.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		w := httptest.NewRecorder()
		handler(w, req)
		if w.Code != http.StatusOK {
			b.Errorf("status %d: %s", w.Code, w.Body)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			do(b)
		}
		b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				do(b)
			}
		})
		b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
	})
}
