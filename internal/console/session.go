package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/event"
)

const (
	sessionCookie = "cairn_session"
	// preCookie carries the sign-in form's CSRF token before there is a
	// session, so that another site cannot sign a browser in as its own key.
	preCookie = "cairn_signin"
	// absoluteLifetime and idleLifetime bound a session: a stolen cookie is
	// useless after a working day, and an abandoned browser after an hour.
	absoluteLifetime = 12 * time.Hour
	idleLifetime     = time.Hour
	csrfField        = "csrf"
	// maxFormBytes bounds a signed-in POST's body; the largest form, the
	// trail wizard with advanced selectors, is far smaller.
	maxFormBytes = 1 << 20
	csrfHeader   = "X-CSRF-Token"
)

// session is one signed-in browser. Sessions live only in memory: a
// restart signs everybody out, which is the safe direction.
type session struct {
	id      string
	csrf    string
	created time.Time

	mu       sync.Mutex
	caller   api.Caller
	lastSeen time.Time
	region   string
	// flash is a message for the next page, kept server-side so that a
	// link cannot make the console show text of an attacker's choosing.
	flash    string
	flashErr bool
}

// setFlash leaves a message for the next page the session renders.
func (s *session) setFlash(msg string, isErr bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flash, s.flashErr = msg, isErr
}

func (s *session) popFlash() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, isErr := s.flash, s.flashErr
	s.flash, s.flashErr = "", false
	return msg, isErr
}

// Caller is the identity the session acts as.
func (s *session) Caller() api.Caller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caller
}

// Region is the region the console shows and changes.
func (s *session) Region() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.region
}

// ReadOnly says whether the key may change nothing; pages hide their
// buttons for it (the operations refuse anyway).
func (s *session) ReadOnly() bool { return s.Caller().ReadOnlyKey }

// UserName is shown in the header.
func (s *session) UserName() string { return s.Caller().UserName }

// AccessKeyID is shown in the header's menu.
func (s *session) AccessKeyID() string { return s.Caller().AccessKeyID }

type sessionStore struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessionStore(now func() time.Time) *sessionStore {
	return &sessionStore{now: now, m: map[string]*session{}}
}

// randomToken is 256 bits from the OS's CSPRNG, URL-safe.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (st *sessionStore) create(c api.Caller, region string) *session {
	now := st.now()
	s := &session{id: randomToken(), csrf: randomToken(), created: now, caller: c, lastSeen: now, region: region}
	st.mu.Lock()
	defer st.mu.Unlock()
	// Expired sessions are dropped here rather than by a goroutine: sign-ins
	// are rare, so the map stays small without a background task.
	var mine []*session
	for id, old := range st.m {
		if st.expired(old, now) {
			delete(st.m, id)
		} else if old.Caller().AccessKeyID == c.AccessKeyID {
			mine = append(mine, old)
		}
	}
	// A key holds at most maxSessionsPerKey sessions; a new one ends the
	// least recently used, so that signing in again and again (from many
	// addresses, past the per-address limit) cannot grow the map forever.
	for len(mine) >= maxSessionsPerKey {
		lru := 0
		for i, o := range mine {
			if o.seen().Before(mine[lru].seen()) {
				lru = i
			}
		}
		delete(st.m, mine[lru].id)
		mine = append(mine[:lru], mine[lru+1:]...)
	}
	st.m[s.id] = s
	return s
}

// maxSessionsPerKey bounds the live sessions of one access key.
const maxSessionsPerKey = 20

func (s *session) seen() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeen
}

func (st *sessionStore) expired(s *session, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(s.created) > absoluteLifetime || now.Sub(s.lastSeen) > idleLifetime
}

// get returns the live session with this ID and, when touch is set, marks
// it used. Live mode's polls do not touch it: an open tab alone must not
// keep a session from idling out.
func (st *sessionStore) get(id string, touch bool) *session {
	if id == "" {
		return nil
	}
	st.mu.Lock()
	s := st.m[id]
	st.mu.Unlock()
	if s == nil {
		return nil
	}
	now := st.now()
	if st.expired(s, now) {
		st.remove(id)
		return nil
	}
	if touch {
		s.mu.Lock()
		s.lastSeen = now
		s.mu.Unlock()
	}
	return s
}

