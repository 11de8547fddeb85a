package awsproto

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAccessKey = "CKIATESTKEY000000001"
	testSecret    = "s3cr3t/KEY+with/slashes0123456789abcdefg"
)

// signTime is the fixed clock of these tests: 2024-01-01T00:30:00Z.
var signTime = time.Date(2024, 1, 1, 0, 30, 0, 0, time.UTC)

func testLookup(_ context.Context, id string) (string, bool, error) {
	if id == testAccessKey {
		return testSecret, true, nil
	}
	return "", false, nil
}

func creds() aws.Credentials {
	return aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
}

func bodyHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// newJSONRequest builds a CloudTrail-style JSON 1.1 call.
func newJSONRequest(t testing.TB, rawURL, target string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."+target)
	}
	return req
}

// sign signs req with the real SDK signer at signTime.
func sign(t testing.TB, req *http.Request, body []byte, service, region string) {
	t.Helper()
	if err := v4.NewSigner().SignHTTP(context.Background(), creds(), req, bodyHash(body), service, region, signTime); err != nil {
		t.Fatal(err)
	}
}

// serverSide sends req through net/http's own wire format and parser, so the
// verifier sees exactly what a server handler would: Host moved to r.Host,
// RequestURI set, header keys canonicalised.
func serverSide(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sr, body
}

func verifyAt(t testing.TB, req *http.Request, now time.Time, opts VerifyOptions) (*Credential, error) {
	t.Helper()
	sr, body := serverSide(t, req)
	return VerifyRequestWith(context.Background(), sr, body, testLookup, now, opts)
}

func wantCode(t testing.TB, err error, code, msgPart string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want %s, got %T %v", code, err, err)
	}
	if e.Code != code {
		t.Fatalf("want code %s, got %s: %s", code, e.Code, e.Message)
	}
	if !strings.Contains(e.Message, msgPart) {
		t.Fatalf("message %q does not contain %q", e.Message, msgPart)
	}
	if code != "InternalFailure" && e.HTTPStatus() != http.StatusForbidden {
		t.Fatalf("%s: status %d, want 403", code, e.HTTPStatus())
	}
}

func TestVerifySignedRequests(t *testing.T) {
	cases := []struct {
		name, url, target, service, region string
		body                               []byte
		extra                              func(*http.Request)
	}{
		{name: "cloudtrail us-east-1", url: "https://cloudtrail.us-east-1.amazonaws.com/", target: "DescribeTrails",
			service: "cloudtrail", region: "us-east-1", body: []byte(`{"trailNameList":[]}`)},
		{name: "cloudtrail local port", url: "http://127.0.0.1:4599/", target: "LookupEvents",
			service: "cloudtrail", region: "eu-central-1", body: []byte(`{"MaxResults":5}`)},
		{name: "empty body", url: "http://localhost:8080", target: "ListTrails",
			service: "cloudtrail", region: "ap-southeast-2", body: nil},
		{name: "cloudtrail-data", service: "cloudtrail-data", region: "eu-west-3",
			url:  "http://cairn.internal:9000/PutAuditEvents?channelArn=" + url.QueryEscape("arn:aws:cloudtrail:eu-west-3:123456789012:channel/01234567-89ab-cdef-0123-456789abcdef") + "&externalId=ext-1",
			body: []byte(`{"auditEvents":[{"id":"1","eventData":"{}"}]}`)},
		{name: "odd query", service: "cloudtrail-data", region: "us-west-2",
			url:  "http://h/PutAuditEvents?z=1&a=b%20c&a=b+c&a=b%2Bc&k%2Fslash=v%2F%2F&tilde=~*'()!&uni=%E2%82%AC%C3%BC&empty=&novalue&sp%20ace=1&semi=a%3Bb",
			body: []byte(`{}`)},
		{name: "odd path", service: "cloudtrail-data", region: "us-west-2",
			url: "http://h/a%20b/c~d/%E2%82%AC/x%2Fy/", body: []byte(`{}`)},
		{name: "multi-valued and spaced headers", url: "http://h/", target: "GetTrail", service: "cloudtrail", region: "us-east-1",
			body: []byte(`{"Name":"t"}`), extra: func(r *http.Request) {
				r.Header.Add("X-Custom", "a")
				r.Header.Add("X-Custom", "  b   c  ")
				r.Header.Set("X-Amz-Meta-Thing", "v  w")
			}},
		{name: "content sha256 header", url: "http://h/", target: "GetTrail", service: "cloudtrail", region: "us-east-1",
			body: []byte(`{"Name":"t"}`), extra: func(r *http.Request) {
				r.Header.Set("X-Amz-Content-Sha256", bodyHash([]byte(`{"Name":"t"}`)))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newJSONRequest(t, c.url, c.target, c.body)
			if c.extra != nil {
				c.extra(req)
			}
			sign(t, req, c.body, c.service, c.region)
			cred, err := verifyAt(t, req, signTime.Add(14*time.Minute), VerifyOptions{Service: c.service, Region: c.region})
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			want := Credential{AccessKeyID: testAccessKey, Region: c.region, Service: c.service, SignedAt: signTime}
			if *cred != want {
				t.Fatalf("credential %+v, want %+v", *cred, want)
			}
		})
	}
}

