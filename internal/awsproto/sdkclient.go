package awsproto

import (
	"io"
	"net/http"
)

// SDKHTTPClient is the HTTPClient to give every aws-sdk-go-v2 client Cairn
// builds (cloudtrail.Options.HTTPClient): it sends the SDK's requests with
// a request body that offers only Read and Close.
//
// The SDK wraps every request body in a closer whose WriteTo returns
// io.EOF once the body has been closed, and it closes the body as soon as
// http.Client.Do returns, which is when the response headers have arrived.
// net/http's connection writer, after sending Content-Length bytes, drains
// the body once more (io.Copy to io.Discard, which prefers WriteTo); when
// the server answered fast enough that the SDK closed the body before
// that drain ran, the drain fails with io.EOF, the transport takes it for
// a write error and closes the connection under the response still being
// read, and the call fails with "StatusCode: 200 ... failed to decode
// response body ... use of closed network connection". Without WriteTo,
// the drain reads the closed body through Read, which returns io.EOF, the
// normal end of a copy.
type SDKHTTPClient struct {
	Client *http.Client
}

// Do sends req through the wrapped client without modifying req.
func (c SDKHTTPClient) Do(req *http.Request) (*http.Response, error) {
	hc := c.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	if _, ok := req.Body.(io.WriterTo); ok && req.Body != http.NoBody {
		r := *req
		r.Body = readCloserOnly{req.Body}
		req = &r
	}
	return hc.Do(req)
}

// readCloserOnly hides every method of a request body but Read and Close.
type readCloserOnly struct {
	io.ReadCloser
}
