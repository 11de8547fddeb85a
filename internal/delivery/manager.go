package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/delivery/notify"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

// trailARNRE recognises this package's cursors ("trail/" + a trail ARN and
// nothing more), so that garbage collection never touches another
// package's cursor.
var trailARNRE = regexp.MustCompile(`^arn:[a-z-]+:cloudtrail:[a-z0-9-]+:[0-9]{12}:trail/[A-Za-z0-9._-]+$`)

// Defaults and limits of Options.
const (
	DefaultInterval = time.Minute
	// MinInterval and MaxInterval bound Options.Interval.
	MinInterval = time.Second
	MaxInterval = 15 * time.Minute
	// DefaultMaxFileBytes is CloudTrail's log file limit, 50 MB compressed
	// (decimal megabytes, so the file is within the limit however MB is
	// read).
	DefaultMaxFileBytes = 50_000_000
	DefaultPollInterval = time.Second
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = 5 * time.Minute
	// maxPendingNotifications bounds the notifications kept per trail while
	// its webhook fails; beyond it the oldest are dropped (and logged).
	maxPendingNotifications = 1000
)

// Options configure a Manager. The zero value gives CloudTrail's behaviour.
type Options struct {
	// Interval is how old a batch's first event gets before the batch is
	// written as log files: 1 s to 15 min, zero means one minute.
	// CloudTrail's is about five minutes.
	Interval time.Duration
	// MaxFileBytes caps a log file's compressed size; zero means 50 MB.
	MaxFileBytes int64
	// PollInterval is how often the trail set is re-read to notice
	// StartLogging, StopLogging and DeleteTrail when nobody calls
	// TrailChanged; zero means one second.
	PollInterval time.Duration
	// RetryMin and RetryMax bound the exponential, jittered backoff between
	// failed attempts; zero means 1 s and 5 min.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// Registerer, if set, receives the cairn_delivery_* metrics.
	Registerer prometheus.Registerer
	// Clock gives the wall time written into file names and trail status;
	// nil means time.Now. Batching deadlines use the monotonic clock.
	Clock func() time.Time
	// Topics are the notification topics trails may name.
	Topics notify.Topics
	// HTTPClient carries notifications; nil means a client that does not
	// follow redirects.
	HTTPClient *http.Client

	// OnLogFiles, if set, is told about every batch's log files after they
	// are durably written and before the trail's cursor moves past them
	// (digest files list them). It is retried until it returns nil. After
	// a crash the same batch may be reported again (same keys, same
	// bytes, same First/Last): receivers must treat a repeated range as
	// already recorded.
	OnLogFiles func(ctx context.Context, files []LogFileDelivered) error

	// testHook, when set, is called at each step of a delivery (tests).
	testHook func(stage string, p *Plan)
	// minInterval overrides MinInterval (tests).
	minInterval time.Duration
}

// LogFileDelivered is one written log file, as digest files list it.
type LogFileDelivered struct {
	TrailARN string
	// Region is the file's source region (the region in its key).
	Region      string
	Bucket, Key string
	// SHA256 is the hash of the uncompressed file.
	SHA256                           [32]byte
	NewestEventTime, OldestEventTime time.Time
	// DeliveredAt is the delivery time in the file's key.
	DeliveredAt time.Time
	// First and Last are the journal range of the batch the file belongs
	// to; they increase from batch to batch of a trail.
	First, Last uint64
}

// Trails is what delivery needs from the trail service.
type Trails interface {
	All(ctx context.Context) ([]trail.Trail, error)
	RecordDelivery(ctx context.Context, trailARN string, at time.Time, errText string) error
	RecordNotification(ctx context.Context, trailARN string, at time.Time, errText string) error
}

var _ Trails = (*trail.Service)(nil)