func TestVerifyPresigned(t *testing.T) {
	cases := []struct {
		name, method, url, service, region, payloadHash string
		body                                            []byte
		expires                                         string
		wantUnsigned                                    bool
	}{
		{name: "get with expiry", method: http.MethodGet, url: "http://127.0.0.1:1234/?Action=x&odd=a%20b%2Fc", service: "cloudtrail",
			region: "us-east-1", payloadHash: bodyHash(nil), expires: "300"},
		{name: "post signed body", method: http.MethodPost, url: "http://h/PutAuditEvents?channelArn=arn%3Aaws%3Acloudtrail%3Aus-east-1%3A1%3Achannel%2Fc",
			service: "cloudtrail-data", region: "sa-east-1", body: []byte(`{"auditEvents":[]}`)},
		// Without a body there is nothing for the signature to leave out.
		{name: "unsigned payload without body", method: http.MethodGet, url: "http://h/", service: "cloudtrail",
			region: "us-east-2", payloadHash: UnsignedPayload, expires: "604800", wantUnsigned: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, c.url, bytes.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.GetTrail")
			if c.expires != "" {
				q := req.URL.Query()
				q.Set("X-Amz-Expires", c.expires)
				req.URL.RawQuery = q.Encode()
			}
			ph := c.payloadHash
			if ph == "" {
				ph = bodyHash(c.body)
			}
			signer := v4.NewSigner()
			u, hdr, err := signer.PresignHTTP(context.Background(), creds(), req, ph, c.service, c.region, signTime)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(u, "X-Amz-Target=") {
				t.Fatalf("expected X-Amz-Target hoisted into the query: %s", u)
			}
			preq, _ := http.NewRequest(c.method, u, bytes.NewReader(c.body))
			for k, vs := range hdr {
				if k != "Host" {
					preq.Header[k] = vs
				}
			}
			preq.Header.Set("User-Agent", "presign-test") // unsigned, ignored
			cred, err := verifyAt(t, preq, signTime.Add(4*time.Minute), VerifyOptions{Service: c.service})
			if err != nil {
				t.Fatalf("verify %s: %v", u, err)
			}
			if !cred.Presigned || cred.UnsignedPayload != c.wantUnsigned || cred.Region != c.region {
				t.Fatalf("credential %+v", *cred)
			}
			if c.wantUnsigned {
				return
			}
			// A different body must not pass on a URL that signed its body.
			if len(c.body) > 0 {
				treq, _ := http.NewRequest(c.method, u, strings.NewReader(`{"auditEvents":[{}]}`))
				for k, vs := range hdr {
					if k != "Host" {
						treq.Header[k] = vs
					}
				}
				_, err := verifyAt(t, treq, signTime, VerifyOptions{})
				wantCode(t, err, "InvalidSignatureException", "does not match the signature you provided")
			}
		})
	}
}

