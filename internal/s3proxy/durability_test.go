package s3proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// TestFailClosedRefusesWhatItCannotRecord fills the journal's disk: the
// first call, already past the availability check, is answered with an
// error (never a success the log does not hold); every later call is
// refused with an S3 ServiceUnavailable error and never reaches the
// upstream; once the disk has room again, calls go through and are
// recorded.
func TestFailClosedRefusesWhatItCannotRecord(t *testing.T) {
	r := newRig(t, rigOptions{count: true})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("closed")}); err != nil {
		t.Fatal(err)
	}
	before := len(r.events(t))

	r.disk.Full.Store(true)
	// The journal learns about the disk on its first write.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("closed"), Key: aws.String("first"), Body: strings.NewReader("x")})
	if err == nil {
		t.Fatal("PutObject succeeded although its event could not be made durable")
	}
	t.Logf("the call that met the failure: %v", err)
	if r.p.env.Journal.Available() == nil {
		t.Fatal("the journal still says it is available after a failed write")
	}
	hits := r.hits.Load()
	for i := range 5 {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("closed"), Key: aws.String("during"), Body: strings.NewReader("y")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" || !strings.Contains(ae.ErrorMessage(), "not forwarded") {
			t.Fatalf("PutObject %d on a full journal disk: %v, want ServiceUnavailable saying it was not forwarded", i, err)
		}
	}
	// A streaming read is refused the same way, as raw HTTP.
	resp, err := http.Get(r.p.URL() + "/closed/first")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "<Code>ServiceUnavailable</Code>") ||
		resp.Header.Get("Content-Type") != "application/xml" {
		t.Fatalf("GET on a full journal disk: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if got := r.hits.Load(); got != hits {
		t.Fatalf("the upstream saw %d requests the proxy should have refused", got-hits)
	}
	if got := r.counter(t, "cairn_s3proxy_requests_total", map[string]string{"outcome": "refused"}); got != 6 {
		t.Errorf("requests_total{outcome=refused} = %v, want 6", got)
	}
	if got := r.counter(t, "cairn_s3proxy_requests_total", map[string]string{"outcome": "aborted"}); got != 1 {
		t.Errorf("requests_total{outcome=aborted} = %v, want 1", got)
	}

	r.disk.Full.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for r.p.env.Journal.Available() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the journal did not recover within 10s of the disk recovering")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("closed"), Key: aws.String("after"), Body: strings.NewReader("z")}); err != nil {
		t.Fatalf("PutObject after the disk recovered: %v", err)
	}
	evs := r.events(t)[before:]
	if len(evs) != 1 || evs[0]["eventName"] != "PutObject" || path(evs[0], "requestParameters.key") != "after" {
		t.Fatalf("events after the outage: %v, want only the PutObject of \"after\"", evs)
	}
}

// TestFailClosedCutsAStreamItCannotRecord: a GetObject whose event fails
// after the body started flowing ends with a cut connection, so the client
// never takes it for complete, whether the body fits in one buffer or
// not.
func TestFailClosedCutsAStreamItCannotRecord(t *testing.T) {
	for _, size := range []int{100000, 1 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			r := newRig(t, rigOptions{})
			c := r.client(r.p.URL())
			ctx := context.Background()
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("cut")}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cut"), Key: aws.String("k"), Body: strings.NewReader(strings.Repeat("a", size))}); err != nil {
				t.Fatal(err)
			}
			r.disk.Full.Store(true)
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cut"), Key: aws.String("k")})
			if err == nil {
				b, rerr := io.ReadAll(out.Body)
				out.Body.Close()
				if rerr == nil {
					t.Fatalf("GetObject read all %d bytes although its event could not be made durable", len(b))
				}
				if len(b) >= size {
					t.Fatalf("the client got all %d bytes before the cut", len(b))
				}
			}
		})
	}
}

