package s3proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxErrorBody is the largest error response read whole to take its Code
// and Message; S3 error documents are a few hundred bytes.
const maxErrorBody = 64 << 10

// appendTimeout bounds how long a request waits for its event to become
// durable. The wait does not end when the client goes away: the upstream
// may have done the call, so its event is still owed.
const appendTimeout = 30 * time.Second

// countingReader counts the bytes read through it and, when asked, keeps
// a copy of them (the small documents of bucket configuration calls,
// which CloudTrail records among the parameters); the body still flows
// to the upstream as it arrives.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
	// keep, when not nil, receives a copy of the bytes read, up to
	// keepMax; beyond that it is dropped (and dropped records so).
	mu      sync.Mutex
	keep    *bytes.Buffer
	keepMax int
	dropped bool
	// keepPrefix keeps the first keepMax bytes when the body is longer,
	// instead of dropping the copy (a form upload's fields come before
	// its file).
	keepPrefix bool
	// deadline, when set, sets the client connection's read deadline,
	// pushed before each read by bodyIdleTimeout.
	deadline    func(time.Time) error
	dmu         sync.Mutex
	handlerDone bool
}

// maxKept bounds the bucket policies kept for requestParameters (S3's
// are at most 20 KB) and how much of a form upload is read for its
// signer.
const maxKept = 64 << 10

// bodyIdleTimeout is how long a client may leave its request body
// without sending a byte: a client that stalls its body would otherwise
// hold its call, an upstream connection and their buffers for good.
var bodyIdleTimeout = 2 * time.Minute

func (c *countingReader) Read(b []byte) (int, error) {
	c.setReadDeadline(time.Now().Add(bodyIdleTimeout))
	n, err := c.r.Read(b)
	if err == io.EOF {
		// The body is whole: the server's own read of the connection
		// (which detects the client going away) must not time out.
		c.setReadDeadline(time.Time{})
	}
	c.n.Add(int64(n))
	if n > 0 {
		c.mu.Lock()
		if c.keep != nil {
			switch room := c.keepMax - c.keep.Len(); {
			case n <= room:
				c.keep.Write(b[:n])
			case c.keepPrefix:
				c.keep.Write(b[:room])
			default:
				c.keep, c.dropped = nil, true
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

// kept is the copy of the body, if it was kept whole; tooLarge says the
// body was over the copy's limit.
func (c *countingReader) kept() (body []byte, tooLarge bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keep == nil || int64(c.keep.Len()) != c.n.Load() {
		return nil, c.dropped
	}
	return c.keep.Bytes(), false
}

// prefix is the kept start of the body (keepPrefix).
func (c *countingReader) prefix() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keep == nil {
		return nil
	}
	return c.keep.Bytes()
}

func (c *countingReader) Close() error { return c.r.Close() }

// setReadDeadline sets the client connection's read deadline while the
// handler runs. The upstream transport may read the body from its own
// goroutine after the handler returned, when the connection may already
// be reading the client's next request: then the deadline is not ours.
func (c *countingReader) setReadDeadline(t time.Time) {
	if c.deadline == nil {
		return
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.handlerDone {
		_ = c.deadline(t)
	}
}

// handlerReturned stops setReadDeadline from touching the connection.
func (c *countingReader) handlerReturned() {
	c.dmu.Lock()
	c.handlerDone = true
	c.dmu.Unlock()
}

// call is what the proxy learns about one request on its way through.
type call struct {
	op        Operation
	cred      Credential
	in        *countingReader
	out       int64
	status    int
	requestID string
	hostID    string
	errCode   string
	errMsg    string
	// respHeader is the upstream's response header (responseElements
	// come from it).
	respHeader http.Header
	// body is a copy of a successful response's body, for the
	// operations whose record needs what is in it (readsBody).
	body *bodyCopy
}

// ServeHTTP forwards one S3 request and records it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = endToEnd(r)
	op, err := p.decoder.Decode(r)
	if err != nil {
		p.m.rejected.Inc()
		code, status := "InvalidRequest", http.StatusBadRequest
		if !isS3Method(r.Method) {
			code, status = "MethodNotAllowed", http.StatusMethodNotAllowed
		}
		writeS3Error(w, status, code, err.Error(), "")
		return
	}
	if !p.cfg.FailOpen {
		if err := p.env.Journal.Available(); err != nil {
			p.m.refused.Inc()
			p.log.Warn("refusing an S3 call: its event cannot be made durable", "operation", op.Name, "err", err)
			w.Header().Set("Retry-After", "1")
			writeS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable",
				"The audit proxy cannot record this call right now, so it was not forwarded (Cairn's journal does not accept writes). Retry later.", "")
			return
		}
	}
	c := &call{op: op, cred: ParseCredential(r.Header, op.Query)}
	c.in = &countingReader{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		c.in.deadline = http.NewResponseController(w).SetReadDeadline
		defer c.in.handlerReturned()
	}
	if max := keepsBody(op.Name); max > 0 && r.ContentLength != 0 {
		if r.ContentLength > int64(max) {
			c.in.dropped = true
		} else {
			c.in.keep, c.in.keepMax = &bytes.Buffer{}, max
		}
	}
	if op.Name == "PostObject" {
		// A browser form upload is signed in its form fields, which is
		// what S3 authenticates; the record takes its signer from them
		// alone (see record), never from a header or query credential a
		// client could add beside them.
		c.in.keep, c.in.keepMax, c.in.keepPrefix = &bytes.Buffer{}, maxKept, true
	}
	defer func() { p.m.bytesIn.Add(float64(c.in.n.Load())) }()

	outreq, err := p.outgoing(r, c.in)
	if err != nil {
		c.status, c.errCode, c.errMsg = http.StatusBadRequest, "InvalidRequest", err.Error()
		p.finishWithError(w, r, c)
		return
	}
	resp, err := p.transport.RoundTrip(outreq)
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away before the upstream answered; the
			// upstream may still have acted, so the call is recorded.
			c.status, c.errCode, c.errMsg = 499, "RequestCanceled", "The client closed the connection before the response."
		} else {
			p.log.Warn("upstream S3 server unreachable", "upstream", p.upstream.Host, "err", err)
			c.status, c.errCode, c.errMsg = http.StatusServiceUnavailable, "ServiceUnavailable", "The upstream S3 server did not answer."
		}
		p.finishWithError(w, r, c)
		return
	}
	defer resp.Body.Close()
	p.respond(w, r, c, resp)
}

