package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

const target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."

// rawCall sends a JSON 1.1 request signed by the real SDK signer, after
// letting tamper change it, and returns the status and decoded error type.
func rawCall(t *testing.T, h *servertest.Harness, keyID, secret, op, body string, signedAt time.Time, tamper func(*http.Request)) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if op != "" {
		req.Header.Set("X-Amz-Target", target+op)
	}
	if keyID != "" {
		sum := sha256.Sum256([]byte(body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "cloudtrail", "us-east-1", signedAt)
		if err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Type, raw
}

// records returns every record in the journal.
func records(t *testing.T, h *servertest.Harness) []*event.Record {
	t.Helper()
	var out []*event.Record
	_, err := h.Server.Journal().Read(context.Background(), 0, 1<<20, func(_ uint64, entry []byte) error {
		rec, err := event.Parse(entry)
		if err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func countTrails(t *testing.T, h *servertest.Harness) int {
	t.Helper()
	out, err := h.CloudTrail.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.TrailList)
}

func TestAuthenticationRefusals(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	create := `{"Name":"trail-1","S3BucketName":"logs"}`
	now := time.Now()
	cases := []struct {
		name       string
		keyID, sec string
		signedAt   time.Time
		tamper     func(*http.Request)
		wantStatus int
		wantType   string
	}{
		{"wrong secret", h.AdminKeyID, "not-the-secret-0000000000000000000000000", now, nil, 403, "InvalidSignatureException"},
		{"unknown key", "CKIAAAAAAAAAAAAAAAAA", h.AdminSecret, now, nil, 403, "UnrecognizedClientException"},
		{"expired date", h.AdminKeyID, h.AdminSecret, now.Add(-20 * time.Minute), nil, 403, "InvalidSignatureException"},
		{"date in the future", h.AdminKeyID, h.AdminSecret, now.Add(20 * time.Minute), nil, 403, "InvalidSignatureException"},
		{"tampered body", h.AdminKeyID, h.AdminSecret, now, func(r *http.Request) {
			b := []byte(`{"Name":"trail-2","S3BucketName":"logs"}`)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}, 403, "InvalidSignatureException"},
		{"tampered signed header", h.AdminKeyID, h.AdminSecret, now, func(r *http.Request) {
			r.Header.Set("X-Amz-Target", target+"DeleteTrail")
		}, 403, "InvalidSignatureException"},
		{"missing signature", "", "", now, nil, 403, "MissingAuthenticationTokenException"},
		{"truncated authorization", h.AdminKeyID, h.AdminSecret, now, func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, "Signature=")])
		}, 403, "IncompleteSignatureException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(records(t, h))
			status, typ, raw := rawCall(t, h, tc.keyID, tc.sec, "CreateTrail", create, tc.signedAt, tc.tamper)
			if status != tc.wantStatus || typ != tc.wantType {
				t.Fatalf("got %d %s (%s), want %d %s", status, typ, raw, tc.wantStatus, tc.wantType)
			}
			if n := countTrails(t, h); n != 0 {
				t.Fatalf("a refused request created a trail (%d trails)", n)
			}
			// CloudTrail does not record requests that fail authentication:
			// nobody is known to have made them. Only DescribeTrails (our own
			// check) may have been added.
			for _, rec := range records(t, h)[before:] {
				if rec.EventName != "DescribeTrails" {
					t.Errorf("unauthenticated request was recorded as %s", rec.EventName)
				}
			}
		})
	}
}

