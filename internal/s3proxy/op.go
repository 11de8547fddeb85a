package s3proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Level is how much of the S3 namespace a request addresses; it picks the
// part of the operation table that applies.
type Level uint8

const (
	// Service is the endpoint itself (ListBuckets).
	Service Level = iota
	// Bucket is a bucket without a key.
	Bucket
	// Object is a key in a bucket.
	Object
)

func (l Level) String() string {
	switch l {
	case Service:
		return "service"
	case Bucket:
		return "bucket"
	case Object:
		return "object"
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Operation is what an S3 request does, in CloudTrail's terms.
type Operation struct {
	// Name is the eventName CloudTrail records, which is not always the
	// API's name: ListObjectsV2 is recorded as ListObjects (with
	// "list-type": "2" among the parameters), PutBucketLifecycleConfiguration
	// as PutBucketLifecycle, and so on; some keep the API's name where
	// the IAM action differs (GetObjectLockConfiguration, not
	// GetBucketObjectLockConfiguration).
	Name string
	// Data says CloudTrail records the call as a data event (object-level
	// APIs, including the listings of a bucket's objects); otherwise it is
	// a management event, which the event history keeps.
	Data     bool
	ReadOnly bool
	Level    Level
	Bucket   string
	// Key is the object key, unescaped.
	Key string
	// Query is the request's query, parsed.
	Query url.Values
}

// rule is one line of the operation table: the first rule whose method,
// level, subresource and copy-source condition match names the operation.
type rule struct {
	method string
	level  Level
	// sub is a query parameter that must be present ("" matches any).
	sub string
	// also is a second query parameter that must be present.
	also string
	// copy: 1 requires an x-amz-copy-source header, -1 forbids it, 0 ignores it.
	copy     int8
	name     string
	data     bool
	readOnly bool
}

// opTable is CloudTrail's naming and classification of S3 requests. More
// specific rules come first. Unknown subresources fall through to the
// plain operation, the way S3 ignores query parameters it does not know.
var opTable = []rule{
	{method: "GET", level: Service, name: "ListBuckets", readOnly: true},

	// Bucket level, management events unless marked data.
	{method: "GET", level: Bucket, sub: "acl", name: "GetBucketAcl", readOnly: true},
	{method: "GET", level: Bucket, sub: "accelerate", name: "GetBucketAccelerateConfiguration", readOnly: true},
	{method: "GET", level: Bucket, sub: "analytics", name: "GetBucketAnalyticsConfiguration", readOnly: true},
	{method: "GET", level: Bucket, sub: "cors", name: "GetBucketCors", readOnly: true},
	{method: "GET", level: Bucket, sub: "encryption", name: "GetBucketEncryption", readOnly: true},
	{method: "GET", level: Bucket, sub: "intelligent-tiering", name: "GetBucketIntelligentTieringConfiguration", readOnly: true},
	{method: "GET", level: Bucket, sub: "inventory", name: "GetBucketInventoryConfiguration", readOnly: true},
	{method: "GET", level: Bucket, sub: "lifecycle", name: "GetBucketLifecycle", readOnly: true},
	{method: "GET", level: Bucket, sub: "location", name: "GetBucketLocation", readOnly: true},
	{method: "GET", level: Bucket, sub: "logging", name: "GetBucketLogging", readOnly: true},
	{method: "GET", level: Bucket, sub: "metrics", name: "GetBucketMetricsConfiguration", readOnly: true},
	{method: "GET", level: Bucket, sub: "notification", name: "GetBucketNotification", readOnly: true},
	{method: "GET", level: Bucket, sub: "object-lock", name: "GetObjectLockConfiguration", readOnly: true},
	{method: "GET", level: Bucket, sub: "ownershipControls", name: "GetBucketOwnershipControls", readOnly: true},
	{method: "GET", level: Bucket, sub: "policy", name: "GetBucketPolicy", readOnly: true},
	{method: "GET", level: Bucket, sub: "policyStatus", name: "GetBucketPolicyStatus", readOnly: true},
	{method: "GET", level: Bucket, sub: "publicAccessBlock", name: "GetBucketPublicAccessBlock", readOnly: true},
	{method: "GET", level: Bucket, sub: "replication", name: "GetBucketReplication", readOnly: true},
	{method: "GET", level: Bucket, sub: "requestPayment", name: "GetBucketRequestPayment", readOnly: true},
	{method: "GET", level: Bucket, sub: "tagging", name: "GetBucketTagging", readOnly: true},
	{method: "GET", level: Bucket, sub: "versioning", name: "GetBucketVersioning", readOnly: true},
	{method: "GET", level: Bucket, sub: "website", name: "GetBucketWebsite", readOnly: true},
	{method: "GET", level: Bucket, sub: "uploads", name: "ListMultipartUploads", data: true, readOnly: true},
	{method: "GET", level: Bucket, sub: "versions", name: "ListObjectVersions", data: true, readOnly: true},
	{method: "GET", level: Bucket, name: "ListObjects", data: true, readOnly: true}, // V1 and V2 (list-type=2) alike
	{method: "HEAD", level: Bucket, name: "HeadBucket", readOnly: true},

	{method: "PUT", level: Bucket, sub: "acl", name: "PutBucketAcl"},
	{method: "PUT", level: Bucket, sub: "accelerate", name: "PutBucketAccelerateConfiguration"},
	{method: "PUT", level: Bucket, sub: "analytics", name: "PutBucketAnalyticsConfiguration"},
	{method: "PUT", level: Bucket, sub: "cors", name: "PutBucketCors"},
	{method: "PUT", level: Bucket, sub: "encryption", name: "PutBucketEncryption"},
	{method: "PUT", level: Bucket, sub: "intelligent-tiering", name: "PutBucketIntelligentTieringConfiguration"},
	{method: "PUT", level: Bucket, sub: "inventory", name: "PutBucketInventoryConfiguration"},
	{method: "PUT", level: Bucket, sub: "lifecycle", name: "PutBucketLifecycle"},
	{method: "PUT", level: Bucket, sub: "logging", name: "PutBucketLogging"},
	{method: "PUT", level: Bucket, sub: "metrics", name: "PutBucketMetricsConfiguration"},
	{method: "PUT", level: Bucket, sub: "notification", name: "PutBucketNotification"},
	{method: "PUT", level: Bucket, sub: "object-lock", name: "PutObjectLockConfiguration"},
	{method: "PUT", level: Bucket, sub: "ownershipControls", name: "PutBucketOwnershipControls"},
	{method: "PUT", level: Bucket, sub: "policy", name: "PutBucketPolicy"},
	{method: "PUT", level: Bucket, sub: "publicAccessBlock", name: "PutBucketPublicAccessBlock"},
	{method: "PUT", level: Bucket, sub: "replication", name: "PutBucketReplication"},
	{method: "PUT", level: Bucket, sub: "requestPayment", name: "PutBucketRequestPayment"},
	{method: "PUT", level: Bucket, sub: "tagging", name: "PutBucketTagging"},
	{method: "PUT", level: Bucket, sub: "versioning", name: "PutBucketVersioning"},
	{method: "PUT", level: Bucket, sub: "website", name: "PutBucketWebsite"},
	{method: "PUT", level: Bucket, name: "CreateBucket"},

	{method: "DELETE", level: Bucket, sub: "analytics", name: "DeleteBucketAnalyticsConfiguration"},
	{method: "DELETE", level: Bucket, sub: "cors", name: "DeleteBucketCors"},
	{method: "DELETE", level: Bucket, sub: "encryption", name: "DeleteBucketEncryption"},
	{method: "DELETE", level: Bucket, sub: "intelligent-tiering", name: "DeleteBucketIntelligentTieringConfiguration"},
	{method: "DELETE", level: Bucket, sub: "inventory", name: "DeleteBucketInventoryConfiguration"},
	{method: "DELETE", level: Bucket, sub: "lifecycle", name: "DeleteBucketLifecycle"},
	{method: "DELETE", level: Bucket, sub: "metrics", name: "DeleteBucketMetricsConfiguration"},
	{method: "DELETE", level: Bucket, sub: "ownershipControls", name: "DeleteBucketOwnershipControls"},
	{method: "DELETE", level: Bucket, sub: "policy", name: "DeleteBucketPolicy"},
	{method: "DELETE", level: Bucket, sub: "publicAccessBlock", name: "DeleteBucketPublicAccessBlock"},
	{method: "DELETE", level: Bucket, sub: "replication", name: "DeleteBucketReplication"},
	{method: "DELETE", level: Bucket, sub: "tagging", name: "DeleteBucketTagging"},
	{method: "DELETE", level: Bucket, sub: "website", name: "DeleteBucketWebsite"},
	{method: "DELETE", level: Bucket, name: "DeleteBucket"},

	{method: "POST", level: Bucket, sub: "delete", name: "DeleteObjects", data: true},
	{method: "POST", level: Bucket, name: "PostObject", data: true}, // browser form upload

	// Object level: all data events.
	{method: "GET", level: Object, sub: "acl", name: "GetObjectAcl", data: true, readOnly: true},
	{method: "GET", level: Object, sub: "tagging", name: "GetObjectTagging", data: true, readOnly: true},
	{method: "GET", level: Object, sub: "retention", name: "GetObjectRetention", data: true, readOnly: true},
	{method: "GET", level: Object, sub: "legal-hold", name: "GetObjectLegalHold", data: true, readOnly: true},
	{method: "GET", level: Object, sub: "attributes", name: "GetObjectAttributes", data: true, readOnly: true},
	{method: "GET", level: Object, sub: "torrent", name: "GetObjectTorrent", data: true, readOnly: true},
	{method: "GET", level: Object, sub: "uploadId", name: "ListParts", data: true, readOnly: true},
	{method: "GET", level: Object, name: "GetObject", data: true, readOnly: true},
	{method: "HEAD", level: Object, name: "HeadObject", data: true, readOnly: true},

	{method: "PUT", level: Object, sub: "acl", name: "PutObjectAcl", data: true},
	{method: "PUT", level: Object, sub: "tagging", name: "PutObjectTagging", data: true},
	{method: "PUT", level: Object, sub: "retention", name: "PutObjectRetention", data: true},
	{method: "PUT", level: Object, sub: "legal-hold", name: "PutObjectLegalHold", data: true},
	{method: "PUT", level: Object, sub: "uploadId", also: "partNumber", copy: 1, name: "UploadPartCopy", data: true},
	{method: "PUT", level: Object, sub: "uploadId", also: "partNumber", name: "UploadPart", data: true},
	{method: "PUT", level: Object, copy: 1, name: "CopyObject", data: true},
	{method: "PUT", level: Object, name: "PutObject", data: true},

	{method: "DELETE", level: Object, sub: "tagging", name: "DeleteObjectTagging", data: true},
	{method: "DELETE", level: Object, sub: "uploadId", name: "AbortMultipartUpload", data: true},
	{method: "DELETE", level: Object, name: "DeleteObject", data: true},

	{method: "POST", level: Object, sub: "uploads", name: "CreateMultipartUpload", data: true},
	{method: "POST", level: Object, sub: "uploadId", name: "CompleteMultipartUpload", data: true},
	{method: "POST", level: Object, sub: "restore", name: "RestoreObject", data: true},
	{method: "POST", level: Object, sub: "select", name: "SelectObjectContent", data: true, readOnly: true},
}

// levelSubs are the subresources of each level's operations (any method):
// a request carrying one of them besides those of its operation is
// ambiguous.
var levelSubs = func() map[Level][]string {
	m := map[Level][]string{}
	seen := map[Level]map[string]bool{}
	for _, ru := range opTable {
		if ru.sub == "" || seen[ru.level][ru.sub] {
			continue
		}
		if seen[ru.level] == nil {
			seen[ru.level] = map[string]bool{}
		}
		seen[ru.level][ru.sub] = true
		m[ru.level] = append(m[ru.level], ru.sub)
	}
	return m
}()

// ErrNotS3 marks requests that are not S3 API calls (a method S3 does not
// have, a target that is not a path, a malformed query): the proxy
// refuses them rather than forward what it cannot name.
var ErrNotS3 = errors.New("not an S3 request")

// Decoder turns requests into operations.
type Decoder struct {
	// VirtualHostDomain, when set, makes "<bucket>.<domain>" Host headers
	// name the bucket (virtual-hosted-style addressing); other hosts are
	// path-style.
	VirtualHostDomain string
	// AWSHosts reads AWS S3's own virtual-hosted host names as such (see
	// awsHostBucket). Only for an upstream that is AWS: a path-style
	// upstream (versitygw, MinIO) serves "DELETE /a/k" with any Host, so a
	// client could otherwise have a call on bucket a recorded against
	// the bucket its Host names.
	AWSHosts bool
}

// Decode names the S3 operation of a request from its method, Host, path,
// query and copy-source header.
func (d Decoder) Decode(r *http.Request) (Operation, error) {
	var op Operation
	switch r.Method {
	case "GET", "HEAD", "PUT", "POST", "DELETE":
	default:
		return op, fmt.Errorf("%w: method %q is not an S3 method", ErrNotS3, r.Method)
	}
	if r.URL == nil {
		return op, fmt.Errorf("%w: no request target", ErrNotS3)
	}
	// A request target has no fragment (RFC 9112 §3.2), but net/http's
	// server takes a raw '#' into the path or query, while the request
	// forwarded upstream would be cut at it: the upstream would act on
	// another key or subresource than the one decoded (and signed for
	// it), so the record would lie. Refuse it.
	if strings.ContainsRune(r.RequestURI, '#') || strings.ContainsRune(r.URL.RawQuery, '#') || r.URL.Fragment != "" {
		return op, fmt.Errorf("%w: request target has a raw '#' (a fragment)", ErrNotS3)
	}
	rawPath := r.URL.EscapedPath()
	if !strings.HasPrefix(rawPath, "/") {
		return op, fmt.Errorf("%w: request target %q is not an absolute path", ErrNotS3, rawPath)
	}
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return op, fmt.Errorf("%w: path: %v", ErrNotS3, err)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return op, fmt.Errorf("%w: query: %v", ErrNotS3, err)
	}
	// A parameter given twice names two values; the record writes one
	// (url.Values.Get's first) while the upstream may act on the other
	// ("?versionId=a&versionId=b" deleting b, recorded as a). Refuse it.
	for k, vs := range q {
		if len(vs) > 1 {
			return op, fmt.Errorf("%w: query parameter %q is given %d times: the request names no single value for it", ErrNotS3, k, len(vs))
		}
	}
	op.Query = q
	rest := path[1:]
	if b, ok := d.hostBucket(r.Host); ok {
		op.Bucket, op.Key = b, rest
	} else {
		op.Bucket, op.Key, _ = strings.Cut(rest, "/")
		if op.Bucket == "" && op.Key != "" {
			return op, fmt.Errorf("%w: empty bucket name in path %q", ErrNotS3, rawPath)
		}
	}
	switch {
	case op.Bucket == "":
		op.Level = Service
	case op.Key == "":
		op.Level = Bucket
	default:
		op.Level = Object
	}
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""
	for i := range opTable {
		ru := &opTable[i]
		if ru.method != r.Method || ru.level != op.Level {
			continue
		}
		if ru.sub != "" && !q.Has(ru.sub) {
			continue
		}
		if ru.also != "" && !q.Has(ru.also) {
			continue
		}
		if (ru.copy == 1 && !copySource) || (ru.copy == -1 && copySource) {
			continue
		}
		// A second subresource makes the request ambiguous: the
		// upstream may act on it rather than on the one this rule
		// matched (versitygw stores the policy of "PUT /b?acl&policy",
		// which would be recorded as PutBucketAcl). Refuse it.
		for _, sub := range levelSubs[op.Level] {
			if sub != ru.sub && sub != ru.also && q.Has(sub) {
				return op, fmt.Errorf("%w: subresource ?%s does not go with %s: the request names no single S3 operation", ErrNotS3, sub, ru.name)
			}
		}
		op.Name, op.Data, op.ReadOnly = ru.name, ru.data, ru.readOnly
		return op, nil
	}
	return op, fmt.Errorf("%w: no S3 operation is %s on a %s", ErrNotS3, r.Method, op.Level)
}

// hostBucket extracts the bucket of a virtual-hosted-style Host header:
// one under the configured domain, or one of AWS S3's own host names.
func (d Decoder) hostBucket(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if d.VirtualHostDomain != "" {
		if b, ok := strings.CutSuffix(host, "."+strings.ToLower(d.VirtualHostDomain)); ok && b != "" {
			return b, true
		}
	}
	if d.AWSHosts {
		return awsHostBucket(host)
	}
	return "", false
}

// isAWSHost reports whether a host name is one of AWS's.
func isAWSHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")
}