// presign returns a presigned URL for a GET to base with the given expiry.
func presign(t *testing.T, base, expires string, at time.Time) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base, nil)
	if expires != "" {
		q := req.URL.Query()
		q.Set("X-Amz-Expires", expires)
		req.URL.RawQuery = q.Encode()
	}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds(), req, bodyHash(nil), "cloudtrail", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func getURL(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestVerifyPresignedRefusals(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		u := presign(t, "http://h/", "60", signTime)
		_, err := verifyAt(t, getURL(t, u), signTime.Add(61*time.Second), VerifyOptions{})
		wantCode(t, err, "InvalidSignatureException",
			"Signature expired: 20240101T003000Z is now earlier than 20240101T003001Z (20240101T003101Z - 60 sec.)")
		// Within its expiry an old URL is fine even beyond the 15-minute skew.
		u = presign(t, "http://h/", "86400", signTime)
		if _, err := verifyAt(t, getURL(t, u), signTime.Add(20*time.Hour), VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no expiry uses skew window", func(t *testing.T) {
		u := presign(t, "http://h/", "", signTime)
		_, err := verifyAt(t, getURL(t, u), signTime.Add(16*time.Minute), VerifyOptions{})
		wantCode(t, err, "InvalidSignatureException", "Signature expired")
	})
	t.Run("expires too large", func(t *testing.T) {
		u := presign(t, "http://h/", "604801", signTime)
		_, err := verifyAt(t, getURL(t, u), signTime, VerifyOptions{})
		wantCode(t, err, "IncompleteSignatureException", "must be less than 604800 seconds")
	})
	t.Run("expires not a number", func(t *testing.T) {
		u := presign(t, "http://h/", "soon", signTime)
		_, err := verifyAt(t, getURL(t, u), signTime, VerifyOptions{})
		wantCode(t, err, "IncompleteSignatureException", "X-Amz-Expires should be")
	})
	t.Run("missing parameters", func(t *testing.T) {
		u := presign(t, "http://h/", "60", signTime)
		pu, _ := url.Parse(u)
		q := pu.Query()
		q.Del("X-Amz-Credential")
		q.Del("X-Amz-Date")
		pu.RawQuery = q.Encode()
		_, err := verifyAt(t, getURL(t, pu.String()), signTime, VerifyOptions{})
		wantCode(t, err, "IncompleteSignatureException",
			"AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.")
	})
	t.Run("security token", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://h/", nil)
		c := creds()
		c.SessionToken = "FwoGZXIvYXdzE"
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), c, req, bodyHash(nil), "cloudtrail", "us-east-1", signTime)
		if err != nil {
			t.Fatal(err)
		}
		_, err = verifyAt(t, getURL(t, u), signTime, VerifyOptions{})
		wantCode(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	})
	t.Run("tampered query", func(t *testing.T) {
		u := presign(t, "http://h/?a=1", "60", signTime)
		tampered := strings.Replace(u, "&a=1&", "&a=2&", 1)
		if tampered == u {
			t.Fatalf("query not found in %s", u)
		}
		_, err := verifyAt(t, getURL(t, tampered), signTime, VerifyOptions{})
		wantCode(t, err, "InvalidSignatureException", msgSignatureMismatch)
	})
	t.Run("both mechanisms", func(t *testing.T) {
		req := getURL(t, presign(t, "http://h/", "60", signTime))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		_, err := verifyAt(t, req, signTime, VerifyOptions{})
		wantCode(t, err, "IncompleteSignatureException", "Only one auth mechanism allowed")
	})
	// A presigned URL whose signature does not cover the body must not
	// carry one: whoever holds the URL could post anything with it for a
	// week. Neither the declared nor the implicit UNSIGNED-PAYLOAD passes,
	// and the declared one is refused before the body is read.
	t.Run("unsigned payload with a body", func(t *testing.T) {
		body := []byte(`{"Name":"forged"}`)
		for _, declare := range []bool{true, false} {
			req := newJSONRequest(t, "http://h/", "CreateTrail", body)
			if declare {
				req.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
			}
			u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds(), req, UnsignedPayload, "cloudtrail", "us-east-1", signTime)
			if err != nil {
				t.Fatal(err)
			}
			preq, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
			for k, vs := range hdr {
				if k != "Host" {
					preq.Header[k] = vs
				}
			}
			_, err = verifyAt(t, preq, signTime, VerifyOptions{})
			if declare {
				wantCode(t, err, "InvalidSignatureException", "its signature must cover it")
				_, err = PreVerify(context.Background(), preq, testLookup, signTime, VerifyOptions{})
				wantCode(t, err, "InvalidSignatureException", "its signature must cover it")
			} else {
				wantCode(t, err, "InvalidSignatureException", msgSignatureMismatch)
			}
		}
	})
	t.Run("unsigned payload header requires presign", func(t *testing.T) {
		req := newJSONRequest(t, "http://h/", "GetTrail", []byte(`{}`))
		req.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
		if err := v4.NewSigner().SignHTTP(context.Background(), creds(), req, UnsignedPayload, "cloudtrail", "us-east-1", signTime); err != nil {
			t.Fatal(err)
		}
		_, err := verifyAt(t, req, signTime, VerifyOptions{})
		wantCode(t, err, "InvalidSignatureException", "only in a presigned URL")
	})
}