func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// authed lets a request through only with a live session whose key still
// exists, and with a valid CSRF token when it is a POST.
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if ck, err := r.Cookie(sessionCookie); err == nil {
			s = c.sessions.get(ck.Value, r.URL.Path != Prefix+"events/live")
		}
		if s != nil {
			caller, ok, err := c.be.Caller(r.Context(), s.Caller().AccessKeyID)
			if err != nil {
				c.log.Error("console: re-read the session's access key", "err", err)
				http.Error(w, "could not check your access key; try again", http.StatusServiceUnavailable)
				return
			}
			if !ok {
				c.sessions.remove(s.id)
				s = nil
			} else {
				s.mu.Lock()
				s.caller = caller
				s.mu.Unlock()
			}
		}
		if s == nil {
			c.toSignIn(w, r)
			return
		}
		if r.Method == http.MethodPost {
			// The CSRF check reads the form, so the bound on its size
			// comes first: set later, by a handler, it bounds nothing.
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "The form is too large or malformed.", http.StatusRequestEntityTooLarge)
				return
			}
			// The form is in: the listener's body deadline must not cut
			// short the change and its record that follow.
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		if r.Method == http.MethodPost && !c.csrfOK(r, s.csrf) {
			http.Error(w, "The form was stale or came from another site (CSRF check failed). Reload the page and try again.", http.StatusForbidden)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)), s)
	})
}

// toSignIn sends a browser without a session to the sign-in page, and
// tells htmx to do the same with the whole page rather than a fragment.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request) {
	target := Prefix + "signin"
	next := r.URL.RequestURI()
	if r.Header.Get("HX-Request") == "true" {
		// An htmx request (live mode's poll) is for a fragment; after
		// signing in, the browser should come back to the page it was on.
		next = Prefix
		if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && u.Host == r.Host {
			next = u.RequestURI()
		}
	}
	if r.Method == http.MethodGet && next != Prefix {
		target += "?next=" + url.QueryEscape(safeNext(next))
	}
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// csrfOK checks the token of a POST (form field or htmx header) and, as a
// second line, that a browser-sent Origin is this server.
func (c *Console) csrfOK(r *http.Request, want string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		Expires:  c.now().Add(maxAge),
		HttpOnly: true,
		Secure:   c.opts.Secure,
		SameSite: http.SameSiteStrictMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.opts.Secure, SameSite: http.SameSiteStrictMode})
}

type signInData struct {
	Next        string
	AccessKeyID string
	PreToken    string
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil && c.sessions.get(ck.Value, false) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.renderSignIn(w, r, http.StatusOK, "", "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, keyID, msg string) {
	tok := randomToken()
	c.setCookie(w, preCookie, tok, 30*time.Minute)
	c.render(w, r, status, "signin", view{Title: "Sign in", Error: msg, Data: signInData{
		Next: safeNext(r.FormValue("next")), AccessKeyID: keyID, PreToken: tok,
	}})
}

// safeNext keeps a post-sign-in redirect on the console, so that a link
// cannot bounce a user to another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	pre, err := r.Cookie(preCookie)
	// An empty token proves nothing: "" equals "", and a cookie with an
	// empty value is all another page would need to plant.
	if err != nil || pre.Value == "" || subtle.ConstantTimeCompare([]byte(pre.Value), []byte(r.PostFormValue(csrfField))) != 1 {
		c.renderSignIn(w, r, http.StatusForbidden, "", "The sign-in form expired. Please try again.")
		return
	}
	m := meta(r)
	if !c.limiter.allow(m.SourceIP) {
		c.renderSignIn(w, r, http.StatusTooManyRequests, "", "Too many sign-in attempts from your address. Wait a minute and try again.")
		return
	}
	keyID := strings.TrimSpace(r.PostFormValue("access_key_id"))
	// What was typed as the key ID is recorded, and shown again in the
	// form, only if it has an access key ID's shape: people paste secrets
	// into the wrong field, and a failed sign-in's record is kept forever
	// and read by every auditor. (CloudTrail hides a failed sign-in's user
	// name for the same reason.) Cairn's secrets are 40 mixed-case
	// alphanumerics, so they never have this shape.
	shownID := keyID
	if !accessKeyIDShape.MatchString(keyID) {
		shownID = ""
	}
	secret := r.PostFormValue("secret_access_key")
	caller, ok, err := c.be.Authenticate(r.Context(), keyID, secret)
	if err != nil {
		c.log.Error("console: check sign-in credentials", "err", err)
		c.renderSignIn(w, r, http.StatusServiceUnavailable, shownID, "Cairn could not check your key right now. Try again later.")
		return
	}
	region := c.opts.Regions[0]
	rec := event.APICall{
		Time:      c.now().UTC(),
		Source:    "signin.amazonaws.com",
		Name:      "ConsoleLogin",
		EventType: "AwsConsoleSignIn",
		Region:    region,
		SourceIP:  m.SourceIP,
		UserAgent: m.UserAgent,
		AdditionalEventData: mustJSON(map[string]string{
			"LoginTo": scheme(m) + "://" + m.Host + Prefix, "MobileVersion": "No", "MFAUsed": "No",
		}),
	}
	if ok {
		rec.Identity = caller.Identity()
		rec.ResponseElements = mustJSON(map[string]string{"ConsoleLogin": "Success"})
	} else {
		// As CloudTrail does for a failed sign-in: the user is not named
		// (the key may not exist) and the secret is never written anywhere.
		rec.Identity = event.UserIdentity{Type: "IAMUser", AccountID: c.opts.AccountID, AccessKeyID: shownID, UserName: "HIDDEN_DUE_TO_SECURITY_REASONS"}
		rec.ErrorMessage = "Failed authentication"
		rec.ResponseElements = mustJSON(map[string]string{"ConsoleLogin": "Failure"})
	}
	if err := c.be.Record(r.Context(), rec); err != nil {
		c.log.Error("console: record sign-in; refusing it", "err", err)
		c.renderSignIn(w, r, http.StatusServiceUnavailable, shownID, "Cairn could not record this sign-in in its audit journal, so it was refused. Try again later.")
		return
	}
	if !ok {
		c.log.Info("console: failed sign-in", "source_ip", m.SourceIP)
		c.renderSignIn(w, r, http.StatusUnauthorized, shownID, "The access key ID or secret access key is wrong.")
		return
	}
	// A sign-in always starts a new session, and ends the one this browser
	// had (another user's, perhaps): its ID must not stay usable.
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" {
		c.sessions.remove(old.Value)
	}
	s := c.sessions.create(caller, region)
	c.clearCookie(w, preCookie)
	c.setCookie(w, sessionCookie, s.id, absoluteLifetime)
	c.log.Info("console: signed in", "user", caller.UserName, "access_key_id", caller.AccessKeyID, "source_ip", m.SourceIP)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *session) {
	m := meta(r)
	rec := event.APICall{
		Time:      c.now().UTC(),
		Source:    "signin.amazonaws.com",
		Name:      "ConsoleLogout",
		EventType: "AwsConsoleAction",
		Region:    s.Region(),
		SourceIP:  m.SourceIP,
		UserAgent: m.UserAgent,
		Identity:  s.Caller().Identity(),
		// Sign-out changes nothing but the session; recording it completes
		// the session's story in the trail.
		ResponseElements: mustJSON(map[string]string{"ConsoleLogout": "Success"}),
		FromConsole:      true,
	}
	// The session ends even when its record cannot be written: refusing to
	// sign someone out would be the unsafe direction.
	if err := c.be.Record(r.Context(), rec); err != nil {
		c.log.Error("console: record sign-out", "err", err)
	}
	c.sessions.remove(s.id)
	c.clearCookie(w, sessionCookie)
	http.Redirect(w, r, Prefix+"signin?signedout=1", http.StatusSeeOther)
}

