// Package httpproxy is Cairn's audit proxy for any HTTP API: a streaming
// reverse proxy that stands in front of an API and records every call
// through it as a CloudTrail event, named by a route table, attributed to
// a verified caller, and made durable in Cairn's journal before the
// caller sees the response.
//
// The order of a call (see docs/http-proxy.md):
//
//  1. The caller is identified (JWT, basic auth, client certificate or a
//     trusted gateway's header); a refused call gets 401/403 and is
//     recorded.
//  2. Under the fail-closed policy the journal must be taking writes, or
//     the call is refused with 503 and the upstream never sees it.
//  3. The request streams to the upstream, unbuffered.
//  4. When the upstream's response headers arrive, the event is built
//     (errorCode from the status or from the error body) and appended to
//     the journal, which returns only once it is fsynced.
//  5. Only then do the status and headers reach the caller, followed by
//     the streamed body. If the append failed, a fail-closed proxy answers
//     503 instead (the upstream may have acted; its answer is withheld),
//     a fail-open one answers anyway and counts the lost event.
package httpproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/event"
	metricsreg "github.com/cairn-audit/cairn/internal/metrics"
	"github.com/cairn-audit/cairn/internal/ratelog"
)

// appendTimeout bounds the wait for the journal. The append does not
// follow the caller's context: a caller hanging up after the upstream
// acted must not leave the action unrecorded.
const appendTimeout = 15 * time.Second

// Proxy is one configured HTTP audit proxy; it is a capture.Capture.
type Proxy struct {
	c         *compiled
	auth      authenticator
	keys      *keySource
	transport *http.Transport
	rp        *httputil.ReverseProxy
	tls       *tls.Config

	// Set by Start.
	env     capture.Env
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	rlog    *ratelog.Limiter // lost events, once per interval with a count
	srv     *http.Server
	ln      net.Listener
	stop    context.CancelFunc
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

var _ capture.Capture = (*Proxy)(nil)

// New validates cfg and prepares the proxy; files it names (certificates,
// CA bundles) are read now so that mistakes show when the configuration
// is loaded. It listens only once started.
func New(cfg Config) (*Proxy, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	p := &Proxy{c: c, now: time.Now, log: slog.New(slog.DiscardHandler)}
	clock := func() time.Time { return p.now() }
	id := c.cfg.Identity
	switch id.Kind {
	case IdentityNone:
		p.auth = noAuth{}
	case IdentityJWT:
		p.keys = &keySource{file: id.JWKSFile, url: id.JWKSURL, minRefresh: id.JWKSMinRefresh, now: clock,
			client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: nil, TLSHandshakeTimeout: 10 * time.Second},
				CheckRedirect: jwksRedirect}}
		p.auth = &jwtAuth{id: id, keys: p.keys, now: clock}
	case IdentityBasic:
		a, err := newBasicAuth(id, clock)
		if err != nil {
			return nil, err
		}
		p.auth = a
	case IdentityClientCert:
		p.auth = certAuth{}
	case IdentityHeader:
		p.auth = headerAuth{header: id.Header}
	}
	if c.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.cfg.TLSCert, c.cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls_cert/tls_key: %w", err)
		}
		p.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if id.ClientCA != "" {
			pool, err := loadPool(id.ClientCA)
			if err != nil {
				return nil, fmt.Errorf("identity client_ca: %w", err)
			}
			// Verified when given rather than required, so that a call
			// without a certificate reaches the handler and its refusal is
			// recorded; a certificate that fails verification still fails
			// the handshake (and cannot be recorded).
			p.tls.ClientCAs, p.tls.ClientAuth = pool, tls.VerifyClientCertIfGiven
		}
	}
	p.transport, err = newTransport(c.cfg)
	if err != nil {
		return nil, err
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     bufferPool{},
	}
	return p, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates in it", file)
	}
	return pool, nil
}

