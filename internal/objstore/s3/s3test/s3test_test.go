package s3test_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/testenv"
)

func TestServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := s3test.Start(t), s3test.Start(t)
	if a.Endpoint == b.Endpoint || a.Dir == b.Dir {
		t.Fatalf("two servers share an endpoint or directory: %+v %+v", a, b)
	}
	sa, sb := a.NewStore(t), b.NewStore(t)
	if err := sa.CreateBucket(t.Context(), "only-in-a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := sb.BucketExists(t.Context(), "only-in-a"); err != nil || ok {
		t.Fatalf("bucket of server a visible in server b: %v %v", ok, err)
	}
}

// digestKeys is a digest folder as validate-logs lists it, plus keys
// around it that a correct listing must skip or order correctly.
var digestKeys = []string{
	"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/01/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20260101T230000Z.json.gz",
	"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20260102T000000Z.json.gz",
	"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20260102T010000Z.json.gz",
	"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20260102T020000Z.json.gz",
	"AWSLogs/123456789012/CloudTrail-Digest/us-west-2/2026/01/02/123456789012_CloudTrail-Digest_us-west-2_t_us-east-1_20260102T000000Z.json.gz",
	"AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/123456789012_CloudTrail_us-east-1_20260102T0005Z_abcdefABCDEF0123.json.gz",
	"with space+plus/key",
}

const digestPrefix = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1"

// TestWhatValidateLogsNeeds checks, with the SDK, the S3 behaviour that
// `aws cloudtrail validate-logs` relies on (reference §5.5, §5.6): ListObjects v1
// with prefix, marker and encoding-type=url; user metadata on GetObject;
// NoSuchKey as an XML error code; GetBucketLocation.
func TestWhatValidateLogsNeeds(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	store := srv.NewStore(t)
	ctx := t.Context()
	const bucket = "trail-logs"
	if err := store.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	md := map[string]string{"signature": strings.Repeat("0f", 256), "signature-algorithm": "SHA256withRSA"}
	for _, k := range digestKeys {
		if err := store.Put(ctx, bucket, k, strings.NewReader(k), int64(len(k)), objstore.PutOptions{ContentEncoding: "gzip", Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	c := store.Client()

	// ListObjects v1, paginated two at a time with Marker as botocore does
	// (NextMarker, or the last key when the server sends none).
	marker := digestKeys[0] // validate-logs: the key at start - 1 minute
	var got []string
	for {
		out, err := c.ListObjects(ctx, &awss3.ListObjectsInput{
			Bucket: aws.String(bucket), Prefix: aws.String(digestPrefix), Marker: aws.String(marker),
			MaxKeys: aws.Int32(2), EncodingType: types.EncodingTypeUrl,
		})
		if err != nil {
			t.Fatalf("ListObjects v1: %v", err)
		}
		for _, o := range out.Contents {
			got = append(got, aws.ToString(o.Key)) // these keys need no escaping
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		if out.NextMarker != nil {
			marker = aws.ToString(out.NextMarker)
		} else {
			marker = got[len(got)-1]
		}
	}
	if want := digestKeys[1:4]; !slices.Equal(got, want) {
		t.Errorf("ListObjects(prefix, marker) = %q\nwant %q", got, want)
	}

	// encoding-type=url: S3 then sends keys form-encoded and says so in
	// EncodingType; clients (botocore, our List) decode only when it says
	// so. A server may also ignore the parameter and send raw keys without
	// EncodingType (versitygw v1.8.0 does): that is fine too. Encoding
	// without saying so, or saying so without encoding, is not.
	out, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: aws.String(bucket), Prefix: aws.String("with"), EncodingType: types.EncodingTypeUrl})
	if err != nil || len(out.Contents) != 1 {
		t.Fatalf("ListObjects(with): %v %+v", err, out)
	}
	key := aws.ToString(out.Contents[0].Key)
	if out.EncodingType == types.EncodingTypeUrl {
		if key != "with+space%2Bplus/key" && key != "with%20space%2Bplus/key" {
			t.Errorf("ListObjects says encoding-type url but sent key %q", key)
		}
	} else if key != digestKeys[6] {
		t.Errorf("ListObjects sent key %q without saying it is encoded; want %q", key, digestKeys[6])
	} else {
		t.Logf("this server ignores encoding-type=url on ListObjects v1 (sends raw keys, no EncodingType)")
	}

	// User metadata and content encoding come back on GetObject.
	g, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(digestKeys[1])})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, g.Body)
	g.Body.Close()
	if g.Metadata["signature"] != md["signature"] || g.Metadata["signature-algorithm"] != "SHA256withRSA" || aws.ToString(g.ContentEncoding) != "gzip" {
		t.Errorf("GetObject metadata %v, content encoding %q", g.Metadata, aws.ToString(g.ContentEncoding))
	}

	// A missing key is an XML NoSuchKey error (a bare 404 would make the
	// CLI abort instead of reporting "not found").
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(digestPrefix + "/missing.json.gz")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchKey" {
		t.Errorf("GetObject of a missing key = %v, want error code NoSuchKey", err)
	}

	loc, err := c.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("GetBucketLocation: %v", err)
	}
	if lc := string(loc.LocationConstraint); lc != "" && lc != "us-east-1" {
		t.Errorf("GetBucketLocation = %q, want empty (us-east-1)", lc)
	}

	t.Run("AWSCLI", func(t *testing.T) {
		if testing.Short() {
			t.Skip("the AWS CLI takes seconds to start")
		}
		testWithAWSCLI(t, srv, bucket, md)
	})
}

