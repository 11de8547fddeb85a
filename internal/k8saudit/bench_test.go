package k8saudit_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/cairn-audit/cairn/internal/k8saudit"
)

// benchEvents are the dataset's events; each batch gets fresh auditIDs so
// that nothing is dropped as a retry.
func benchEvents(b *testing.B) [][]byte {
	var out [][]byte
	for _, f := range loadDataset(b) {
		if f.name == "fal_01_003.json" {
			continue
		}
		for _, e := range f.events {
			out = append(out, bytes.Clone(e))
		}
	}
	return out
}

// batchOf builds a batch of n events with auditIDs unique to seq.
func batchOf(evs [][]byte, n int, seq int64) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		e := evs[i%len(evs)]
		j := bytes.Index(e, []byte(`"auditID":"`)) + len(`"auditID":"`)
		buf.Write(e[:j])
		fmt.Fprintf(&buf, "%08x-0000-4000-8000-%012x", seq, i)
		buf.Write(e[j+36:])
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// BenchmarkWebhook measures events/s through the webhook of a real server
// (HTTP, decode, mapping, one durable journal append per batch), with
// batches of the API server's default size (400) from one API server and
// from four at once.
func BenchmarkWebhook(b *testing.B) {
	for _, senders := range []int{1, 4} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			h, _ := start(b, k8saudit.Config{})
			url := h.URL + k8saudit.DefaultPath
			evs := benchEvents(b)
			const batch = 400
			var seq atomic.Int64
			b.SetParallelism(senders)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := batchOf(evs, batch, seq.Add(1))
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+testToken)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkDecodeAndMap is the CPU cost per event without HTTP or disk.
func BenchmarkDecodeAndMap(b *testing.B) {
	evs := benchEvents(b)
	body := batchOf(evs, 400, 1)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		items, err := k8saudit.Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		for j := range items {
			if _, err := mapper.Map(&items[j]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*400)/b.Elapsed().Seconds(), "events/s")
}
