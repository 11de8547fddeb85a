package s3proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestManagementEventsReachTheEventHistory runs the proxy as a capture of a
// real Cairn server: LookupEvents finds its bucket-level calls, and, as in
// CloudTrail, not its object-level (data) calls.
func TestManagementEventsReachTheEventHistory(t *testing.T) {
	up := s3test.Start(t)
	p, err := New(Config{Listen: "127.0.0.1:0", Upstream: up.Endpoint, AccountID: "000000000000",
		Identities: []Identity{{AccessKeyID: up.AccessKeyID, UserName: "alice", ARN: "arn:aws:iam::000000000000:user/alice",
			AccountID: "000000000000", PrincipalID: "AIDAEXAMPLEALICE01"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.Captures = []capture.Capture{p} }})
	r := &rig{s3: up}
	c := r.client(p.URL())
	ctx := context.Background()
	steps := []struct {
		name string
		call func() error
	}{
		{"CreateBucket", func() error {
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("hist")})
			return err
		}},
		{"PutBucketPolicy", func() error {
			_, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("hist"), Policy: aws.String(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::hist/*"}]}`)})
			return err
		}},
		{"GetBucketAcl", func() error {
			_, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("hist")})
			return err
		}},
		{"ListBuckets", func() error {
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		}},
		{"PutObject", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("hist"), Key: aws.String("k"), Body: strings.NewReader("v")})
			return err
		}},
	}
	for _, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("%s through the proxy: %v", s.name, err)
		}
	}
	want := map[string]bool{"CreateBucket": true, "PutBucketPolicy": true, "GetBucketAcl": true, "ListBuckets": true}
	deadline := time.Now().Add(20 * time.Second)
	for {
		found := map[string]cttypes.Event{}
		pg := cloudtrail.NewLookupEventsPaginator(h.CloudTrail, &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{
			{AttributeKey: cttypes.LookupAttributeKeyEventSource, AttributeValue: aws.String("s3.amazonaws.com")}}})
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatalf("LookupEvents: %v", err)
			}
			for _, e := range out.Events {
				found[aws.ToString(e.EventName)] = e
			}
		}
		missing := 0
		for n := range want {
			if _, ok := found[n]; !ok {
				missing++
			}
		}
		if missing == 0 {
			if _, ok := found["PutObject"]; ok {
				t.Errorf("the event history holds a data event (PutObject); CloudTrail's does not")
			}
			e := found["CreateBucket"]
			if aws.ToString(e.Username) != "alice" || aws.ToString(e.AccessKeyId) != up.AccessKeyID || aws.ToString(e.ReadOnly) != "false" {
				t.Errorf("CreateBucket in the history: user %q key %q readOnly %q", aws.ToString(e.Username), aws.ToString(e.AccessKeyId), aws.ToString(e.ReadOnly))
			}
			if len(e.Resources) == 0 || aws.ToString(e.Resources[0].ResourceType) != "AWS::S3::Bucket" {
				t.Errorf("CreateBucket resources in the history: %+v", e.Resources)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LookupEvents found %v, want all of %v", keys(found), keys(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
