package api_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/event"
)

func numberedTags(from, n int) []types.Tag {
	out := make([]types.Tag, n)
	for i := range out {
		out[i] = types.Tag{Key: aws.String(fmt.Sprintf("key-%06d", from+i)), Value: aws.String("v")}
	}
	return out
}

// CloudTrail allows 50 tags per resource. CreateTrail with 100,000 tags
// (once a quadratic merge that took 15 s, then a record too large for the
// journal) is refused with TagsLimitExceededException and creates
// nothing; 50 are fine and 51 are not; AddTags may not take a resource
// past 50, though it may overwrite existing keys at the limit.
func TestTagLimitsThroughTheSDK(t *testing.T) {
	e := startSDK(t)
	// Two 100,000-tag requests (3.5 MB each) are built, signed, decoded,
	// refused and recorded: seconds without the race detector, tens of
	// seconds with it on two busy cores. The test is about the answers, so
	// its context is generous.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var limit *types.TagsLimitExceededException

	_, err := e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("huge"), S3BucketName: aws.String(sdkBucket), TagsList: numberedTags(0, 100_000)})
	if !errors.As(err, &limit) {
		t.Fatalf("CreateTrail with 100,000 tags: %v, want TagsLimitExceededException", err)
	}
	if _, err := e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("huge")}); !errors.As(err, new(*types.TrailNotFoundException)) {
		t.Errorf("the refused trail exists: %v", err)
	}
	// The refusal is recorded like any other, its 1.9 MB tag list replaced
	// by a marker so that the record fits the journal.
	var refused *event.Record
	_, err = e.h.Server.Journal().Read(ctx, 0, 1<<20, func(_ uint64, entry []byte) error {
		rec, err := event.Parse(entry)
		if err == nil && rec.EventName == "CreateTrail" && rec.ErrorCode == "TagsLimitExceededException" {
			refused = rec
		}
		return err
	})
	if err != nil || refused == nil {
		t.Fatalf("the refused CreateTrail is not in the journal (%v)", err)
	}
	if !strings.Contains(string(refused.Raw), `"tagsList":{"omittedByCairn":{"member":"requestParameters.tagsList"`) {
		t.Errorf("the record's tagsList is not a marker: %.300s", refused.Raw)
	}

	_, err = e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("over"), S3BucketName: aws.String(sdkBucket), TagsList: numberedTags(0, 51)})
	if !errors.As(err, &limit) {
		t.Errorf("CreateTrail with 51 tags: %v, want TagsLimitExceededException", err)
	}
	res(e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("full"), S3BucketName: aws.String(sdkBucket), TagsList: numberedTags(0, 50)})).must(t, "CreateTrail with 50 tags")

	res(e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("some"), S3BucketName: aws.String(sdkBucket), TagsList: numberedTags(0, 40)})).must(t, "CreateTrail with 40 tags")
	someARN := e.arn(east, "some")
	_, err = e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(someARN), TagsList: numberedTags(40, 11)})
	if !errors.As(err, &limit) {
		t.Errorf("AddTags taking 40 tags to 51: %v, want TagsLimitExceededException", err)
	}
	_, err = e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(someARN), TagsList: numberedTags(0, 100_000)})
	if !errors.As(err, &limit) {
		t.Errorf("AddTags with 100,000 tags: %v, want TagsLimitExceededException", err)
	}
	// 5 overwritten and 10 new: 50 in all.
	res(e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(someARN), TagsList: numberedTags(35, 15)})).must(t, "AddTags to exactly 50")
	out := res(e.east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{someARN}})).must(t, "ListTags")
	if n := len(out.ResourceTagList[0].TagsList); n != 50 {
		t.Errorf("the trail has %d tags, want 50", n)
	}
	_, err = e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(someARN), TagsList: numberedTags(50, 1)})
	if !errors.As(err, &limit) {
		t.Errorf("AddTags to a trail with 50 tags: %v, want TagsLimitExceededException", err)
	}
	res(e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(someARN), TagsList: numberedTags(0, 50)})).must(t, "AddTags overwriting all 50")
}