// endToEnd is the request as the upstream will get it: without the
// hop-by-hop headers (those RFC 9110 names and those the client lists in
// Connection). The operation, the caller and the record are taken from
// it, never from a header the upstream does not see: otherwise a client
// could list Authorization in Connection to have a call the upstream
// serves unsigned recorded under a configured identity, or
// x-amz-copy-source to have a PutObject recorded as a CopyObject.
func endToEnd(r *http.Request) *http.Request {
	if _, ok := r.Header["Connection"]; !ok {
		drop := false
		for k := range r.Header {
			if isHopByHop(k, "") {
				drop = true
				break
			}
		}
		if !drop {
			return r
		}
	}
	h := make(http.Header, len(r.Header))
	copyHeader(h, r.Header)
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = h
	return r2
}

// respond relays the upstream's response and records the call before the
// client sees its end.
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	c.status = resp.StatusCode
	c.respHeader = resp.Header
	c.requestID = resp.Header.Get("X-Amz-Request-Id")
	c.hostID = resp.Header.Get("X-Amz-Id-2")
	copyHeader(w.Header(), resp.Header)

	noBody := r.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.ContentLength == 0
	switch {
	case noBody:
		// The status line is the acknowledgement: record first.
		if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
			c.errCode = statusCode(resp.StatusCode) // HEAD errors come without a document
		}
		if !p.record(r, c) {
			resetHeader(w)
			writeS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", refusedAfterMessage, c.requestID)
			return
		}
		w.WriteHeader(resp.StatusCode)
	case resp.ContentLength < 0 && !r.ProtoAtLeast(1, 1):
		// An HTTP/1.0 client cannot take a chunked body: it learns the
		// end of a body of unknown length from the connection closing,
		// which is what a cut looks like too. The length must be known
		// before the first byte, so the body is read whole.
		p.respondWhole(w, r, c, resp)
	case resp.StatusCode >= 300 && resp.ContentLength <= maxErrorBody:
		// Error documents are small: read one whole to record its code
		// and message before anything reaches the client.
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
		if rerr == nil && len(body) <= maxErrorBody {
			c.errCode, c.errMsg = parseS3Error(body)
			if c.errCode == "" {
				c.errCode = statusCode(resp.StatusCode)
			}
			c.out = int64(len(body))
			if !p.record(r, c) {
				resetHeader(w)
				writeS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", refusedAfterMessage, c.requestID)
				return
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(body)
			p.m.bytesOut.Add(float64(len(body)))
			return
		}
		c.errCode = statusCode(resp.StatusCode)
		w.WriteHeader(resp.StatusCode)
		n, _ := w.Write(body)
		c.out = int64(n)
		p.stream(w, r, c, resp)
	default:
		if resp.StatusCode >= 300 {
			c.errCode = statusCode(resp.StatusCode)
		}
		w.WriteHeader(resp.StatusCode)
		p.stream(w, r, c, resp)
	}
}

