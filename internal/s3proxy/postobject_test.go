package s3proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

// signedForm builds a browser-form upload (S3 PostObject) signed with
// SigV4 the way S3's docs describe, fields first and the file last.
func signedForm(t *testing.T, bucket, key, akid, secret, region string, file []byte) (body []byte, contentType string) {
	t.Helper()
	return form(t, bucket, key, akid, secret, region, nil, nil, file)
}

// TestFormUploadNamesItsSigner: a browser-form upload (PostObject) carries
// its signature in form fields, not in a header; its record names the
// signer's configured identity, not an anonymous caller, whatever the
// size of the file after the fields. versitygw checks the signatures, so
// the forms reached it intact.
func TestFormUploadNamesItsSigner(t *testing.T) {
	r := newRig(t, rigOptions{})
	if _, err := r.client(r.p.URL()).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("forms")}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{10, 3 << 20} {
		body, ct := signedForm(t, "forms", "up.bin", s3test.AccessKeyID, s3test.SecretAccessKey, s3test.Region, bytes.Repeat([]byte("x"), size))
		resp, err := http.Post(r.p.URL()+"/forms", ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent { // versitygw checked the form's signature
			t.Fatalf("%d-byte form upload: versitygw answered %d %.300s", size, resp.StatusCode, answer)
		}
		evs := r.events(t)
		e := evs[len(evs)-1]
		if e["eventName"] != "PostObject" || path(e, "userIdentity.userName") != "alice" ||
			path(e, "userIdentity.accessKeyId") != s3test.AccessKeyID || path(e, "additionalEventData.SignatureVersion") != "SigV4" {
			t.Errorf("%d-byte form upload (upstream answered %d): %v %v %v", size, resp.StatusCode, e["eventName"], e["userIdentity"], e["additionalEventData"])
		}
		if rp, _ := e["requestParameters"].(map[string]any); rp["Policy"] != nil || rp["X-Amz-Signature"] != nil {
			t.Errorf("form fields in requestParameters: %v", rp)
		}
	}
	// An unsigned form is anonymous.
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("key", "anon.bin")
	fw, _ := w.CreateFormFile("file", "a")
	fw.Write([]byte("a"))
	w.Close()
	resp, err := http.Post(r.p.URL()+"/forms", w.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	evs := r.events(t)
	if e := evs[len(evs)-1]; path(e, "userIdentity.accountId") != "anonymous" {
		t.Errorf("unsigned form upload: %v", e["userIdentity"])
	}
}

// TestFormUploadSignerCannotBeForged: the form's own fields name the
// signer. A header or query credential beside them (which the upstream
// ignores for a form upload) does not, and a credential the proxy cannot
// read (beyond the first 64 KiB, or two that disagree) makes the caller
// Unknown, never anonymous and never another user.
func TestFormUploadSignerCannotBeForged(t *testing.T) {
	r := newRig(t, rigOptions{configure: func(c *Config) {
		c.Identities = append(c.Identities, Identity{AccessKeyID: "AKIAVICTIMVICTIM0001", UserName: "bob", PrincipalID: "AIDAEXAMPLEBOB0001",
			ARN: "arn:aws:iam::" + testAccount + ":user/bob", AccountID: testAccount})
	}})
	if _, err := r.client(r.p.URL()).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("forms")}); err != nil {
		t.Fatal(err)
	}
	const bobCred = "AKIAVICTIMVICTIM0001/20261121/us-east-1/s3/aws4_request"
	for _, tc := range []struct {
		name, query, auth string
		before, after     [][2]string
		want              string // userIdentity.userName, or "Unknown" for type Unknown
	}{
		{name: "query credential", query: "?X-Amz-Credential=" + url.QueryEscape(bobCred) + "&X-Amz-Algorithm=AWS4-HMAC-SHA256", want: "alice"},
		{name: "query v2 key", query: "?AWSAccessKeyId=AKIAVICTIMVICTIM0001", want: "alice"},
		{name: "header", auth: "AWS4-HMAC-SHA256 Credential=" + bobCred + ", SignedHeaders=host, Signature=00", want: "alice"},
		{name: "70 KiB before the credential", before: [][2]string{{"x-ignore-pad", strings.Repeat("p", 70<<10)}}, want: "Unknown"},
		{name: "a second, different credential", after: [][2]string{{"x-amz-credential", bobCred}}, want: "Unknown"},
	} {
		body, ct := form(t, "forms", "up.bin", s3test.AccessKeyID, s3test.SecretAccessKey, s3test.Region, tc.before, tc.after, []byte("payload"))
		req, err := http.NewRequest("POST", r.p.URL()+"/forms"+tc.query, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		evs := r.events(t)
		e := evs[len(evs)-1]
		got := path(e, "userIdentity.userName")
		if path(e, "userIdentity.type") == "Unknown" {
			got = "Unknown"
		}
		if e["eventName"] != "PostObject" || got != tc.want {
			t.Errorf("%s: upstream answered %d %.200s; recorded %v %v, want %s", tc.name, resp.StatusCode, answer, e["eventName"], e["userIdentity"], tc.want)
		}
	}
}

