// Package console is Cairn's web console: the dashboard, the event history,
// the trail list and the create-trail wizard, served by `cairn serve` on its
// own listener from templates and assets embedded in the binary.
//
// The console holds no state of its own beyond sign-in sessions. It reads
// through the Backend and changes things only through Backend.Call, which runs
// the very operations the API runs, with their validation and their audit
// record, so that the console can neither do more than the API nor leave a
// change out of the audit trail.
package console

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/trail"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where every console page lives; "/" redirects here.
const Prefix = "/console/"

// Meta is what the console knows about the HTTP request behind a call; it
// goes into the call's audit record.
type Meta struct {
	SourceIP  string
	UserAgent string
	TLS       *tls.ConnectionState
	Host      string
}

// Call is one API operation made from the console.
type Call struct {
	Caller    api.Caller
	Meta      Meta
	Region    string
	Operation string
	Body      []byte
}

// JournalState is the journal's head and its consumers' positions.
type JournalState struct {
	LastSeq uint64
	Cursors map[string]uint64
}

// Backend is the part of the server the console uses. The server implements
// it with its own stores; the console never reaches them otherwise.
type Backend interface {
	// Authenticate checks an access key pair in constant time. ok is false
	// for an unknown key or a wrong secret.
	Authenticate(ctx context.Context, accessKeyID, secret string) (c api.Caller, ok bool, err error)
	// Caller re-reads a key, so that a deleted key or a changed role takes
	// effect on the sessions signed in with it.
	Caller(ctx context.Context, accessKeyID string) (c api.Caller, ok bool, err error)
	// Call runs an API operation as the caller, recorded in the journal as
	// made from the console before its result is returned. Its errors are
	// the API's (*awsproto.Error).
	Call(ctx context.Context, c Call) ([]byte, error)
	// Record appends a console event (sign-in, sign-out, download) to the
	// journal; the record carries no eventID or recipientAccountId yet.
	Record(ctx context.Context, rec event.APICall) error
	// Lookup is the event history's LookupEvents query.
	Lookup(ctx context.Context, q history.Query) (history.Page, error)
	// Count is the event history's events per bucket of time (see
	// history.Count), for the dashboard's chart.
	Count(ctx context.Context, region string, start, end time.Time, bucket time.Duration) ([]int, error)
	// Trails lists every trail in every region with its status.
	Trails(ctx context.Context) ([]trail.Trail, error)
	// Read runs a read-only API operation without recording it.
	Read(ctx context.Context, c Call) ([]byte, error)
	// Buckets lists the object store's buckets.
	Buckets(ctx context.Context) ([]string, error)
	// CreateBucket creates a bucket, recorded as S3 records CreateBucket.
	CreateBucket(ctx context.Context, c api.Caller, m Meta, region, name string) error
	// Journal reports the journal head and its consumers.
	Journal() JournalState
}

// Options configures the console.
type Options struct {
	Backend   Backend
	AccountID string
	// Secure marks the session cookie Secure; set it when serving TLS.
	Secure bool
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Regions are the regions offered in the region picker; the first is
	// the default.
	Regions []string
	// EventRegions, when set, lists the regions whose event history holds
	// events; the picker offers them too, so that records imported with
	// regions Cairn does not serve (anonymised exports) can be browsed.
	EventRegions func(ctx context.Context) ([]string, error)
	// Version is shown in the footer.
	Version string
}

// Console is the web console's HTTP handler.
type Console struct {
	be       Backend
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	pages    map[string]*template.Template
	sessions *sessionStore
	limiter  *rateLimiter
	static   http.Handler
	charts   chartCache
}

// defaultRegions are offered when Options.Regions is empty: the regions
// most installations use, with us-east-1 first because it is where the
// CLIs send requests by default.
var defaultRegions = []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1"}

