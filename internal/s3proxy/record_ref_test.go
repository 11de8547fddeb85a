package s3proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
)

// refBuildRecord is how records were built before appendRecord: through
// event.APICall.Record, then patched. appendRecord must give the same
// bytes.
func (p *Proxy) refBuildRecord(r *http.Request, c *call, eventID string) ([]byte, error) {
	op := c.op
	requestID := c.requestID
	if requestID == "" {
		requestID = newRequestID()
	}
	call := event.APICall{
		Time:               p.env.Now(),
		EventID:            eventID,
		Source:             eventSource,
		Name:               op.Name,
		Region:             p.cfg.Region,
		SourceIP:           p.sourceIP(r),
		UserAgent:          userAgent(r.UserAgent()),
		RequestID:          requestID,
		RecipientAccountID: p.account,
		ErrorCode:          c.errCode,
		ErrorMessage:       truncate(c.errMsg, 1024),
		ReadOnly:           op.ReadOnly,
		Identity:           p.userIdentity(c.cred),
		RequestParameters:  refRequestParameters(r, op, keptBody(c)),
		DataEvent:          op.Data,
	}
	aed, err := p.refAdditionalEventData(r, c)
	if err != nil {
		return nil, err
	}
	call.AdditionalEventData = aed
	if r.TLS != nil {
		call.TLS = &event.TLSDetails{TLSVersion: event.TLSVersionName(r.TLS.Version), CipherSuite: event.CipherSuiteName(r.TLS.CipherSuite),
			ClientProvidedHostHeader: r.Host}
	}
	var prefixARN string
	switch {
	case op.Level == Object:
		call.Resources = []event.Resource{
			{Type: "AWS::S3::Object", ARN: "arn:aws:s3:::" + op.Bucket + "/" + op.Key},
			{Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::" + op.Bucket, AccountID: p.account},
		}
	case op.Level == Bucket && op.Data && op.ReadOnly:
		// Listings name the prefix they cover, as ARNPrefix.
		prefixARN = "arn:aws:s3:::" + op.Bucket + "/" + op.Query.Get("prefix")
		call.Resources = []event.Resource{
			{Type: "AWS::S3::Object", ARN: prefixARN},
			{Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::" + op.Bucket, AccountID: p.account},
		}
	case op.Level == Bucket:
		call.Resources = []event.Resource{{Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::" + op.Bucket, AccountID: p.account}}
	}
	rec, err := call.Record()
	if err != nil {
		return nil, err
	}
	return refPatchRecord(rec.Raw, call.Identity, prefixARN)
}

// patchRecord writes the two S3 shapes event.APICall cannot: the empty
// principalId of anonymous callers, and resources that carry an ARNPrefix
// instead of an ARN (bucket listings).
func refPatchRecord(raw []byte, id event.UserIdentity, prefixARN string) ([]byte, error) {
	changed := false
	if id.Type == "AWSAccount" && id.AccountID == anonymousAccount {
		from := []byte(`"userIdentity":{"type":"AWSAccount","accountId":"anonymous"}`)
		if i := bytes.Index(raw, from); i >= 0 {
			raw = append(raw[:i:i], append([]byte(`"userIdentity":{"type":"AWSAccount","principalId":"","accountId":"anonymous"}`), raw[i+len(from):]...)...)
			changed = true
		}
	}
	if prefixARN != "" {
		arn, err := jsonString(prefixARN)
		if err != nil {
			return nil, err
		}
		from := append([]byte(`"type":"AWS::S3::Object","ARN":`), arn...)
		if i := bytes.LastIndex(raw, from); i >= 0 {
			to := append([]byte(`"type":"AWS::S3::Object","ARNPrefix":`), arn...)
			raw = append(raw[:i:i], append(to, raw[i+len(from):]...)...)
			changed = true
		}
	}
	if changed {
		if _, err := event.Parse(raw); err != nil {
			return nil, fmt.Errorf("building the audit record: the S3 shape does not parse: %w", err)
		}
	}
	return raw, nil
}

// requestParameters is S3's requestParameters: bucketName, Host, key and
// the query parameters (subresources such as "acl" with an empty value),
// and for PutBucketPolicy the policy as "bucketPolicy"; null for
// ListBuckets without parameters, as in CloudTrail.
func refRequestParameters(r *http.Request, op Operation, body []byte) json.RawMessage {
	keys := make([]string, 0, len(op.Query))
	for k := range op.Query {
		if !hiddenParam(k) {
			keys = append(keys, k)
		}
	}
	if op.Level == Service && len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	field := func(k, v string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := jsonString(k)
		vb, _ := jsonString(v)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	if op.Level != Service {
		field("bucketName", op.Bucket)
		field("Host", r.Host)
	}
	if op.Level == Object {
		field("key", op.Key)
	}
	if op.Name == "PutBucketPolicy" && len(body) > 0 && json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			b.WriteString(`,"bucketPolicy":`)
			b.Write(compact.Bytes())
		}
	}
	for _, k := range keys {
		if k == "bucketName" || k == "Host" || k == "key" || k == "bucketPolicy" {
			continue // never let a query parameter pass for one of ours
		}
		field(k, op.Query.Get(k))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// additionalEventData is what S3 records about the transport: in
// CloudTrail's member order, numbers as numbers.
func (p *Proxy) refAdditionalEventData(r *http.Request, c *call) (json.RawMessage, error) {
	d := struct {
		SignatureVersion     string `json:"SignatureVersion,omitempty"`
		CipherSuite          string `json:"CipherSuite,omitempty"`
		BytesIn              int64  `json:"bytesTransferredIn"`
		AuthenticationMethod string `json:"AuthenticationMethod,omitempty"`
		HostID               string `json:"x-amz-id-2,omitempty"`
		BytesOut             int64  `json:"bytesTransferredOut"`
	}{
		SignatureVersion:     c.cred.SignatureVersion,
		BytesIn:              c.in.n.Load(),
		AuthenticationMethod: c.cred.AuthenticationMethod,
		HostID:               c.hostID,
		BytesOut:             c.out,
	}
	if r.TLS != nil {
		d.CipherSuite = event.CipherSuiteName(r.TLS.CipherSuite)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("building additionalEventData: %w", err)
	}
	return b, nil
}

// recordProxy is a proxy set up as Start would, for building records.
func recordProxy(account string) *Proxy {
	p, err := New(Config{Upstream: "http://127.0.0.1:1", Region: "eu-west-3", AccountID: account,
		TrustedProxies: nil, VirtualHostDomain: "s3.local",
		Identities: []Identity{
			{AccessKeyID: "AKIDALICE", UserName: "alice", PrincipalID: "AIDAALICE", ARN: "arn:aws:iam::123456789012:user/alice", AccountID: "123456789012"},
			{AccessKeyID: "AKIDROLE", Type: "AssumedRole", ARN: "arn:aws:sts::123456789012:assumed-role/r/s\u00e9", AccountID: "123456789012"},
			{AccessKeyID: "AKIDODD", Type: "AWSAccount", AccountID: "anonymous", UserName: "<&\"quoted\"\u2028>"},
		}})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 11, 21, 16, 4, 5, 999, time.FixedZone("x", 3600))
	p.env.Now = func() time.Time { return now }
	p.account = account
	return p
}

// checkRecordMatches builds the record of a request both ways and
// compares the bytes.
func checkRecordMatches(t *testing.T, p *Proxy, r *http.Request, c *call) {
	t.Helper()
	if c.requestID == "" {
		c.requestID = "FIXEDREQUESTID00" // newRequestID is random
	}
	const eventID = "6f1e2c1a-3b7d-4f7e-9b0a-2d7c1f0e9a11"
	want, err := p.refBuildRecord(r, c, eventID)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	got := p.appendRecord(nil, r, c, eventID, p.env.Now())
	if !bytes.Equal(got, want) {
		t.Fatalf("%s %s: records differ\n got: %s\nwant: %s", r.Method, r.RequestURI, got, want)
	}
	if _, err := event.Parse(got); err != nil {
		t.Fatalf("record does not parse: %v\n%s", err, got)
	}
}

// recordCall decodes a raw request into what the handler would know.
func recordCall(t *testing.T, p *Proxy, raw string) (*http.Request, *call, bool) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil, nil, false
	}
	r.RemoteAddr = "192.0.2.7:5555"
	op, err := p.decoder.Decode(r)
	if err != nil {
		return nil, nil, false
	}
	c := &call{op: op, cred: ParseCredential(r.Header, op.Query), in: &countingReader{r: r.Body}}
	return r, c, true
}

func TestRecordMatchesAPICall(t *testing.T) {
	auth := "Authorization: AWS4-HMAC-SHA256 Credential=AKIDALICE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n"
	for _, account := range []string{"123456789012", ""} {
		p := recordProxy(account)
		for i, tc := range []struct {
			raw     string
			tls     bool
			status  int
			errCode string
			errMsg  string
			hostID  string
			out     int64
			policy  string
		}{
			{raw: "GET /b/k HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUser-Agent: aws-sdk-go-v2/1.0\r\n" + auth + "\r\n", out: 4096, hostID: "abc/def+=="},
			{raw: "PUT /b/dir/k%20%C3%A9%22q%5C%E2%80%A8?x-id=PutObject HTTP/1.1\r\nHost: h\r\n" + auth + "\r\n", tls: true},
			{raw: "GET /b/k HTTP/1.1\r\nHost: h\r\n\r\n", status: 404, errCode: "NoSuchKey", errMsg: "The key <&> \"does\" not exist\u2029\x01"},
			{raw: "GET /b?list-type=2&prefix=a%2Fb%22&delimiter=%2F HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDROLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n"},
			{raw: "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: AWS AKIDUNKNOWN:c2ln\r\n\r\n"},
			{raw: "GET /?x-id=ListBuckets&max-buckets=3 HTTP/1.1\r\nHost: h\r\n" + auth + "\r\n", tls: true},
			{raw: "PUT /b?policy HTTP/1.1\r\nHost: b.s3.local\r\nContent-Length: 0\r\n" + auth + "\r\n", policy: "{ \"Version\": \"2012-10-17\", \"Statement\": [] }"},
			{raw: "PUT /?acl&bucketName=evil&key=evil HTTP/1.1\r\nHost: b.s3.local\r\n\r\n"},
			{raw: "GET /k?X-Amz-Credential=AKIDODD%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab&X-Amz-Date=20240101T000000Z HTTP/1.1\r\nHost: b.s3.local\r\nUser-Agent: " + strings.Repeat("\u00e9", 600) + "\r\n\r\n"},
			{raw: "DELETE /b HTTP/1.1\r\nHost: h\r\n" + auth + "\r\n", status: 503, errCode: "ServiceUnavailable", errMsg: strings.Repeat("m", 2000)},
			{raw: "POST /b/k?uploads HTTP/1.1\r\nHost: h\r\n" + auth + "\r\n", out: 1 << 40},
		} {
			r, c, ok := recordCall(t, p, tc.raw)
			if !ok {
				t.Fatalf("case %d does not decode", i)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}
			}
			c.status, c.errCode, c.errMsg, c.hostID, c.out = tc.status, tc.errCode, tc.errMsg, tc.hostID, tc.out
			if tc.policy != "" {
				c.in = &countingReader{r: http.NoBody, keep: bytes.NewBufferString(tc.policy)}
				c.in.n.Store(int64(len(tc.policy)))
			} else {
				c.in.n.Store(int64(i * 1000))
			}
			checkRecordMatches(t, p, r, c)
		}
	}
}

// FuzzRecordMatchesAPICall builds the records of arbitrary requests both
// ways: the bytes must be the same.
func FuzzRecordMatchesAPICall(f *testing.F) {
	f.Add("GET /b/k?acl HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\n\r\n", "NoSuchKey", "msg", "id2", true)
	f.Add("GET /b?list-type=2&prefix=%E2%80%A8%FF HTTP/1.1\r\nHost: b.s3.local\r\nAuthorization: AWS AKIDALICE:x\r\n\r\n", "", "\xff<>", "", false)
	p := recordProxy("123456789012")
	f.Fuzz(func(t *testing.T, raw, errCode, errMsg, hostID string, useTLS bool) {
		r, c, ok := recordCall(t, p, raw)
		if !ok {
			return
		}
		if useTLS {
			r.TLS = &tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
		}
		c.errCode, c.errMsg, c.hostID = errCode, errMsg, hostID
		checkRecordMatches(t, p, r, c)
	})
}

// BenchmarkRecord compares the cost of a GetObject's record built by
// appendRecord with the event.APICall path it replaced.
func BenchmarkRecord(b *testing.B) {
	p := recordProxy("123456789012")
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /bench/get-4KB?x-id=GetObject HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n" +
		"User-Agent: aws-sdk-go-v2/1.39.2 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/s3#1.88.4 m/E,Z,g\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDALICE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n")))
	if err != nil {
		b.Fatal(err)
	}
	r.RemoteAddr = "127.0.0.1:40000"
	op, err := p.decoder.Decode(r)
	if err != nil {
		b.Fatal(err)
	}
	c := &call{op: op, cred: ParseCredential(r.Header, op.Query), in: &countingReader{r: http.NoBody},
		status: 200, requestID: "18799A5B2C3D4E5F", out: 4096}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.buildRecord(r, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("APICall", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.refBuildRecord(r, c, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// keptBody is the copy of the request body the record is built from.
func keptBody(c *call) []byte {
	b, _ := c.in.kept()
	return b
}
