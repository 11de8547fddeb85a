package s3proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

// TestSDKCallsAreRecorded makes real SDK calls through the proxy to a
// real versitygw (which checks every signature, so each success proves the
// request reached it intact) and checks the events field by field.
func TestSDKCallsAreRecorded(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	bucket := "audited"
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s through the proxy: %v", what, err)
		}
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	must("CreateBucket", err)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::audited/*"}]}`
	_, err = c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)})
	must("PutBucketPolicy", err)
	body := make([]byte, 1<<20+123)
	_, _ = rand.Read(body)
	var missRequestID string
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/big file.bin"), Body: bytes.NewReader(body)})
	must("PutObject", err)
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/big file.bin")})
	must("GetObject", err)
	back, err := io.ReadAll(got.Body)
	got.Body.Close()
	must("read GetObject's body", err)
	if !bytes.Equal(back, body) {
		t.Fatalf("GetObject through the proxy returned %d bytes that differ from the %d put", len(back), len(body))
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/big file.bin")})
	must("HeadObject", err)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy"), CopySource: aws.String(bucket + "/dir/big file.bin")})
	must("CopyObject", err)
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("dir/")})
	must("ListObjectsV2", err)
	_, err = c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String(bucket)})
	must("GetBucketAcl", err)
	_, err = c.ListBuckets(ctx, &s3.ListBucketsInput{})
	must("ListBuckets", err)

	// Multipart upload.
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp")})
	must("CreateMultipartUpload", err)
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: mp.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(body[:5<<20%len(body)])})
	must("UploadPart", err)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("mp"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
	must("CompleteMultipartUpload", err)

	_, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("copy")}, {Key: aws.String("mp")}}}})
	must("DeleteObjects", err)

	// An error from the upstream, with its request ID.
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("missing")})
	var nsk *types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Fatalf("GetObject of a missing key through the proxy: %v, want NoSuchKey", err)
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		missRequestID = re.Response.Header.Get("X-Amz-Request-Id")
	}

	evs := byName(r.events(t))
	for _, want := range []struct {
		name     string
		data     bool
		readOnly bool
	}{
		{"CreateBucket", false, false}, {"PutBucketPolicy", false, false}, {"PutObject", true, false},
		{"GetObject", true, true}, {"HeadObject", true, true}, {"CopyObject", true, false}, {"ListObjects", true, true},
		{"GetBucketAcl", false, true}, {"ListBuckets", false, true}, {"CreateMultipartUpload", true, false},
		{"UploadPart", true, false}, {"CompleteMultipartUpload", true, false}, {"DeleteObjects", true, false},
	} {
		e, ok := evs[want.name]
		if !ok {
			t.Errorf("no %s event; have %v", want.name, keys(evs))
			continue
		}
		category := "Management"
		if want.data {
			category = "Data"
		}
		if e["eventSource"] != "s3.amazonaws.com" || e["eventCategory"] != category || e["managementEvent"] != !want.data ||
			e["readOnly"] != want.readOnly || e["awsRegion"] != "us-east-1" || e["recipientAccountId"] != testAccount {
			t.Errorf("%s: source %v category %v management %v readOnly %v region %v recipient %v", want.name, e["eventSource"],
				e["eventCategory"], e["managementEvent"], e["readOnly"], e["awsRegion"], e["recipientAccountId"])
		}
		if path(e, "userIdentity.type") != "IAMUser" || path(e, "userIdentity.userName") != "alice" ||
			path(e, "userIdentity.accessKeyId") != r.s3.AccessKeyID || path(e, "userIdentity.accountId") != testAccount {
			t.Errorf("%s: userIdentity %v", want.name, e["userIdentity"])
		}
		if path(e, "additionalEventData.SignatureVersion") != "SigV4" || path(e, "additionalEventData.AuthenticationMethod") != "AuthHeader" {
			t.Errorf("%s: additionalEventData %v", want.name, e["additionalEventData"])
		}
		if e["sourceIPAddress"] != "127.0.0.1" || !strings.HasPrefix(e["userAgent"].(string), "[aws-sdk-go-v2/") {
			t.Errorf("%s: sourceIPAddress %v userAgent %v", want.name, e["sourceIPAddress"], e["userAgent"])
		}
		if e["requestID"] == "" || e["requestID"] == nil {
			t.Errorf("%s: no requestID", want.name)
		}
	}

	put := evs["PutObject"]
	if n := path(put, "additionalEventData.bytesTransferredIn"); n != float64(len(body)) {
		// aws-chunked uploads carry framing; the count is what crossed the wire.
		if f, ok := n.(float64); !ok || f < float64(len(body)) {
			t.Errorf("PutObject bytesTransferredIn %v, want at least %d", n, len(body))
		}
	}
	if path(put, "requestParameters.bucketName") != bucket || path(put, "requestParameters.key") != "dir/big file.bin" ||
		path(put, "requestParameters.Host") != r.p.Addr() {
		t.Errorf("PutObject requestParameters %v", put["requestParameters"])
	}
	res := put["resources"].([]any)
	if len(res) != 2 || path(res[0].(map[string]any), "ARN") != "arn:aws:s3:::audited/dir/big file.bin" ||
		path(res[0].(map[string]any), "type") != "AWS::S3::Object" || path(res[1].(map[string]any), "ARN") != "arn:aws:s3:::audited" ||
		path(res[1].(map[string]any), "accountId") != testAccount {
		t.Errorf("PutObject resources %v", res)
	}
	var gets []map[string]any
	for _, e := range r.events(t) {
		if e["eventName"] == "GetObject" {
			gets = append(gets, e)
		}
	}
	if len(gets) != 2 || path(gets[0], "additionalEventData.bytesTransferredOut") != float64(len(body)) || gets[0]["errorCode"] != nil {
		t.Errorf("GetObject events %v", gets)
	} else if gets[1]["errorCode"] != "NoSuchKey" || gets[1]["errorMessage"] == "" || (missRequestID != "" && gets[1]["requestID"] != missRequestID) {
		t.Errorf("failed GetObject: errorCode %v errorMessage %v requestID %v (response's %s)", gets[1]["errorCode"], gets[1]["errorMessage"], gets[1]["requestID"], missRequestID)
	}
	// responseElements: null for reads; what versitygw answered for
	// the upload it began.
	if cmu := evs["CreateMultipartUpload"]; path(cmu, "responseElements.uploadId") != aws.ToString(mp.UploadId) ||
		path(cmu, "responseElements.bucket") != bucket || path(cmu, "responseElements.key") != "mp" {
		t.Errorf("CreateMultipartUpload responseElements %v, want bucket, key and uploadId %s", cmu["responseElements"], aws.ToString(mp.UploadId))
	}
	for _, name := range []string{"GetObject", "HeadObject", "ListObjects", "GetBucketAcl", "ListBuckets"} {
		if re := evs[name]["responseElements"]; re != nil {
			t.Errorf("%s responseElements %v, want null", name, re)
		}
	}
	list := evs["ListObjects"]
	if path(list, "requestParameters.list-type") != "2" || path(list, "requestParameters.prefix") != "dir/" {
		t.Errorf("ListObjects requestParameters %v", list["requestParameters"])
	}
	if res := list["resources"].([]any); path(res[0].(map[string]any), "ARNPrefix") != "arn:aws:s3:::audited/dir/" {
		t.Errorf("ListObjects resources %v", res)
	}
	// The SDK's x-id routing hint is recorded, as S3 records it; a
	// ListBuckets without any parameter has null (TestEventsMatchRealS3Events).
	if lb := evs["ListBuckets"]; path(lb, "requestParameters.x-id") != "ListBuckets" || lb["resources"] != nil {
		t.Errorf("ListBuckets requestParameters %v resources %v, want only x-id and no resources", lb["requestParameters"], lb["resources"])
	}
	// DeleteObjects names the whole bucket as an object prefix: S3 does
	// not record which keys it deleted.
	if del := evs["DeleteObjects"]; path(del, "requestParameters.delete") != "" ||
		len(del["resources"].([]any)) != 2 || path(del["resources"].([]any)[0].(map[string]any), "ARNPrefix") != "arn:aws:s3:::audited/" {
		t.Errorf("DeleteObjects requestParameters %v resources %v", del["requestParameters"], del["resources"])
	}
	if pol := evs["PutBucketPolicy"]; path(pol, "requestParameters.policy") != "" ||
		path(pol, "requestParameters.bucketPolicy.Version") != "2012-10-17" || path(pol, "requestParameters.bucketPolicy.Statement") == nil {
		t.Errorf("PutBucketPolicy requestParameters %v", pol["requestParameters"])
	}
	if got := r.counter(t, "cairn_s3proxy_requests_total", map[string]string{"outcome": "recorded"}); got != float64(len(r.events(t))) {
		t.Errorf("requests_total{outcome=recorded} = %v, want %d", got, len(r.events(t)))
	}
	if got := r.counter(t, "cairn_s3proxy_bytes_total", map[string]string{"direction": "out"}); got < float64(len(body)) {
		t.Errorf("bytes_total{direction=out} = %v, want at least %d", got, len(body))
	}
}

// TestPresignedAndAnonymousCalls: a presigned URL is recorded with
// AuthenticationMethod QueryString and no signature in the parameters; an
// unsigned request gets CloudTrail's anonymous identity.
func TestPresignedAndAnonymousCalls(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("pre")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pre"), Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	ps, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pre"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ps.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("presigned GET through the proxy: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(r.p.URL() + "/pre/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	evs := r.events(t)
	pre, anon := evs[len(evs)-2], evs[len(evs)-1]
	if path(pre, "additionalEventData.AuthenticationMethod") != "QueryString" || path(pre, "additionalEventData.SignatureVersion") != "SigV4" ||
		path(pre, "userIdentity.userName") != "alice" {
		t.Errorf("presigned GetObject: %v %v", pre["additionalEventData"], pre["userIdentity"])
	}
	rp := pre["requestParameters"].(map[string]any)
	for _, hidden := range []string{"X-Amz-Signature", "X-Amz-Credential"} {
		if _, ok := rp[hidden]; ok {
			t.Errorf("requestParameters carry %s: %v", hidden, rp)
		}
	}
	if _, ok := rp["X-Amz-Date"]; !ok {
		t.Errorf("requestParameters lack X-Amz-Date: %v", rp)
	}
	id, ok := anon["userIdentity"].(map[string]any)
	if !ok || id["type"] != "AWSAccount" || id["accountId"] != "anonymous" || id["principalId"] != "" || len(id) != 3 {
		t.Errorf("anonymous userIdentity %v", anon["userIdentity"])
	}
	if aed := anon["additionalEventData"].(map[string]any); aed["SignatureVersion"] != nil || aed["AuthenticationMethod"] != nil {
		t.Errorf("anonymous additionalEventData %v", aed)
	}
	if fmt.Sprint(anon["errorCode"]) != fmt.Sprint(statusToAnonErr(resp.StatusCode)) {
		t.Errorf("anonymous GetObject got %d but errorCode %v", resp.StatusCode, anon["errorCode"])
	}
}

func statusToAnonErr(status int) any {
	if status == 200 {
		return nil
	}
	return "AccessDenied"
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestVirtualHostedStyle: with virtual_host_domain, "<bucket>.<domain>"
// Host headers name the bucket, as for a versitygw serving that domain;
// the SDK signs the virtual host, which reaches versitygw intact.
func TestVirtualHostedStyle(t *testing.T) {
	const domain = "s3.cairn.test"
	r := newRig(t, rigOptions{keepAlive: true, virtualDomain: domain, configure: func(c *Config) { c.VirtualHostDomain = domain }})
	proxyAddr := r.p.Addr()
	_, port, _ := net.SplitHostPort(proxyAddr)
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		// Every *.s3.cairn.test name is the proxy.
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, proxyAddr)
		}
	})
	c := s3.New(s3.Options{Region: s3test.Region, BaseEndpoint: aws.String("http://" + domain + ":" + port),
		Credentials: credentials.NewStaticCredentialsProvider(r.s3.AccessKeyID, r.s3.SecretAccessKey, ""),
		Retryer:     aws.NopRetryer{}, HTTPClient: hc})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vhost")}); err != nil {
		t.Fatalf("CreateBucket, virtual-hosted: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b.txt"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("PutObject, virtual-hosted: %v", err)
	}
	evs := byName(r.events(t))
	put := evs["PutObject"]
	if path(put, "requestParameters.bucketName") != "vhost" || path(put, "requestParameters.key") != "a/b.txt" ||
		path(put, "requestParameters.Host") != "vhost."+domain+":"+port {
		t.Errorf("PutObject requestParameters %v", put["requestParameters"])
	}
	if cb := evs["CreateBucket"]; path(cb, "requestParameters.bucketName") != "vhost" || cb["eventCategory"] != "Management" {
		t.Errorf("CreateBucket %v %v", cb["requestParameters"], cb["eventCategory"])
	}
}

// TestPresignedSecretsStayOutOfRecords: the credential parts of presigned
// URLs are kept out of requestParameters whatever their case. SigV2
// presigned URLs of temporary credentials carry the session token as
// "x-amz-security-token" (lower case); the upstream refuses these
// made-up signatures, but the call is recorded all the same, and its
// record must not hold them.
func TestPresignedSecretsStayOutOfRecords(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("pre")}); err != nil {
		t.Fatal(err)
	}
	const token, sig = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN", "SECRETSIGNATUREbase64%3D"
	for _, q := range []string{
		"AWSAccessKeyId=" + s3test.AccessKeyID + "&Expires=4102444800&Signature=" + sig + "&x-amz-security-token=" + token,
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&x-amz-credential=" + s3test.AccessKeyID + "%2F20260101%2Fus-east-1%2Fs3%2Faws4_request" +
			"&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&x-amz-signature=" + sig + "&X-AMZ-SECURITY-TOKEN=" + token,
	} {
		resp, err := http.Get(r.p.URL() + "/pre/k?" + q)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	evs := r.events(t)
	for _, ev := range evs[len(evs)-2:] {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(raw); strings.Contains(s, token) || strings.Contains(s, "SECRETSIGNATURE") {
			t.Errorf("the record of a presigned %v holds its session token or signature: %s", ev["eventName"], ev["requestParameters"])
		}
		if path(ev, "requestParameters.X-Amz-Date") == nil && path(ev, "requestParameters.Expires") == nil {
			t.Errorf("requestParameters lost the presigned URL's non-secret parameters: %v", ev["requestParameters"])
		}
	}
}

// TestObjectLockConfigurationEventNames: the bucket's Object Lock
// configuration calls are recorded under CloudTrail's names, which are
// the API's (PutObjectLockConfiguration, GetObjectLockConfiguration),
// not the IAM action's (s3:PutBucketObjectLockConfiguration), as
// management events.
func TestObjectLockConfigurationEventNames(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locked"), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String("locked"),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}})
	if err != nil {
		t.Fatalf("PutObjectLockConfiguration through the proxy: %v", err)
	}
	if _, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String("locked")}); err != nil {
		t.Fatalf("GetObjectLockConfiguration through the proxy: %v", err)
	}
	evs := r.events(t)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, want := range []struct {
		name     string
		readOnly bool
	}{{"PutObjectLockConfiguration", false}, {"GetObjectLockConfiguration", true}} {
		ev := evs[i+1]
		if ev["eventName"] != want.name || ev["readOnly"] != want.readOnly || ev["managementEvent"] != true || ev["errorCode"] != nil {
			t.Errorf("event %d: %v readOnly=%v managementEvent=%v errorCode=%v, want %s readOnly=%v, a management event",
				i+1, ev["eventName"], ev["readOnly"], ev["managementEvent"], ev["errorCode"], want.name, want.readOnly)
		}
	}
}

// TestRawFragmentInTargetIsRefused: net/http's server takes a raw '#' in
// the request target into the path (and the query after it), while the
// request the proxy builds for the upstream is cut at the '#'. A caller
// could sign "DELETE /frag/k" and send "DELETE /frag/k#x?tagging": the
// proxy would record DeleteObjectTagging of "k#x" while the upstream
// deletes the object "k". Such requests are refused, never forwarded.
func TestRawFragmentInTargetIsRefused(t *testing.T) {
	r := newRig(t, rigOptions{count: true})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("frag")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("frag"), Key: aws.String("k"), Body: strings.NewReader("keep me")}); err != nil {
		t.Fatal(err)
	}
	before, hits := len(r.events(t)), r.hits.Load()

	// Signed for what the upstream would see: DELETE /frag/k.
	req, err := http.NewRequest("DELETE", r.p.URL()+"/frag/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.sign(t, req, nil)
	var raw strings.Builder
	raw.WriteString("DELETE /frag/k#x?tagging HTTP/1.1\r\nHost: " + req.Host + "\r\n")
	for k, vv := range req.Header {
		for _, v := range vv {
			raw.WriteString(k + ": " + v + "\r\n")
		}
	}
	raw.WriteString("Connection: close\r\n\r\n")
	conn, err := net.Dial("tcp", r.p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(raw.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("DELETE /frag/k#x?tagging: %s %s, want 400, refused", resp.Status, b)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("frag"), Key: aws.String("k")}); err != nil {
		t.Errorf("the object is gone after a request the proxy decoded as DeleteObjectTagging: %v", err)
	}
	evs := r.events(t)[before:]
	if len(evs) != 1 || evs[0]["eventName"] != "HeadObject" {
		for _, ev := range evs {
			t.Errorf("recorded %v of %v", ev["eventName"], path(ev, "requestParameters.key"))
		}
	}
	if got := r.hits.Load() - hits; got != 1 {
		t.Errorf("the upstream saw %d requests, want 1 (the HeadObject)", got)
	}
}

// TestAmbiguousSubresourcesAreRefused: "PUT /b?acl&policy" matched the
// PutBucketAcl rule first while versitygw stored the body as the bucket's
// policy: a policy change recorded as an ACL change. A request with two
// subresources names no single operation; it is refused, not forwarded.
func TestAmbiguousSubresourcesAreRefused(t *testing.T) {
	r := newRig(t, rigOptions{count: true})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("amb")}); err != nil {
		t.Fatal(err)
	}
	before, hits := len(r.events(t)), r.hits.Load()
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amb/*"}]}`
	req, err := http.NewRequest("PUT", r.p.URL()+"/amb?acl&policy", strings.NewReader(policy))
	if err != nil {
		t.Fatal(err)
	}
	r.sign(t, req, []byte(policy))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT /amb?acl&policy: %s %s, want 400, refused", resp.Status, b)
	}
	if r.hits.Load() != hits {
		t.Errorf("the ambiguous request reached the upstream")
	}
	for _, ev := range r.events(t)[before:] {
		t.Errorf("recorded %v", ev["eventName"])
	}
	if gp, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("amb")}); err == nil && gp.Policy != nil && *gp.Policy != "" {
		t.Errorf("the bucket got the policy %s", *gp.Policy)
	}
}