// maxWholeBody bounds the bodies of unknown length read whole for HTTP/1.0
// clients (S3 sends lengths with object bodies; what comes chunked is
// listings and other documents, far smaller).
const maxWholeBody = 8 << 20

// respondWhole relays a body of unknown length to an HTTP/1.0 client: read
// whole, recorded, then sent with its length, so that the client never
// takes a cut for the end of the body.
func (p *Proxy) respondWhole(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWholeBody+1))
	switch {
	case err != nil:
		c.errCode, c.errMsg = "InternalError", "The response was cut short: read the body from the upstream: "+err.Error()
	case len(body) > maxWholeBody:
		c.errCode, c.errMsg = "InternalError", fmt.Sprintf("The response has no length and is over %d bytes, too large to relay to an HTTP/1.0 client.", maxWholeBody)
	}
	if c.errCode != "" {
		// The body is not relayed: the client gets an error, after the
		// event (the upstream did answer).
		ok := p.record(r, c)
		resetHeader(w)
		if !ok {
			writeS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", refusedAfterMessage, c.requestID)
			return
		}
		writeS3Error(w, http.StatusBadGateway, c.errCode, c.errMsg, c.requestID)
		return
	}
	if resp.StatusCode >= 300 {
		if c.errCode, c.errMsg = parseS3Error(body); c.errCode == "" {
			c.errCode = statusCode(resp.StatusCode)
		}
	} else if readsBody(c.op.Name) {
		bc := &bodyCopy{r: bytes.NewReader(body)}
		_, _ = io.Copy(io.Discard, bc)
		c.body = bc
		c.checkEmbeddedError()
	}
	c.out = int64(len(body))
	if !p.record(r, c) {
		resetHeader(w)
		writeS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", refusedAfterMessage, c.requestID)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	p.m.bytesOut.Add(float64(len(body)))
}

// refusedAfterMessage explains a fail-closed refusal after the upstream
// answered.
const refusedAfterMessage = "The audit proxy could not record this call (Cairn's journal does not accept writes); its outcome is unknown, retry later."

// stream copies the response body to the client one buffer at a time,
// holding back the buffer that completes it until the event is durable,
// so that a client never sees a complete response for a call that was not
// recorded (fail-closed). A body that fits in one buffer thus leaves in
// one write, after its event, and a large one waits for the event only at
// its last chunk while the rest flows freely.
func (p *Proxy) stream(w http.ResponseWriter, r *http.Request, c *call, resp *http.Response) {
	pool := &p.bufs
	if resp.ContentLength >= 0 && resp.ContentLength <= smallBuffer {
		pool = &p.smallBufs
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	buf := *bp
	var body io.Reader = resp.Body
	if resp.StatusCode < 300 && readsBody(c.op.Name) {
		c.body = &bodyCopy{r: resp.Body}
		body = c.body
	}
	var copyErr error
	var held []byte
	if resp.ContentLength > 0 {
		remaining := resp.ContentLength - c.out
		for remaining > 0 {
			n, err := io.ReadFull(body, buf[:min(int64(len(buf)), remaining)])
			remaining -= int64(n)
			if err != nil {
				copyErr = fmt.Errorf("read the body from the upstream: %w", err)
				if n > 0 {
					_, _ = w.Write(buf[:n])
					c.out += int64(n)
				}
				break
			}
			if remaining == 0 {
				held = buf[:n]
				break
			}
			if _, err := w.Write(buf[:n]); err != nil {
				copyErr = fmt.Errorf("write the body to the client: %w", err)
				break
			}
			c.out += int64(n)
		}
	} else {
		// Unknown length: the response is chunked, and it is complete
		// only when the handler returns and writes the last chunk.
		for {
			n, err := body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					copyErr = fmt.Errorf("write the body to the client: %w", werr)
					break
				}
				c.out += int64(n)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				copyErr = fmt.Errorf("read the body from the upstream: %w", err)
				break
			}
		}
	}
	if copyErr != nil {
		c.errCode, c.errMsg = "InternalError", "The response was cut short: "+copyErr.Error()
	} else {
		c.checkEmbeddedError()
	}
	c.out += int64(len(held)) // the event counts the bytes it releases
	ok := p.record(r, c)
	if copyErr != nil || !ok {
		p.m.bytesOut.Add(float64(c.out - int64(len(held))))
		// Cut the connection: the client must not take a truncated or
		// unrecorded response for a complete one.
		panic(http.ErrAbortHandler)
	}
	if held != nil {
		_, _ = w.Write(held)
	}
	p.m.bytesOut.Add(float64(c.out))
}

