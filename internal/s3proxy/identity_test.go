package s3proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/tlstest"
)

func TestParseCredential(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		query  string
		want   Credential
	}{
		{"sigv4 header", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", "",
			Credential{"AKIDEXAMPLE", "SigV4", "AuthHeader", false}},
		{"sigv4 header, no spaces", "AWS4-HMAC-SHA256 SignedHeaders=host,Credential=AKID2/20240101/us-east-1/s3/aws4_request,Signature=abc", "",
			Credential{"AKID2", "SigV4", "AuthHeader", false}},
		{"sigv2 header", "AWS AKIDV2:c2lnbmF0dXJl", "", Credential{"AKIDV2", "SigV2", "AuthHeader", false}},
		{"sigv4a header", "AWS4-ECDSA-P256-SHA256 Credential=AKID4A/20240101/s3/aws4_request, SignedHeaders=host;x-amz-region-set, Signature=3045", "",
			Credential{"AKID4A", "SigV4a", "AuthHeader", false}},
		{"sigv4 presigned", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDQ%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=00",
			Credential{"AKIDQ", "SigV4", "QueryString", false}},
		{"sigv2 presigned", "", "AWSAccessKeyId=AKIDQ2&Expires=1&Signature=x", Credential{"AKIDQ2", "SigV2", "QueryString", false}},
		{"anonymous", "", "", Credential{}},
		{"bearer token is not S3", "Bearer xyz", "", Credential{}},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Authorization", tc.header)
		}
		q, _ := url.ParseQuery(tc.query)
		if got := ParseCredential(h, q); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestUserIdentity(t *testing.T) {
	p, err := New(Config{Upstream: "http://127.0.0.1:1", Identities: []Identity{
		{AccessKeyID: "AKIAALICE", UserName: "alice", ARN: "arn:aws:iam::123456789012:user/alice", AccountID: "123456789012", PrincipalID: "AIDAALICE"},
		{AccessKeyID: "ASIAROLE", Type: "AssumedRole", ARN: "arn:aws:sts::123456789012:assumed-role/r/s", AccountID: "123456789012", PrincipalID: "AROA:s"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	alice := p.userIdentity(Credential{AccessKeyID: "AKIAALICE", SignatureVersion: "SigV4"})
	if alice.Type != "IAMUser" || alice.UserName != "alice" || alice.AccessKeyID != "AKIAALICE" || alice.PrincipalID != "AIDAALICE" {
		t.Errorf("configured user: %+v", alice)
	}
	if role := p.userIdentity(Credential{AccessKeyID: "ASIAROLE"}); role.Type != "AssumedRole" || role.UserName != "" {
		t.Errorf("configured role: %+v", role)
	}
	if u := p.userIdentity(Credential{AccessKeyID: "AKIASTRANGER"}); u.Type != "Unknown" || u.AccessKeyID != "AKIASTRANGER" || u.AccountID != "" {
		t.Errorf("unknown key: %+v", u)
	}
	if a := p.userIdentity(Credential{}); a.Type != "AWSAccount" || a.AccountID != "anonymous" {
		t.Errorf("anonymous: %+v", a)
	}
}

func TestSourceIPHonoursOnlyTrustedProxies(t *testing.T) {
	p, err := New(Config{Upstream: "http://127.0.0.1:1", TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ remote, xff, want string }{
		{"203.0.113.9:5000", "198.51.100.1", "203.0.113.9"},         // untrusted peer: its header is ignored
		{"10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},           // trusted peer
		{"10.1.2.3:5000", "198.51.100.1, 10.9.9.9", "198.51.100.1"}, // a chain of trusted proxies
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.1", "198.51.100.1"},  // a forged first hop is not believed
		{"10.1.2.3:5000", "", "10.1.2.3"},                           // no header
		{"10.1.2.3:5000", "garbage", "10.1.2.3"},                    // unreadable header
		{"[::ffff:127.0.0.1]:5000", "2001:db8::1", "2001:db8::1"},   // IPv4-mapped peer
		{"10.1.2.3:5000", "10.0.0.1, 10.0.0.2", "10.0.0.1"},         // all trusted: the first
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := p.sourceIP(r); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// TestTLSListener serves the proxy over HTTPS: the events carry the
// cipher suite and tlsDetails, as S3's do.
func TestTLSListener(t *testing.T) {
	cert, key, _ := tlstest.SelfSigned(t)
	r := newRig(t, rigOptions{configure: func(c *Config) { c.TLSCert, c.TLSKey = cert, key }})
	if !strings.HasPrefix(r.p.URL(), "https://") {
		t.Fatalf("proxy URL %s", r.p.URL())
	}
	c := r.client(r.p.URL())
	if _, err := c.ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets over TLS: %v", err)
	}
	if _, err := c.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("nope")}); err == nil {
		t.Fatal("HeadBucket of a missing bucket succeeded")
	}
	evs := r.events(t)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	e := evs[0]
	if path(e, "tlsDetails.tlsVersion") != "TLSv1.3" || path(e, "tlsDetails.cipherSuite") == nil ||
		path(e, "tlsDetails.clientProvidedHostHeader") != r.p.Addr() || path(e, "additionalEventData.CipherSuite") != path(e, "tlsDetails.cipherSuite") {
		t.Errorf("tlsDetails %v additionalEventData %v", e["tlsDetails"], e["additionalEventData"])
	}
	if h := evs[1]; h["eventName"] != "HeadBucket" || h["errorCode"] != "NotFound" || h["eventCategory"] != "Management" {
		t.Errorf("HeadBucket of a missing bucket: %v %v %v", h["eventName"], h["errorCode"], h["eventCategory"])
	}
}

// TestConnectionListedCredentialsDoNotNameTheCaller: headers listed in
// Connection are hop-by-hop and never reach the upstream, which then
// serves the call unsigned; the record must not name the identity of an
// Authorization header the upstream never saw (or anyone could have
// their anonymous calls recorded as a configured user's by sending her
// access key ID). Every Connection line counts, not only the first.
func TestConnectionListedCredentialsDoNotNameTheCaller(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("hop")}); err != nil {
		t.Fatal(err)
	}
	before := len(r.events(t))
	forged := "AWS4-HMAC-SHA256 Credential=" + s3test.AccessKeyID + "/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" +
		strings.Repeat("0", 64)
	for _, conn := range []string{
		"Connection: Authorization\r\n",
		"Connection: keep-alive\r\nConnection: Authorization\r\n",
	} {
		nc, err := net.Dial("tcp", r.p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(nc, "GET /hop/k HTTP/1.1\r\nHost: "+r.p.Addr()+"\r\nAuthorization: "+forged+"\r\n"+conn+"\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		nc.Close()
	}
	evs := r.events(t)[before:]
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	for i, ev := range evs {
		if id := path(ev, "userIdentity.type"); id != "AWSAccount" || path(ev, "userIdentity.accountId") != "anonymous" {
			t.Errorf("call %d, whose Authorization was hop-by-hop (the upstream served it unsigned), recorded as %v", i, ev["userIdentity"])
		}
	}
}

// TestConnectionListedCopySourceDoesNotNameTheCall: an x-amz-copy-source
// the client lists in Connection never reaches the upstream, which then
// stores the request's body (a PutObject): the call must be recorded as
// the PutObject it is, not as a CopyObject.
func TestConnectionListedCopySourceDoesNotNameTheCall(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("hop")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("hop"), Key: aws.String("src"), Body: strings.NewReader("source")}); err != nil {
		t.Fatal(err)
	}
	before := len(r.events(t))
	const body = "the body the upstream stores"
	req, err := http.NewRequest("PUT", r.p.URL()+"/hop/dst", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.sign(t, req, []byte(body))
	req.Header.Set("X-Amz-Copy-Source", "/hop/src") // unsigned, and hop-by-hop:
	req.Header.Set("Connection", "X-Amz-Copy-Source")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT through the proxy: %s %s", resp.Status, b)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("hop"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(stored) != body {
		t.Fatalf("the upstream stored %q, want the request's body (it did a PutObject)", stored)
	}
	if evs := r.events(t)[before:]; len(evs) < 1 || evs[0]["eventName"] != "PutObject" {
		t.Errorf("the upstream did a PutObject, recorded as %v", evs[0]["eventName"])
	}
}

// TestSigV4aCallerIsNamed: a call signed with SigV4a (the signature of
// multi-Region access points) names its access key like a SigV4 one;
// it was recorded as an anonymous call. versitygw refuses the signature,
// and the refused call is recorded under the key that made it, as
// CloudTrail does.
func TestSigV4aCallerIsNamed(t *testing.T) {
	r := newRig(t, rigOptions{})
	req, err := http.NewRequest("GET", r.p.URL()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	req.Header.Set("X-Amz-Region-Set", "*")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req.Header.Set("Authorization", "AWS4-ECDSA-P256-SHA256 Credential="+s3test.AccessKeyID+"/20260101/s3/aws4_request, "+
		"SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-region-set, Signature=3045022100ab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	evs := r.events(t)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	if path(evs[0], "userIdentity.userName") != "alice" || path(evs[0], "userIdentity.accessKeyId") != s3test.AccessKeyID ||
		path(evs[0], "additionalEventData.SignatureVersion") != "SigV4a" {
		t.Errorf("a SigV4a call by alice's key recorded as %v, %v", evs[0]["userIdentity"], evs[0]["additionalEventData"])
	}
}
