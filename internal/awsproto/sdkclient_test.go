package awsproto_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestSDKHTTPClientSurvivesEarlyBodyClose forces the interleaving behind a
// rare `cairn bench lookup` failure ("StatusCode: 200 ... failed to decode
// response body ... use of closed network connection"): the server answers
// and the SDK closes its request body before net/http's connection writer
// has finished with that body (its final drain after Content-Length bytes).
// The connection holds the writer right after the body bytes are on the
// wire until the SDK has closed the body, so the order is the same on every
// run. Through SDKHTTPClient the transport must report the request written
// without error, keep the connection, and the call must succeed.
func TestSDKHTTPClientSurvivesEarlyBodyClose(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)

	// The first call stores an event (its own audit record), so that the
	// checked call's answer has a body to read once the history has
	// indexed it (the history follows the journal on its own goroutine).
	if _, err := h.CloudTrail.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
		t.Fatal(err)
	}
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}

	g := &gate{closed: make(chan struct{})}
	tr := apiclient.NewTransport(1)
	dialer := &net.Dialer{}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &gatedConn{Conn: c, g: g, ctx: ctx}, nil
	}
	hc := &http.Client{Transport: tr}
	ct := cloudtrail.New(cloudtrail.Options{
		Region:       servertest.DefaultRegion,
		BaseEndpoint: aws.String(h.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(h.AdminKeyID, h.AdminSecret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   observeClose{g: g, next: awsproto.SDKHTTPClient{Client: hc}},
	})

	var (
		mu       sync.Mutex
		wrote    []error
		conns    int
		reused   []bool
		traceCtx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				mu.Lock()
				defer mu.Unlock()
				reused = append(reused, i.Reused)
				if !i.Reused {
					conns++
				}
			},
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				mu.Lock()
				defer mu.Unlock()
				wrote = append(wrote, i.Err)
			},
		})
	)
	for i := 0; i < 3; i++ {
		g.reset()
		out, err := ct.LookupEvents(traceCtx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(50)})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if len(out.Events) == 0 {
			t.Fatalf("call %d: no events", i)
		}
		if !g.held() {
			t.Fatalf("call %d: the body write was not held until the SDK closed the body; the test no longer forces the race", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, err := range wrote {
		if err != nil {
			t.Errorf("call %d: the transport failed writing the request after the SDK closed its body: %v", i, err)
		}
	}
	if len(wrote) != 3 {
		t.Errorf("WroteRequest reported %d times, want 3", len(wrote))
	}
	// A write error makes the transport drop the connection, so each call
	// would dial anew.
	if conns != 1 {
		t.Errorf("%d connections for 3 sequential calls (reused: %v), want 1", conns, reused)
	}
}

// gate holds the request body write of one call until the SDK has closed
// the request body.
type gate struct {
	mu      sync.Mutex
	closed  chan struct{}
	wasHeld bool
}

func (g *gate) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = make(chan struct{})
	g.wasHeld = false
}

func (g *gate) bodyClosed() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.closed:
	default:
		close(g.closed)
	}
}

func (g *gate) wait(ctx context.Context) {
	g.mu.Lock()
	ch := g.closed
	g.mu.Unlock()
	select {
	case <-ch:
		g.mu.Lock()
		g.wasHeld = true
		g.mu.Unlock()
	case <-ctx.Done():
	}
}

func (g *gate) held() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.wasHeld
}

// gatedConn passes the request body to the server, then holds the writer
// until the SDK has closed the body. The request head is flushed on its own
// (the SDK's body is not an in-memory type net/http knows), so every write
// that does not start a request carries body bytes.
type gatedConn struct {
	net.Conn
	g   *gate
	ctx context.Context
}

func (c *gatedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && !bytes.HasPrefix(p, []byte("POST ")) {
		c.g.wait(c.ctx)
	}
	return n, err
}

// observeClose replaces the SDK's request body with one that tells the
// gate when the SDK closes it. The SDK closes the body of the request it
// passed to Do, so the replacement is made in place; it keeps the body's
// WriteTo, which is what the transport's drain uses.
type observeClose struct {
	g    *gate
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (o observeClose) Do(req *http.Request) (*http.Response, error) {
	if wt, ok := req.Body.(io.WriterTo); ok {
		req.Body = &closeSignal{ReadCloser: req.Body, wt: wt, g: o.g}
	}
	return o.next.Do(req)
}

type closeSignal struct {
	io.ReadCloser
	wt io.WriterTo
	g  *gate
}

func (b *closeSignal) WriteTo(w io.Writer) (int64, error) { return b.wt.WriteTo(w) }

func (b *closeSignal) Close() error {
	err := b.ReadCloser.Close()
	b.g.bodyClosed()
	return err
}
