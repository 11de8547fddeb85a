package s3proxy

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestDecodeOperationTable(t *testing.T) {
	d := Decoder{VirtualHostDomain: "s3.local", AWSHosts: true}
	for _, tc := range []struct {
		method, target, host, copySource string
		name                             string
		data, readOnly                   bool
		bucket, key                      string
	}{
		{method: "GET", target: "/", name: "ListBuckets", readOnly: true},
		{method: "GET", target: "/?x-id=ListBuckets", name: "ListBuckets", readOnly: true},
		{method: "PUT", target: "/b", name: "CreateBucket", bucket: "b"},
		{method: "PUT", target: "/b/", name: "CreateBucket", bucket: "b"},
		{method: "DELETE", target: "/b", name: "DeleteBucket", bucket: "b"},
		{method: "HEAD", target: "/b", name: "HeadBucket", readOnly: true, bucket: "b"},
		{method: "GET", target: "/b", name: "ListObjects", data: true, readOnly: true, bucket: "b"},
		{method: "GET", target: "/b?list-type=2&prefix=a%2F", name: "ListObjects", data: true, readOnly: true, bucket: "b"},
		{method: "GET", target: "/b?versions", name: "ListObjectVersions", data: true, readOnly: true, bucket: "b"},
		{method: "GET", target: "/b?uploads", name: "ListMultipartUploads", data: true, readOnly: true, bucket: "b"},
		{method: "GET", target: "/b?acl", name: "GetBucketAcl", readOnly: true, bucket: "b"},
		{method: "PUT", target: "/b?acl", name: "PutBucketAcl", bucket: "b"},
		{method: "GET", target: "/b?policy", name: "GetBucketPolicy", readOnly: true, bucket: "b"},
		{method: "PUT", target: "/b?policy", name: "PutBucketPolicy", bucket: "b"},
		{method: "DELETE", target: "/b?policy", name: "DeleteBucketPolicy", bucket: "b"},
		{method: "GET", target: "/b?tagging", name: "GetBucketTagging", readOnly: true, bucket: "b"},
		{method: "PUT", target: "/b?tagging", name: "PutBucketTagging", bucket: "b"},
		{method: "DELETE", target: "/b?tagging", name: "DeleteBucketTagging", bucket: "b"},
		{method: "GET", target: "/b?versioning", name: "GetBucketVersioning", readOnly: true, bucket: "b"},
		{method: "PUT", target: "/b?versioning", name: "PutBucketVersioning", bucket: "b"},
		{method: "GET", target: "/b?location", name: "GetBucketLocation", readOnly: true, bucket: "b"},
		{method: "GET", target: "/b?cors", name: "GetBucketCors", readOnly: true, bucket: "b"},
		{method: "PUT", target: "/b?lifecycle", name: "PutBucketLifecycle", bucket: "b"},
		{method: "GET", target: "/b?encryption", name: "GetBucketEncryption", readOnly: true, bucket: "b"},
		{method: "PUT", target: "/b?object-lock", name: "PutObjectLockConfiguration", bucket: "b"},
		{method: "GET", target: "/b?object-lock", name: "GetObjectLockConfiguration", readOnly: true, bucket: "b"},
		{method: "GET", target: "/b?ownershipControls", name: "GetBucketOwnershipControls", readOnly: true, bucket: "b"},
		{method: "POST", target: "/b?delete", name: "DeleteObjects", data: true, bucket: "b"},
		{method: "GET", target: "/b/k", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/dir/a%20b.txt?x-id=GetObject", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "dir/a b.txt"},
		{method: "HEAD", target: "/b/k", name: "HeadObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k", name: "PutObject", data: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k", copySource: "/b/j", name: "CopyObject", data: true, bucket: "b", key: "k"},
		{method: "DELETE", target: "/b/k", name: "DeleteObject", data: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k?acl", name: "GetObjectAcl", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k?acl", name: "PutObjectAcl", data: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k?tagging", name: "GetObjectTagging", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k?tagging", name: "PutObjectTagging", data: true, bucket: "b", key: "k"},
		{method: "DELETE", target: "/b/k?tagging", name: "DeleteObjectTagging", data: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k?retention", name: "GetObjectRetention", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k?retention", name: "PutObjectRetention", data: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k?legal-hold", name: "GetObjectLegalHold", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k?legal-hold", name: "PutObjectLegalHold", data: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k?attributes", name: "GetObjectAttributes", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "POST", target: "/b/k?uploads", name: "CreateMultipartUpload", data: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k?partNumber=1&uploadId=u", name: "UploadPart", data: true, bucket: "b", key: "k"},
		{method: "PUT", target: "/b/k?partNumber=2&uploadId=u", copySource: "/b/j", name: "UploadPartCopy", data: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k?uploadId=u", name: "ListParts", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "POST", target: "/b/k?uploadId=u", name: "CompleteMultipartUpload", data: true, bucket: "b", key: "k"},
		{method: "DELETE", target: "/b/k?uploadId=u", name: "AbortMultipartUpload", data: true, bucket: "b", key: "k"},
		{method: "POST", target: "/b/k?restore", name: "RestoreObject", data: true, bucket: "b", key: "k"},
		{method: "POST", target: "/b/k?select&select-type=2", name: "SelectObjectContent", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k?unknown-subresource", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		// Virtual-hosted style.
		{method: "GET", target: "/", host: "photos.s3.local", name: "ListObjects", data: true, readOnly: true, bucket: "photos"},
		{method: "GET", target: "/?acl", host: "photos.s3.local:9000", name: "GetBucketAcl", readOnly: true, bucket: "photos"},
		{method: "PUT", target: "/a/b.jpg", host: "Photos.S3.Local", name: "PutObject", data: true, bucket: "photos", key: "a/b.jpg"},
		{method: "GET", target: "/", host: "s3.local", name: "ListBuckets", readOnly: true},
		{method: "GET", target: "/b/k", host: "other.example", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		// AWS S3's own host names (the upstream is AWS), whatever the
		// configured domain.
		{method: "GET", target: "/k", host: "photos.s3.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "photos", key: "k"},
		{method: "GET", target: "/k", host: "photos.s3.eu-west-1.amazonaws.com:443", name: "GetObject", data: true, readOnly: true, bucket: "photos", key: "k"},
		{method: "GET", target: "/", host: "my.photos.s3-us-west-2.amazonaws.com", name: "ListObjects", data: true, readOnly: true, bucket: "my.photos"},
		{method: "PUT", target: "/k", host: "logs.s3.corp.s3.dualstack.us-east-1.amazonaws.com", name: "PutObject", data: true, bucket: "logs.s3.corp", key: "k"},
		{method: "PUT", target: "/k", host: "b.s3-fips.us-gov-west-1.amazonaws.com", name: "PutObject", data: true, bucket: "b", key: "k"},
		{method: "GET", target: "/k", host: "b.s3-accelerate.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/k", host: "b.s3.cn-north-1.amazonaws.com.cn", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k", host: "s3.us-east-1.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/", host: "s3.amazonaws.com", name: "ListBuckets", readOnly: true},
		{method: "GET", target: "/b/k", host: "ap-111122223333.s3-accesspoint.us-east-1.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k", host: "s3.example.com", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/k", host: "mybucket--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "mybucket--use1-az4--x-s3", key: "k"},
		// PrivateLink interface endpoints: "bucket.vpce-<id>" is the endpoint.
		{method: "GET", target: "/b/k", host: "bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/k", host: "my.b.bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "my.b", key: "k"},
		{method: "GET", target: "/b/k", host: "vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
		{method: "GET", target: "/b/k", host: "accesspoint.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", name: "GetObject", data: true, readOnly: true, bucket: "b", key: "k"},
	} {
		host := tc.host
		if host == "" {
			host = "127.0.0.1:9000"
		}
		r := newRequest(t, tc.method, tc.target, host)
		if tc.copySource != "" {
			r.Header.Set("X-Amz-Copy-Source", tc.copySource)
		}
		op, err := d.Decode(r)
		if err != nil {
			t.Errorf("%s %s (Host %s): %v", tc.method, tc.target, host, err)
			continue
		}
		if op.Name != tc.name || op.Data != tc.data || op.ReadOnly != tc.readOnly || op.Bucket != tc.bucket || op.Key != tc.key {
			t.Errorf("%s %s (Host %s) = %s data=%v readOnly=%v bucket=%q key=%q, want %s data=%v readOnly=%v bucket=%q key=%q",
				tc.method, tc.target, host, op.Name, op.Data, op.ReadOnly, op.Bucket, op.Key,
				tc.name, tc.data, tc.readOnly, tc.bucket, tc.key)
		}
	}
}

// TestAWSHostsOnlyForAnAWSUpstream: a path-style upstream (versitygw,
// MinIO) serves "DELETE /prod/important.db" on bucket prod whatever the
// Host, so an AWS host name in front of it must not rename the bucket in
// the record; the proxy reads AWS host names only when its upstream is
// AWS.
func TestAWSHostsOnlyForAnAWSUpstream(t *testing.T) {
	for _, tc := range []struct {
		upstream string
		bucket   string
	}{{"http://127.0.0.1:7070", "prod"}, {"https://minio.internal", "prod"}, {"https://s3.us-east-1.amazonaws.com", "innocent"}} {
		p, err := New(Config{Upstream: tc.upstream})
		if err != nil {
			t.Fatal(err)
		}
		r := newRequest(t, "DELETE", "/prod/important.db", "innocent.s3.amazonaws.com")
		op, err := p.decoder.Decode(r)
		if err != nil || op.Bucket != tc.bucket {
			t.Errorf("upstream %s: bucket %q (%v), want %q", tc.upstream, op.Bucket, err, tc.bucket)
		}
	}
}

func TestDecodeRefusesWhatIsNotS3(t *testing.T) {
	d := Decoder{}
	for _, tc := range []struct{ method, target, want string }{
		{"PATCH", "/b/k", `method "PATCH" is not an S3 method`},
		{"OPTIONS", "/b/k", `method "OPTIONS"`},
		{"GET", "//k", "empty bucket name"},
		{"GET", "/b/k?a=%zz", "query"},
		{"DELETE", "/b/k#x?tagging", "fragment"},
		{"PUT", "/b?acl&policy", "subresource ?policy does not go with PutBucketAcl"},
		{"DELETE", "/b/k?tagging&uploadId=u", "subresource ?uploadId does not go with DeleteObjectTagging"},
		{"GET", "/b?delete", "subresource ?delete does not go with ListObjects"},
		{"GET", "/b/k?acl#x", "fragment"},
		{"DELETE", "/b/k?versionId=a&versionId=b", `query parameter "versionId" is given 2 times`},
		{"GET", "/b?prefix=public/&prefix=secret/", `query parameter "prefix" is given 2 times`},
		{"PUT", "/b/k?tagging&tagging", `query parameter "tagging" is given 2 times`},
		{"POST", "/", "no S3 operation is POST on a service"},
		{"DELETE", "/", "no S3 operation is DELETE on a service"},
	} {
		_, err := d.Decode(newRequest(t, tc.method, tc.target, "h"))
		if !errors.Is(err, ErrNotS3) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: err %v, want ErrNotS3 saying %q", tc.method, tc.target, err, tc.want)
		}
	}
}

// TestEveryOperationIsReachable checks that no rule of the table is
// shadowed by an earlier, less specific one.
func TestEveryOperationIsReachable(t *testing.T) {
	seen := map[string]bool{}
	for _, ru := range opTable {
		if seen[ru.name] && ru.name != "ListObjects" {
			t.Errorf("operation %s appears twice in the table", ru.name)
		}
		seen[ru.name] = true
		target := "/"
		switch ru.level {
		case Bucket:
			target = "/b"
		case Object:
			target = "/b/k"
		}
		q := []string{}
		if ru.sub != "" {
			q = append(q, ru.sub+"=1")
		}
		if ru.also != "" {
			q = append(q, ru.also+"=1")
		}
		if len(q) > 0 {
			target += "?" + strings.Join(q, "&")
		}
		r := newRequest(t, ru.method, target, "h")
		if ru.copy == 1 {
			r.Header.Set("X-Amz-Copy-Source", "/b/j")
		}
		op, err := Decoder{}.Decode(r)
		if err != nil || op.Name != ru.name {
			t.Errorf("%s %s: got %q (%v), want %s", ru.method, target, op.Name, err, ru.name)
		}
		if ru.level == Object && !ru.data {
			t.Errorf("%s: object-level operations are data events in CloudTrail", ru.name)
		}
		if ru.readOnly != (ru.method == "GET" || ru.method == "HEAD" || ru.name == "SelectObjectContent") {
			t.Errorf("%s: readOnly %v does not follow its method %s", ru.name, ru.readOnly, ru.method)
		}
	}
}

func newRequest(t testing.TB, method, target, host string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")))
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}
