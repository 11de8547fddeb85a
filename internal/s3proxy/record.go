package s3proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/event"
)

// eventSource is S3's CloudTrail event source.
const eventSource = "s3.amazonaws.com"

// maxUserAgent is CloudTrail's limit on userAgent (longer ones are cut).
const maxUserAgent = 1024

// hiddenParams are query parameters kept out of requestParameters, by
// their lower-case names: the signature and credential parts of presigned
// URLs (secrets, or as good as). They are matched whatever their case:
// SigV2 presigned URLs of temporary credentials carry the session token
// as "x-amz-security-token", and a client may spell any of them its own
// way. Every other parameter is recorded, the SDKs' "x-id" routing hint
// included, as S3 records it ("x-id": "DeleteObjects").
var hiddenParams = map[string]bool{
	"x-amz-signature": true, "x-amz-credential": true, "x-amz-security-token": true,
	"signature": true, "awsaccesskeyid": true,
}

// hiddenParam reports whether a query parameter is kept out of
// requestParameters.
func hiddenParam(k string) bool {
	if len(k) > len("x-amz-security-token") {
		return false
	}
	return hiddenParams[strings.ToLower(k)]
}

// recordTimeLayout is CloudTrail's eventTime format (event.FormatTime's).
const recordTimeLayout = "2006-01-02T15:04:05Z"

// buildRecord turns a finished call into its CloudTrail record (compact
// JSON), shaped like S3's own records. It appends the members directly,
// in CloudTrail's order, instead of going through event.APICall (a
// reflection-driven encoding and a parse of the result per call): the
// bytes are the same as event.APICall.Record's with the two S3 shapes
// patchRecord used to write (TestRecordMatchesAPICall and
// FuzzRecordMatchesAPICall check that), at a fraction of the CPU.
func (p *Proxy) buildRecord(r *http.Request, c *call) ([]byte, error) {
	eventID, err := uuid.NewRandom()
	if err != nil {
		return nil, fmt.Errorf("building the audit record of %s: generating eventID: %w", c.op.Name, err)
	}
	// A configuration document of up to 1 MiB, a long key and headers
	// can outgrow the journal's entry limit together: the record then
	// gives up its largest members (event.FitRecord) rather than the call
	// going unrecorded.
	rec, err := event.FitRecord(p.appendRecord(make([]byte, 0, 1536), r, c, eventID.String(), p.env.Now()), event.MaxRecordBytes)
	if err != nil {
		return nil, fmt.Errorf("building the audit record of %s: %w", c.op.Name, err)
	}
	return rec, nil
}

