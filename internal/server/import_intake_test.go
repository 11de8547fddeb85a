package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// importClient is a client of the import endpoint signed with the admin key.
func importClient(h *servertest.Harness) *apiclient.Client {
	return apiclient.NewClient(h.URL, servertest.DefaultRegion,
		aws.Credentials{AccessKeyID: h.AdminKeyID, SecretAccessKey: h.AdminSecret}, &http.Client{})
}

// Every record the import endpoint accepts must reach the event history;
// one that would be silently dropped there (no awsRegion) or that no real
// event can have (an eventTime before CloudTrail or in the future) is
// refused with a per-record error naming the field.
func TestImportRefusesRecordsTheHistoryWouldDrop(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	now := time.Now().UTC()
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	rec := func(id, extra string) string {
		return `{"eventVersion":"1.08","eventID":"` + id + `","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventType":"AwsApiCall"` + extra + `}`
	}
	region := `,"awsRegion":"us-east-1"`
	at := `,"eventTime":"` + ts(now.Add(-time.Hour)) + `"`
	lines := []string{
		rec("ok-1", at+region),
		rec("no-region", at),                                                 // 1
		rec("num-region", at+`,"awsRegion":42`),                              // 2
		rec("empty-region", at+`,"awsRegion":""`),                            // 3
		rec("far-future", `,"eventTime":"9999-12-31T23:59:59Z"`+region),      // 4
		rec("pre-cloudtrail", `,"eventTime":"2010-01-01T00:00:00Z"`+region),  // 5
		rec("next-hour", `,"eventTime":"`+ts(now.Add(time.Hour))+`"`+region), // 6
		rec("ok-2", `,"eventTime":"`+ts(now.Add(-2*time.Hour))+`"`+region),
	}
	out, err := importClient(h).Import(ctx, []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantField := map[int]string{1: "awsRegion", 2: "awsRegion", 3: "awsRegion", 4: "eventTime", 5: "eventTime", 6: "eventTime"}
	if out.Accepted != 2 || len(out.Rejected) != len(wantField) {
		t.Fatalf("accepted %d, rejected %+v; want 2 accepted and records 1-6 rejected", out.Accepted, out.Rejected)
	}
	for _, r := range out.Rejected {
		if f := wantField[r.Index]; f == "" || !strings.Contains(r.Error, "invalid CloudTrail record: "+f+":") {
			t.Errorf("rejection %d: %q, want one naming %s", r.Index, r.Error, wantField[r.Index])
		}
	}
	// What was accepted is in the event history.
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ok-1", "ok-2"} {
		got := lookupByID(ctx, t, h.CloudTrail, id)
		if len(got) != 1 {
			t.Errorf("accepted record %s: LookupEvents found %d events, want 1", id, len(got))
		}
	}
}

func lookupByID(ctx context.Context, t *testing.T, ct *cloudtrail.Client, id string) []types.Event {
	t.Helper()
	out, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String(id)}},
	})
	if err != nil {
		t.Fatalf("LookupEvents %s: %v", id, err)
	}
	return out.Events
}