// signedCall returns a correctly signed GetTrail call for mutation.
func signedCall(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	body := []byte(`{"Name":"trail-1"}`)
	req := newJSONRequest(t, "http://127.0.0.1:4599/", "GetTrail", body)
	sign(t, req, body, "cloudtrail", "us-east-1")
	return req, body
}

func TestVerifyRefusals(t *testing.T) {
	ctOpts := VerifyOptions{Service: "cloudtrail"}
	cases := []struct {
		name    string
		mutate  func(t *testing.T, r *http.Request) *http.Request
		now     time.Time
		opts    VerifyOptions
		code    string
		msgPart string
	}{
		{name: "no authentication", code: "MissingAuthenticationTokenException", msgPart: "Missing Authentication Token",
			mutate: func(_ *testing.T, r *http.Request) *http.Request { r.Header.Del("Authorization"); return r }},
		{name: "missing credential", code: "IncompleteSignatureException",
			msgPart: "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders=",
			mutate: editAuth(func(a *Authorization) string {
				return strings.Replace(a.String(), "Credential="+a.AccessKeyID+"/"+a.Scope()+", ", "", 1)
			})},
		{name: "missing signed headers", code: "IncompleteSignatureException", msgPart: "Authorization header requires 'SignedHeaders' parameter.",
			mutate: editAuth(func(a *Authorization) string {
				return SigV4Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope() + ", Signature=" + a.Signature
			})},
		{name: "missing signature and date", code: "IncompleteSignatureException",
			msgPart: "Authorization header requires 'Signature' parameter. " + msgDateRequired + " Authorization=",
			mutate: func(t *testing.T, r *http.Request) *http.Request {
				r.Header.Del("X-Amz-Date")
				return editAuth(func(a *Authorization) string {
					return SigV4Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope() + ", SignedHeaders=" + strings.Join(a.SignedHeaders, ";")
				})(t, r)
			}},
		{name: "missing x-amz-date", code: "IncompleteSignatureException", msgPart: msgDateRequired,
			mutate: func(_ *testing.T, r *http.Request) *http.Request { r.Header.Del("X-Amz-Date"); return r }},
		{name: "malformed x-amz-date", code: "IncompleteSignatureException", msgPart: "ISO-8601 'basic format'",
			mutate: func(_ *testing.T, r *http.Request) *http.Request {
				r.Header.Set("X-Amz-Date", "2024-01-01T00:30:00Z")
				return r
			}},
		{name: "wrong algorithm", code: "IncompleteSignatureException", msgPart: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'",
			mutate: editAuth(func(a *Authorization) string {
				return strings.Replace(a.String(), SigV4Algorithm, "AWS4-ECDSA-P256-SHA256", 1)
			})},
		{name: "missing equal sign", code: "IncompleteSignatureException", msgPart: "Invalid key=value pair (missing equal-sign)",
			mutate: editAuth(func(a *Authorization) string { return a.String() + ", Bogus" })},
		{name: "short scope", code: "IncompleteSignatureException", msgPart: "Credential must have exactly 5 slash-delimited elements",
			mutate: editAuth(func(a *Authorization) string { return strings.Replace(a.String(), "/aws4_request", "", 1) })},
		{name: "bad terminator", code: "IncompleteSignatureException", msgPart: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reqest'.",
			mutate: editAuth(func(a *Authorization) string { return strings.Replace(a.String(), "/aws4_request", "/aws4_reqest", 1) })},
		{name: "bad scope date", code: "IncompleteSignatureException", msgPart: "valid date",
			mutate: editAuth(func(a *Authorization) string { return strings.Replace(a.String(), "/20240101/", "/2024011/", 1) })},
		{name: "host not signed", code: "IncompleteSignatureException", msgPart: msgHostNotSigned,
			mutate: editAuth(func(a *Authorization) string { return strings.Replace(a.String(), "host;", "", 1) })},
		{name: "x-amz header not signed", code: "IncompleteSignatureException", msgPart: "not signed: x-amz-extra",
			mutate: func(_ *testing.T, r *http.Request) *http.Request { r.Header.Set("X-Amz-Extra", "1"); return r }},
		{name: "unknown access key", code: "UnrecognizedClientException", msgPart: msgUnrecognized,
			mutate: editAuth(func(a *Authorization) string {
				return strings.Replace(a.String(), testAccessKey, "CKIAUNKNOWN000000000", 1)
			})},
		{name: "session token", code: "UnrecognizedClientException", msgPart: msgUnrecognized,
			mutate: func(t *testing.T, _ *http.Request) *http.Request {
				body := []byte(`{}`)
				req := newJSONRequest(t, "http://h/", "GetTrail", body)
				c := creds()
				c.SessionToken = "token"
				if err := v4.NewSigner().SignHTTP(context.Background(), c, req, bodyHash(body), "cloudtrail", "us-east-1", signTime); err != nil {
					t.Fatal(err)
				}
				return req
			}},
		{name: "wrong secret", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(t *testing.T, _ *http.Request) *http.Request {
				body := []byte(`{}`)
				req := newJSONRequest(t, "http://h/", "GetTrail", body)
				c := creds()
				c.SecretAccessKey = "not-the-secret"
				if err := v4.NewSigner().SignHTTP(context.Background(), c, req, bodyHash(body), "cloudtrail", "us-east-1", signTime); err != nil {
					t.Fatal(err)
				}
				return req
			}},
		{name: "tampered body", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(_ *testing.T, r *http.Request) *http.Request {
				b := []byte(`{"Name":"trail-2"}`)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
				return r
			}},
		{name: "tampered length body", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(_ *testing.T, r *http.Request) *http.Request {
				b := []byte(`{"Name":"trail-1", "x":1}`)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
				return r
			}},
		{name: "tampered target", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(_ *testing.T, r *http.Request) *http.Request {
				r.Header.Set("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DeleteTrail")
				return r
			}},
		{name: "tampered query", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(_ *testing.T, r *http.Request) *http.Request { r.URL.RawQuery = "x=1"; return r }},
		{name: "tampered path", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(_ *testing.T, r *http.Request) *http.Request { r.URL.Path = "/other"; return r }},
		{name: "tampered method", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(_ *testing.T, r *http.Request) *http.Request { r.Method = http.MethodPut; return r }},
		{name: "tampered host", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: func(_ *testing.T, r *http.Request) *http.Request { r.Host = "127.0.0.1:4600"; return r }},
		{name: "region rewritten in scope", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: editAuth(func(a *Authorization) string { return strings.Replace(a.String(), "/us-east-1/", "/us-west-2/", 1) })},
		{name: "service rewritten in scope", code: "InvalidSignatureException", msgPart: msgSignatureMismatch,
			mutate: editAuth(func(a *Authorization) string {
				return strings.Replace(a.String(), "/cloudtrail/", "/cloudtrail-data/", 1)
			})},
		{name: "signed for another service", code: "InvalidSignatureException", msgPart: "Credential should be scoped to correct service: 'cloudtrail'.",
			opts: ctOpts,
			mutate: func(t *testing.T, _ *http.Request) *http.Request {
				req := newJSONRequest(t, "http://h/", "GetTrail", nil)
				sign(t, req, nil, "cloudtrail-data", "us-east-1")
				return req
			}},
		{name: "signed for another region", code: "InvalidSignatureException", msgPart: "Credential should be scoped to a valid region, not 'us-west-2'.",
			opts: VerifyOptions{Region: "us-east-1"},
			mutate: func(t *testing.T, _ *http.Request) *http.Request {
				req := newJSONRequest(t, "http://h/", "GetTrail", nil)
				sign(t, req, nil, "cloudtrail", "us-west-2")
				return req
			}},
		{name: "content sha256 mismatch", code: "InvalidSignatureException", msgPart: "'x-amz-content-sha256' header does not match",
			mutate: func(t *testing.T, _ *http.Request) *http.Request {
				body := []byte(`{}`)
				req := newJSONRequest(t, "http://h/", "GetTrail", body)
				req.Header.Set("X-Amz-Content-Sha256", bodyHash([]byte("other")))
				if err := v4.NewSigner().SignHTTP(context.Background(), creds(), req, bodyHash([]byte("other")), "cloudtrail", "us-east-1", signTime); err != nil {
					t.Fatal(err)
				}
				return req
			}},
		{name: "clock behind", code: "InvalidSignatureException",
			msgPart: "Signature expired: 20240101T003000Z is now earlier than 20240101T003001Z (20240101T004501Z - 15 min.)",
			now:     signTime.Add(15*time.Minute + time.Second)},
		{name: "clock ahead", code: "InvalidSignatureException",
			msgPart: "Signature not yet current: 20240101T003000Z is still later than 20240101T002959Z (20240101T001459Z + 15 min.)",
			now:     signTime.Add(-15*time.Minute - time.Second)},
		{name: "scope date differs from x-amz-date", code: "InvalidSignatureException",
			msgPart: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240101' != '20231231', from '20231231T235959Z'.",
			now:     time.Date(2024, 1, 1, 0, 5, 0, 0, time.UTC),
			mutate: func(_ *testing.T, r *http.Request) *http.Request {
				r.Header.Set("X-Amz-Date", "20231231T235959Z")
				return r
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := signedCall(t)
			if c.mutate != nil {
				req = c.mutate(t, req)
			}
			now := c.now
			if now.IsZero() {
				now = signTime
			}
			cred, err := verifyAt(t, req, now, c.opts)
			if cred != nil {
				t.Fatalf("verified: %+v", *cred)
			}
			wantCode(t, err, c.code, c.msgPart)
		})
	}
}

