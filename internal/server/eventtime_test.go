package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event times outside what any real event has (year 9999 came back from
// the SDK as 1816) are refused per event with InvalidData, like any other
// bad eventData value; the events around them are ingested.
func TestPutAuditEventsRefusesEventTimesOutOfRange(t *testing.T) {
	e := startDataEnv(t)
	arn := e.createChannel(t, "times")
	now := time.Now().UTC()
	times := []string{
		now.Format("2006-01-02T15:04:05Z"),
		"9999-12-31T23:59:59Z",
		"2010-06-01T00:00:00Z",
		now.Add(time.Hour).Format("2006-01-02T15:04:05Z"),
		now.Add(-time.Hour).Format("2006-01-02T15:04:05Z"),
	}
	var evs []auditEvent
	for i, ts := range times {
		evs = append(evs, auditEvent{ID: fmt.Sprintf("evt-%d", i), EventData: appEvent(map[string]any{"UID": fmt.Sprintf("u-%d", i), "eventTime": ts})})
	}
	r := e.put(t, arn, auditBody(evs...), putOpts{})
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if len(r.Out.Successful) != 2 || len(r.Out.Failed) != 3 {
		t.Fatalf("want 2 successful and 3 failed: %s", r.Body)
	}
	for i, f := range r.Out.Failed {
		if want := fmt.Sprintf("evt-%d", i+1); f.ID != want || f.ErrorCode != "InvalidData" || !strings.Contains(f.ErrorMessage, "eventTime") {
			t.Errorf("failed[%d] = %+v, want %s refused with InvalidData naming eventTime", i, f, want)
		}
	}
}