// Manager runs trail delivery: one deliverer per trail that is logging
// (or still has captured events to deliver), following the trail set.
type Manager struct {
	j       *journal.Journal
	st      stateStore
	trails  Trails
	store   objstore.Store
	opts    Options
	log     *slog.Logger
	metrics *metrics
	sender  *notify.Sender

	recMu sync.Mutex // serialises reconcile

	mu         sync.Mutex
	running    bool
	runCtx     context.Context
	deliverers map[string]*deliverer

	notifyWake chan struct{}

	// gaps holds, per trail, the entries trimmed before it delivered them
	// since its last successful delivery, so that every failed attempt's
	// status still shows the gap until a delivery works again.
	gapMu sync.Mutex
	gaps  map[string]gap
}

// gap is what Skipped recorded since the trail's last successful delivery.
type gap struct{ entries, through uint64 }

func (g gap) text() string {
	return fmt.Sprintf("%s: %d journal entries up to #%d were dropped before this trail delivered them (its delivery held more than the journal hold limit)", SkippedText, g.entries, g.through)
}

// NewManager makes a Manager; Run starts it.
func NewManager(j *journal.Journal, st *state.Store, trails Trails, store objstore.Store, opts Options) (*Manager, error) {
	if j == nil || st == nil || trails == nil || store == nil {
		return nil, errors.New("delivery: journal, state store, trails and object store are all required")
	}
	lo := MinInterval
	if opts.minInterval > 0 {
		lo = opts.minInterval
	}
	switch {
	case opts.Interval == 0:
		opts.Interval = DefaultInterval
	case opts.Interval < lo || opts.Interval > MaxInterval:
		return nil, fmt.Errorf("delivery: interval %s is outside %s to %s", opts.Interval, MinInterval, MaxInterval)
	}
	if opts.MaxFileBytes == 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxFileBytes < 1024 {
		return nil, fmt.Errorf("delivery: max file size %d bytes is too small", opts.MaxFileBytes)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	opts.RetryMax = max(opts.RetryMax, opts.RetryMin)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	m := &Manager{
		j:      j,
		st:     stateStore{st},
		trails: trails,
		store:  store,
		opts:   opts,
		log:    opts.Logger.With("component", "delivery"),
		// Signatures carry the real time whatever Clock says: receivers
		// check it against their own clocks.
		sender:     notify.NewSender(opts.HTTPClient, nil),
		deliverers: map[string]*deliverer{},
		notifyWake: make(chan struct{}, 1),
	}
	m.metrics = newMetrics(m)
	return m, nil
}

func (m *Manager) now() time.Time { return m.opts.Clock() }

func (m *Manager) hook(stage string, p *Plan) {
	if m.opts.testHook != nil {
		m.opts.testHook(stage, p)
	}
}

// backoff is the delay before retry number attempt (1-based): doubling from
// RetryMin up to RetryMax, with the upper half jittered so that trails
// failing together do not retry in lockstep.
func (m *Manager) backoff(attempt int) time.Duration {
	d := m.opts.RetryMin
	for i := 1; i < attempt && d < m.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, m.opts.RetryMax)
	half := d / 2
	return half + rand.N(half+1)
}

// Run delivers until ctx ends, then stops every deliverer and returns.
// Batches not yet written are read again from the journal next time.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("delivery: manager already running")
	}
	m.running = true
	m.runCtx = ctx
	m.mu.Unlock()
	if err := m.metrics.register(m.opts.Registerer); err != nil {
		m.mu.Lock()
		m.running, m.runCtx = false, nil // a later Run may try again
		m.mu.Unlock()
		return err
	}
	defer m.metrics.unregister(m.opts.Registerer)

	var wg sync.WaitGroup
	wg.Go(func() { m.notifyLoop(ctx) })
	m.log.Info("trail delivery started", "interval", m.opts.Interval, "max_file_bytes", m.opts.MaxFileBytes, "topics", m.opts.Topics.Names())
	tick := time.NewTicker(m.opts.PollInterval)
	defer tick.Stop()
	for {
		if err := m.reconcile(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("reading the trail set failed; retrying", "err", err)
		}
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	m.mu.Lock()
	ds := make([]*deliverer, 0, len(m.deliverers))
	for _, d := range m.deliverers {
		ds = append(ds, d)
	}
	m.running = false
	m.runCtx = nil
	m.deliverers = map[string]*deliverer{}
	m.mu.Unlock()
	for _, d := range ds {
		d.cancel()
		<-d.done
	}
	wg.Wait()
	m.log.Info("trail delivery stopped")
	return nil
}