// editAuth rewrites the Authorization header of a signed request.
func editAuth(edit func(a *Authorization) string) func(*testing.T, *http.Request) *http.Request {
	return func(t *testing.T, r *http.Request) *http.Request {
		a, err := ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", edit(a))
		return r
	}
}

func TestVerifyDateHeaderFallback(t *testing.T) {
	// AWS accepts the HTTP Date header when X-Amz-Date is absent; the SDKs
	// never send that, so build the signature by hand from the same parts.
	body := []byte(`{}`)
	req := newJSONRequest(t, "http://h/", "GetTrail", body)
	req.Header.Set("Date", signTime.Format(http.TimeFormat))
	sr, b := serverSide(t, req)
	a := &Authorization{AccessKeyID: testAccessKey, Date: "20240101", Region: "us-east-1", Service: "cloudtrail",
		SignedHeaders: []string{"content-length", "content-type", "date", "host", "x-amz-target"}}
	sreq := &sigRequest{auth: a, amzDate: "20240101T003000Z", query: parseQuery(sr.URL.RawQuery)}
	sts := stringToSign(sreq.amzDate, a.Scope(), canonicalPrefix(sr, sreq)+bodyHash(b))
	a.Signature = hex.EncodeToString(hmacSHA256(signingKey(testSecret, a.Date, a.Region, a.Service), []byte(sts)))
	sr.Header.Set("Authorization", a.String())
	cred, err := VerifyRequest(context.Background(), sr, b, testLookup, signTime)
	if err != nil {
		t.Fatal(err)
	}
	if !cred.SignedAt.Equal(signTime) {
		t.Fatalf("signed at %v", cred.SignedAt)
	}
	// The date must be signed.
	a.SignedHeaders = []string{"content-length", "content-type", "host", "x-amz-target"}
	sr.Header.Set("Authorization", a.String())
	_, err = VerifyRequest(context.Background(), sr, b, testLookup, signTime)
	wantCode(t, err, "IncompleteSignatureException", "'date' must be a 'SignedHeader'")
}

