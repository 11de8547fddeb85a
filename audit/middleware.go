package audit

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits the rendered event keeps to (reference §2.2), so that what the caller
// controls (the URL, the User-Agent) never makes Cairn refuse an event.
const (
	maxStringField = 1024   // userAgent, eventName, principalId, UID
	maxParamValue  = 1024   // one query parameter value
	maxParams      = 64     // query parameters kept, and values of one
	maxParamName   = 128    // a longer parameter name is left out
	maxParamsBytes = 90_000 // rendered requestParameters
	maxPath        = 1024   // additionalEventData.path
)

// hidden replaces sensitive values, as CloudTrail itself does.
const hidden = "HIDDEN_DUE_TO_SECURITY_REASONS"

// Middleware returns a handler that serves with next and then audits the
// request. The event is built after next returns, so the handler's latency
// is unchanged; what the request pays is rendering the event and, when the
// buffer is full, at most EnqueueBudget. A handler that panics is audited
// (status 500 unless it had already written one) and the panic goes on.
func (c *Client) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.cfg.Skip != nil && c.cfg.Skip(r) {
			next.ServeHTTP(w, r)
			return
		}
		start := c.now()
		rw := &responseWriter{ResponseWriter: w}
		completed := false
		defer func() {
			if !completed {
				if rw.status == 0 {
					rw.status = http.StatusInternalServerError
				}
				rw.panicked = true
				c.audit(r, rw, start)
			}
		}()
		next.ServeHTTP(rw, r)
		completed = true
		c.audit(r, rw, start)
	})
}

// audit renders the request's event and buffers it.
func (c *Client) audit(r *http.Request, rw *responseWriter, start time.Time) {
	c.enqueue(r.Context(), c.render(r, rw, start, c.now()))
}

// render builds the PutAuditEvents entry {"id", "eventData"} of a request.
func (c *Client) render(r *http.Request, rw *responseWriter, start, end time.Time) item {
	uid := uuid.NewString()
	id := Identity{}
	if c.cfg.Identify != nil {
		id = c.cfg.Identify(r)
	}
	if id.Type == "" {
		id.Type = "Unknown"
	}
	if id.PrincipalID == "" {
		id.PrincipalID = "anonymous"
	}
	name := ""
	if c.cfg.NameEvent != nil {
		name = c.cfg.NameEvent(r)
	}
	if name == "" {
		name = r.Pattern
	}
	if name == "" {
		name = r.Method + " " + r.URL.Path
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http answers 200
	}

	b := make([]byte, 0, 768)
	b = append(b, `{"version":`...)
	b = appendString(b, c.cfg.Version, 256)
	b = append(b, `,"userIdentity":{"type":`...)
	b = appendString(b, id.Type, 128)
	b = append(b, `,"principalId":`...)
	b = appendString(b, id.PrincipalID, maxStringField)
	if id.Details != nil {
		if d, err := json.Marshal(id.Details); err == nil {
			b = append(b, `,"details":`...)
			b = append(b, d...)
		} else {
			c.log.Warn("audit: Identity.Details is not JSON; left out of the event", "err", err)
		}
	}
	b = append(b, '}')
	if ua := r.UserAgent(); ua != "" {
		b = append(b, `,"userAgent":`...)
		b = appendString(b, ua, maxStringField)
	}
	b = append(b, `,"eventSource":`...)
	b = appendString(b, c.cfg.EventSource, maxStringField)
	b = append(b, `,"eventName":`...)
	b = appendString(b, name, maxStringField)
	b = append(b, `,"eventTime":"`...)
	b = start.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
	b = append(b, `","UID":"`...)
	b = append(b, uid...)
	b = append(b, '"')
	b = c.appendRequestParameters(b, r)
	if status >= 400 {
		text := http.StatusText(status)
		code := errorCode(text)
		if code == "" {
			code = "HTTP" + strconv.Itoa(status)
			text = "HTTP " + strconv.Itoa(status)
		}
		b = append(b, `,"errorCode":`...)
		b = appendString(b, code, 256)
		b = append(b, `,"errorMessage":`...)
		b = appendString(b, text, 256)
	}
	if ip := c.sourceIP(r); ip.IsValid() {
		b = append(b, `,"sourceIPAddress":"`...)
		b = ip.AppendTo(b)
		b = append(b, '"')
	}
	b = append(b, `,"recipientAccountId":`...)
	b = appendString(b, c.account, maxStringField)
	b = append(b, `,"additionalEventData":{"httpMethod":`...)
	b = appendString(b, r.Method, 32)
	b = append(b, `,"path":`...)
	b = appendString(b, r.URL.Path, maxPath)
	b = append(b, `,"protocol":`...)
	b = appendString(b, r.Proto, 32)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"durationMs":`...)
	b = strconv.AppendFloat(b, float64(end.Sub(start).Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"responseBytes":`...)
	b = strconv.AppendInt(b, rw.bytes, 10)
	if rw.hijacked {
		b = append(b, `,"hijacked":true`...)
	}
	if rw.panicked {
		b = append(b, `,"panicked":true`...)
	}
	b = append(b, "}}"...)

	// The entry carries eventData as a JSON string: escape it once more.
	e := make([]byte, 0, len(`{"id":"","eventData":""}`)+len(uid)+len(b)+len(b)/8)
	e = append(e, `{"id":"`...)
	e = append(e, uid...)
	e = append(e, `","eventData":"`...)
	for _, ch := range b {
		if ch == '"' || ch == '\\' {
			e = append(e, '\\')
		}
		e = append(e, ch)
	}
	e = append(e, `"}`...)
	return item{id: uid, data: e}
}

