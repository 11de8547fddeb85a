package s3proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// playS3 is an upstream that answers every call with the given status,
// headers and body, sent in pieces with a flush after each (as S3 sends
// its keep-alive white space), chunked unless withLength: what a real
// S3 server does only on a failure this machine cannot cause (an error
// after the 200 of a slow copy) or with features versitygw lacks
// (encryption headers). The real SDK client is what the test drives.
func playS3(t *testing.T, status int, header map[string]string, withLength bool, pieces ...string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("X-Amz-Request-Id", "PLAYEDREQUEST001")
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(strings.Join(pieces, ""))))
		}
		w.WriteHeader(status)
		for _, p := range pieces {
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func lastEvent(t *testing.T, r *rig) map[string]any {
	t.Helper()
	evs := r.events(t)
	if len(evs) == 0 {
		t.Fatal("no event recorded")
	}
	return evs[len(evs)-1]
}

// TestResponseElementsOfObjectWrites: an object write records the
// object's encryption, version and expiry headers as responseElements, as
// S3 does; a read, or a write that failed, records null.
func TestResponseElementsOfObjectWrites(t *testing.T) {
	headers := map[string]string{
		"x-amz-server-side-encryption":                    "aws:kms",
		"x-amz-server-side-encryption-aws-kms-key-id":     "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"x-amz-server-side-encryption-bucket-key-enabled": "true",
		"x-amz-version-id":                                "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
		"ETag":                                            `"d41d8cd98f00b204e9800998ecf8427e"`,
	}
	ctx := context.Background()
	r := newRig(t, rigOptions{configure: func(c *Config) { c.Upstream = playS3(t, http.StatusOK, headers, true) }})
	c := r.client(r.p.URL())
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	want := map[string]any{
		"x-amz-server-side-encryption":                    "aws:kms",
		"x-amz-server-side-encryption-aws-kms-key-id":     headers["x-amz-server-side-encryption-aws-kms-key-id"],
		"x-amz-server-side-encryption-bucket-key-enabled": "true",
		"x-amz-version-id":                                "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
	}
	if got := lastEvent(t, r)["responseElements"]; !reflect.DeepEqual(got, want) {
		t.Errorf("PutObject responseElements %v, want %v", got, want)
	}

	// A read with the same headers records null.
	r = newRig(t, rigOptions{configure: func(c *Config) { c.Upstream = playS3(t, http.StatusOK, headers, true, "body") }})
	c = r.client(r.p.URL())
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	_, _ = io.Copy(io.Discard, out.Body)
	out.Body.Close()
	if e := lastEvent(t, r); e["eventName"] != "GetObject" || e["responseElements"] != nil {
		t.Errorf("%v responseElements %v, want null", e["eventName"], e["responseElements"])
	}
}

// TestErrorInside200IsRecorded: S3 answers CopyObject, UploadPartCopy and
// CompleteMultipartUpload with 200 at once and sends an Error document
// (after keep-alive white space) if the call then fails. The SDK takes
// that for the failure it is, so the record must name the error too,
// while the client gets the bytes the upstream sent; a result document
// is a success.
func TestErrorInside200IsRecorded(t *testing.T) {
	const errDoc = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>PLAYEDREQUEST001</RequestId></Error>`
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		withLength bool
		pieces     []string
		call       func(*s3.Client) error
		wantCode   string
	}{
		{"CopyObject", false, []string{"  ", "\n  ", errDoc}, func(c *s3.Client) error {
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("copy"), CopySource: aws.String("b/src")})
			return err
		}, "SlowDown"},
		{"CompleteMultipartUpload", true, []string{" ", errDoc}, func(c *s3.Client) error {
			_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("mp"),
				UploadId: aws.String("u1"), MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: aws.String(`"e"`), PartNumber: aws.Int32(1)}}}})
			return err
		}, "SlowDown"},
		{"UploadPartCopy", false, []string{errDoc}, func(c *s3.Client) error {
			_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("b"), Key: aws.String("mp"), UploadId: aws.String("u1"),
				PartNumber: aws.Int32(1), CopySource: aws.String("b/src")})
			return err
		}, "SlowDown"},
		{"CopyObject", false, []string{" ", `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<CopyObjectResult><LastModified>2026-11-21T17:00:00.000Z</LastModified><ETag>"9b2cf535f27731c974343645a3985328"</ETag></CopyObjectResult>`},
			func(c *s3.Client) error {
				_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("copy"), CopySource: aws.String("b/src")})
				return err
			}, ""},
	} {
		r := newRig(t, rigOptions{configure: func(c *Config) { c.Upstream = playS3(t, http.StatusOK, nil, tc.withLength, tc.pieces...) }})
		err := tc.call(r.client(r.p.URL()))
		var ae smithy.APIError
		switch {
		case tc.wantCode == "" && err != nil:
			t.Errorf("%s: %v, want success", tc.name, err)
		case tc.wantCode != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tc.wantCode):
			t.Errorf("%s: the SDK got %v, want the upstream's %s", tc.name, err, tc.wantCode)
		}
		e := lastEvent(t, r)
		if e["eventName"] != tc.name || e["errorCode"] != nilIfEmpty(tc.wantCode) {
			t.Errorf("%s (length %v): recorded %v with errorCode %v, want %q", tc.name, tc.withLength, e["eventName"], e["errorCode"], tc.wantCode)
		}
		if tc.wantCode != "" && e["errorMessage"] != "Please reduce your request rate." {
			t.Errorf("%s: errorMessage %v", tc.name, e["errorMessage"])
		}
		if n := len(strings.Join(tc.pieces, "")); path(e, "additionalEventData.bytesTransferredOut") != float64(n) {
			t.Errorf("%s: bytesTransferredOut %v, want %d", tc.name, path(e, "additionalEventData.bytesTransferredOut"), n)
		}
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