// appendRecord appends the call's record, with the given eventID and
// eventTime.
func (p *Proxy) appendRecord(b []byte, r *http.Request, c *call, eventID string, now time.Time) []byte {
	op := c.op
	requestID := c.requestID
	if requestID == "" {
		requestID = newRequestID()
	}
	b = append(b, `{"eventVersion":"`+event.CurrentEventVersion+`","userIdentity":`...)
	b = appendIdentity(b, p.userIdentity(c.cred))
	b = append(b, `,"eventTime":"`...)
	b = now.UTC().AppendFormat(b, recordTimeLayout)
	b = append(b, `","eventSource":"`+eventSource+`","eventName":`...)
	b = appendString(b, op.Name)
	b = append(b, `,"awsRegion":`...)
	b = appendString(b, p.cfg.Region)
	b = append(b, `,"sourceIPAddress":`...)
	b = appendString(b, p.sourceIP(r))
	if ua := userAgent(r.UserAgent()); ua != "" {
		b = append(b, `,"userAgent":`...)
		b = appendString(b, ua)
	}
	if c.errCode != "" {
		b = append(b, `,"errorCode":`...)
		b = appendString(b, c.errCode)
	}
	if msg := truncate(c.errMsg, 1024); msg != "" {
		b = append(b, `,"errorMessage":`...)
		b = appendString(b, msg)
	}
	b = append(b, `,"requestParameters":`...)
	body, tooLarge := c.in.kept()
	b = appendRequestParameters(b, r, op, body, tooLarge)
	b = append(b, `,"responseElements":`...)
	b = appendResponseElements(b, c)
	b = append(b, `,"additionalEventData":`...)
	b = appendAdditionalEventData(b, r, c)
	b = append(b, `,"requestID":`...)
	b = appendString(b, requestID)
	b = append(b, `,"eventID":`...)
	b = appendString(b, eventID)
	b = append(b, `,"readOnly":`...)
	b = strconv.AppendBool(b, op.ReadOnly)
	switch {
	case op.Level == Object:
		b = append(b, `,"resources":[{"type":"AWS::S3::Object","ARN":`...)
		b = appendString(b, "arn:aws:s3:::"+op.Bucket+"/"+op.Key)
		b = p.appendBucketResource(append(b, "},"...), op.Bucket)
	case op.Level == Bucket && op.Data && (op.ReadOnly || op.Name == "DeleteObjects"):
		// Listings name the prefix they cover, as ARNPrefix; so does
		// DeleteObjects, with the whole bucket's (S3 does not record
		// which keys it deleted).
		prefix := ""
		if op.ReadOnly {
			prefix = op.Query.Get("prefix")
		}
		b = append(b, `,"resources":[{"type":"AWS::S3::Object","ARNPrefix":`...)
		b = appendString(b, "arn:aws:s3:::"+op.Bucket+"/"+prefix)
		b = p.appendBucketResource(append(b, "},"...), op.Bucket)
	case op.Level == Bucket:
		b = p.appendBucketResource(append(b, `,"resources":[`...), op.Bucket)
	}
	b = append(b, `,"eventType":"AwsApiCall","managementEvent":`...)
	b = strconv.AppendBool(b, !op.Data)
	b = append(b, `,"recipientAccountId":`...)
	b = appendString(b, p.account)
	if op.Data {
		b = append(b, `,"eventCategory":"Data"`...)
	} else {
		b = append(b, `,"eventCategory":"Management"`...)
	}
	if r.TLS != nil {
		b = append(b, `,"tlsDetails":{`...)
		first := true
		for _, f := range [...]struct{ k, v string }{{"tlsVersion", event.TLSVersionName(r.TLS.Version)},
			{"cipherSuite", event.CipherSuiteName(r.TLS.CipherSuite)}, {"clientProvidedHostHeader", r.Host}} {
			if f.v == "" {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, f.k)
			b = append(b, ':')
			b = appendString(b, f.v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendBucketResource appends the bucket's resource and closes the
// resources array.
func (p *Proxy) appendBucketResource(b []byte, bucket string) []byte {
	b = append(b, '{')
	if p.account != "" {
		b = append(b, `"accountId":`...)
		b = appendString(b, p.account)
		b = append(b, ',')
	}
	b = append(b, `"type":"AWS::S3::Bucket","ARN":`...)
	b = appendString(b, "arn:aws:s3:::"+bucket)
	return append(b, "}]"...)
}

// appendIdentity appends userIdentity as event.UserIdentity encodes it
// (members in CloudTrail's order, empty ones left out), except for
// anonymous callers, whose empty principalId S3 writes.
func appendIdentity(b []byte, id event.UserIdentity) []byte {
	if id == (event.UserIdentity{Type: "AWSAccount", AccountID: anonymousAccount}) {
		return append(b, `{"type":"AWSAccount","principalId":"","accountId":"anonymous"}`...)
	}
	b = append(b, `{"type":`...)
	b = appendString(b, id.Type)
	for _, f := range [...]struct{ k, v string }{{"principalId", id.PrincipalID}, {"arn", id.ARN},
		{"accountId", id.AccountID}, {"accessKeyId", id.AccessKeyID}, {"userName", id.UserName}} {
		if f.v != "" {
			b = append(b, ',')
			b = appendString(b, f.k)
			b = append(b, ':')
			b = appendString(b, f.v)
		}
	}
	// userIdentity never sets SessionContext, InvokedBy or
	// IdentityProvider.
	return append(b, '}')
}

// appendString appends s as a JSON string, the way event records are
// written (encoding/json without HTML escaping). Plain ASCII, nearly
// every string of a record, is appended as is; anything else goes
// through encoding/json, which settles escapes, invalid UTF-8 and
// U+2028/U+2029 exactly as event.APICall does.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			enc, _ := jsonString(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStringHTML is appendString with encoding/json's default HTML
// escaping of '<', '>' and '&' (as \u003c, \u003e, \u0026), which
// additionalEventData has always had (it was encoded by json.Marshal).
func appendStringHTML(b []byte, s string) []byte {
	if strings.ContainsAny(s, "<>&") {
		enc, _ := json.Marshal(s)
		return append(b, enc...)
	}
	return appendString(b, s)
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

// appendRequestParameters appends S3's requestParameters: bucketName,
// Host, key and the query parameters (subresources such as "acl" with an
// empty value), for PutBucketPolicy the policy as "bucketPolicy", and
// for the configuration calls their XML document (see documentOps);
// null for ListBuckets without parameters, as in CloudTrail.
func appendRequestParameters(b []byte, r *http.Request, op Operation, body []byte, tooLarge bool) []byte {
	var small [8]string
	keys := small[:0]
	for k := range op.Query {
		if !hiddenParam(k) {
			keys = append(keys, k)
		}
	}
	if op.Level == Service && len(keys) == 0 {
		return append(b, "null"...)
	}
	sort.Strings(keys)
	b = append(b, '{')
	first := true
	field := func(k, v string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, v)
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
			if first {
				// Unreachable (PutBucketPolicy is a bucket call), but
				// never write a leading comma.
				b = append(b, `"bucketPolicy":`...)
			} else {
				b = append(b, `,"bucketPolicy":`...)
			}
			first = false
			b = append(b, compact.Bytes()...)
		}
	}
	docName := documentOps[op.Name]
	if docName != "" && (len(body) > 0 || tooLarge) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, docName)
		b = append(b, ':')
		if doc, err := parseDocument(body); tooLarge || err != nil {
			// Said, not left out: a detection that looks for the
			// document must see that it is missing.
			reason := "not one well-formed XML document"
			if tooLarge {
				reason = fmt.Sprintf("over %d bytes", maxDocument)
			}
			b = appendString(b, "(not recorded: "+reason+")")
		} else {
			b = appendDocumentRoot(b, doc)
		}
	}
	for _, k := range keys {
		if k == "bucketName" || k == "Host" || k == "key" || k == "bucketPolicy" || (docName != "" && k == docName) {
			continue // never let a query parameter pass for one of ours
		}
		field(k, op.Query.Get(k))
	}
	return append(b, '}')
}

// appendAdditionalEventData appends what S3 records about the transport:
// in CloudTrail's member order, numbers as numbers, strings HTML-escaped.
func appendAdditionalEventData(b []byte, r *http.Request, c *call) []byte {
	b = append(b, '{')
	if c.cred.SignatureVersion != "" {
		b = append(b, `"SignatureVersion":`...)
		b = appendStringHTML(b, c.cred.SignatureVersion)
		b = append(b, ',')
	}
	if r.TLS != nil {
		if cs := event.CipherSuiteName(r.TLS.CipherSuite); cs != "" {
			b = append(b, `"CipherSuite":`...)
			b = appendStringHTML(b, cs)
			b = append(b, ',')
		}
	}
	b = append(b, `"bytesTransferredIn":`...)
	b = strconv.AppendInt(b, c.in.n.Load(), 10)
	if c.cred.AuthenticationMethod != "" {
		b = append(b, `,"AuthenticationMethod":`...)
		b = appendStringHTML(b, c.cred.AuthenticationMethod)
	}
	if c.hostID != "" {
		b = append(b, `,"x-amz-id-2":`...)
		b = appendStringHTML(b, c.hostID)
	}
	b = append(b, `,"bytesTransferredOut":`...)
	b = strconv.AppendInt(b, c.out, 10)
	return append(b, '}')
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