// regions is the region picker's list: the default region first, then
// every configured region and every region with events, sorted. A failing
// EventRegions is logged and leaves the configured regions.
func (c *Console) regions(ctx context.Context) []string {
	if c.opts.EventRegions == nil {
		return c.opts.Regions
	}
	withEvents, err := c.opts.EventRegions(ctx)
	if err != nil {
		c.log.Warn("console: list the regions with events; offering the configured ones", "err", err)
		return c.opts.Regions
	}
	rest := append(slices.Clone(c.opts.Regions[1:]), withEvents...)
	slices.Sort(rest)
	rest = slices.Compact(rest)
	out := append(make([]string, 0, len(rest)+1), c.opts.Regions[0])
	for _, r := range rest {
		if r != c.opts.Regions[0] {
			out = append(out, r)
		}
	}
	return out
}

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.Backend == nil {
		return nil, errors.New("console: no backend")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.Regions) == 0 {
		opts.Regions = defaultRegions
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: open embedded assets: %w", err)
	}
	c := &Console{
		be:       opts.Backend,
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		pages:    pages,
		sessions: newSessionStore(opts.Now),
		limiter:  newRateLimiter(opts.Now, 10, time.Minute),
		static:   http.StripPrefix(Prefix+"static/", http.FileServerFS(sub)),
		charts:   chartCache{data: map[string]cachedChart{}},
	}
	return c, nil
}

// Mount registers the console's routes on mux.
func (c *Console) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	})
	mux.Handle("GET "+Prefix+"static/", c.secure(http.HandlerFunc(c.serveStatic)))
	mux.Handle("GET "+Prefix+"signin", c.secure(http.HandlerFunc(c.signInPage)))
	mux.Handle("POST "+Prefix+"signin", c.secure(http.HandlerFunc(c.signIn)))
	mux.Handle("POST "+Prefix+"signout", c.secure(c.authed(c.signOut)))
	mux.Handle("POST "+Prefix+"region", c.secure(c.authed(c.setRegion)))
	mux.Handle("GET "+Prefix+"{$}", c.secure(c.authed(c.dashboard)))
	mux.Handle("GET "+Prefix+"events", c.secure(c.authed(c.eventsPage)))
	mux.Handle("GET "+Prefix+"events/live", c.secure(c.authed(c.eventsLive)))
	mux.Handle("GET "+Prefix+"events/download", c.secure(c.authed(c.eventsDownload)))
	mux.Handle("GET "+Prefix+"events/{id}", c.secure(c.authed(c.eventDetail)))
	mux.Handle("GET "+Prefix+"trails", c.secure(c.authed(c.trailsPage)))
	mux.Handle("GET "+Prefix+"trails/new", c.secure(c.authed(c.trailNewPage)))
	mux.Handle("POST "+Prefix+"trails/new", c.secure(c.authed(c.trailCreate)))
	mux.Handle("GET "+Prefix+"trails/{region}/{name}", c.secure(c.authed(c.trailDetail)))
	mux.Handle("GET "+Prefix+"trails/{region}/{name}/edit", c.secure(c.authed(c.trailEditPage)))
	mux.Handle("POST "+Prefix+"trails/{region}/{name}/edit", c.secure(c.authed(c.trailUpdate)))
	mux.Handle("POST "+Prefix+"trails/{region}/{name}/logging", c.secure(c.authed(c.trailLogging)))
	mux.Handle("GET "+Prefix+"trails/{region}/{name}/delete", c.secure(c.authed(c.trailDeletePage)))
	mux.Handle("POST "+Prefix+"trails/{region}/{name}/delete", c.secure(c.authed(c.trailDelete)))
	mux.Handle("GET "+Prefix+"lake", c.secure(c.authed(c.lakePage)))
	mux.Handle("POST "+Prefix+"lake/run", c.secure(c.authed(c.lakeRun)))
	mux.Handle("GET "+Prefix+"lake/queries/{id}", c.secure(c.authed(c.queryPage)))
	mux.Handle("POST "+Prefix+"lake/queries/{id}/cancel", c.secure(c.authed(c.queryCancel)))
	mux.Handle("GET "+Prefix+"lake/queries/{id}/download", c.secure(c.authed(c.queryDownload)))
	mux.Handle("GET "+Prefix+"lake/dashboards", c.secure(c.authed(c.lakeDashboards)))
	mux.Handle("GET "+Prefix+"lake/dashboards/{name}", c.secure(c.authed(c.lakeDashboard)))
	mux.Handle("POST "+Prefix+"lake/dashboards/{name}/refresh", c.secure(c.authed(c.lakeDashboardRefresh)))
}