// awsHostBucket recognises AWS S3's virtual-hosted-style host names,
// "<bucket>.s3.amazonaws.com", "<bucket>.s3.<region>.amazonaws.com",
// "<bucket>.s3-<region>.amazonaws.com", their dual-stack, FIPS,
// accelerate and China-partition forms, S3 Express zonal endpoints
// ("<bucket>--<az>--x-s3.s3express-<az>.<region>.amazonaws.com") and
// PrivateLink interface endpoints ("<bucket>.bucket.vpce-<id>.s3.<region>.vpce.amazonaws.com",
// whose "bucket.vpce-<id>" labels name the endpoint, not a bucket). A
// client that signs for AWS and reaches it through the proxy sends them,
// and AWS serves the bucket the host names: read as path-style, the
// record would name another bucket and call. The bucket is what comes
// before the last "s3" label (bucket names may hold dots, even "s3"
// labels); access point, Object Lambda, website, S3 Control and Outposts
// host names do not name buckets this way and are left alone.
func awsHostBucket(host string) (string, bool) {
	rest, ok := strings.CutSuffix(host, ".amazonaws.com")
	if !ok {
		if rest, ok = strings.CutSuffix(host, ".amazonaws.com.cn"); !ok {
			return "", false
		}
	}
	labels := strings.Split(rest, ".")
	for i := len(labels) - 1; i > 0; i-- {
		l := labels[i]
		if l != "s3" && !strings.HasPrefix(l, "s3-") && !strings.HasPrefix(l, "s3express-") {
			continue
		}
		for _, other := range []string{"s3-accesspoint", "s3-object-lambda", "s3-website", "s3-control", "s3-outposts"} {
			if strings.HasPrefix(l, other) {
				return "", false
			}
		}
		bucket := labels[:i]
		if n := len(bucket); n > 0 && strings.HasPrefix(bucket[n-1], "vpce-") {
			// PrivateLink: "[<bucket>.]bucket.vpce-<id>" for buckets,
			// "accesspoint.vpce-<id>" and "control.vpce-<id>" for the
			// rest.
			bucket = bucket[:n-1]
			if n := len(bucket); n > 0 && bucket[n-1] == "bucket" {
				bucket = bucket[:n-1]
			} else {
				return "", false
			}
		}
		if len(bucket) == 0 {
			return "", false // path-style on an endpoint's own name
		}
		return strings.Join(bucket, "."), true
	}
	return "", false
}
