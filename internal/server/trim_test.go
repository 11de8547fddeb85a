package server_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestTrimKeepsWhatConsumersNeed trims the journal while the history
// consumer works and checks that nothing it has not durably indexed is
// dropped and every event stays findable.
func TestTrimKeepsWhatConsumersNeed(t *testing.T) {
	h := servertest.Start(t)
	ctx := context.Background()
	for range 20 {
		if _, err := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	j := h.Server.Journal()
	if err := h.Server.History().WaitIndexed(ctx, j.LastSeq()); err != nil {
		t.Fatal(err)
	}
	if err := h.Server.TrimOnce(ctx); err != nil {
		t.Fatal(err)
	}
	cursors := j.Cursors()
	for name, pos := range cursors {
		if j.FirstSeq() > pos+1 {
			t.Errorf("journal trimmed to %d, above cursor %s at %d", j.FirstSeq(), name, pos)
		}
	}
	out, err := h.CloudTrail.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("DescribeTrails")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 20 {
		t.Errorf("after trim: %d DescribeTrails events found, want 20", len(out.Events))
	}
}