func TestReadOnlyKeyIsRefusedAndRecorded(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	_, err := h.ReadOnly.CreateTrail(context.Background(), &cloudtrail.CreateTrailInput{Name: aws.String("trail-1"), S3BucketName: aws.String("logs")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("read-only CreateTrail: got %v, want AccessDeniedException", err)
	}
	if n := countTrails(t, h); n != 0 {
		t.Fatalf("read-only key created a trail")
	}
	if _, err := h.ReadOnly.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Fatalf("read-only key may describe trails: %v", err)
	}
	var found bool
	for _, rec := range records(t, h) {
		if rec.EventName == "CreateTrail" {
			found = true
			if rec.ErrorCode != "AccessDenied" || rec.AccessKeyID != h.ReadOnlyKeyID {
				t.Errorf("refusal recorded with errorCode %q by %q", rec.ErrorCode, rec.AccessKeyID)
			}
		}
	}
	if !found {
		t.Fatal("the refused CreateTrail was not recorded")
	}
}

func TestProtocolErrors(t *testing.T) {
	h := servertest.Start(t)
	now := time.Now()
	for _, tc := range []struct{ name, op, body, want string }{
		{"unknown operation", "MakeCoffee", `{}`, "UnknownOperationException"},
		{"no target", "", `{}`, "UnknownOperationException"},
		{"malformed JSON", "CreateTrail", `{"Name":`, "SerializationException"},
		{"not an object", "CreateTrail", `[1,2]`, "SerializationException"},
		{"wrong member type", "CreateTrail", `{"Name":5,"S3BucketName":"b"}`, "SerializationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, typ, raw := rawCall(t, h, h.AdminKeyID, h.AdminSecret, tc.op, tc.body, now, nil)
			if status != 400 || typ != tc.want {
				t.Fatalf("got %d %s (%s), want 400 %s", status, typ, raw, tc.want)
			}
		})
	}
}

func TestSelfAuditRecord(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	ctx := context.Background()
	if _, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("trail-1"), S3BucketName: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}
	_, err := h.CloudTrail.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("nope")})
	if err == nil {
		t.Fatal("GetTrail of a missing trail succeeded")
	}
	recs := records(t, h)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	var create, get map[string]any
	if err := json.Unmarshal(recs[0].Raw, &create); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(recs[1].Raw, &get); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"eventVersion": "1.11", "eventSource": "cloudtrail.amazonaws.com", "eventName": "CreateTrail",
		"awsRegion": "us-east-1", "sourceIPAddress": "127.0.0.1", "eventType": "AwsApiCall",
		"readOnly": false, "managementEvent": true, "recipientAccountId": "000000000000", "eventCategory": "Management",
	}
	for k, v := range want {
		if create[k] != v {
			t.Errorf("CreateTrail record: %s = %v, want %v", k, create[k], v)
		}
	}
	rp, _ := create["requestParameters"].(map[string]any)
	if rp["name"] != "trail-1" || rp["s3BucketName"] != "logs" {
		t.Errorf("requestParameters = %v", create["requestParameters"])
	}
	re, _ := create["responseElements"].(map[string]any)
	if re["trailARN"] != "arn:aws:cloudtrail:us-east-1:000000000000:trail/trail-1" {
		t.Errorf("responseElements = %v", create["responseElements"])
	}
	uid, _ := create["userIdentity"].(map[string]any)
	if uid["type"] != "IAMUser" || uid["accessKeyId"] != h.AdminKeyID || uid["userName"] != "admin" {
		t.Errorf("userIdentity = %v", uid)
	}
	if ua, _ := create["userAgent"].(string); !strings.Contains(ua, "aws-sdk-go-v2") {
		t.Errorf("userAgent = %q", ua)
	}
	if get["errorCode"] != "TrailNotFoundException" || get["readOnly"] != true || get["responseElements"] != nil {
		t.Errorf("failed GetTrail record: errorCode=%v readOnly=%v responseElements=%v", get["errorCode"], get["readOnly"], get["responseElements"])
	}
}

func TestHealthAndMetrics(t *testing.T) {
	h := servertest.Start(t)
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "cairn_api_requests_total"} {
		if path == "/metrics" {
			// one request so the counter has a sample
			_, _ = h.CloudTrail.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{})
		}
		resp, err := http.Get(h.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
}
