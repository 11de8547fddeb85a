package s3proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzDecode feeds raw HTTP requests to the operation decoder and the
// credential parser: they must never panic, must either name a table
// operation or refuse with ErrNotS3, and what they name must be
// consistent with the request.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n",
		"PUT /b/k HTTP/1.1\r\nHost: h\r\nX-Amz-Copy-Source: /b/j\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n",
		"GET /k?X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab HTTP/1.1\r\nHost: b.s3.local\r\n\r\n",
		"POST /b?delete HTTP/1.1\r\nHost: h\r\nAuthorization: AWS AKID:c2ln\r\n\r\n",
		"GET /k HTTP/1.1\r\nHost: my.b.s3.dualstack.us-east-1.amazonaws.com\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	names := map[string]bool{}
	for _, ru := range opTable {
		names[ru.name] = true
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		q, _ := url.ParseQuery(r.URL.RawQuery)
		c := ParseCredential(r.Header, q)
		if c.AccessKeyID != "" && c.SignatureVersion == "" {
			t.Fatalf("access key %q without a signature version", c.AccessKeyID)
		}
		op, err := Decoder{VirtualHostDomain: "s3.local"}.Decode(r)
		if err != nil {
			if !errors.Is(err, ErrNotS3) {
				t.Fatalf("error %v does not wrap ErrNotS3", err)
			}
			return
		}
		if !names[op.Name] {
			t.Fatalf("operation %q is not in the table", op.Name)
		}
		if op.Key != "" && op.Bucket == "" {
			t.Fatalf("key %q without a bucket", op.Key)
		}
		if (op.Level == Object) != (op.Key != "") || (op.Level == Service) != (op.Bucket == "") {
			t.Fatalf("level %s with bucket %q key %q", op.Level, op.Bucket, op.Key)
		}
		if op.ReadOnly && r.Method != "GET" && r.Method != "HEAD" && op.Name != "SelectObjectContent" {
			t.Fatalf("%s %s is read-only", r.Method, op.Name)
		}
		if strings.Contains(op.Bucket, "/") && op.Level != Object {
			t.Fatalf("bucket %q has a slash", op.Bucket)
		}
	})
}

// FuzzDocument feeds request bodies to the configuration-document
// converter: it must never panic, and what it accepts becomes one JSON
// value (an object, or the root's text) with no member twice in an
// object (readers keep one of them: the other would be hidden), so that
// a client's document can never break or blur the record around it.
func FuzzDocument(f *testing.F) {
	for _, s := range []string{
		`<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Status></VersioningConfiguration>`,
		`<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value/></Tag></TagSet></Tagging>`,
		`<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><Days>3</Days></PublicAccessBlockConfiguration>`,
		`<a b="1" b="2"><b>x</b><c:d xmlns:c="u">&lt;&#x1F600;</c:d></a>`,
		`<?xml version="1.0"?><!-- c --><a><![CDATA[<x>]]></a>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := parseDocument(body)
		if err != nil {
			return
		}
		out := appendDocumentRoot(nil, doc)
		if !json.Valid(out) {
			t.Fatalf("document %q became invalid JSON %s", body, out)
		}
		if k := duplicateKey(out); k != "" {
			t.Fatalf("document %q became JSON with member %q twice in one object: %s", body, k, out)
		}
		if c := out[0]; c != '{' && c != '"' {
			t.Fatalf("document %q became %s, want an object or a string", body, out)
		}
		// The record around it stays valid too.
		rec := append(append([]byte(`{"requestParameters":{`), appendString(nil, doc.name)...), ':')
		rec = append(append(rec, out...), "}}"...)
		if !json.Valid(rec) {
			t.Fatalf("document %q: record %s is not valid JSON", body, rec)
		}
	})
}

// FuzzFormCredential feeds the start of form-upload bodies to the reader
// of their credential fields: it must never panic, and a key it names
// comes with a signature version and has no '/' (the rest of the
// credential scope).
func FuzzFormCredential(f *testing.F) {
	const ct = "multipart/form-data; boundary=XyZ"
	for _, s := range []string{
		"--XyZ\r\nContent-Disposition: form-data; name=\"X-Amz-Credential\"\r\n\r\nAKID/20261121/us-east-1/s3/aws4_request\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--XyZ--\r\n",
		"--XyZ\r\nContent-Disposition: form-data; name=\"AWSAccessKeyId\"\r\n\r\nAKIDV2\r\n--XyZ--\r\n",
		"--XyZ\r\nContent-Disposition: form-data; name=\"x-amz-credential\"\r\n\r\n/20261121/us-east-1/s3/aws4_request\r\n--XyZ--\r\n",
		"--XyZ\r\nContent-Disposition: form-data; name=\"x-amz-algorithm\"\r\n\r\nAWS4-ECDSA-P256-SHA256\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x-amz-credential\"\r\n\r\nK/d/s3/aws4_request\r\n--XyZ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := formCredential(ct, body)
		if c.AccessKeyID != "" && (c.SignatureVersion == "" || strings.Contains(c.AccessKeyID, "/")) {
			t.Fatalf("credential %+v from %q", c, body)
		}
		if c.AccessKeyID == "" && c.SignatureVersion != "" {
			t.Fatalf("signature version without a key: %+v from %q", c, body)
		}
	})
}

// duplicateKey returns a member name that occurs twice in one object of
// valid JSON b, or "".
func duplicateKey(b []byte) string {
	d := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string token is a member name
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.key = true // the object or array is a member's value
				}
				stack = append(stack, &frame{keys: map[string]bool{}, object: v == '{', key: v == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
				continue
			}
		case string:
			if top != nil && top.object && top.key {
				if top.keys[v] {
					return v
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true // a scalar member value was read
		}
	}
}

func TestDuplicateKey(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,"a":2}`:                       "a",
		`{"a":{"b":1},"b":2}`:                 "",
		`{"a":[{"x":1},{"x":2}],"b":{"x":3}}`: "",
		`{"a":{"x":1,"y":[1,2],"x":2}}`:       "x",
		`"s"`:                                 "",
	} {
		if got := duplicateKey([]byte(in)); got != want {
			t.Errorf("duplicateKey(%s) = %q, want %q", in, got, want)
		}
	}
}
