package channel

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
)

// FuzzDecodeAuditEvents feeds arbitrary PutAuditEvents bodies to the
// decoder: it must never panic, must fail only with the two client errors
// of a bad body, and what it accepts must satisfy the model.
func FuzzDecodeAuditEvents(f *testing.F) {
	f.Add([]byte(`{"auditEvents":[{"id":"a","eventData":"{}"}]}`))
	f.Add([]byte(`{"auditEvents":[{"id":"a","eventData":"{}","eventDataChecksum":"x"}, {"id":"b-_9","eventData":""}]}`))
	f.Add([]byte(`{"auditEvents":[]}`))
	f.Add([]byte(`{"auditEvents":null}`))
	f.Add([]byte(`{"AuditEvents":[{"ID":"a","EventData":"{}"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := DecodeAuditEvents(body)
		if err != nil {
			e, ok := err.(*awsproto.Error)
			if !ok || (e.Code != CodeValidation && e.Code != "SerializationException") || e.Message == "" {
				t.Fatalf("unexpected error %#v", err)
			}
			return
		}
		if len(events) < 1 || len(events) > MaxEventsPerRequest {
			t.Fatalf("accepted %d events", len(events))
		}
		for _, e := range events {
			if validAuditEventID(e.ID, "id") != nil {
				t.Fatalf("accepted id %q", e.ID)
			}
		}
	})
}

// FuzzBuildRecord feeds arbitrary eventData to the per-event validation and
// record builder. Whatever it accepts must be a CloudTrail record that
// event.Parse takes, carry the envelope it was given and keep eventData
// exactly (modulo insignificant whitespace); whatever it rejects must be
// reported with one of CloudTrail's per-event codes.
func FuzzBuildRecord(f *testing.F) {
	f.Add(eventData(nil), "", false)
	f.Add(eventData(map[string]any{"eventTime": "2024-05-01T12:00:00.5+01:00", "sourceIPAddress": "::1", "additionalEventData": map[string]any{"a": []int{1}}}), "", false)
	f.Add(eventData(nil), "not-a-checksum", true)
	f.Add(`{"version":"1","userIdentity":{"type":"t","principalId":"p"},"eventSource":"s","eventName":"n","eventTime":"2024-01-01T00:00:00","UID":"u","recipientAccountId":"123456789012"}`, "", false)
	f.Add(`{"eventName":"\u00e9\ud800","userIdentity":[]}`, "", false)
	f.Add(`{"a":1} {"b":2}`, "", false)
	env := &Envelope{EventID: "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", Region: testRegion, AccountID: testAccount,
		ChannelARN: ARN(testRegion, testAccount, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"), IngestionTime: testNow}
	codes := map[string]bool{CodeFieldTooLong: true, CodeFieldNotFound: true, CodeInvalidChecksum: true, CodeInvalidData: true, CodeInvalidRecipient: true}
	f.Fuzz(func(t *testing.T, data, sum string, withSum bool) {
		var cs *string
		if withSum {
			cs = &sum
		}
		rec, rej := BuildRecord([]byte(data), cs, env)
		if rej != nil {
			if !codes[rej.Code] || rej.Message == "" || len(rej.Message) > maxFailedMessageLen || !utf8.ValidString(rej.Message) {
				t.Fatalf("bad rejection %+v", rej)
			}
			return
		}
		r, err := event.Parse(rec)
		if err != nil {
			t.Fatalf("accepted record does not parse: %v\n%s", err, rec)
		}
		if !bytes.Equal(r.Raw, rec) {
			t.Fatalf("record is not canonical")
		}
		if r.EventID != env.EventID || r.AWSRegion != env.Region || r.RecipientAccountID != env.AccountID ||
			r.EventCategory != EventCategoryActivityAuditLog || r.EventType != EventTypeActivityLog || r.EventName == "" {
			t.Fatalf("envelope lost: %+v", r)
		}
		// Differential check against encoding/json: the lifted members are
		// the ones a map decode sees (the last of duplicate keys).
		if utf8.ValidString(data) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatalf("accepted eventData encoding/json rejects: %v", err)
			}
			var name, source string
			_ = json.Unmarshal(m["eventName"], &name)
			_ = json.Unmarshal(m["eventSource"], &source)
			if name != r.EventName || source != r.EventSource {
				t.Fatalf("lifted eventName/eventSource %q/%q, encoding/json says %q/%q", r.EventName, r.EventSource, name, source)
			}
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(data)); err != nil {
			t.Fatalf("accepted eventData that is not JSON: %v", err)
		}
		if !bytes.Equal(r.Field("eventData"), compact.Bytes()) {
			t.Fatalf("eventData changed:\n got %s\nwant %s", r.Field("eventData"), compact.Bytes())
		}
	})
}

// FuzzDecodeFast checks the single-pass decoder against encoding/json:
// whatever the fast pass accepts, encoding/json decodes to the same events
// (ids, eventData bytes, checksums), so taking the fast pass never changes
// an answer.
func FuzzDecodeFast(f *testing.F) {
	f.Add([]byte(`{"auditEvents":[{"id":"a","eventData":"{}"}]}`))
	f.Add([]byte(` { "auditEvents" : [ { "eventData" : "{\"a\":\"\\u00e9\\\\\"}" , "id" : "b" , "eventDataChecksum" : "x" } , {"id":"c","eventData":"\ud83d\ude00 \ud800 \u00e9 é \/ \b\f\n\r\t"} ] } `))
	f.Add([]byte(`{"auditEvents":[{"id":"a","eventData":"\ud800\ud800\udc00"}]}`))
	f.Add([]byte(`{"auditEvents":[{"id":"a","id":"b","eventData":""}]}`))
	f.Add([]byte(`{"auditEvents":[{"ID":"a","eventData":""}]}`))
	f.Add([]byte("{\"auditEvents\":[{\"id\":\"a\",\"eventData\":\"\xff\"}]}"))
	f.Add([]byte(`{"auditEvents":[{"id":"a","eventData":"x"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		trimmed := bytes.TrimSpace(body)
		fast, _, ok := decodeAuditEventsFast(trimmed, nil)
		if !ok {
			return
		}
		if len(trimmed) == 0 || trimmed[0] != '{' {
			t.Fatalf("fast pass accepted a body that does not start with '{'")
		}
		slow, err := decodeAuditEventsJSON(trimmed)
		if err != nil {
			if awsproto.AsError(err).Code == CodeValidation {
				return // ids are checked after decoding, in the same order on both paths
			}
			t.Fatalf("fast pass accepted what encoding/json refuses: %v", err)
		}
		if len(fast) != len(slow) {
			t.Fatalf("fast pass decoded %d events, encoding/json %d", len(fast), len(slow))
		}
		for i := range fast {
			a, b := fast[i], slow[i]
			if a.ID != b.ID || !bytes.Equal(a.EventData, b.EventData) || (a.EventDataChecksum == nil) != (b.EventDataChecksum == nil) ||
				a.EventDataChecksum != nil && *a.EventDataChecksum != *b.EventDataChecksum {
				t.Fatalf("event %d: fast %+v, encoding/json %+v", i, a, b)
			}
		}
	})
}

// FuzzBuildRecordFast checks BuildRecord's fast path (the event package's
// compactor, no record parse) against the reference path (json.Compact,
// then event.Parse of the record): the same record or the same rejection,
// for any eventData.
func FuzzBuildRecordFast(f *testing.F) {
	f.Add(eventData(nil))
	f.Add(eventData(map[string]any{"eventTime": "2024-05-01T12:00:00.5+01:00", "sourceIPAddress": "::1", "additionalEventData": map[string]any{"a": []int{1}}}))
	f.Add(eventData(map[string]any{"eventTime": "0000-01-01T00:30:00+01:00"}))
	f.Add(eventData(map[string]any{"eventTime": "9999-12-31T23:30:00-01:00"}))
	f.Add(`{"version":"1","userIdentity":{"type":"t","principalId":"p"},"eventSource":"s","eventName":"n","eventTime":"2024-01-01T00:00:00","UID":"u","recipientAccountId":"123456789012"}`)
	f.Add(` {"version" : "1", "userIdentity":{"type":"t\u00e9","principalId":"p","details":{"x":[1, 2.5e3, true, null]}},"eventSource":"s","eventName":"n\"","eventTime":"2024-01-01T00:00:00","UID":"u","recipientAccountId":"123456789012", "x": "\xff"} `)
	f.Add(`{"eventName":"\u00e9\ud800","userIdentity":[]}`)
	f.Add(`{"a":1} {"b":2}`)
	f.Add(`[1]`)
	env := &Envelope{EventID: "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", Region: testRegion, AccountID: testAccount,
		ChannelARN: ARN(testRegion, testAccount, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"), IngestionTime: testNow}
	f.Fuzz(func(t *testing.T, data string) {
		fast, fastRej := (&recordBuilder{}).build([]byte(data), nil, env)
		ref, refRej := (&recordBuilder{reference: true}).build([]byte(data), nil, env)
		if (fastRej == nil) != (refRej == nil) || fastRej != nil && *fastRej != *refRej {
			t.Fatalf("fast path rejection %v, reference %v", fastRej, refRej)
		}
		if !bytes.Equal(fast, ref) {
			t.Fatalf("fast path record differs:\n got %s\nwant %s", fast, ref)
		}
	})
}

// TestBuildRecordDeepNesting: eventData nested as deep as encoding/json
// allows is refused the way it always was (by the record parser), and one
// level less is accepted.
func TestBuildRecordDeepNesting(t *testing.T) {
	env := &Envelope{EventID: "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", Region: testRegion, AccountID: testAccount,
		ChannelARN: ARN(testRegion, testAccount, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"), IngestionTime: testNow}
	base := eventData(nil)
	for _, depth := range []int{event.MaxEmbedDepth - 1, event.MaxEmbedDepth, event.MaxEmbedDepth + 1, event.MaxEmbedDepth + 2} {
		data := base[:len(base)-1] + `,"deep":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
		fast, fastRej := (&recordBuilder{}).build([]byte(data), nil, env)
		ref, refRej := (&recordBuilder{reference: true}).build([]byte(data), nil, env)
		if (fastRej == nil) != (refRej == nil) || fastRej != nil && *fastRej != *refRej || !bytes.Equal(fast, ref) {
			t.Fatalf("depth %d: fast %v, reference %v", depth, fastRej, refRej)
		}
		t.Logf("depth %d: %v", depth, fastRej)
	}
}

// FuzzOutputAppendJSON checks the hand-written response encoder against
// encoding/json.
func FuzzOutputAppendJSON(f *testing.F) {
	f.Add("e-1", "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", "bad", CodeInvalidData, `Field "x" <is> & not \ ok`+"\n\u2028\xff", 2, 1)
	f.Add("", "", "", "", "", 0, 0)
	f.Fuzz(func(t *testing.T, id, eventID, fid, code, msg string, ns, nf int) {
		for _, o := range []PutAuditEventsOutput{{}, {Successful: []ResultEntry{}, Failed: []ResultErrorEntry{}}} {
			for range ns % 4 {
				o.Successful = append(o.Successful, ResultEntry{ID: id, EventID: eventID})
			}
			for range nf % 4 {
				o.Failed = append(o.Failed, ResultErrorEntry{ID: fid, ErrorCode: code, ErrorMessage: msg})
			}
			want, err := json.Marshal(&o)
			if err != nil {
				t.Fatal(err)
			}
			if got := o.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		}
	})
}
