package awsproto

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/smithy-go"
)

// TestVerifyRealCloudTrailClient drives the verifier with the real CloudTrail
// client over loopback: whatever headers the SDK adds (invocation id, retry
// info, user agent, content length) must verify, and refusals must reach the
// SDK as the modeled error codes.
func TestVerifyRealCloudTrailClient(t *testing.T) {
	var last atomic.Pointer[Credential]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cred, verr := VerifyRequestWith(r.Context(), r, body, testLookup, time.Now(),
			VerifyOptions{Service: "cloudtrail", Region: "eu-north-1"})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if verr != nil {
			e := AsError(verr)
			w.WriteHeader(e.HTTPStatus())
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "Message": e.Message})
			return
		}
		last.Store(cred)
		_, _ = io.WriteString(w, `{"trailList":[]}`)
	}))
	defer srv.Close()

	client := func(id, secret string) *cloudtrail.Client {
		return cloudtrail.New(cloudtrail.Options{
			Region:           "eu-north-1",
			BaseEndpoint:     aws.String(srv.URL),
			Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
			RetryMaxAttempts: 1,
		})
	}
	ctx := context.Background()

	if _, err := client(testAccessKey, testSecret).DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{TrailNameList: []string{"a b", "arn:aws:cloudtrail:eu-north-1:1:trail/x"}}); err != nil {
		t.Fatalf("DescribeTrails: %v", err)
	}
	if got := last.Load(); got == nil || got.AccessKeyID != testAccessKey || got.Service != "cloudtrail" || got.Presigned {
		t.Fatalf("credential %+v", got)
	}

	for _, c := range []struct{ id, secret, code string }{
		{testAccessKey, "wrong", "InvalidSignatureException"},
		{"CKIANOSUCHKEY0000000", testSecret, "UnrecognizedClientException"},
	} {
		_, err := client(c.id, c.secret).DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != c.code {
			t.Fatalf("want %s, got %v", c.code, err)
		}
	}
}
