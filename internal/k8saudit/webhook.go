package k8saudit

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/journal"
	metricsreg "github.com/cairn-audit/cairn/internal/metrics"
	"github.com/cairn-audit/cairn/internal/ratelog"
)

// Defaults of Config.
const (
	DefaultPath         = "/k8s/audit"
	DefaultCluster      = "kubernetes"
	DefaultRegion       = "us-east-1"
	DefaultMaxBodyBytes = 32 << 20
	DefaultDedupeWindow = 1 << 16
)

// DefaultStages are the stages recorded unless configured otherwise.
// RequestReceived is left out because every request reaches a later stage
// that says the same and more; ResponseStarted is kept because the API
// server only emits it for long-running requests (exec, attach,
// port-forward, watch), whose ResponseComplete may come hours later or
// never.
func DefaultStages() []string {
	return []string{StageResponseStarted, StageResponseComplete, StagePanic}
}

// Config configures the webhook.
type Config struct {
	// Path is where the webhook is mounted on Cairn's listener.
	Path string
	// Cluster names the cluster in the records (ARNs, additionalEventData).
	Cluster     string
	Region      string
	EventSource string
	// Token is the bearer token the API server must present
	// (Authorization: Bearer ...); required unless AllowUnauthenticated.
	Token                string
	AllowUnauthenticated bool
	// Stages are the audit stages recorded; events of other stages are
	// acknowledged and counted as skipped.
	Stages       []string
	MaxBodyBytes int64
	// DedupeWindow is how many recently recorded events are remembered to
	// drop the API server's retries; 0 means DefaultDedupeWindow.
	DedupeWindow int
}

// Capture is the audit webhook: a capture.Capture that serves POSTs of
// EventLists on Cairn's own listener.
type Capture struct {
	cfg    Config
	stages map[string]bool
	token  [32]byte // SHA-256 of the token, compared in constant time

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup

	env     capture.Env
	mapper  Mapper
	seen    *dedupe
	log     *slog.Logger
	metrics *metrics
	rlog    *ratelog.Limiter // refused batches, once per interval with a count
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Capture, error) {
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if !strings.HasPrefix(cfg.Path, "/") || strings.ContainsAny(cfg.Path, " {}\t\n") {
		return nil, fmt.Errorf("path %q: want an absolute URL path without spaces or braces", cfg.Path)
	}
	if cfg.Cluster == "" {
		cfg.Cluster = DefaultCluster
	}
	if strings.ContainsAny(cfg.Cluster, "/: \t\n") {
		return nil, fmt.Errorf("cluster %q: may not contain '/', ':' or spaces (it is part of ARNs)", cfg.Cluster)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.EventSource == "" {
		cfg.EventSource = DefaultEventSource
	}
	if cfg.Token == "" && !cfg.AllowUnauthenticated {
		return nil, errors.New("no token: set a bearer token or allow unauthenticated posts explicitly")
	}
	if cfg.Token != "" && cfg.AllowUnauthenticated {
		return nil, errors.New("a token and allow unauthenticated contradict each other: choose one")
	}
	if cfg.Stages == nil {
		cfg.Stages = DefaultStages()
	}
	if len(cfg.Stages) == 0 {
		return nil, errors.New("stages is empty: nothing would be recorded")
	}
	stages := map[string]bool{}
	for _, s := range cfg.Stages {
		if !isKnownStage(s) {
			return nil, fmt.Errorf("stage %q: want one of %s", s, strings.Join(knownStages, ", "))
		}
		stages[s] = true
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("max body bytes %d: want a positive size", cfg.MaxBodyBytes)
	}
	if cfg.DedupeWindow == 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	c := &Capture{cfg: cfg, stages: stages, seen: newDedupe(cfg.DedupeWindow)}
	if cfg.Token != "" {
		c.token = sha256.Sum256([]byte(cfg.Token))
	}
	return c, nil
}

// Name implements capture.Capture.
func (c *Capture) Name() string {
	return fmt.Sprintf("kubernetes audit webhook %s (cluster %s)", c.cfg.Path, c.cfg.Cluster)
}

// Start fills the retry window from the journal (see seedDedupe) and
// mounts the webhook on Cairn's listener.
func (c *Capture) Start(ctx context.Context, env capture.Env) (err error) {
	if env.Journal == nil || env.Mux == nil {
		return errors.New("the server lent no journal or no router")
	}
	c.env = env
	c.log = env.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("capture", "kubernetes_audit", "cluster", c.cfg.Cluster)
	c.rlog = ratelog.New(c.log, ratelog.DefaultInterval, nil)
	c.mapper = Mapper{Cluster: c.cfg.Cluster, Region: c.cfg.Region, AccountID: env.AccountID, Source: c.cfg.EventSource}
	start := time.Now()
	seeded, err := c.seedDedupe(ctx, env.Journal)
	if err != nil {
		return err
	}
	c.log.Info("kubernetes audit retry window filled from the journal", "events", seeded, "took", time.Since(start).Round(time.Millisecond))
	c.metrics = newMetrics(c.cfg.Cluster)
	if err := c.metrics.register(env.Registerer); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	defer func() { // ServeMux panics on a pattern that conflicts with another
		if r := recover(); r != nil {
			c.metrics.unregister()
			err = fmt.Errorf("mounting POST %s: %v", c.cfg.Path, r)
		}
	}()
	env.Mux.Handle("POST "+c.cfg.Path, c)
	return nil
}

// Close refuses new posts and waits for those in flight: once it returns,
// every batch was made durable or refused.
func (c *Capture) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.inflight.Wait()
	if c.metrics != nil {
		c.metrics.unregister()
	}
	return nil
}

