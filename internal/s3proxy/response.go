package s3proxy

import (
	"bytes"
	"encoding/xml"
	"io"
)

// What the proxy takes from the upstream's answer besides the status:
// the responseElements S3 records for object writes, and the errors S3
// reports inside a 200.

// responseHeaders are the response headers S3 records as responseElements
// of an object write (PutObject, CopyObject, the multipart calls): the
// object's server-side encryption, version and expiry. Their names are
// the members' names, as in S3's records.
var responseHeaders = [...]string{
	"x-amz-server-side-encryption",
	"x-amz-server-side-encryption-aws-kms-key-id",
	"x-amz-server-side-encryption-context",
	"x-amz-server-side-encryption-bucket-key-enabled",
	"x-amz-server-side-encryption-customer-algorithm",
	"x-amz-version-id",
	"x-amz-expiration",
}

// writesObject reports whether the operation's responseElements are its
// response headers (and, for CreateMultipartUpload, the upload it began).
func writesObject(name string) bool {
	switch name {
	case "PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload":
		return true
	}
	return false
}

// errorIn200 reports whether the operation can fail after S3 sent 200:
// S3 answers these slow calls with 200 at once, keeps the connection
// alive with white space, and sends an Error document as the body if the
// call then fails. The SDKs take such a body for the error it is, and so
// must the record.
func errorIn200(name string) bool {
	switch name {
	case "CopyObject", "UploadPartCopy", "CompleteMultipartUpload":
		return true
	}
	return false
}

// readsBody reports whether the proxy keeps a copy of a successful
// response's body while relaying it, to record what is in it.
func readsBody(name string) bool {
	return errorIn200(name) || name == "CreateMultipartUpload"
}

// bodyCopy relays a response body and keeps a copy of it, leading white
// space (S3's keep-alive) skipped, up to maxErrorBody bytes: the
// documents it is kept for are far smaller.
type bodyCopy struct {
	r       io.Reader
	kept    []byte
	started bool // past the leading white space
	over    bool // more than maxErrorBody bytes: the copy is incomplete
}

func (b *bodyCopy) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	data := p[:n]
	if !b.started {
		data = bytes.TrimLeft(data, " \t\r\n")
		b.started = len(data) > 0
	}
	if len(data) > 0 && !b.over {
		if len(b.kept)+len(data) > maxErrorBody {
			b.over, b.kept = true, nil
		} else {
			b.kept = append(b.kept, data...)
		}
	}
	return n, err
}

// body is the copy, or nil if it is incomplete.
func (b *bodyCopy) body() []byte {
	if b == nil || b.over {
		return nil
	}
	return b.kept
}

// checkEmbeddedError records the error of a 200 whose body is an Error
// document, for the operations that answer so.
func (c *call) checkEmbeddedError() {
	if c.errCode != "" || !errorIn200(c.op.Name) {
		return
	}
	if code, msg, ok := embeddedError(c.body.body()); ok {
		c.errCode, c.errMsg = code, msg
	}
}

// embeddedError is the code and message of an Error document sent with a
// 200, if the body is one.
func embeddedError(body []byte) (code, msg string, ok bool) {
	if !isErrorDocument(body) {
		return "", "", false
	}
	code, msg = parseS3Error(body)
	if code == "" {
		code = "InternalError"
	}
	return code, msg, true
}

// isErrorDocument reports whether an XML document's root element is
// Error.
func isErrorDocument(body []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.RawToken()
		if err != nil {
			return false
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local == "Error"
		}
	}
}

// initiateResult is CreateMultipartUpload's answer, whose members S3
// records among the responseElements.
type initiateResult struct {
	Bucket   string `xml:"Bucket"`
	Key      string `xml:"Key"`
	UploadID string `xml:"UploadId"`
}

// appendResponseElements appends the call's responseElements: null for
// reads, failures and calls without anything to record, as S3's records
// have; otherwise the object's encryption, version and expiry headers
// and, for CreateMultipartUpload, the bucket, key and uploadId.
func appendResponseElements(b []byte, c *call) []byte {
	if c.op.ReadOnly || c.errCode != "" || c.respHeader == nil || !writesObject(c.op.Name) {
		return append(b, "null"...)
	}
	start := len(b)
	b = append(b, '{')
	field := func(k, v string) {
		if len(b) > start+1 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, v)
	}
	for _, h := range responseHeaders {
		if v := c.respHeader.Get(h); v != "" {
			field(h, v)
		}
	}
	if c.op.Name == "CreateMultipartUpload" {
		var res initiateResult
		if body := c.body.body(); body != nil && xml.Unmarshal(body, &res) == nil && res.UploadID != "" {
			field("bucket", res.Bucket)
			field("key", res.Key)
			field("uploadId", res.UploadID)
		}
	}
	if len(b) == start+1 {
		return append(b[:start], "null"...)
	}
	return append(b, '}')
}
