package server

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestPutAuditEventsMembersMatchExactly is issue 12's first defect on
// PutAuditEvents: a member spelled in another case is not the member (it
// is ignored, as the service ignores unknown members) and a member given
// twice is a SerializationException that ingests nothing, so the event
// ingested, and the id answered for it, are the ones the body names once.
func TestPutAuditEventsMembersMatchExactly(t *testing.T) {
	e := startDataEnv(t)
	arn := e.createChannel(t, "payments")
	named := appEvent(map[string]any{"eventName": "Named"})
	shadow := appEvent(map[string]any{"eventName": "Shadow"})
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	before := len(e.records(t))
	body := `{"auditEvents":[{"id":"evt-1","eventData":` + str(named) + `,"EventData":` + str(shadow) + `,"ID":"evt-2"}],` +
		`"AuditEvents":[{"id":"evt-3","eventData":` + str(shadow) + `}]}`
	r := e.put(t, arn, []byte(body), putOpts{})
	if r.Status != http.StatusOK || len(r.Out.Successful) != 1 || r.Out.Successful[0].ID != "evt-1" {
		t.Fatalf("wrong-case members: %d %s, want evt-1 accepted alone", r.Status, r.Body)
	}
	recs := e.records(t)[before:]
	if len(recs) != 2 || recs[0].EventName != "Named" || string(recs[0].Field("eventData")) != named {
		for _, rec := range recs {
			t.Logf("record: %s", rec.Raw)
		}
		t.Fatalf("wrong-case members: %d records; want the event named by eventData, then the call", len(recs))
	}

	for _, body := range []string{
		`{"auditEvents":[{"id":"evt-4","id":"evt-5","eventData":` + str(named) + `}]}`,
		`{"auditEvents":[{"id":"evt-4","eventData":` + str(named) + `,"eventData":` + str(shadow) + `}]}`,
		`{"auditEvents":[{"id":"evt-4","eventData":` + str(named) + `}],"auditEvents":[{"id":"evt-5","eventData":` + str(shadow) + `}]}`,
	} {
		before := len(e.records(t))
		e.put(t, arn, []byte(body), putOpts{}).wantError(t, http.StatusBadRequest, "SerializationException")
		recs := e.records(t)[before:]
		if len(recs) != 1 || recs[0].EventName != "PutAuditEvents" || recs[0].ErrorCode != "SerializationException" {
			t.Fatalf("duplicate member in %s: %d records after the refusal, want only the refused call's", body, len(recs))
		}
	}
}
