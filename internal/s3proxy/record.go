package s3proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/cairn-audit/cairn/internal/event"
)

// eventSource is S3's CloudTrail event source.
const eventSource = "s3.amazonaws.com"

// maxUserAgent is CloudTrail's limit on userAgent (longer ones are cut).
const maxUserAgent = 1024

// hiddenParams are query parameters kept out of requestParameters: the
// signature and credential parts of presigned URLs (secrets, or as good
// as), and the SDKs' x-id routing hint, which names the operation again.
var hiddenParams = map[string]bool{
	"X-Amz-Signature": true, "X-Amz-Credential": true, "X-Amz-Security-Token": true,
	"Signature": true, "AWSAccessKeyId": true, "x-id": true,
}

// buildRecord turns a finished call into its CloudTrail record (compact
// JSON), shaped like S3's own records.
func (p *Proxy) buildRecord(r *http.Request, c *call) ([]byte, error) {
	op := c.op
	requestID := c.requestID
	if requestID == "" {
		requestID = newRequestID()
	}
	call := event.APICall{
		Time:               p.env.Now(),
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
		RequestParameters:  requestParameters(r, op, c.in.kept()),
		DataEvent:          op.Data,
	}
	aed, err := p.additionalEventData(r, c)
	if err != nil {
		return nil, err
	}
	call.AdditionalEventData = aed
	if r.TLS != nil {
		call.TLS = &event.TLSDetails{TLSVersion: tlsVersion(r.TLS.Version), CipherSuite: cipherSuite(r.TLS.CipherSuite),
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
	return patchRecord(rec.Raw, call.Identity, prefixARN)
}

// patchRecord writes the two S3 shapes event.APICall cannot: the empty
// principalId of anonymous callers, and resources that carry an ARNPrefix
// instead of an ARN (bucket listings).
func patchRecord(raw []byte, id event.UserIdentity, prefixARN string) ([]byte, error) {
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

// jsonString encodes s the way event records are written (no HTML
// escaping).
func jsonString(s string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// requestParameters is S3's requestParameters: bucketName, Host, key and
// the query parameters (subresources such as "acl" with an empty value),
// and for PutBucketPolicy the policy as "bucketPolicy"; null for
// ListBuckets without parameters, as in CloudTrail.
func requestParameters(r *http.Request, op Operation, body []byte) json.RawMessage {
	keys := make([]string, 0, len(op.Query))
	for k := range op.Query {
		if !hiddenParams[k] {
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
func (p *Proxy) additionalEventData(r *http.Request, c *call) (json.RawMessage, error) {
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
		d.CipherSuite = cipherSuite(r.TLS.CipherSuite)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("building additionalEventData: %w", err)
	}
	return b, nil
}

// userAgent is S3's rendering of the User-Agent header: in square
// brackets, cut to CloudTrail's limit.
func userAgent(ua string) string {
	if ua == "" {
		return ""
	}
	return "[" + truncate(ua, maxUserAgent-2) + "]"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") // never half a character
}

// tlsVersion names a TLS version as CloudTrail does ("TLSv1.2").
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}

// cipherSuite names a suite as CloudTrail does: OpenSSL's names for TLS
// 1.2 ("ECDHE-RSA-AES128-GCM-SHA256"), the IANA names for TLS 1.3.
func cipherSuite(id uint16) string {
	switch id {
	case tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		return "ECDHE-RSA-AES128-GCM-SHA256"
	case tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return "ECDHE-RSA-AES256-GCM-SHA384"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:
		return "ECDHE-ECDSA-AES128-GCM-SHA256"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:
		return "ECDHE-ECDSA-AES256-GCM-SHA384"
	case tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return "ECDHE-RSA-CHACHA20-POLY1305"
	case tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return "ECDHE-ECDSA-CHACHA20-POLY1305"
	}
	return strings.TrimSpace(tls.CipherSuiteName(id))
}