// finishWithError answers a call the upstream did not answer.
func (p *Proxy) finishWithError(w http.ResponseWriter, r *http.Request, c *call) {
	if !p.record(r, c) {
		writeS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", refusedAfterMessage, "")
		return
	}
	status := c.status
	if status == 499 {
		// The client's side of the connection closed (or half-closed)
		// before the upstream answered; the call's outcome is unknown.
		// Returning would make net/http answer an empty 200, which a
		// half-closed client still reads as a success: cut the
		// connection instead.
		panic(http.ErrAbortHandler)
	}
	writeS3Error(w, status, c.errCode, c.errMsg, c.requestID)
}

// record makes the call's event durable. It reports whether the caller
// may acknowledge the call: always in fail-open mode (a failure is
// counted as a lost event), only on success in fail-closed mode.
func (p *Proxy) record(r *http.Request, c *call) bool {
	if c.in.keepPrefix {
		c.cred = formCredential(r.Header.Get("Content-Type"), c.in.prefix())
	}
	rec, err := p.buildRecord(r, c)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), appendTimeout)
		_, err = p.env.Journal.Append(ctx, [][]byte{rec})
		cancel()
	}
	if err == nil {
		p.m.recorded.Inc()
		return true
	}
	if p.cfg.FailOpen {
		p.m.lostCalls.Inc()
		p.m.lost.Inc()
		p.rlog.Error("S3 call forwarded without its event (fail open)", "operation", c.op.Name, "bucket", c.op.Bucket, "err", err)
		return true
	}
	p.m.aborted.Inc()
	p.rlog.Error("S3 call's event could not be made durable; the client gets an error", "operation", c.op.Name, "bucket", c.op.Bucket, "err", err)
	return false
}

// outgoing builds the upstream request: same method, the request target
// exactly as the client sent it (SigV4 signs the path and query), the
// client's Host (SigV4 signs it), every end-to-end header unchanged and
// the body streamed.
func (p *Proxy) outgoing(r *http.Request, body *countingReader) (*http.Request, error) {
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI() // absolute-form request
	}
	var rb io.Reader = body
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		rb = http.NoBody
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream.Scheme+"://"+p.upstream.Host+target, rb)
	if err != nil {
		return nil, fmt.Errorf("build the upstream request for %q: %w", r.URL.Path, err)
	}
	// The upstream must act on the path and query the operation was
	// decoded from, or the record would name another call.
	if out.URL.Path != r.URL.Path || out.URL.RawQuery != r.URL.RawQuery || out.URL.Fragment != "" {
		return nil, fmt.Errorf("the request target of %q would not reach the upstream as sent", r.URL.Path)
	}
	out.Host = r.Host
	out.ContentLength = r.ContentLength
	if rb == http.NoBody {
		out.ContentLength = 0
	}
	out.Header = make(http.Header, len(r.Header))
	copyHeader(out.Header, r.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // Go would add its own
	}
	return out, nil
}

// sourceIP is the caller's address: the peer's, or, when the peer is a
// trusted proxy, the nearest untrusted address in X-Forwarded-For.
func (p *Proxy) sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(p.cfg.TrustedProxies) == 0 {
		return host
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !p.trusted(addr) {
		return host
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return host // a garbled chain: keep what we know for sure
		}
		if !p.trusted(a) || i == 0 {
			return a.Unmap().String()
		}
	}
	return host
}

func (p *Proxy) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pre := range p.cfg.TrustedProxies {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

func isS3Method(m string) bool {
	switch m {
	case "GET", "HEAD", "PUT", "POST", "DELETE":
		return true
	}
	return false
}

// s3Error is S3's error document.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId,omitempty"`
}

// parseS3Error takes Code and Message from an S3 error document.
func parseS3Error(b []byte) (code, msg string) {
	var e s3Error
	if err := xml.Unmarshal(b, &e); err != nil {
		return "", ""
	}
	return e.Code, e.Message
}

// statusCode names an error that came without a document (HEAD requests),
// the way S3 clients name them.
func statusCode(status int) string {
	switch status {
	case http.StatusNotModified:
		return "NotModified"
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed"
	case http.StatusPreconditionFailed:
		return "PreconditionFailed"
	case http.StatusRequestedRangeNotSatisfiable:
		return "InvalidRange"
	case http.StatusInternalServerError:
		return "InternalError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	}
	if status >= 300 && status < 400 {
		return "PermanentRedirect"
	}
	return "HTTP" + strconv.Itoa(status)
}

// writeS3Error answers with an S3 error document, which every S3 client
// parses into an error code and message.
func writeS3Error(w http.ResponseWriter, status int, code, msg, requestID string) {
	if requestID == "" {
		requestID = newRequestID()
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(s3Error{Code: code, Message: msg, RequestID: requestID})
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Amz-Request-Id", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// newRequestID makes an S3-style request ID (16 upper-case hex digits)
// for calls the upstream did not give one.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// resetHeader drops the upstream's headers before an error replaces its
// response.
func resetHeader(w http.ResponseWriter) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
}
