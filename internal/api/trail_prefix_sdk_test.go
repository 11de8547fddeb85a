package api_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestTrailSDKUnwritablePrefix: a prefix under which delivery could never
// write a key (issue 12, defect 7) is refused by CreateTrail and
// UpdateTrail with InvalidS3PrefixException, through the real SDK, and
// leaves no trail behind; prefixes delivery can write are still taken.
func TestTrailSDKUnwritablePrefix(t *testing.T) {
	e := startSDK(t)
	ctx := servertest.Context(t)
	res(e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("main"), S3BucketName: aws.String(sdkBucket)})).must(t, "CreateTrail")

	bad := []string{
		"logs/", "/logs", "a//b", "./x", "x/.", "../../x", "a/../b", "/",
		strings.Repeat("s", 240),        // one segment longer than a file name may be
		"x" + strings.Repeat("/ü", 199), // keys over S3's 1024 bytes
		"data/part.cairn-meta.json",     // the file store's sidecar names
	}
	for _, p := range bad {
		_, err := e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("fresh"), S3BucketName: aws.String(sdkBucket), S3KeyPrefix: aws.String(p)})
		var ipe *types.InvalidS3PrefixException
		if !errors.As(err, &ipe) {
			t.Errorf("CreateTrail with prefix %q: err = %v, want InvalidS3PrefixException", p, err)
		}
		_, err = e.east.UpdateTrail(ctx, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), S3KeyPrefix: aws.String(p)})
		if !errors.As(err, &ipe) {
			t.Errorf("UpdateTrail with prefix %q: err = %v, want InvalidS3PrefixException", p, err)
		}
	}
	out := res(e.east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{TrailNameList: []string{"main", "fresh"}})).must(t, "DescribeTrails")
	if len(out.TrailList) != 1 || aws.ToString(out.TrailList[0].S3KeyPrefix) != "" {
		t.Fatalf("after refused calls: trails = %+v, want only main, without a prefix", out.TrailList)
	}

	for _, p := range []string{"logs", "a/b.c/d-e_f", "AWSLogs/o-123/ü", strings.Repeat("ü", 100) + "/" + strings.Repeat("ü", 99)} {
		res(e.east.UpdateTrail(ctx, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), S3KeyPrefix: aws.String(p)})).must(t, "UpdateTrail with prefix "+p)
	}
}
