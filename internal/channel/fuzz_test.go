package channel

import (
	"bytes"
	"encoding/json"
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