// Result is the webhook's answer to an accepted batch.
type Result struct {
	Received   int `json:"received"`
	Recorded   int `json:"recorded"`
	Duplicates int `json:"duplicates"`
	Skipped    int `json:"skipped"` // stages not recorded
}

// ServeHTTP takes one batch. The batch is atomic: every event is decoded,
// checked and mapped before any is written, and all records are appended
// in one journal append, so a batch is either recorded whole (200) or not
// at all (4xx when it can never be taken, 503 when the journal cannot take
// it now and the API server should retry).
func (c *Capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "cairn is shutting down; retry")
		return
	}
	c.inflight.Add(1)
	c.mu.Unlock()
	defer c.inflight.Done()

	if !c.authorized(r) {
		c.metrics.unauthorized.Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn kubernetes audit"`)
		httpError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	body, status, err := c.readBody(w, r)
	if err != nil {
		c.metrics.badBatches.Inc()
		c.log.Warn("kubernetes audit batch refused", "remote", r.RemoteAddr, "error", err)
		httpError(w, status, err.Error())
		return
	}
	items, err := Decode(body)
	if err != nil {
		c.metrics.badBatches.Inc()
		c.log.Warn("kubernetes audit batch refused", "remote", r.RemoteAddr, "error", err)
		httpError(w, http.StatusBadRequest, "batch refused, nothing recorded: "+err.Error())
		return
	}
	res := Result{Received: len(items)}
	c.metrics.received.Add(float64(len(items)))
	recs := make([][]byte, 0, len(items))
	ids := make([][16]byte, 0, len(items))
	for i := range items {
		if !c.stages[items[i].Event.Stage] {
			res.Skipped++
			continue
		}
		rec, err := c.mapper.Map(&items[i])
		if err != nil {
			err = &DecodeError{Index: i, AuditID: items[i].Event.AuditID, Reason: err.Error()}
			c.metrics.badBatches.Inc()
			c.metrics.refused.Add(float64(len(items)))
			c.log.Warn("kubernetes audit batch refused", "remote", r.RemoteAddr, "error", err)
			httpError(w, http.StatusBadRequest, "batch refused, nothing recorded: "+err.Error())
			return
		}
		id, err := uuid.Parse(rec.EventID)
		if err != nil { // cannot happen: Map sets EventID
			httpError(w, http.StatusInternalServerError, "eventID: "+err.Error())
			return
		}
		recs = append(recs, rec.Raw)
		ids = append(ids, id)
	}
	c.metrics.skipped.Add(float64(res.Skipped))

	fresh, release, err := c.seen.reserve(r.Context(), ids)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "gave up waiting for a concurrent copy of this batch: "+err.Error())
		return
	}
	out := recs[:0]
	for i, ok := range fresh {
		if ok {
			out = append(out, recs[i])
		} else {
			res.Duplicates++
		}
	}
	durable := 0
	defer func() { release(durable) }()
	// One atomic append, unless the records are more than the journal
	// takes in one (a batch near max_body_bytes, or a larger
	// max_body_bytes): then consecutive appends of at most
	// journal.MaxAppendBytes each. Should a later one fail, the earlier
	// records stay and are remembered as recorded, so the API server's
	// retry records only the rest.
	for start := 0; start < len(out); {
		end, size := start, 0
		for end < len(out) && (end == start || size+len(out[end]) <= journal.MaxAppendBytes) {
			size += len(out[end])
			end++
		}
		// Not the request's context: an append that has started is seen
		// through, so that its outcome (and the dedupe window) is known
		// even if the API server hangs up.
		if _, err := c.env.Journal.Append(context.WithoutCancel(r.Context()), out[start:end]); err != nil {
			c.metrics.refused.Add(float64(len(items) - durable))
			c.metrics.recorded.Add(float64(durable))
			status := http.StatusServiceUnavailable
			if errors.Is(err, journal.ErrInvalid) {
				status = http.StatusBadRequest
			}
			c.rlog.Error("kubernetes audit batch not recorded", "events", len(out)-durable, "recorded_before", durable, "error", err)
			msg := "batch not recorded: "
			if durable > 0 {
				msg = fmt.Sprintf("batch not recorded after its first %d new events (those are, and a retry skips them): ", durable)
			}
			httpError(w, status, msg+err.Error())
			return
		}
		durable, start = end, end
	}
	res.Recorded = len(out)
	c.metrics.recorded.Add(float64(res.Recorded))
	c.metrics.duplicates.Add(float64(res.Duplicates))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// authorized checks the bearer token in constant time (over SHA-256