// TestFailOpenForwardsAndCounts: with failure_policy open, calls go through
// while the journal fails, and each lost event is counted.
func TestFailOpenForwardsAndCounts(t *testing.T) {
	r := newRig(t, rigOptions{count: true, configure: func(c *Config) { c.FailOpen = true }})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("open")}); err != nil {
		t.Fatal(err)
	}
	r.disk.Full.Store(true)
	hits := r.hits.Load()
	for i := range 3 {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("open"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
			t.Fatalf("PutObject %d through a fail-open proxy with a failing journal: %v", i, err)
		}
	}
	if got := r.hits.Load() - hits; got != 3 {
		t.Errorf("the upstream saw %d calls, want 3", got)
	}
	if got := r.counter(t, "cairn_s3proxy_events_lost_total", nil); got != 3 {
		t.Errorf("events_lost_total = %v, want 3", got)
	}
	if got := r.counter(t, "cairn_s3proxy_requests_total", map[string]string{"outcome": "lost"}); got != 3 {
		t.Errorf("requests_total{outcome=lost} = %v, want 3", got)
	}
}

// TestUnreachableUpstreamIsRecorded: a call the upstream never answered is
// answered with an S3 error and still recorded (the caller tried it).
func TestUnreachableUpstreamIsRecorded(t *testing.T) {
	r := newRig(t, rigOptions{configure: func(c *Config) { c.Upstream = "http://127.0.0.1:1" }})
	_, err := r.client(r.p.URL()).ListBuckets(context.Background(), &s3.ListBucketsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" {
		t.Fatalf("ListBuckets with the upstream down: %v, want ServiceUnavailable", err)
	}
	evs := r.events(t)
	if len(evs) != 1 || evs[0]["eventName"] != "ListBuckets" || evs[0]["errorCode"] != "ServiceUnavailable" {
		t.Fatalf("events %v", evs)
	}
}

// TestNonS3RequestsAreRefused: what the proxy cannot name is neither
// forwarded nor recorded.
func TestNonS3RequestsAreRefused(t *testing.T) {
	r := newRig(t, rigOptions{count: true})
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"PATCH", "/b/k", http.StatusMethodNotAllowed, "MethodNotAllowed"},
		{"OPTIONS", "/b/k", http.StatusMethodNotAllowed, "MethodNotAllowed"},
		{"POST", "/", http.StatusBadRequest, "InvalidRequest"},
	} {
		req, err := http.NewRequest(tc.method, r.p.URL()+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), "<Code>"+tc.code+"</Code>") {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.code)
		}
	}
	if n := r.hits.Load(); n != 0 {
		t.Errorf("the upstream saw %d of them", n)
	}
	if evs := r.events(t); len(evs) != 0 {
		t.Errorf("recorded %v", evs)
	}
	if got := r.counter(t, "cairn_s3proxy_requests_total", map[string]string{"outcome": "rejected"}); got != 3 {
		t.Errorf("requests_total{outcome=rejected} = %v, want 3", got)
	}
}

// TestHalfClosedClientGetsNoSuccess: a client that shuts down its sending
// side after its request (a half-close, which net/http's server takes for
// the client going away and cancels the request on) while the upstream
// has not answered yet must not be told the call succeeded: the proxy
// records it as canceled and its outcome is unknown, so the client gets
// no response at all, never an empty 200.
func TestHalfClosedClientGetsNoSuccess(t *testing.T) {
	r := newRig(t, rigOptions{configure: func(c *Config) {
		target, _ := url.Parse(c.Upstream)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.ErrorLog = log.New(io.Discard, "", 0)
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			time.Sleep(300 * time.Millisecond) // the upstream takes its time
			rp.ServeHTTP(w, req)
		}))
		t.Cleanup(slow.Close)
		c.Upstream = slow.URL
	}})
	for _, req := range []string{
		"GET /half/k HTTP/1.1\r\nHost: " + r.p.Addr() + "\r\n\r\n",
		"PUT /half/k HTTP/1.1\r\nHost: " + r.p.Addr() + "\r\nContent-Length: 5\r\n\r\nhello",
	} {
		conn, err := net.Dial("tcp", r.p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 300 {
				t.Errorf("%q from a half-closed client, canceled before the upstream answered: %s %q, a success", strings.Fields(req)[0], resp.Status, b)
			}
		}
		conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.events(t)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, ev := range r.events(t) {
		if ev["errorCode"] == nil {
			t.Errorf("%v recorded without an error code: %v", ev["eventName"], ev)
		}
	}
}