// newTransport is tuned for one upstream taking many concurrent calls:
// enough idle connections to keep them all warm, no environment proxy
// (the upstream is on the local network), no transparent decompression
// (bodies pass through as the upstream sent them).
func newTransport(cfg Config) (*http.Transport, error) {
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if cfg.UpstreamTimeout > 0 {
		t.ResponseHeaderTimeout = cfg.UpstreamTimeout
	}
	if cfg.UpstreamCA != "" {
		pool, err := loadPool(cfg.UpstreamCA)
		if err != nil {
			return nil, fmt.Errorf("upstream_ca: %w", err)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return t, nil
}

// bufferPool recycles the 32 KiB buffers bodies are copied through.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// Name implements capture.Capture.
func (p *Proxy) Name() string { return "http proxy " + p.c.listen }

// Addr is the address the proxy listens on, once started (useful with
// port 0).
func (p *Proxy) Addr() string {
	if p.ln == nil {
		return p.c.listen
	}
	return p.ln.Addr().String()
}

// Start implements capture.Capture: it loads the JWT key set (a proxy that
// cannot verify tokens does not start), binds the listener and serves.
func (p *Proxy) Start(ctx context.Context, env capture.Env) error {
	if env.Journal == nil {
		return errors.New("http proxy: no journal")
	}
	p.env = env
	if env.Logger != nil {
		p.log = env.Logger.With("capture", p.Name())
	}
	p.rlog = ratelog.New(p.log, ratelog.DefaultInterval, nil)
	if env.Now != nil {
		p.now = env.Now
	}
	m, err := newMetrics(env.Registerer, p.c.listen)
	if err != nil {
		return err
	}
	p.metrics = m
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stop = stop
	if p.keys != nil {
		p.keys.log = p.log
		if err := p.keys.load(ctx); err != nil {
			stop()
			m.registration.Unregister()
			return fmt.Errorf("load the JWT key set: %w", err)
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.keys.refreshEvery(bg, p.c.cfg.Identity.JWKSRefresh)
		}()
	}
	ln, err := net.Listen("tcp", p.c.listen)
	if err != nil {
		stop()
		p.wg.Wait()
		m.registration.Unregister()
		return fmt.Errorf("listen on %s: %w", p.c.listen, err)
	}
	p.ln = ln
	p.srv = &http.Server{
		TLSConfig:         p.tls,
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Bounds the URL too, and so what a query string can put in
		// requestParameters.
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	p.rp.ErrorLog = p.srv.ErrorLog
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var err error
		if p.tls != nil {
			// ServeTLS (rather than a tls.Listener) also offers HTTP/2.
			err = p.srv.ServeTLS(ln, "", "")
		} else {
			err = p.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("http proxy stopped serving", "err", err)
		}
	}()
	return nil
}

// Close implements capture.Capture: no new calls, and the ones in flight
// finish (their events durable or refused) for up to 30 s.
// Closing twice is harmless.
func (p *Proxy) Close() error {
	if p.srv == nil {
		return nil
	}
	p.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			p.closeErr = errors.Join(fmt.Errorf("shut down %s: %w", p.Name(), err), p.srv.Close())
		}
		p.stop()
		p.wg.Wait()
		p.transport.CloseIdleConnections()
		p.metrics.registration.Unregister()
	})
	return p.closeErr
}

// call is what the proxy learns about one request on its way through.
type call struct {
	in       *http.Request
	start    time.Time
	trusted  bool
	sourceIP string
	who      caller
	// credNote says why credentials were ignored on a call let through as
	// anonymous.
	credNote  string
	route     *route
	params    []param
	body      *teeBody
	requestID string
	respHdr   http.Header
}

type callKey struct{}

