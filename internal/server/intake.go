package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// How request bodies are taken in. A body is the one thing a client can
// make the server hold that the client does not pay for itself, so every
// endpoint that buffers one goes through the same three bounds:
//
//  1. Whatever can be refused from the headers alone is refused before a
//     byte of the body is read: a declared length over the endpoint's
//     limit, and every signature fault awsproto.PreVerify finds (no or
//     malformed Authorization, a stale or future date, a wrong scope, an
//     unknown access key, UNSIGNED-PAYLOAD with a body). An anonymous
//     client therefore never gets a body buffered at all, and one that
//     knows an access key ID (not a secret: it is in the records) only
//     within that key's and its address's shares (see 2).
//  2. The bytes a body will take are reserved from one budget shared by
//     every connection (its Content-Length, or the endpoint's limit when
//     the length is not declared) before it is read, and given back when
//     the request is done. Bodies over 64 KiB may not take the last
//     eighth, and one access key or one peer address may hold at most a
//     quarter of the budget in them. Over the budget the request is refused at once
//     with 503 ThrottlingException and Retry-After, so memory held by
//     bodies in flight never exceeds the budget however many connections
//     there are.
//  3. Reading a body has a deadline (Config.BodyTimeout, from the moment
//     the handler starts): a client that declares a body and stalls loses
//     its connection instead of holding it, a goroutine and its
//     reservation for ever.
const (
	// DefaultBodyTimeout is how long a client has to send a request body
	// when Config.BodyTimeout is zero: a 5 MB import at 200 KB/s.
	DefaultBodyTimeout = 25 * time.Second
	// DefaultBodyBudget is the memory all request bodies in flight may
	// hold together when Config.BodyBudget is zero. Within the README's
	// bound (--memory-limit-mb 320, ~420 MB RSS) with room for the rest
	// of the server; a dozen of the largest imports fit at once.
	DefaultBodyBudget = 64 << 20
	// largeBody is the size above which a body may not take the last
	// eighth of the budget, and counts against its access key's and its
	// peer address's shares: small calls (every control-plane call an SDK
	// makes) still get through while large bodies fill it, and whoever
	// knows an access key ID (it is in every record of that key's calls)
	// cannot hold more than a share of the budget with bodies it will
	// never sign.
	largeBody = 64 << 10
	// shareDivisor sets the share of the budget one access key, and one
	// peer address, may hold in large bodies: a quarter.
	shareDivisor = 4
	// retryAfterSeconds is the Retry-After of a refusal over the budget:
	// by then the deadline has freed or is about to free what was held.
	retryAfterSeconds = 1
)

// bodyBudget counts the bytes reserved by request bodies in flight, in
// all and, for large bodies, per access key and per peer address.
type bodyBudget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	byKey map[string]int64
	byIP  map[string]int64
}

// reserve takes n bytes from the budget for a body claimed to be signed
// with key and sent from ip; false when they do not fit. A body over
// largeBody may use only seven eighths of the budget, and a key or an
// address only a share of it.
func (b *bodyBudget) reserve(n int64, key, ip string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.limit
	large := n > largeBody
	if large {
		limit -= b.limit / 8
		share := b.limit / shareDivisor
		if b.byKey[key]+n > share || b.byIP[ip]+n > share {
			return false
		}
	}
	if n > limit-b.used {
		return false
	}
	b.used += n
	if large {
		b.byKey[key] += n
		b.byIP[ip] += n
	}
	return true
}

func (b *bodyBudget) release(n int64, key, ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if n > largeBody {
		take(b.byKey, key, n)
		take(b.byIP, ip, n)
	}
}

// take gives n back from m[k], forgetting k at zero.
func take(m map[string]int64, k string, n int64) {
	if m[k] -= n; m[k] <= 0 {
		delete(m, k)
	}
}

func (b *bodyBudget) inFlight() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return float64(b.used)
}

// newBodyBudget makes the budget and its gauge on /metrics.
func newBodyBudget(limit int64, reg prometheus.Registerer) *bodyBudget {
	b := &bodyBudget{limit: limit, byKey: map[string]int64{}, byIP: map[string]int64{}}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_request_body_bytes_reserved",
		Help: "Bytes reserved by request bodies being read or handled, against the body budget.",
	}, b.inFlight))
	return b
}

// withBodyDeadline puts the body read deadline on every request that has a
// body, on every route of the listener (API, console forms, webhooks), so
// that no handler can forget it. The endpoints that buffer bodies lift it
// once the body is in (liftBodyDeadline): what they do afterwards (a
// journal append) is not the client's to hurry, and a read deadline that
// expires while the server watches the idle connection cancels the
// request's context. (r.Body is left as it is: net/http discards an
// unread small body after the handler only when it is its own type.)
func (s *Server) withBodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			// An error means the connection cannot take deadlines (none
			// does on Cairn's listener); the body is then read without.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

// refusedUnread marks the answer to a request refused before its body was
// read: the connection closes after it. Otherwise net/http, once the
// handler returns, first drains a body under 256 KiB, and a client that
// declared one and stalls would get its answer only at the deadline.
func refusedUnread(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
}

// liftBodyDeadline takes the body deadline off once the body has been read.
func liftBodyDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// admitBody reserves what r's body will take from the budget, after
// refusing a declared length over max; key is the access key the request
// claims (awsproto.PendingRequest.AccessKeyID). The caller reads the body within
// max and calls release when the request is done with it.
func (s *Server) admitBody(w http.ResponseWriter, r *http.Request, max int64, key string) (release func(), err error) {
	n := r.ContentLength
	if n > max {
		return nil, awsproto.Errorf("RequestEntityTooLargeException", "Request body is larger than %d bytes.", max)
	}
	if n < 0 {
		n = max // not declared (chunked): it may be as large as allowed
	}
	ip := sourceIP(r)
	if !s.bodies.reserve(n, key, ip) {
		refusedUnread(w)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		return nil, &awsproto.Error{Code: "ThrottlingException", Status: http.StatusServiceUnavailable,
			Message: "Rate exceeded: too many request bodies are being received at once. Retry after a moment."}
	}
	return sync.OnceFunc(func() { s.bodies.release(n, key, ip) }), nil
}

// readWholeBody reads r's whole body, at most max bytes, into one buffer of the
// declared size (no growing copies), within the body deadline.
func readWholeBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, max)
	var body []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= max {
		body = make([]byte, n)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
	if err == nil {
		liftBodyDeadline(w)
	}
	return body, bodyReadError(err, max)
}

// bodyReadError turns a failure to read a body into what the client is
// told: too large, too slow, or cut off.
func bodyReadError(err error, max int64) error {
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return awsproto.Errorf("RequestEntityTooLargeException", "Request body is larger than %d bytes.", max)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &awsproto.Error{Code: "RequestTimeoutException", Status: http.StatusRequestTimeout,
			Message: "The request body was not received in time; the connection is closed.", Err: err}
	}
	return awsproto.Errorf("SerializationException", "Could not read the request body: %v", err)
}

// bodyTimeoutOrDefault is cfg's body deadline, or the default.
func bodyTimeoutOrDefault(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultBodyTimeout, nil
	case d < 0:
		return 0, fmt.Errorf("body timeout %s: want a positive duration", d)
	}
	return d, nil
}
