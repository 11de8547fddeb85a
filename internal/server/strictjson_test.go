package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestRecordNamesTheTrailActedOn is issue 12's first defect: a body whose
// members differ only in case, or repeat, must not act on one trail while
// the record (and the event history's ResourceName) names another. Member
// names match exactly as the model spells them, so "NAME" is an unknown
// member and ignored; a member given twice is a SerializationException
// that changes nothing and whose record names nothing.
func TestRecordNamesTheTrailActedOn(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	ctx := servertest.Context(t)
	for _, name := range []string{"innocent", "victim"} {
		if _, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String("logs")}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.CloudTrail.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	logging := func(name string) bool {
		t.Helper()
		st, err := h.CloudTrail.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToBool(st.IsLogging)
	}
	// lastStop is the record of the most recent StopLogging call.
	lastStop := func() *event.Record {
		t.Helper()
		var last *event.Record
		for _, r := range records(t, h) {
			if r.EventName == "StopLogging" {
				last = r
			}
		}
		if last == nil {
			t.Fatal("no StopLogging record")
		}
		return last
	}
	requestParameters := func(r *event.Record) string {
		t.Helper()
		var rec struct {
			RequestParameters json.RawMessage `json:"requestParameters"`
		}
		if err := json.Unmarshal(r.Raw, &rec); err != nil {
			t.Fatal(err)
		}
		return string(rec.RequestParameters)
	}
	stopsNamed := func(resource string) int {
		t.Helper()
		if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
			t.Fatal(err)
		}
		out, err := h.CloudTrail.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
			{AttributeKey: types.LookupAttributeKeyResourceName, AttributeValue: aws.String(resource)}}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range out.Events {
			if aws.ToString(e.EventName) == "StopLogging" {
				n++
			}
		}
		return n
	}

	// A wrong-case member is not the member: innocent, the only trail
	// named by a member the model has, stops, and the record says so.
	status, typ, raw := rawCall(t, h, h.AdminKeyID, h.AdminSecret, "StopLogging", `{"Name":"innocent","NAME":"victim"}`, time.Now(), nil)
	if status != 200 {
		t.Fatalf("StopLogging with a wrong-case member: %d %s (%s), want 200", status, typ, raw)
	}
	if logging("innocent") || !logging("victim") {
		t.Fatalf("after StopLogging {Name:innocent, NAME:victim}: innocent logging=%v, victim logging=%v; want only innocent stopped",
			logging("innocent"), logging("victim"))
	}
	if got := requestParameters(lastStop()); got != `{"name":"innocent"}` {
		t.Errorf("record's requestParameters = %s, want {\"name\":\"innocent\"}", got)
	}
	if n := stopsNamed("victim"); n != 0 {
		t.Errorf("LookupEvents ResourceName=victim finds %d StopLogging events; victim was not stopped", n)
	}
	if n := stopsNamed("innocent"); n != 1 {
		t.Errorf("LookupEvents ResourceName=innocent finds %d StopLogging events, want 1", n)
	}

	// A member given twice is refused, changes nothing and names nothing.
	for _, body := range []string{`{"Name":"victim","Name":"innocent"}`, `{"Name":"innocent","Name":"victim"}`} {
		status, typ, raw = rawCall(t, h, h.AdminKeyID, h.AdminSecret, "StopLogging", body, time.Now(), nil)
		if status != 400 || typ != "SerializationException" {
			t.Fatalf("StopLogging %s: %d %s (%s), want 400 SerializationException", body, status, typ, raw)
		}
		if !logging("victim") {
			t.Fatalf("StopLogging %s was refused but stopped victim", body)
		}
		rec := lastStop()
		if rec.ErrorCode != "SerializationException" || requestParameters(rec) != "null" {
			t.Errorf("refused StopLogging %s recorded as errorCode=%q requestParameters=%s, want SerializationException and null",
				body, rec.ErrorCode, requestParameters(rec))
		}
	}
	if n := stopsNamed("victim"); n != 0 {
		t.Errorf("LookupEvents ResourceName=victim finds %d StopLogging events after the refusals", n)
	}

	// Only the wrong-case member: Name is missing, as CloudTrail says.
	status, typ, raw = rawCall(t, h, h.AdminKeyID, h.AdminSecret, "StopLogging", `{"NAME":"victim"}`, time.Now(), nil)
	if status == 200 || !logging("victim") {
		t.Fatalf("StopLogging {NAME:victim}: %d %s (%s), victim logging=%v; want a refusal that leaves victim logging", status, typ, raw, logging("victim"))
	}

	// The real SDK's call is unaffected and recorded as before.
	if _, err := h.CloudTrail.StopLogging(context.WithoutCancel(ctx), &cloudtrail.StopLoggingInput{Name: aws.String("victim")}); err != nil {
		t.Fatal(err)
	}
	if logging("victim") {
		t.Fatal("the SDK's StopLogging did not stop victim")
	}
	if got := requestParameters(lastStop()); got != `{"name":"victim"}` {
		t.Errorf("SDK StopLogging recorded requestParameters %s", got)
	}
	if n := stopsNamed("victim"); n != 1 {
		t.Errorf("LookupEvents ResourceName=victim finds %d StopLogging events, want 1", n)
	}
}