// ServeHTTP identifies the caller, matches the route and forwards the
// call, or refuses it; every outcome but an unavailable journal is
// recorded.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{in: r, start: p.now(), who: caller{id: event.UserIdentity{Type: "Unknown"}}}
	c.trusted, c.sourceIP = p.clientIP(r)
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		p.refuse(w, c, http.StatusBadRequest, "BadRequest", "the request path is refused: "+err.Error())
		return
	}
	// A query Go cannot parse whole (a bad escape, a ';' separator) would
	// be recorded without the pairs it skips while the upstream, which
	// may split it otherwise, acts on them: refuse it.
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		p.refuse(w, c, http.StatusBadRequest, "BadRequest", "the request query is refused: "+err.Error())
		return
	}
	c.route, c.params = p.match(r.Method, segs)
	who, err := p.auth.authenticate(r, c.trusted)
	switch {
	case err == nil:
		c.who = who
	case p.c.cfg.Identity.AllowAnonymous:
		c.who = anonymous
		if !errors.Is(err, errNoCredentials) {
			c.credNote = err.Error()
		}
	default:
		msg := "the call carries no credentials"
		var ae *authError
		if errors.As(err, &ae) {
			msg, c.who.id.UserName = ae.msg, ae.user
		}
		if ch := p.auth.challenge(); ch != "" {
			w.Header().Set("WWW-Authenticate", ch)
		}
		p.refuse(w, c, http.StatusUnauthorized, "AccessDenied", msg)
		return
	}
	if c.route == nil && p.c.cfg.Unmatched == UnmatchedDeny {
		p.refuse(w, c, http.StatusForbidden, "AccessDenied", "no route allows "+r.Method+" "+r.URL.EscapedPath())
		return
	}
	if p.c.cfg.FailurePolicy == FailClosed {
		if err := p.env.Journal.Available(); err != nil {
			p.metrics.requests.WithLabelValues("unavailable").Inc()
			p.log.Warn("refusing a call: the journal cannot make its event durable", "method", r.Method, "err", err)
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the audit journal cannot record this call right now; it was not forwarded")
			return
		}
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
}

// match finds the first route, in configuration order, that takes the
// request.
func (p *Proxy) match(method string, segs []string) (*route, []param) {
	if rt, ps := p.matchMethod(method, segs); rt != nil {
		return rt, ps
	}
	if method == http.MethodHead {
		// HEAD is GET without the body: a GET route answers it too, as
		// in Go's ServeMux, unless a HEAD route came first.
		return p.matchMethod(http.MethodGet, segs)
	}
	return nil, nil
}

func (p *Proxy) matchMethod(method string, segs []string) (*route, []param) {
	for _, rt := range p.c.routes {
		if rt.method != "" && rt.method != method {
			continue
		}
		if ps, ok := rt.pat.match(segs); ok {
			return rt, ps
		}
	}
	return nil, nil
}

// clientIP is the caller's address: the connection's peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For address that is
// not itself trusted.
func (p *Proxy) clientIP(r *http.Request) (trusted bool, ip string) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false, r.RemoteAddr
	}
	peer := ap.Addr().Unmap()
	if !p.isTrusted(peer) {
		return false, peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !p.isTrusted(a) {
			break
		}
	}
	return true, client.String()
}

func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func (p *Proxy) isTrusted(a netip.Addr) bool {
	for _, pf := range p.c.trusted {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// rewrite builds the upstream request. X-Forwarded-For is passed on only
// from trusted proxies (with the peer appended), and the identity header
// only from them, so the upstream cannot be told lies the proxy did not
// believe either.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(callKey{}).(*call)
	pr.SetURL(p.c.upstream)
	if c.trusted {
		if v := pr.In.Header.Values("X-Forwarded-For"); len(v) > 0 {
			pr.Out.Header["X-Forwarded-For"] = append([]string(nil), v...)
		}
	}
	pr.SetXForwarded()
	if h, ok := p.auth.(headerAuth); ok {
		// Only the value the proxy believed reaches the upstream, once,
		// and never a look-alike (X_Forwarded_User, which CGI-style
		// servers read as the same variable as X-Forwarded-User).
		for k := range pr.Out.Header {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), h.header) {
				delete(pr.Out.Header, k)
			}
		}
		if c.trusted && c.who.id.UserName != "" && c.who.id.Type == "IAMUser" {
			pr.Out.Header.Set(h.header, c.who.id.UserName)
		}
	}
	if p.c.cfg.RecordRequestBody && pr.Out.Body != nil && pr.Out.Body != http.NoBody && isJSON(pr.In.Header.Get("Content-Type")) {
		c.body = &teeBody{rc: pr.Out.Body, limit: p.c.cfg.BodyLimit}
		pr.Out.Body = c.body
	}
}