// digests, so the token's length does not leak either).
func (c *Capture) authorized(r *http.Request) bool {
	if c.cfg.AllowUnauthenticated {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], c.token[:]) == 1
}

// readBody reads the (possibly gzipped) body up to MaxBodyBytes, before
// and after decompression.
func (c *Capture) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	max := c.cfg.MaxBodyBytes
	var src io.Reader = http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
		}
		defer func() { _ = zr.Close() }()
		src = io.LimitReader(zr, max+1)
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: want gzip or none", enc)
	}
	body, err := io.ReadAll(src)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || int64(len(body)) > max:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes: lower the webhook's batch size (--audit-webhook-batch-max-size) or raise max_body_bytes", max)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	// The body is in: whatever read deadline the listener put on it must
	// not cut short the appends that follow (a deadline that expires while
	// the server watches the idle connection cancels the request).
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return body, 0, nil
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// metrics count events through the webhook; the cluster label tells
// several webhooks of one Cairn apart.
type metrics struct {
	received, recorded, refused, duplicates, skipped prometheus.Counter
	badBatches, unauthorized                         prometheus.Counter

	registration *metricsreg.Registration
}

func newMetrics(cluster string) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "cairn_k8s_audit_" + name, Help: help,
			ConstLabels: prometheus.Labels{"cluster": cluster}})
	}
	return &metrics{
		received:     c("events_received_total", "Audit events received in well-formed batches."),
		recorded:     c("events_recorded_total", "Audit events made durable as CloudTrail records."),
		refused:      c("events_refused_total", "Audit events of batches refused after decoding (mapping or journal failure)."),
		duplicates:   c("events_duplicate_total", "Audit events dropped as retries of events already recorded."),
		skipped:      c("events_skipped_total", "Audit events acknowledged but not recorded because their stage is not configured."),
		badBatches:   c("batches_refused_total", "Batches refused as malformed, too large or unmappable."),
		unauthorized: c("requests_unauthorized_total", "Posts without the right bearer token."),
	}
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.received, m.recorded, m.refused, m.duplicates, m.skipped, m.badBatches, m.unauthorized}
}

func (m *metrics) register(r prometheus.Registerer) error {
	reg, err := metricsreg.Register(r, m.all()...)
	if err != nil {
		return err
	}
	m.registration = reg
	return nil
}

// unregister removes the counters so that a webhook started again in the
// same process can register them again.
func (m *metrics) unregister() {
	m.registration.Unregister()
}