func TestVerifyLookupFailure(t *testing.T) {
	req, _ := signedCall(t)
	sr, body := serverSide(t, req)
	boom := errors.New("disk on fire")
	_, err := VerifyRequest(context.Background(), sr, body, func(context.Context, string) (string, bool, error) {
		return "", false, boom
	}, signTime)
	wantCode(t, err, "InternalFailure", "internal error")
	if !errors.Is(err, boom) {
		t.Fatalf("cause lost: %v", err)
	}
}

func TestVerifyCanceledContext(t *testing.T) {
	req, _ := signedCall(t)
	sr, body := serverSide(t, req)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := VerifyRequest(ctx, sr, body, testLookup, signTime); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestParseAuthorization(t *testing.T) {
	h := "AWS4-HMAC-SHA256 Credential=CKIAX/20240101/us-east-1/cloudtrail/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abcdef"
	a, err := ParseAuthorization(h)
	if err != nil {
		t.Fatal(err)
	}
	want := Authorization{AccessKeyID: "CKIAX", Date: "20240101", Region: "us-east-1", Service: "cloudtrail",
		SignedHeaders: []string{"content-type", "host", "x-amz-date"}, Signature: "abcdef"}
	if a.String() != want.String() || a.String() != h {
		t.Fatalf("got %+v", a)
	}
	// Order and spacing of the parameters do not matter.
	b, err := ParseAuthorization("AWS4-HMAC-SHA256 Signature=abcdef,SignedHeaders=content-type;host;x-amz-date,   Credential=CKIAX/20240101/us-east-1/cloudtrail/aws4_request")
	if err != nil || b.String() != h {
		t.Fatalf("got %+v, %v", b, err)
	}
	_, err = ParseAuthorization("AWS4-HMAC-SHA256 Credential=a/20240101/r/s/aws4_request, Credential=b/20240101/r/s/aws4_request, SignedHeaders=host, Signature=00")
	wantCode(t, err, "IncompleteSignatureException", "more than one 'Credential'")
}