func (c *Console) setRegion(w http.ResponseWriter, r *http.Request, s *session) {
	region := r.PostFormValue("region")
	for _, ok := range c.regions(r.Context()) {
		if ok == region {
			s.mu.Lock()
			s.region = region
			s.mu.Unlock()
		}
	}
	back := r.PostFormValue("back")
	http.Redirect(w, r, safeNext(back), http.StatusSeeOther)
}

func scheme(m Meta) string {
	if m.TLS != nil {
		return "https"
	}
	return "http"
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with maps of strings
	}
	return b
}

// accessKeyIDShape is AWS's AccessKeyId: 16 to 128 upper-case letters and
// digits (Cairn's are "CKIA" and 16 base32 characters).
var accessKeyIDShape = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)

// rateLimiter bounds sign-in attempts per source address in a fixed
// window: enough for a person who mistypes, far too few to guess a secret.
// It tracks at most maxKeys addresses: when that many have tried within
// the window, a new address is refused until old entries expire, so that
// a flood from many addresses (an IPv6 prefix holds plenty) can neither
// grow the map without bound nor reset the others' counts.
type rateLimiter struct {
	now       func() time.Time
	max       int
	window    time.Duration
	maxKeys   int
	mu        sync.Mutex
	seen      map[string]*attempts
	lastPrune time.Time
}

type attempts struct {
	start time.Time
	n     int
}

// rateLimiterKeys bounds the addresses a rateLimiter tracks.
const rateLimiterKeys = 10000

func newRateLimiter(now func() time.Time, max int, window time.Duration) *rateLimiter {
	return &rateLimiter{now: now, max: max, window: window, maxKeys: rateLimiterKeys, seen: map[string]*attempts{}}
}

func (l *rateLimiter) allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.seen[key]
	if a == nil || now.Sub(a.start) > l.window {
		if a == nil && len(l.seen) >= l.maxKeys {
			// Sweep at most once a second: a sweep walks the whole map.
			if now.Sub(l.lastPrune) >= time.Second {
				l.lastPrune = now
				for k, old := range l.seen {
					if now.Sub(old.start) > l.window {
						delete(l.seen, k)
					}
				}
			}
			if len(l.seen) >= l.maxKeys {
				return false
			}
		}
		a = &attempts{start: now}
		l.seen[key] = a
	}
	a.n++
	return a.n <= l.max
}