// errNotRecorded carries a failed append out of ModifyResponse to the
// error handler, which answers 503 in place of the upstream's response.
type errNotRecorded struct{ err error }

func (e *errNotRecorded) Error() string { return "the call's event was not recorded: " + e.err.Error() }

// modifyResponse runs once the upstream's status and headers are in and
// before any of it reaches the caller: it records the call, durably.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	c := resp.Request.Context().Value(callKey{}).(*call)
	code, msg := statusError(resp.StatusCode)
	cfg := p.c.cfg
	if code != "" && (cfg.ErrorCodeField != "" || cfg.ErrorMessageField != "") && isJSON(resp.Header.Get("Content-Type")) {
		// Peek at a bounded prefix of the error body and put it back in
		// front of the rest, which still streams.
		head, err := io.ReadAll(io.LimitReader(resp.Body, cfg.BodyLimit+1))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		if err == nil && int64(len(head)) <= cfg.BodyLimit {
			if v := jsonField(head, cfg.ErrorCodeField); v != "" {
				code = v
			}
			if v := jsonField(head, cfg.ErrorMessageField); v != "" {
				msg = v
			}
		}
	}
	c.requestID = resp.Header.Get("X-Request-Id")
	if c.requestID == "" {
		c.requestID = resp.Header.Get("X-Amzn-Requestid")
	}
	c.respHdr = resp.Header
	if err := p.record(c, resp.StatusCode, code, msg); err != nil && cfg.FailurePolicy == FailClosed {
		return &errNotRecorded{err}
	}
	p.metrics.requests.WithLabelValues("forwarded").Inc()
	return nil
}

// errorHandler answers calls the upstream did not: unreachable, timed out,
// or its answer withheld because the event could not be recorded.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := r.Context().Value(callKey{}).(*call)
	var nr *errNotRecorded
	if errors.As(err, &nr) {
		p.metrics.requests.WithLabelValues("unavailable").Inc()
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the audit journal could not record this call; the upstream's response is withheld")
		return
	}
	status, code, msg := http.StatusBadGateway, "BadGateway", "the upstream did not answer"
	var ne net.Error
	switch {
	case r.Context().Err() != nil:
		// The caller hung up; the upstream may have acted all the same.
		status, code, msg = 499, "ClientClosedRequest", "the caller closed the connection before the upstream answered"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		status, code, msg = http.StatusGatewayTimeout, "GatewayTimeout", "the upstream did not answer in time"
	}
	// The URL in a *url.Error may carry secrets in its query; log the cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	p.log.Warn("upstream call failed", "method", r.Method, "status", status, "err", err)
	p.metrics.requests.WithLabelValues("upstream_error").Inc()
	if rerr := p.record(c, status, code, msg); rerr != nil && p.c.cfg.FailurePolicy == FailClosed {
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the audit journal could not record this call")
		return
	}
	writeError(w, status, code, msg)
}