// form builds a SigV4-signed form upload with extra fields before and
// after the credential (the policy allows one named "x-ignore-pad").
func form(t *testing.T, bucket, key, akid, secret, region string, before, after [][2]string, file []byte) ([]byte, string) {
	t.Helper()
	now := time.Now().UTC()
	date := now.Format("20060102")
	cred := fmt.Sprintf("%s/%s/%s/s3/aws4_request", akid, date, region)
	amzDate := now.Format("20060102T150405Z")
	pad := ""
	for _, f := range append(append([][2]string{}, before...), after...) {
		if f[0] == "x-ignore-pad" {
			pad = `,["starts-with","$x-ignore-pad",""]`
		}
	}
	policy := base64.StdEncoding.EncodeToString(fmt.Appendf(nil,
		`{"expiration":%q,"conditions":[{"bucket":%q},{"key":%q},{"x-amz-algorithm":"AWS4-HMAC-SHA256"},{"x-amz-credential":%q},{"x-amz-date":%q}%s]}`,
		now.Add(time.Hour).Format(time.RFC3339), bucket, key, cred, amzDate, pad))
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	signingKey := mac(mac(mac(mac([]byte("AWS4"+secret), date), region), "s3"), "aws4_request")
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fields := append([][2]string{}, before...)
	fields = append(fields, [][2]string{{"key", key}, {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"}, {"X-Amz-Credential", cred}}...)
	fields = append(fields, after...)
	fields = append(fields, [][2]string{{"X-Amz-Date", amzDate}, {"Policy", policy}, {"X-Amz-Signature", hex.EncodeToString(mac(signingKey, policy))}}...)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("file", "upload.bin")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func TestFormCredential(t *testing.T) {
	build := func(fields ...string) (string, []byte) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "file" {
				fw, _ := w.CreateFormFile("file", "f")
				fw.Write([]byte(fields[i+1]))
				continue
			}
			_ = w.WriteField(fields[i], fields[i+1])
		}
		w.Close()
		return w.FormDataContentType(), buf.Bytes()
	}
	for _, tc := range []struct {
		fields []string
		cut    int // keep only this many bytes of the body, when > 0
		want   Credential
	}{
		{[]string{"x-amz-credential", "AKIDV4/20261121/us-east-1/s3/aws4_request", "file", "data"}, 0, Credential{AccessKeyID: "AKIDV4", SignatureVersion: "SigV4"}},
		{[]string{"X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256", "X-AMZ-CREDENTIAL", "AKIDV4A/20261121/s3/aws4_request"}, 0, Credential{AccessKeyID: "AKIDV4A", SignatureVersion: "SigV4a"}},
		{[]string{"AWSAccessKeyId", "AKIDV2", "signature", "c2ln", "file", "x"}, 0, Credential{AccessKeyID: "AKIDV2", SignatureVersion: "SigV2"}},
		// Fields after the file do not count (S3 ignores them).
		{[]string{"file", "x", "x-amz-credential", "AKIDLATE/20261121/us-east-1/s3/aws4_request"}, 0, Credential{}},
		// A credential cut short by the kept prefix is not guessed, and
		// the caller is not taken for anonymous either.
		{[]string{"x-amz-credential", "AKIDCUT/20261121/us-east-1/s3/aws4_request"}, 120, Credential{Unreadable: true}},
		{[]string{"key", "k", "x-amz-credential", "AKIDCUT/20261121/us-east-1/s3/aws4_request"}, 60, Credential{Unreadable: true}},
		// Two credentials that disagree name no one; the same one twice is fine.
		{[]string{"x-amz-credential", "AKIDONE/d/r/s3/aws4_request", "X-Amz-Credential", "AKIDTWO/d/r/s3/aws4_request"}, 0, Credential{Unreadable: true}},
		{[]string{"x-amz-credential", "AKIDONE/d/r/s3/aws4_request", "X-Amz-Credential", "AKIDONE/d/r/s3/aws4_request"}, 0, Credential{AccessKeyID: "AKIDONE", SignatureVersion: "SigV4"}},
		{[]string{"key", "k"}, 0, Credential{}},
		{[]string{"key", "k", "file", "x"}, 0, Credential{}},
	} {
		ct, body := build(tc.fields...)
		if tc.cut > 0 {
			body = body[:tc.cut]
		}
		if got := formCredential(ct, body); got != tc.want {
			t.Errorf("form %v (cut %d): %+v, want %+v", tc.fields, tc.cut, got, tc.want)
		}
	}
	if got := formCredential("application/x-www-form-urlencoded", []byte("x-amz-credential=AKID/x")); got != (Credential{}) {
		t.Errorf("urlencoded body: %+v", got)
	}
}