// appendRequestParameters adds requestParameters: the path wildcards of the
// matched pattern and the query parameters, never the body or headers.
// A name in both keeps the path value.
func (c *Client) appendRequestParameters(b []byte, r *http.Request) []byte {
	var names []string
	for rest := r.Pattern; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			break
		}
		name := strings.TrimSuffix(rest[i+1:i+j], "...")
		rest = rest[i+j+1:]
		if name != "" && name != "$" {
			names = append(names, name)
		}
	}
	var query url.Values
	if r.URL.RawQuery != "" {
		query, _ = url.ParseQuery(r.URL.RawQuery) // keeps what parses
	}
	if len(names) == 0 && len(query) == 0 {
		return b
	}
	b = append(b, `,"requestParameters":{`...)
	start, n := len(b), 0
	// add appends one member unless that takes requestParameters past
	// maxParamsBytes (Cairn refuses more than 100 KB), and reports whether
	// it did.
	add := func(k string, vs []string, single bool) bool {
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k, maxParamName)
		b = append(b, ':')
		if single {
			b = c.appendValue(b, k, vs[0])
		} else {
			b = append(b, '[')
			for i, v := range vs[:min(len(vs), maxParams)] {
				if i > 0 {
					b = append(b, ',')
				}
				b = c.appendValue(b, k, v)
			}
			b = append(b, ']')
		}
		if len(b)-start > maxParamsBytes {
			b = b[:mark]
			return false
		}
		n++
		return true
	}
	for _, name := range names {
		if !add(name, []string{r.PathValue(name)}, true) {
			return append(b, '}')
		}
	}
	keys := make([]string, 0, len(query))
	for k := range query {
		// Longer names are junk, and cut they could collide.
		if len(k) <= maxParamName && !slices.Contains(names, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > maxParams {
		keys = keys[:maxParams]
	}
	for _, k := range keys {
		if !add(k, query[k], len(query[k]) == 1) {
			break
		}
	}
	return append(b, '}')
}

// appendValue adds a parameter value, hidden when its name looks secret.
func (c *Client) appendValue(b []byte, name, v string) []byte {
	l := strings.ToLower(name)
	for _, s := range c.secrets {
		if strings.Contains(l, s) {
			return appendString(b, hidden, maxParamValue)
		}
	}
	return appendString(b, v, maxParamValue)
}

// sourceIP is the client's address: the connection's peer, or, when the
// peer is a trusted proxy, the nearest untrusted address in
// X-Forwarded-For (read from the right, since a client can put anything on
// the left).
func (c *Client) sourceIP(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || len(c.cfg.TrustedProxies) == 0 || !c.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			break // garbage: trust nothing further left
		}
		if !c.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

func (c *Client) trusted(a netip.Addr) bool {
	for _, p := range c.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads "ip", "ip:port" or "[ip]:port"; invalid is the zero Addr.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// appendString appends s as a JSON string, cut to at most max bytes on a
// rune boundary; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string, max int) []byte {
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		ch := s[i]
		if ch < utf8.RuneSelf {
			if ch >= 0x20 && ch != '"' && ch != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch ch {
			case '"', '\\':
				b = append(b, '\\', ch)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// errorCode makes an error code of a status text: "Not Found" → "NotFound".
func errorCode(text string) string {
	b := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		if ch := text[i]; ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' {
			b = append(b, ch)
		}
	}
	return string(b)
}

// responseWriter records the status and size of the answer. It keeps
// http.Flusher and http.Hijacker working, and Unwrap lets
// http.ResponseController reach the rest (deadlines, full duplex).
type responseWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
	panicked bool
}

func (w *responseWriter) WriteHeader(code int) {
	// 1xx other than 101 are informational; the final status comes later.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path for io.Copy into the writer.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.bytes += n
	return n, err
}

func (w *responseWriter) Flush() {
	_ = w.FlushError()
}

// FlushError is what http.ResponseController.Flush calls.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
		}
	}
	return conn, brw, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
