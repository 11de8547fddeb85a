package s3proxy

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const s3ns = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`

// TestDocumentJSON pins the conversion of configuration documents to the
// JSON S3 records: attributes and children in document order, repeated
// elements as arrays, single ones as themselves, the model's booleans and
// integers typed; anything that is not one well-formed document is left
// out.
func TestDocumentJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<VersioningConfiguration ` + s3ns + `><Status>Suspended</Status></VersioningConfiguration>`,
			`{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","Status":"Suspended"}`},
		{`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<PublicAccessBlockConfiguration ` + s3ns + `>
  <BlockPublicAcls>false</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls>
  <BlockPublicPolicy>False</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets>
</PublicAccessBlockConfiguration>`,
			`{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","BlockPublicAcls":false,"IgnorePublicAcls":true,"BlockPublicPolicy":"False","RestrictPublicBuckets":true}`},
		{`<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>`,
			`{"TagSet":{"Tag":{"Key":"a","Value":"1"}}}`},
		{`<Tagging><TagSet><Tag><Key>a</Key><Value>true</Value></Tag><Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>`,
			`{"TagSet":{"Tag":[{"Key":"a","Value":"true"},{"Key":"b","Value":""}]}}`},
		{`<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix/></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>07</NoncurrentDays></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>`,
			`{"Rule":{"ID":"r","Filter":{"Prefix":""},"Status":"Enabled","Expiration":{"Days":30},"NoncurrentVersionExpiration":{"NoncurrentDays":"07"}}}`},
		{`<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>abc</ID></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>`,
			`{"AccessControlList":{"Grant":{"Grantee":{"xmlns:xsi":"http://www.w3.org/2001/XMLSchema-instance","xsi:type":"CanonicalUser","ID":"abc"},"Permission":"READ"}}}`},
		{`<CreateBucketConfiguration ` + s3ns + `><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`,
			`{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","LocationConstraint":"eu-west-1"}`},
		{`<a>"quotes" &amp; &lt;tags&gt; ünïcode</a>`, `"\"quotes\" & <tags> ünïcode"`},
		// Not one well-formed document: left out.
		{`<a><b></a></b>`, ``},
		{`<a/><b/>`, ``},
		{`<a>`, ``},
		{`text<a/>`, ``},
		{``, ``},
		{strings.Repeat("<a>", maxDocumentDepth+1) + strings.Repeat("</a>", maxDocumentDepth+1), ``},
	} {
		doc, err := parseDocument([]byte(tc.in))
		got := ""
		if err == nil {
			got = string(appendDocument(nil, doc))
		}
		if got != tc.want {
			t.Errorf("document %q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// TestConfigurationDocumentsAreRecorded makes configuration calls with the
// SDK through the proxy to a real versitygw: their documents are in the
// records' requestParameters, where detections look for them (Sigma's
// "AWS S3 bucket versioning disabled" matches "Suspended"), whether or not
// the upstream accepted the call.
func TestConfigurationDocumentsAreRecorded(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("conf")}); err != nil {
		t.Fatal(err)
	}
	_, _ = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("elsewhere"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("conf"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}}); err != nil {
		t.Logf("PutBucketVersioning: %v (recorded either way)", err)
	}
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("conf"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("audit")}, {Key: aws.String("env"), Value: aws.String("prod")}}}}); err != nil {
		t.Fatalf("PutBucketTagging: %v", err)
	}
	_, _ = c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String("conf"),
		PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(false), BlockPublicPolicy: aws.Bool(false),
			IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})

	evs := map[string]map[string]any{}
	for _, e := range r.events(t) {
		if e["eventName"] == "CreateBucket" && path(e, "requestParameters.bucketName") == "conf" {
			continue
		}
		evs[e["eventName"].(string)] = e
	}
	for _, want := range []struct {
		event, member string
		value         any
	}{
		{"CreateBucket", "CreateBucketConfiguration.LocationConstraint", "eu-west-1"},
		{"PutBucketVersioning", "VersioningConfiguration.Status", "Suspended"},
		{"PutBucketVersioning", "versioning", ""},
		{"PutBucketTagging", "Tagging.TagSet.Tag", []any{map[string]any{"Key": "team", "Value": "audit"}, map[string]any{"Key": "env", "Value": "prod"}}},
		{"PutBucketPublicAccessBlock", "PublicAccessBlockConfiguration.BlockPublicPolicy", false},
		{"PutBucketPublicAccessBlock", "PublicAccessBlockConfiguration.RestrictPublicBuckets", true},
		{"PutBucketPublicAccessBlock", "PublicAccessBlockConfiguration.xmlns", "http://s3.amazonaws.com/doc/2006-03-01/"},
	} {
		e, ok := evs[want.event]
		if !ok {
			t.Errorf("no %s event", want.event)
			continue
		}
		got := path(e, "requestParameters."+want.member)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want.value)
		if string(gj) != string(wj) {
			t.Errorf("%s requestParameters.%s = %s, want %s (requestParameters %v)", want.event, want.member, gj, wj, e["requestParameters"])
		}
	}
	if rp, _ := json.Marshal(evs["PutBucketVersioning"]["requestParameters"]); !strings.Contains(string(rp), "Suspended") {
		t.Errorf("PutBucketVersioning requestParameters %s do not contain Suspended", rp)
	}
}
