package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// omitted is the marker event.FitRecord puts in place of a member.
type omitted struct {
	Omitted *struct {
		Member string `json:"member"`
		Bytes  int    `json:"bytes"`
		SHA256 string `json:"sha256"`
	} `json:"omittedByCairn"`
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// lastRecord is the newest journal record of the operation.
func lastRecord(t *testing.T, h *servertest.Harness, name string) *event.Record {
	t.Helper()
	var found *event.Record
	for _, r := range records(t, h) {
		if r.EventName == name {
			found = r
		}
	}
	if found == nil {
		t.Fatalf("no record of %s in the journal", name)
	}
	return found
}

// The record size Cairn fits records to is the journal's entry limit.
func TestRecordLimitIsTheJournalEntryLimit(t *testing.T) {
	if event.MaxRecordBytes != journal.MaxEntrySize {
		t.Fatalf("event.MaxRecordBytes = %d, journal.MaxEntrySize = %d", event.MaxRecordBytes, journal.MaxEntrySize)
	}
}

// PutEventSelectors with 300 values of 2,048 characters is within
// CloudTrail's limits (500 values, 2,048 characters each), and its record
// (the selectors in the request and again in the response) is over the
// journal's 1 MiB entry. It must succeed and be recorded, the record
// giving up the response's copy of the selectors for a marker.
func TestLargeLegalCallIsRecordedWithAMarker(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	h.CreateBucket(t, "big-logs")
	if _, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("big"), S3BucketName: aws.String("big-logs")}); err != nil {
		t.Fatal(err)
	}
	values := make([]string, 300)
	for i := range values {
		p := fmt.Sprintf("arn:aws:s3:::bucket-%03d/", i)
		values[i] = p + strings.Repeat("k", 2048-len(p))
	}
	sels := []types.AdvancedEventSelector{{
		Name: aws.String("many objects"),
		FieldSelectors: []types.AdvancedFieldSelector{
			{Field: aws.String("eventCategory"), Equals: []string{"Data"}},
			{Field: aws.String("resources.type"), Equals: []string{"AWS::S3::Object"}},
			{Field: aws.String("resources.ARN"), StartsWith: values},
		},
	}}
	if _, err := h.CloudTrail.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("big"), AdvancedEventSelectors: sels}); err != nil {
		t.Fatalf("PutEventSelectors with 300 values of 2 KB: %v", err)
	}
	got, err := h.CloudTrail.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("big")})
	if err != nil || len(got.AdvancedEventSelectors) != 1 || len(got.AdvancedEventSelectors[0].FieldSelectors) != 3 {
		t.Fatalf("GetEventSelectors: %v", err)
	}

	rec := lastRecord(t, h, "PutEventSelectors")
	if rec.ErrorCode != "" || len(rec.Raw) > event.MaxRecordBytes {
		t.Fatalf("record: errorCode %q, %d bytes", rec.ErrorCode, len(rec.Raw))
	}
	var body struct {
		RequestParameters struct {
			TrailName              string          `json:"trailName"`
			AdvancedEventSelectors json.RawMessage `json:"advancedEventSelectors"`
		} `json:"requestParameters"`
		ResponseElements map[string]json.RawMessage `json:"responseElements"`
	}
	if err := json.Unmarshal(rec.Raw, &body); err != nil {
		t.Fatal(err)
	}
	if body.RequestParameters.TrailName != "big" || !strings.Contains(string(body.RequestParameters.AdvancedEventSelectors), values[299]) {
		t.Error("the request's selectors are not in the record")
	}
	var m omitted
	if err := json.Unmarshal(body.ResponseElements["advancedEventSelectors"], &m); err != nil || m.Omitted == nil {
		t.Fatalf("responseElements.advancedEventSelectors is not a marker: %.200s (%v)", body.ResponseElements["advancedEventSelectors"], err)
	}
	// The response echoes the selectors as stored, which are the ones
	// sent: the marker's size and hash are those of the request's copy.
	sent := body.RequestParameters.AdvancedEventSelectors
	if m.Omitted.Member != "responseElements.advancedEventSelectors" || m.Omitted.Bytes != len(sent) || m.Omitted.SHA256 != sha256Hex(sent) {
		t.Errorf("marker %+v; want member responseElements.advancedEventSelectors, %d bytes, sha256 %s", *m.Omitted, len(sent), sha256Hex(sent))
	}
	if !strings.Contains(string(body.ResponseElements["trailARN"]), ":trail/big") {
		t.Errorf("responseElements.trailARN = %s", body.ResponseElements["trailARN"])
	}
}

// A read-only LookupEvents with a 3 MB NextToken gets CloudTrail's
// InvalidNextTokenException (not a 503), and the refusal is recorded, the
// token replaced by a marker.
func TestHugeNextTokenIsRefusedAndRecorded(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	token := strings.Repeat("A", 3<<20)
	_, err := h.ReadOnly.LookupEvents(ctx, &cloudtrail.LookupEventsInput{NextToken: aws.String(token)})
	var bad *types.InvalidNextTokenException
	if !errors.As(err, &bad) {
		t.Fatalf("LookupEvents with a 3 MB NextToken: %v, want InvalidNextTokenException", err)
	}
	rec := lastRecord(t, h, "LookupEvents")
	if rec.ErrorCode != "InvalidNextTokenException" {
		t.Errorf("recorded errorCode %q", rec.ErrorCode)
	}
	var body struct {
		RequestParameters map[string]json.RawMessage `json:"requestParameters"`
	}
	if err := json.Unmarshal(rec.Raw, &body); err != nil {
		t.Fatal(err)
	}
	var m omitted
	if err := json.Unmarshal(body.RequestParameters["nextToken"], &m); err != nil || m.Omitted == nil {
		t.Fatalf("requestParameters.nextToken is not a marker: %.200s (%v)", body.RequestParameters["nextToken"], err)
	}
	quoted := `"` + token + `"`
	if m.Omitted.Member != "requestParameters.nextToken" || m.Omitted.Bytes != len(quoted) || m.Omitted.SHA256 != sha256Hex([]byte(quoted)) {
		t.Errorf("marker %+v; want member requestParameters.nextToken, %d bytes, sha256 %s", *m.Omitted, len(quoted), sha256Hex([]byte(quoted)))
	}
}