// TrailChanged makes the manager act on trail changes now rather than at
// its next poll. The trail service calls it after StartLogging,
// StopLogging, DeleteTrail, UpdateTrail and PutEventSelectors, so that a
// logging window opens and closes at the journal position of the call
// itself. It may be called before Run (windows are recorded; delivery
// starts with Run).
func (m *Manager) TrailChanged(ctx context.Context) error { return m.reconcile(ctx) }

// reconcile brings logging windows, deliverers, cursors and state in line
// with the trail set.
func (m *Manager) reconcile(ctx context.Context) error {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	trails, err := m.trails.All(ctx)
	if err != nil {
		return fmt.Errorf("delivery: list trails: %w", err)
	}
	states, err := m.st.loadAll(ctx)
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(trails))
	var errs []error
	for i := range trails {
		t := &trails[i]
		arn := t.ARN()
		present[arn] = true
		st, err := m.updateWindows(ctx, t, states[arn])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.ensureDeliverer(t, st)
		if err := m.releaseCursor(ctx, t, st); err != nil {
			errs = append(errs, err)
		}
	}
	// Deleted trails: stop their deliverers, then drop cursor and state.
	gone := map[string]bool{}
	for arn := range states {
		if !present[arn] {
			gone[arn] = true
		}
	}
	m.mu.Lock()
	for arn := range m.deliverers {
		if !present[arn] {
			gone[arn] = true
		}
	}
	m.mu.Unlock()
	for name := range m.j.Cursors() {
		if arn, ok := strings.CutPrefix(name, cursorPrefix); ok && trailARNRE.MatchString(arn) && !present[arn] {
			gone[arn] = true
		}
	}
	for arn := range gone {
		if err := m.forget(ctx, arn); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// updateWindows opens a window when a trail starts logging (a new
// StartLoggingTime) and closes it when the trail stops, at the journal's
// last entry at that moment.
func (m *Manager) updateWindows(ctx context.Context, t *trail.Trail, st trailState) (trailState, error) {
	arn := t.ARN()
	pos := m.cursorPos(arn)
	want := func(st *trailState) bool {
		open := st.openWindow()
		if t.Status.IsLogging {
			return open < 0 || !st.Session.Equal(t.Status.StartLoggingTime)
		}
		return open >= 0
	}
	prunable := func(st *trailState) bool {
		return len(st.Windows) > 0 && !st.Windows[0].open() && st.Windows[0].To <= pos
	}
	if !want(&st) && !prunable(&st) {
		return st, nil
	}
	last := m.j.LastSeq()
	if t.Status.IsLogging && want(&st) && st.Plan == nil && st.pending(pos, last) == 0 && (pos < last || !m.hasCursor(arn)) {
		// Nothing earlier is left to deliver: move (or create) the cursor
		// to the new window's start before the window exists, so that the
		// journal's retention cannot trim the window's first events before
		// the deliverer gets to them.
		if err := m.j.Cursor(CursorName(arn)).Commit(ctx, last); err != nil {
			return st, fmt.Errorf("delivery: move the cursor of %s to where logging starts: %w", arn, err)
		}
		pos = last
	}
	var out trailState
	err := m.st.update(ctx, arn, func(st *trailState, _ *state.Tx) error {
		if want(st) {
			if i := st.openWindow(); i >= 0 {
				if st.Windows[i].From > last {
					st.Windows = st.Windows[:i] // nothing happened while it was open
				} else {
					st.Windows[i].To = last
				}
			}
			if t.Status.IsLogging {
				st.Windows = append(st.Windows, Window{From: last + 1})
				st.Session = t.Status.StartLoggingTime
				m.log.Info("trail logging window opened", "trail", arn, "from_seq", last+1)
			} else {
				m.log.Info("trail logging window closed", "trail", arn, "to_seq", last)
			}
		}
		st.prune(pos)
		out = *st
		return nil
	})
	return out, err
}

// cursorPos is the trail's cursor position, without creating the cursor
// (a trail that never logged has none).
func (m *Manager) cursorPos(arn string) uint64 { return m.j.Cursors()[CursorName(arn)] }

func (m *Manager) hasCursor(arn string) bool {
	_, ok := m.j.Cursors()[CursorName(arn)]
	return ok
}

// releaseCursor deletes the cursor of a trail that is stopped and has
// delivered everything it captured: it has nothing more to read until it
// logs again (when a new cursor starts at the new window), and a cursor
// left behind would hold the journal's retention back forever.
func (m *Manager) releaseCursor(ctx context.Context, t *trail.Trail, st trailState) error {
	arn := t.ARN()
	if t.Status.IsLogging || st.Plan != nil || !m.hasCursor(arn) || st.pending(m.cursorPos(arn), m.j.LastSeq()) > 0 {
		return nil
	}
	m.mu.Lock()
	d := m.deliverers[arn]
	m.mu.Unlock()
	if d != nil {
		select {
		case <-d.done:
		default:
			return nil // still finishing (its plan bookkeeping or a retry)
		}
	}
	// First forget the windows the cursor has passed, durably: once the
	// cursor is gone its position reads as 0, and a window still on record
	// would be delivered again.
	pos := m.cursorPos(arn)
	drained := false
	if err := m.st.update(ctx, arn, func(st *trailState, _ *state.Tx) error {
		st.prune(pos)
		drained = st.Plan == nil && st.pending(pos, m.j.LastSeq()) == 0
		return nil
	}); err != nil {
		return err
	}
	if !drained {
		return nil
	}
	if err := m.j.DeleteCursor(ctx, CursorName(arn)); err != nil {
		return fmt.Errorf("delivery: release the cursor of stopped trail %s: %w", arn, err)
	}
	m.log.Info("trail stopped and fully delivered; cursor released", "trail", arn)
	return nil
}

// ensureDeliverer starts, updates or leaves alone the trail's deliverer.
func (m *Manager) ensureDeliverer(t *trail.Trail, st trailState) {
	arn := t.ARN()
	cfg := deliveryConfig{trail: *t, windows: append([]Window(nil), st.Windows...)}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.deliverers[arn]
	if d != nil {
		select {
		case <-d.done:
			delete(m.deliverers, arn)
			d = nil
		default:
		}
	}
	if d != nil {
		d.update(cfg)
		return
	}
	if !m.running {
		return
	}
	need := t.Status.IsLogging || st.Plan != nil || st.pending(m.cursorPos(arn), m.j.LastSeq()) > 0
	if !need {
		return
	}
	cursor := m.j.Cursor(CursorName(arn))
	ctx, cancel := context.WithCancel(m.runCtx)
	d = &deliverer{
		m:      m,
		arn:    arn,
		cursor: cursor,
		log:    m.log.With("trail", arn),
		cancel: cancel,
		done:   make(chan struct{}),
		cfg:    cfg,
	}
	m.deliverers[arn] = d
	go d.run(ctx)
}

// forget stops a deleted trail's deliverer and removes its cursor, state
// and metrics. Delivered log files stay, as on AWS.
func (m *Manager) forget(ctx context.Context, arn string) error {
	m.mu.Lock()
	d := m.deliverers[arn]
	delete(m.deliverers, arn)
	m.mu.Unlock()
	m.gapMu.Lock()
	delete(m.gaps, arn)
	m.gapMu.Unlock()
	if d != nil {
		d.cancel()
		<-d.done
	}
	if err := m.j.DeleteCursor(ctx, CursorName(arn)); err != nil {
		return fmt.Errorf("delivery: delete cursor of deleted trail %s: %w", arn, err)
	}
	if err := m.st.remove(ctx, arn); err != nil {
		return err
	}
	m.metrics.forget(arn)
	m.log.Info("trail deleted: delivery stopped, cursor removed", "trail", arn)
	return nil
}

// recordDelivery records a delivery attempt in the trail's status and
// metrics.
func (m *Manager) recordDelivery(ctx context.Context, arn, code string) {
	m.metrics.attempt(arn, code)
	text := code
	m.gapMu.Lock()
	if g, ok := m.gaps[arn]; ok {
		if code == "" {
			delete(m.gaps, arn)
		} else {
			text = code + "; " + g.text()
		}
	}
	m.gapMu.Unlock()
	if err := m.trails.RecordDelivery(ctx, arn, m.now(), text); err != nil && !errors.Is(err, trail.ErrNotFound) && ctx.Err() == nil {
		m.log.Warn("recording the delivery status failed", "trail", arn, "err", err)
	}
}

// SkippedText is how GetTrailStatus's LatestDeliveryError reports a gap:
// the journal dropped entries the trail had not delivered because its
// delivery held more than the journal hold limit.
const SkippedText = "JournalHoldLimitExceeded"

// Skipped records that the journal trimmed entries the trail had not
// delivered (entries of them, up to sequence number through), because the
// trail's delivery was failing for so long that it held more than the
// journal hold limit. The gap is counted (cairn_delivery_skipped_entries_
// total), logged and shown in the trail's LatestDeliveryError (after the
// error code of each failed attempt) until a delivery succeeds; delivery
// itself carries on after the gap, as journal reads skip trimmed entries.
func (m *Manager) Skipped(ctx context.Context, trailARN string, entries, through uint64) {
	m.metrics.skipped.WithLabelValues(trailARN).Add(float64(entries))
	m.log.Warn("journal hold limit reached: trimmed journal entries this trail had not delivered; its log files will have a gap",
		"trail", trailARN, "entries", entries, "through_seq", through)
	m.gapMu.Lock()
	if m.gaps == nil {
		m.gaps = make(map[string]gap)
	}
	g := m.gaps[trailARN]
	g.entries += entries
	g.through = through
	m.gaps[trailARN] = g
	m.gapMu.Unlock()
	if err := m.trails.RecordDelivery(ctx, trailARN, m.now(), g.text()); err != nil && !errors.Is(err, trail.ErrNotFound) && ctx.Err() == nil {
		m.log.Warn("recording the delivery gap in the trail status failed", "trail", trailARN, "err", err)
	}
}

// Lag is how far a trail's delivery is behind.
type Lag struct {
	// Entries is how many journal entries captured for the trail it has
	// not looked at yet.
	Entries uint64
	// Oldest is how long the oldest selected event that is not in a
	// delivered file has been waiting since delivery read it (zero when
	// none is waiting). It restarts from zero when Cairn restarts.
	Oldest time.Duration
}

// Lag reports a trail's delivery lag; false when it has no deliverer
// (not logging and nothing left to deliver).
func (m *Manager) Lag(trailARN string) (Lag, bool) {
	d := m.snapshot()[trailARN]
	if d == nil {
		return Lag{}, false
	}
	return d.lag(), true
}

func (d *deliverer) lag() Lag {
	cfg, _ := d.config()
	st := trailState{Windows: cfg.windows}
	l := Lag{Entries: st.pending(d.cursor.Position(), d.m.j.LastSeq())}
	if o := d.oldest.Load(); o != 0 {
		l.Oldest = max(0, time.Since(time.Unix(0, o)))
	}
	return l
}

// snapshot returns the deliverers that are running.
func (m *Manager) snapshot() map[string]*deliverer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*deliverer, len(m.deliverers))
	for arn, d := range m.deliverers {
		select {
		case <-d.done: // drained and stopped; removed at the next reconcile
		default:
			out[arn] = d
		}
	}
	return out
}
