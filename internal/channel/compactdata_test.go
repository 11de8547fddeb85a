package channel

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/event"
)

// FuzzCompactData checks the server's one-pass decoding of eventData
// (unescape and compact together, compactData) against the two passes it
// replaces (fastDecoder.str, then event.AppendCompactObject): the same
// decoding outcome, and whenever it compacts, the same compact document
// and members; and the records built from both are the same, or the same
// rejection. The fuzzer varies both the document (encoded as a client's
// JSON encoder would) and the raw bytes of the string in the body.
func FuzzCompactData(f *testing.F) {
	for _, doc := range []string{
		eventData(nil),
		eventData(map[string]any{"x": []any{1, 2.5e3, true, false, nil, "a\"b\\c/\u00e9\u2028<>&", map[string]any{}, []any{}}}),
		" {\n\t\"a\" : [ 1 , {\"b\":\"\\u00e9\\n\\\"\"} ] }\r\n",
		`{"a":1} {"b":2}`, `[1]`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":tru}`, `{"a":"\x01"}`,
		`{"a":"\q"}`, `{"a":"\u12"}`, `{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, "{\"a\":\"\xff\"}",
	} {
		f.Add(doc, "")
	}
	f.Add("", `{\"a\":\"\\u00e9\\\\\\\"\\/\/\"}`)
	f.Add("", `{\u0022a\":1}`)
	f.Add("", `{\"a\":\"\n\"}`)
	f.Add("", `{\"a\":\"\\\n\"}`)
	f.Add("", `{\"a\":\"x\\`)
	f.Add("", `{\"a\"\t:\r1\n}`)
	env := &Envelope{EventID: "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", Region: testRegion, AccountID: testAccount,
		ChannelARN: ARN(testRegion, testAccount, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"), IngestionTime: testNow}
	f.Fuzz(func(t *testing.T, doc, raw string) {
		var str []byte
		if raw != "" {
			str = []byte(`"` + raw + `"`)
		} else {
			str, _ = json.Marshal(doc)
		}
		for _, withSum := range []bool{false, true} {
			b := []byte(`{"auditEvents":[{"id":"a","eventData":` + string(str) + `}`)
			if withSum {
				b = []byte(`{"auditEvents":[{"id":"a","eventData":` + string(str) + `,"eventDataChecksum":"x"}`)
			}
			b = append(b, `,{"id":"b","eventData":`+string(str)+`}]}`...)
			one := fastDecoder{src: b, compact: true}
			got, okOne := one.decode()
			two := fastDecoder{src: b}
			want, okTwo := two.decode()
			if okOne != okTwo {
				t.Fatalf("decoded %v in one pass, %v in two", okOne, okTwo)
			}
			if !okOne {
				continue
			}
			for i := range got {
				g, w := got[i], want[i]
				if withSum && i == 0 && g.compacted {
					t.Fatalf("an event with a checksum was compacted")
				}
				if !g.compacted {
					if !bytes.Equal(g.EventData, w.EventData) {
						t.Fatalf("event %d not compacted, but its eventData is %q, not %q", i, g.EventData, w.EventData)
					}
				} else {
					compact, spans, ok := event.AppendCompactObject(nil, w.EventData, event.MaxEmbedDepth, nil)
					if !ok {
						t.Fatalf("event %d compacted in one pass, refused in two: %q", i, w.EventData)
					}
					if !bytes.Equal(g.EventData, compact) || !slices.Equal(g.spans, spans) {
						t.Fatalf("event %d: one pass %q %v, two %q %v", i, g.EventData, g.spans, compact, spans)
					}
				}
				if g.EventDataChecksum != nil {
					continue
				}
				rec1, rej1 := (&recordBuilder{}).buildEvent(&g, env)
				rec2, rej2 := (&recordBuilder{}).build(w.EventData, nil, env)
				if (rej1 == nil) != (rej2 == nil) || rej1 != nil && *rej1 != *rej2 || !bytes.Equal(rec1, rec2) {
					t.Fatalf("event %d: one pass %s %v, two %s %v", i, rec1, rej1, rec2, rej2)
				}
			}
		}
	})
}

// TestCompactDataTakesTheCommonShape: the events cairn bench ingest and the
// SDKs send (eventData from a JSON encoder, no checksum) take the one
// pass; an event with a checksum keeps its eventData as sent.
func TestCompactDataTakesTheCommonShape(t *testing.T) {
	d := eventData(map[string]any{"requestParameters": map[string]any{"q": "a\"b\\c\u00e9\n"}})
	body := body(wireEvent{ID: "a", EventData: d}, wireEvent{ID: "b", EventData: d, EventDataChecksum: checksum(d)})
	dec := fastDecoder{src: body, compact: true}
	events, ok := dec.decode()
	if !ok || len(events) != 2 {
		t.Fatalf("decoded %v, %d events", ok, len(events))
	}
	if !events[0].compacted {
		t.Errorf("event without a checksum was not compacted in one pass")
	}
	if events[1].compacted || string(events[1].EventData) != d {
		t.Errorf("event with a checksum: compacted %v, eventData %q", events[1].compacted, events[1].EventData)
	}
}