// contentSecurityPolicy allows nothing from outside the server: every
// script, style and image is embedded, and no inline script runs.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// secure sets the headers every console response carries.
func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if c.opts.Secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	// Assets change only with the binary; an hour keeps reloads cheap
	// without pinning an old asset across an upgrade for long.
	w.Header().Set("Cache-Control", "private, max-age=3600")
	c.static.ServeHTTP(w, r)
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	Session *session
	CSRF    string
	Regions []string
	Region  string
	Version string
	Flash   string
	Error   string
	Data    any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	t, ok := c.pages[page]
	if !ok {
		c.log.Error("console: no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if s := sessionFrom(r.Context()); s != nil {
		v.Session = s
		v.CSRF = s.csrf
		v.Region = s.Region()
		if msg, isErr := s.popFlash(); msg != "" {
			if isErr && v.Error == "" {
				v.Error = msg
			} else if !isErr {
				v.Flash = msg
			}
		}
	}
	v.Version = c.opts.Version
	if v.Flash == "" && r.URL.Query().Get("signedout") == "1" {
		v.Flash = "You have signed out."
	}
	name := "layout"
	if r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Target") != "" && t.Lookup("partial") != nil {
		name = "partial"
	} else {
		// Only the layout has the picker; live mode's partials, every
		// two seconds, do not list the history's regions.
		v.Regions = c.regions(r.Context())
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, name, v); err != nil {
		c.log.Error("console: render page", "page", page, "err", err)
	}
}

func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("console: parse layout templates: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: list templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("console: clone layout for %s: %w", name, err)
		}
		if _, err := t.ParseFS(templateFS, f); err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"fmtTime": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"isoTime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return humanDuration(now.Sub(t)) + " ago"
	},
	"json": func(v any) (template.JS, error) {
		b, err := json.Marshal(v)
		return template.JS(b), err
	},
	// pathEscape makes a value one path segment: html/template's URL
	// normaliser leaves / ? # and dot segments alone, and an imported
	// record's eventID can hold any of them.
	"pathEscape": url.PathEscape,
	"add":        func(a, b int) int { return a + b },
	"ms":         func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) },
	"has":        func(set map[string]bool, k string) bool { return set[k] },
	"join":       strings.Join,
	"resultArgs": resultArgs,
	"chartJSON":  chartJSON,
	// switchArgs bundles the logging switch's inputs (templates have no
	// struct literals).
	"switchArgs": func(url, name string, on bool, csrf string, readOnly bool, back string) switchView {
		return switchView{URL: url, Name: name, On: on, CSRF: csrf, ReadOnly: readOnly, Back: back}
	},
	"deref": func(v any) any {
		switch p := v.(type) {
		case *bool:
			return p != nil && *p
		case *string:
			if p == nil {
				return ""
			}
			return *p
		}
		return v
	},
}

type switchView struct {
	URL, Name, CSRF, Back string
	On, ReadOnly          bool
}

func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// meta describes r for an audit record.
func meta(r *http.Request) Meta {
	ip := r.RemoteAddr
	if i := strings.LastIndexByte(ip, ':'); i > 0 {
		ip = strings.Trim(ip[:i], "[]")
	}
	return Meta{SourceIP: ip, UserAgent: r.UserAgent(), TLS: r.TLS, Host: r.Host}
}
