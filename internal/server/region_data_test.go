package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestPutAuditEventsChannelOfAnotherRegion: PutAuditEvents signed for one
// region with the ARN of a channel in another is refused as CloudTrail's
// regional endpoint refuses it (ChannelNotFound: that region has no such
// channel), recorded under the region it was signed for, and ingests
// nothing; signed for an unknown region it is refused before anything.
func TestPutAuditEventsChannelOfAnotherRegion(t *testing.T) {
	e := startDataEnv(t)
	arn := e.createChannel(t, "payments") // in us-east-1
	d := appEvent(nil)
	body := auditBody(auditEvent{ID: "evt-1", EventData: d, EventDataChecksum: sha256b64(d)})
	before := len(e.records(t))

	e.put(t, arn, body, putOpts{region: "eu-west-1"}).wantError(t, http.StatusBadRequest, "ChannelNotFound")
	recs := e.records(t)[before:]
	if len(recs) != 1 || recs[0].EventName != "PutAuditEvents" || recs[0].AWSRegion != "eu-west-1" || recs[0].ErrorCode == "" {
		t.Fatalf("after a cross-region put the journal gained %d records, want only the refusal's, filed under eu-west-1", len(recs))
	}

	r := e.put(t, arn, body, putOpts{region: "zz-fake-9"})
	r.wantError(t, http.StatusForbidden, "InvalidSignatureException")
	if !strings.Contains(r.Err.Message, "Credential should be scoped to a valid region, not 'zz-fake-9'.") {
		t.Fatalf("message %q", r.Err.Message)
	}
	if n := len(e.records(t)) - before; n != 1 {
		t.Fatalf("the unknown-region put was recorded (%d new records)", n-1)
	}

	// The channel's own region still takes the events.
	if r := e.put(t, arn, body, putOpts{}); r.Status != http.StatusOK || len(r.Out.Successful) != 1 {
		t.Fatalf("put in the channel's region: %d %s", r.Status, r.Body)
	}
}