// awsCLIs are the AWS CLIs that run here: the `aws` on PATH (the image's
// v1) and Debian's v2 at /usr/bin/aws, which scripts/test installs. Under
// CI, finding none that runs is a failure.
func awsCLIs(t *testing.T) map[string]string {
	t.Helper()
	clis := map[string]string{}
	seen := map[string]bool{}
	var why []string
	for _, name := range []string{"aws", "/usr/bin/aws"} {
		p, err := exec.LookPath(name)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		out, err := exec.CommandContext(t.Context(), p, "--version").CombinedOutput()
		if err != nil {
			why = append(why, fmt.Sprintf("%s --version: %v: %s", p, err, out))
			continue
		}
		version, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		clis[strings.ReplaceAll(version, "/", "-")] = p
	}
	if len(clis) == 0 {
		testenv.RequireOrSkip(t, "no AWS CLI runs here (%s)", strings.Join(why, "; "))
	}
	return clis
}

// testWithAWSCLI repeats the listing and reads with each real AWS CLI
// installed, the clients validate-logs runs in. The endpoint is given with
// --endpoint-url, which every version honours (v2 before 2.13 ignores
// AWS_ENDPOINT_URL_S3).
func testWithAWSCLI(t *testing.T, srv *s3test.Server, bucket string, md map[string]string) {
	for version, awsBin := range awsCLIs(t) {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			testOneAWSCLI(t, awsBin, srv, bucket, md)
		})
	}
}

func testOneAWSCLI(t *testing.T, awsBin string, srv *s3test.Server, bucket string, md map[string]string) {
	run := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(t.Context(), awsBin, append(args, "--endpoint-url", srv.Endpoint)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, srv.Env()...)
		cmd.Env = append(cmd.Env, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return string(out), stderr.String(), err
	}

	// Three CLI runs of a few seconds each, side by side.
	t.Run("list-objects", func(t *testing.T) {
		t.Parallel()
		// botocore sends encoding-type=url itself and decodes the keys.
		out, stderr, err := run("s3api", "list-objects", "--bucket", bucket, "--prefix", "with", "--output", "json")
		if err != nil {
			t.Fatalf("aws s3api list-objects: %v\n%s", err, stderr)
		}
		var listing struct{ Contents []struct{ Key string } }
		if err := json.Unmarshal([]byte(out), &listing); err != nil || len(listing.Contents) != 1 || listing.Contents[0].Key != digestKeys[6] {
			t.Errorf("list-objects decoded %+v (%v), want %q", listing, err, digestKeys[6])
		}
	})
	t.Run("get-object", func(t *testing.T) {
		t.Parallel()
		out, stderr, err := run("s3api", "get-object", "--bucket", bucket, "--key", digestKeys[1], "--output", "json", os.DevNull)
		if err != nil {
			t.Fatalf("aws s3api get-object: %v\n%s", err, stderr)
		}
		var head struct{ Metadata map[string]string }
		if err := json.Unmarshal([]byte(out), &head); err != nil || head.Metadata["signature-algorithm"] != md["signature-algorithm"] || head.Metadata["signature"] != md["signature"] {
			t.Errorf("get-object metadata = %v (%v)", head.Metadata, err)
		}
	})
	t.Run("get-object-missing", func(t *testing.T) {
		t.Parallel()
		_, stderr, err := run("s3api", "get-object", "--bucket", bucket, "--key", "no/such/key", os.DevNull)
		if err == nil || !strings.Contains(stderr, "NoSuchKey") {
			t.Errorf("get-object of a missing key: %v, stderr %q; want NoSuchKey", err, stderr)
		}
	})
}
