package s3proxy

import (
	"bufio"
	"bytes"
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