// refuse records a call the proxy itself turns away and answers it; if
// even the refusal cannot be recorded under fail-closed, the answer is
// 503.
func (p *Proxy) refuse(w http.ResponseWriter, c *call, status int, code, msg string) {
	p.metrics.requests.WithLabelValues("refused").Inc()
	if err := p.record(c, status, code, msg); err != nil && p.c.cfg.FailurePolicy == FailClosed {
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the audit journal could not record this call")
		return
	}
	writeError(w, status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// record builds the call's event and appends it; it returns once the
// event is durable, or the reason it is not (counted as lost).
func (p *Proxy) record(c *call, status int, code, msg string) error {
	rec, err := p.build(c, status, code, msg)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.in.Context()), appendTimeout)
		_, err = p.env.Journal.Append(ctx, [][]byte{rec.Raw})
		cancel()
	}
	if err != nil {
		p.metrics.lost.Inc()
		p.rlog.Error("http proxy: an event was not recorded", "policy", p.c.cfg.FailurePolicy,
			"method", c.in.Method, "status", status, "err", err)
		return fmt.Errorf("record the call: %w", err)
	}
	return nil
}

func (p *Proxy) build(c *call, status int, code, msg string) (*event.Record, error) {
	r := c.in
	cfg := p.c.cfg
	ev := event.APICall{
		Time:               c.start,
		Source:             cfg.EventSource,
		Name:               cfg.UnmatchedEventName,
		Region:             cfg.Region,
		SourceIP:           c.sourceIP,
		UserAgent:          r.UserAgent(),
		RequestID:          c.requestID,
		RecipientAccountID: p.env.AccountID,
		ErrorCode:          code,
		ErrorMessage:       msg,
		ReadOnly:           safeMethod(r.Method),
		Identity:           c.who.id,
		RequestParameters:  p.requestParameters(c),
	}
	if ev.RequestID == "" {
		ev.RequestID = uuid.NewString()
	}
	if rt := c.route; rt != nil {
		ev.Source, ev.Name, ev.ReadOnly, ev.DataEvent = rt.EventSource, rt.EventName, rt.ReadOnly, rt.DataEvent
		if rt.arn != nil {
			arn := rt.arn.expand(c.params, cfg.Region, p.env.AccountID)
			ev.Resources = []event.Resource{{Type: rt.ResourceType, Name: arn, ARN: arn, AccountID: p.env.AccountID}}
		}
		if code == "" && len(rt.ResponseHeaders) > 0 && c.respHdr != nil {
			ev.ResponseElements = headerObject(c.respHdr, rt.ResponseHeaders)
		}
	}
	ev.Identity.IdentityProvider = c.who.provider
	extra := map[string]any{"httpMethod": r.Method, "httpPath": r.URL.EscapedPath(), "httpStatus": status}
	if c.credNote != "" {
		extra["credentialsIgnored"] = c.credNote
	}
	add, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("additionalEventData: %w", err)
	}
	ev.AdditionalEventData = add
	ev.TLS = event.NewTLSDetails(r.TLS, r.Host)
	return ev.Record()
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// requestParameters are the path's wildcards, then the query parameters
// (a query parameter named like a wildcard is kept as "query:<name>"),
// then a recorded JSON body under "body"; null when there is none.
func (p *Proxy) requestParameters(c *call) json.RawMessage {
	var b objectBuilder
	taken := map[string]bool{}
	for _, q := range c.params {
		b.add(q.name, q.value)
		taken[q.name] = true
	}
	query, _ := url.ParseQuery(c.in.URL.RawQuery)
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if taken[k] || k == "body" {
			name = "query:" + k
		}
		v := query[k]
		if p.redacted(k) {
			for i := range v {
				v[i] = hidden
			}
		}
		if len(v) == 1 {
			b.add(name, v[0])
		} else {
			b.add(name, v)
		}
	}
	if c.body != nil {
		if raw := c.body.object(); raw != nil {
			b.addRaw("body", p.redactBody(raw))
		}
	}
	return b.done()
}

// redacted says whether a parameter's or body member's value is hidden;
// names compare case-insensitively, so "Password" or "ACCESS_TOKEN" is
// hidden when "password" or "access_token" is listed.
func (p *Proxy) redacted(name string) bool {
	return p.c.redact[strings.ToLower(name)]
}

// hidden replaces redacted values, as CloudTrail hides sensitive ones.
const hidden = "HIDDEN_DUE_TO_SECURITY_REASONS"

