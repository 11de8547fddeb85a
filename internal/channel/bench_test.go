package channel

import (
	"fmt"
	"testing"
)

// BenchmarkBuildRecord is the per-event cost of PutAuditEvents: checksum,
// eventData decoding and validation, record building and the final parse.
func BenchmarkBuildRecord(b *testing.B) {
	data := []byte(eventData(map[string]any{"UID": fmt.Sprint("u-", 1)}))
	sum := checksum(string(data))
	env := &Envelope{EventID: "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", Region: testRegion, AccountID: testAccount,
		ChannelARN: ARN(testRegion, testAccount, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"), IngestionTime: testNow}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := BuildRecord(data, sum, env); rej != nil {
			b.Fatal(rej)
		}
	}
}

// BenchmarkDecodeAuditEvents decodes a 100-event body.
func BenchmarkDecodeAuditEvents(b *testing.B) {
	var evs []wireEvent
	for i := range 100 {
		d := eventData(map[string]any{"UID": fmt.Sprint("u-", i)})
		evs = append(evs, wireEvent{ID: fmt.Sprint("e-", i), EventData: d, EventDataChecksum: checksum(d)})
	}
	body := body(evs...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeAuditEvents(body); err != nil {
			b.Fatal(err)
		}
	}
}