// TestFailClosedHTTP10ClientOfUnknownLengthBody: an HTTP/1.0 client cannot
// receive a chunked body; it takes the connection closing for the end of
// a body of unknown length, so cutting the connection cannot tell it the
// response is incomplete. A body the upstream sends without a length
// (chunked) must therefore reach such a client whole, with its length,
// only after its event is durable, and not at all when the event fails.
func TestFailClosedHTTP10ClientOfUnknownLengthBody(t *testing.T) {
	body := strings.Repeat("<Contents><Key>k</Key></Contents>", 5000) // over one relay buffer
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", "UPSTREAMCHUNKED1")
		w.WriteHeader(http.StatusOK)
		for i := 0; i < len(body); i += 4096 {
			_, _ = io.WriteString(w, body[i:min(i+4096, len(body))])
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
	}))
	t.Cleanup(up.Close)
	r := newRig(t, rigOptions{configure: func(c *Config) { c.Upstream = up.URL }})
	get := func() (*http.Response, []byte, error) {
		conn, err := net.Dial("tcp", r.p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET /b?list-type=2 HTTP/1.0\r\nHost: "+r.p.Addr()+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b, err
	}

	resp, b, err := get()
	if err != nil || resp.StatusCode != 200 || string(b) != body || resp.ContentLength != int64(len(body)) {
		t.Fatalf("HTTP/1.0 GET of a chunked upstream body: err %v, status %v, %d of %d bytes, Content-Length %d",
			err, resp != nil && resp.StatusCode == 200, len(b), len(body), resp.ContentLength)
	}
	if evs := r.events(t); len(evs) != 1 || path(evs[0], "additionalEventData.bytesTransferredOut") != float64(len(body)) {
		t.Fatalf("events %v", evs)
	}

	r.disk.Full.Store(true) // the journal learns about the disk on its next write
	resp, b, err = get()
	if err == nil && resp.StatusCode < 300 {
		t.Fatalf("an HTTP/1.0 client read a complete %s response (%d of %d bytes) whose event could not be made durable",
			resp.Status, len(b), len(body))
	}
}

// TestStalledRequestBodyIsCut: a client that sends part of its body and
// then nothing more must not hold its call, an upstream connection and
// their buffers for good: after bodyIdleTimeout without a byte the call
// ends (recorded with an error), and a client that keeps sending, slowly,
// is not cut.
func TestStalledRequestBodyIsCut(t *testing.T) {
	old := bodyIdleTimeout
	bodyIdleTimeout = 300 * time.Millisecond
	t.Cleanup(func() { bodyIdleTimeout = old })
	r := newRig(t, rigOptions{})
	c := r.client(r.p.URL())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("stall")}); err != nil {
		t.Fatal(err)
	}
	before := len(r.events(t))

	// A slow but steady body (a byte every 100ms) goes through.
	pr, pw := io.Pipe()
	go func() {
		for range 8 {
			time.Sleep(100 * time.Millisecond)
			_, _ = pw.Write([]byte("x"))
		}
		pw.Close()
	}()
	req, err := http.NewRequest("PUT", r.p.URL()+"/stall/slow", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 8
	r.sign(t, req, []byte("xxxxxxxx"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a slow, steady PutObject: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a slow, steady PutObject: %s %s", resp.Status, b)
	}

	conn, err := net.Dial("tcp", r.p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "PUT /stall/k HTTP/1.1\r\nHost: "+r.p.Addr()+"\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = io.Copy(io.Discard, conn) // whatever the answer, the connection must end
	if err != nil {
		t.Fatalf("a stalled body still holds its connection %v later: %v", time.Since(start), err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.events(t)) < before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	evs := r.events(t)[before:]
	if len(evs) != 2 || evs[0]["errorCode"] != nil || evs[1]["errorCode"] == nil {
		t.Fatalf("events %v, want the slow PutObject's and the stalled one's, with an error", evs)
	}
}
