package server_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestTrailDeliversItsOwnAPICalls checks the whole spine in one server: API
// calls are recorded in the journal, a logging trail selects them and
// writes CloudTrail log files into its bucket, and GetTrailStatus says so.
func TestTrailDeliversItsOwnAPICalls(t *testing.T) {
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.DeliveryInterval = time.Second
	}})
	h.CreateBucket(t, "audit-logs")
	ctx := context.Background()
	ct := h.CloudTrail
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("everything"), S3BucketName: aws.String("audit-logs"), S3KeyPrefix: aws.String("ct")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("everything")}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := ct.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String("arn:aws:cloudtrail:us-east-1:000000000000:trail/everything"),
			TagsList: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
			t.Fatal(err)
		}
	}
	store := h.Server.ObjectStore()
	deadline := time.Now().Add(30 * time.Second)
	var names []string
	for {
		names = names[:0]
		err := store.List(ctx, "audit-logs", "ct/AWSLogs/000000000000/CloudTrail/us-east-1/", "", func(o objstore.ObjectInfo) error {
			rc, _, err := store.Get(ctx, "audit-logs", o.Key)
			if err != nil {
				return err
			}
			defer rc.Close()
			zr, err := gzip.NewReader(rc)
			if err != nil {
				return err
			}
			raw, err := io.ReadAll(zr)
			if err != nil {
				return err
			}
			var file struct {
				Records []struct{ EventName string } `json:"Records"`
			}
			if err := json.Unmarshal(raw, &file); err != nil {
				return err
			}
			for _, r := range file.Records {
				names = append(names, r.EventName)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(strings.Join(names, ","), "AddTags") >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the trail delivered %v, want 5 AddTags", names)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The status is written after the file is stored, so it may lag the
	// file by a moment.
	for {
		st, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("everything")})
		if err != nil {
			t.Fatal(err)
		}
		if st.LatestDeliveryError != nil {
			t.Fatalf("status after delivery: error %q", aws.ToString(st.LatestDeliveryError))
		}
		if st.LatestDeliveryTime != nil && aws.ToString(st.LatestDeliveryAttemptSucceeded) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after delivery: time=%v succeeded=%q", st.LatestDeliveryTime, aws.ToString(st.LatestDeliveryAttemptSucceeded))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