// redactBody hides the redacted top-level members of a recorded JSON
// object body, keeping the others byte for byte.
func (p *Proxy) redactBody(raw json.RawMessage) json.RawMessage {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return raw
	}
	touched := false
	for k := range members {
		if p.redacted(k) {
			touched = true
		}
	}
	if !touched {
		return raw
	}
	// Rewrite in the original member order.
	var b objectBuilder
	d := json.NewDecoder(bytes.NewReader(raw))
	if _, err := d.Token(); err != nil {
		return nil
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil
		}
		if p.redacted(k) {
			b.add(k, hidden)
		} else {
			b.addRaw(k, v)
		}
	}
	return b.done()
}

// headerObject records the listed response headers that are present.
func headerObject(h http.Header, names []string) json.RawMessage {
	var b objectBuilder
	for _, n := range names {
		if v := h.Values(n); len(v) == 1 {
			b.add(n, v[0])
		} else if len(v) > 1 {
			b.add(n, v)
		}
	}
	return b.done()
}

// objectBuilder writes a JSON object with members in insertion order.
type objectBuilder struct{ buf bytes.Buffer }

func (b *objectBuilder) add(k string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		return
	}
	b.addRaw(k, raw)
}

func (b *objectBuilder) addRaw(k string, raw []byte) {
	if b.buf.Len() == 0 {
		b.buf.WriteByte('{')
	} else {
		b.buf.WriteByte(',')
	}
	key, _ := json.Marshal(k)
	b.buf.Write(key)
	b.buf.WriteByte(':')
	b.buf.Write(raw)
}

func (b *objectBuilder) done() json.RawMessage {
	if b.buf.Len() == 0 {
		return nil
	}
	b.buf.WriteByte('}')
	return b.buf.Bytes()
}

// teeBody passes a request body through while keeping a copy of at most
// limit bytes, for recording. The transport reads it on its own goroutine,
// hence the lock.
type teeBody struct {
	rc    io.ReadCloser
	limit int64

	mu   sync.Mutex
	buf  []byte
	over bool
	eof  bool
}

func (t *teeBody) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	t.mu.Lock()
	if !t.over {
		if int64(len(t.buf)+n) > t.limit {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, b[:n]...)
		}
	}
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	t.mu.Unlock()
	return n, err
}

func (t *teeBody) Close() error { return t.rc.Close() }

// object is the body if it was read whole, fits the limit and is a JSON
// object; nil otherwise.
func (t *teeBody) object() json.RawMessage {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.eof || t.over {
		return nil
	}
	trimmed := bytes.TrimSpace(t.buf)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, trimmed); err != nil {
		return nil
	}
	return compact.Bytes()
}

// metrics are the proxy's Prometheus series, labelled with its listen
// address so that several proxies can share a registry.
type metrics struct {
	requests     *prometheus.CounterVec
	lost         prometheus.Counter
	registration *metricsreg.Registration
}

func newMetrics(reg prometheus.Registerer, listen string) (*metrics, error) {
	labels := prometheus.Labels{"proxy": listen}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "cairn_http_proxy_requests_total",
			Help:        "Calls through the HTTP audit proxy, by outcome: forwarded, refused (authentication, route, bad path), unavailable (journal not taking writes), upstream_error.",
			ConstLabels: labels,
		}, []string{"outcome"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "cairn_http_proxy_events_lost_total",
			Help:        "Events of calls through the HTTP audit proxy that could not be made durable (forwarded anyway under failure_policy open, refused with 503 under closed).",
			ConstLabels: labels,
		}),
	}
	// Unregistered when the proxy closes or fails to start, so that a
	// proxy started again on the same address (a reload, tests) can
	// register again.
	r, err := metricsreg.Register(reg, m.requests, m.lost)
	if err != nil {
		return nil, fmt.Errorf("register http proxy metrics: %w", err)
	}
	m.registration = r
	return m, nil
}
