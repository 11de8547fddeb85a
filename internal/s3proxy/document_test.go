package s3proxy

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
		// What the upstream acts on cannot be hidden: a child wins over
		// an attribute of its name, a namespace declaration does not
		// turn text into an object, other attributes keep the text as
		// "#text", and so does text around child elements (which a
		// string field takes whole: "Sus<x/>pended" is "Suspended").
		{`<VersioningConfiguration ` + s3ns + ` Status="Enabled"><Status>Suspended</Status></VersioningConfiguration>`,
			`{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","Status":"Suspended"}`},
		{`<VersioningConfiguration><Status ` + s3ns + `>Suspended</Status></VersioningConfiguration>`,
			`{"Status":"Suspended"}`},
		{`<VersioningConfiguration><Status id="x">Suspended</Status></VersioningConfiguration>`,
			`{"Status":{"id":"x","#text":"Suspended"}}`},
		{`<VersioningConfiguration><Status>Sus<x/>pended</Status></VersioningConfiguration>`,
			`{"Status":{"x":"","#text":"Suspended"}}`},
		{`<?xml version="1.0" encoding="ISO-8859-1"?>` + "<Tagging><TagSet><Tag><Key>caf\xe9</Key><Value>v</Value></Tag></TagSet></Tagging>",
			`{"TagSet":{"Tag":{"Key":"café","Value":"v"}}}`},
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
			got = string(appendDocumentRoot(nil, doc))
		}
		if got != tc.want {
			t.Errorf("document %q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// TestDocumentUnderItsOperationsName: the document is recorded under the
// root element S3's API defines for the operation, whatever the client
// called its root (so a root named bucketName cannot overwrite the
// bucket's name); a body that is too large or not XML is said to be
// missing; a query parameter never takes the document's place.
func TestDocumentUnderItsOperationsName(t *testing.T) {
	r := httptest.NewRequest("PUT", "http://s3.local/real-bucket?tagging&Tagging=none", nil)
	op := Operation{Name: "PutBucketTagging", Level: Bucket, Bucket: "real-bucket", Query: url.Values{"tagging": {""}, "Tagging": {"none"}}}
	for _, tc := range []struct {
		body     string
		tooLarge bool
		want     string
	}{
		{`<bucketName>other-bucket</bucketName>`, false, `{"bucketName":"real-bucket","Host":"s3.local","Tagging":"other-bucket","tagging":""}`},
		{`<Foo><TagSet><Tag><Key>owner</Key><Value>evil</Value></Tag></TagSet></Foo>`, false,
			`{"bucketName":"real-bucket","Host":"s3.local","Tagging":{"TagSet":{"Tag":{"Key":"owner","Value":"evil"}}},"tagging":""}`},
		{`<Tagging><TagSet>`, false, `{"bucketName":"real-bucket","Host":"s3.local","Tagging":"(not recorded: not one well-formed XML document)","tagging":""}`},
		{``, true, `{"bucketName":"real-bucket","Host":"s3.local","Tagging":"(not recorded: over 1048576 bytes)","tagging":""}`},
		{``, false, `{"bucketName":"real-bucket","Host":"s3.local","tagging":""}`},
	} {
		got := string(appendRequestParameters(nil, r, op, []byte(tc.body), tc.tooLarge))
		if got != tc.want {
			t.Errorf("body %q (too large %v):\n got %s\nwant %s", tc.body, tc.tooLarge, got, tc.want)
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

// TestDocumentEvasionEndToEnd sends tagging documents that a real
// versitygw applies but that tried to slip past the record (a 65 KiB
// comment before the tags, an attribute named like the tag set): the
// record shows the tags the upstream applied. A body over the copy's
// limit is recorded as not recorded, not left out.
func TestDocumentEvasionEndToEnd(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("conf")}); err != nil {
		t.Fatal(err)
	}
	const tags = `<TagSet><Tag><Key>owner</Key><Value>evil</Value></Tag></TagSet>`
	for _, tc := range []struct{ name, body, want string }{
		{"65 KiB comment first", `<Tagging ` + s3ns + `><!--` + strings.Repeat("x", 65<<10) + `-->` + tags + `</Tagging>`, "evil"},
		{"attribute named like the tag set", `<Tagging ` + s3ns + ` TagSet="none">` + tags + `</Tagging>`, "evil"},
		{"over the limit", `<Tagging ` + s3ns + `><!--` + strings.Repeat("x", maxDocument) + `-->` + tags + `</Tagging>`, "(not recorded: over"},
	} {
		status := signedPut(t, r, r.p.URL()+"/conf?tagging", tc.body)
		evs := r.events(t)
		e := evs[len(evs)-1]
		rp, _ := json.Marshal(e["requestParameters"])
		if e["eventName"] != "PutBucketTagging" || !strings.Contains(string(rp), tc.want) {
			t.Errorf("%s (upstream answered %d): requestParameters %.300s, want %q in them", tc.name, status, rp, tc.want)
		}
	}
}

// signedPut sends a SigV4-signed PUT of body (with its Content-MD5, which
// S3 requires of configuration calls) and returns the status.
func signedPut(t *testing.T, r *rig, url, body string) int {
	t.Helper()
	req, err := http.NewRequest("PUT", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	md := md5.Sum([]byte(body))
	req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(md[:]))
	r.sign(t, req, []byte(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
