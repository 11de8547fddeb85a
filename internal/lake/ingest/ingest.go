package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/selector"
)

// DefaultBucket is the object-store bucket the stores' files live in.
const DefaultBucket = "cairn-lake"

// cursorPrefix starts the name of every store's journal cursor.
const cursorPrefix = "lake-"

// CursorName is the journal cursor of the store with this ID.
func CursorName(id string) string { return cursorPrefix + id }

// StoreOfCursor reports whether a journal cursor is an event data store's,
// and which: the server's journal trim uses it to apply its hold limit.
func StoreOfCursor(name string) (id string, ok bool) {
	return strings.CutPrefix(name, cursorPrefix)
}

// Defaults of Options.
const (
	defaultFlushInterval   = 5 * time.Second
	defaultMaxBatchRows    = 16 << 10
	defaultMaxBatchBytes   = 16 << 20
	defaultMaxBufferBytes  = 48 << 20
	defaultCompactInterval = time.Minute
	defaultSmallFileBytes  = 16 << 20
	defaultTargetFileBytes = 64 << 20
	defaultDeleteGrace     = time.Minute
	defaultSpecPoll        = 30 * time.Second
	defaultRetryMin        = 100 * time.Millisecond
	defaultRetryMax        = 30 * time.Second
	// readChunk is how many journal entries one read dispatches.
	readChunk = 4096
)

// Options configure an Ingester.
type Options struct {
	// Journal is read through one cursor per store (required).
	Journal *journal.Journal
	// Store keeps the stores' files (required). The Ingester creates
	// Bucket in it when it is missing.
	Store objstore.Store
	// Bucket is where the files go; default DefaultBucket.
	Bucket string
	// Specs lists the event data stores (required). It is called at
	// start, after every Reload and every 30 seconds.
	Specs func(context.Context) ([]lake.Spec, error)
	// CacheDir holds local copies of the files when Store does not keep
	// objects as local files (objstore.LocalPather): S3. Required then;
	// with the file store it holds compaction's temporary files. It
	// belongs to this Ingester alone.
	CacheDir string
	// FlushInterval bounds how long an event waits in memory before its
	// file is written (and the cursor moves); default 5 s.
	FlushInterval time.Duration
	// MaxBatchRows and MaxBatchBytes (of record JSON) flush a store's
	// batch early; defaults 16,384 rows (one row group) and 16 MiB.
	MaxBatchRows  int
	MaxBatchBytes int
	// MaxBufferBytes bounds the record JSON held in all stores' batches
	// together: past it the largest batch is flushed at once. Rows take
	// some 2.5 times their JSON in memory, and a store may have one batch
	// filling while another is written. Default 48 MiB.
	MaxBufferBytes int
	// CompactInterval is how often small files are merged and retention
	// is applied; default 1 minute.
	CompactInterval time.Duration
	// SmallFileBytes: files smaller than this are merged with their
	// neighbours in the partition, into files of up to TargetFileBytes.
	// Defaults 16 MiB and 64 MiB.
	SmallFileBytes  int64
	TargetFileBytes int64
	// DeleteGrace is how long a file that a merged file covers is kept
	// before it is deleted, so that queries that listed it just before
	// can still read it; default 1 minute.
	DeleteGrace time.Duration
	// Now is the clock (retention, flush ages); default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the cairn_lake_* metrics.
	Registerer prometheus.Registerer
}

// Ingester copies the journal's events into the event data stores' Parquet
// files. See the package documentation.
type Ingester struct {
	opts  Options
	j     *journal.Journal
	obj   objstore.Store
	local objstore.LocalPather // nil when the store keeps no local files
	log   *slog.Logger
	now   func() time.Time
	m     *metrics

	wake     chan struct{} // Reload, a finished flush
	reloaded atomic.Bool

	mu      sync.Mutex
	stores  map[string]*store
	dropped map[string]bool
	cacheMu sync.Mutex       // the local cache directory
	listed  map[string]int64 // cached path -> when Files last returned it (ns); cacheMu

	closeOnce sync.Once
}

// store is one event data store's ingestion state. Fields below "loop"
// belong to the Run goroutine; files to filesMu.
type store struct {
	id     string
	cursor *journal.Cursor
	// ingested counts the events written to the store's files.
	ingested atomic.Uint64

	mu       sync.Mutex // orders starting work against Drop
	dropped  atomic.Bool
	inflight sync.WaitGroup // flushes and maintenance under way
	// committed mirrors pos and pendingNanos the start of the oldest
	// unflushed batch (0: none), for the metrics.
	committed    atomic.Uint64
	pendingNanos atomic.Int64

	filesMu      sync.Mutex
	files        map[string]fileRef // every object of the store, by key
	coveredSince map[string]time.Time

	// loop
	spec      lake.Spec
	kind      int
	channels  map[string]bool
	pos       uint64 // committed cursor position
	read      uint64 // last entry dispatched to the store
	cur       *batch
	failed    *batch // a batch whose flush failed, to be written again
	flushing  bool   // a flush of this store runs
	flushed   int    // bytes of the batch being flushed
	pendingAt time.Time
	failures  int
	retryAt   time.Time
}

// batch is the part of the journal a store has read and not yet
// committed: entries first..last, and the rows taken from them.
type batch struct {
	kind        int
	first, last uint64
	events      chunked[Row]
	audit       chunked[AuditRow]
	bytes       int
}

func (b *batch) rows() int { return b.events.len() + b.audit.len() }

// flushResult is what a flush goroutine reports back to Run.
type flushResult struct {
	s     *store
	b     *batch
	files []fileRef
	err   error
}

// New opens an Ingester. It creates the bucket when missing; it reads
// nothing until Run.
func New(ctx context.Context, opts Options) (*Ingester, error) {
	if opts.Journal == nil || opts.Store == nil || opts.Specs == nil {
		return nil, errors.New("lake ingest: Journal, Store and Specs are required")
	}
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = defaultFlushInterval
	}
	if opts.MaxBatchRows <= 0 {
		opts.MaxBatchRows = defaultMaxBatchRows
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = defaultMaxBatchBytes
	}
	if opts.MaxBufferBytes <= 0 {
		opts.MaxBufferBytes = defaultMaxBufferBytes
	}
	if opts.CompactInterval <= 0 {
		opts.CompactInterval = defaultCompactInterval
	}
	if opts.SmallFileBytes <= 0 {
		opts.SmallFileBytes = defaultSmallFileBytes
	}
	if opts.TargetFileBytes <= 0 {
		opts.TargetFileBytes = defaultTargetFileBytes
	}
	if opts.DeleteGrace <= 0 {
		opts.DeleteGrace = defaultDeleteGrace
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	in := &Ingester{
		opts:    opts,
		j:       opts.Journal,
		obj:     opts.Store,
		log:     opts.Logger.With("component", "lake-ingest"),
		now:     opts.Now,
		wake:    make(chan struct{}, 1),
		stores:  map[string]*store{},
		dropped: map[string]bool{},
	}
	if lp, ok := opts.Store.(objstore.LocalPather); ok {
		if _, ok := lp.LocalPath(opts.Bucket, "x"); ok {
			in.local = lp
		}
	}
	if in.local == nil && opts.CacheDir == "" {
		return nil, errors.New("lake ingest: the object store keeps no local files; Options.CacheDir is required")
	}
	if err := ensureBucket(ctx, opts.Store, opts.Bucket); err != nil {
		return nil, err
	}
	in.removeStaleTemps()
	in.m = newMetrics(in)
	if err := in.m.register(opts.Registerer); err != nil {
		return nil, fmt.Errorf("lake ingest: registering metrics: %w", err)
	}
	return in, nil
}

func ensureBucket(ctx context.Context, obj objstore.Store, bucket string) error {
	ok, err := obj.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("lake ingest: checking bucket %s: %w", bucket, err)
	}
	if ok {
		return nil
	}
	if err := obj.CreateBucket(ctx, bucket); err != nil && !errors.Is(err, objstore.ErrBucketExists) {
		return fmt.Errorf("lake ingest: creating bucket %s: %w", bucket, err)
	}
	return nil
}

// Close unregisters the metrics. Run must have returned.
func (in *Ingester) Close() error {
	in.closeOnce.Do(func() { in.m.unregister() })
	return nil
}

// Reload tells the Ingester that the stores' configuration changed; it
// reads Options.Specs again at once. It never blocks.
func (in *Ingester) Reload() {
	in.reloaded.Store(true)
	in.signal()
}

func (in *Ingester) signal() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// Run ingests until ctx ends. Flushes under way finish or are abandoned
// (their range is read again next time); nothing is left half-done.
func (in *Ingester) Run(ctx context.Context) error {
	results := make(chan flushResult, 64)
	var flushes sync.WaitGroup
	var maint sync.WaitGroup
	defer func() {
		flushes.Wait()
		maint.Wait()
	}()
	nextSpecs := time.Time{}
	nextMaint := in.now().Add(in.opts.CompactInterval)
	maintaining := atomic.Bool{}
	readFailures := 0
	for ctx.Err() == nil {
		now := in.now()
		// The journal's head is taken before the Reload flag is looked at,
		// and this round reads no further: an entry appended after a
		// Reload (the first event of a channel just created) is never
		// dispatched with the configuration from before it.
		hi := in.j.LastSeq()
		if in.reloaded.Swap(false) || !now.Before(nextSpecs) {
			if err := in.loadSpecs(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				in.log.Warn("reading event data store configurations failed; keeping the last ones", "err", err)
			}
			nextSpecs = now.Add(defaultSpecPoll)
		}
	drain:
		for {
			select {
			case r := <-results:
				in.finishFlush(r)
			default:
				break drain
			}
		}
		progressed, err := in.readOnce(ctx, hi)
		if err != nil && ctx.Err() == nil {
			// The journal is reopening after a fault, or closing: what was
			// read is kept, the rest is read again after a pause.
			in.log.Warn("reading the journal failed; retrying", "err", err)
			readFailures++
			progressed = false
			pause := time.NewTimer(backoff(readFailures))
			select {
			case <-ctx.Done():
			case <-pause.C:
			}
			pause.Stop()
		} else if err == nil {
			readFailures = 0
		}
		in.startFlushes(ctx, &flushes, results)
		if !now.Before(nextMaint) && maintaining.CompareAndSwap(false, true) {
			nextMaint = now.Add(in.opts.CompactInterval)
			maint.Add(1)
			go func() {
				defer maint.Done()
				defer maintaining.Store(false)
				in.maintain(ctx)
			}()
		}
		if progressed {
			continue
		}
		in.idle(ctx, results, nextSpecs, nextMaint)
	}
	return nil
}

// idle waits for new journal entries, a flush's end, a Reload or the next
// deadline (a batch's flush, the spec poll, maintenance).
func (in *Ingester) idle(ctx context.Context, results chan flushResult, nextSpecs, nextMaint time.Time) {
	deadline := earliest(nextSpecs, nextMaint)
	lo, reading := uint64(0), false
	in.mu.Lock()
	for _, s := range in.stores {
		if s.cur != nil && s.cur.last > s.pos && !s.flushing {
			deadline = earliest(deadline, s.pendingAt.Add(in.opts.FlushInterval))
		}
		if s.failed != nil && !s.flushing {
			deadline = earliest(deadline, s.retryAt)
		}
		if in.accepting(s) && (!reading || s.read < lo) {
			lo, reading = s.read, true
		}
	}
	if in.overBudget() {
		reading = false // until a flush finishes (wake)
	}
	in.mu.Unlock()
	wait := max(deadline.Sub(in.now()), time.Millisecond)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	journalReady := make(chan struct{})
	if reading {
		go func() {
			if in.j.Wait(wctx, lo) == nil {
				close(journalReady)
			}
		}()
	}
	select {
	case <-wctx.Done():
	case <-journalReady:
	case <-in.wake:
	case r := <-results:
		in.finishFlush(r)
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// loadSpecs reads the store list and brings the stores' state in line.
func (in *Ingester) loadSpecs(ctx context.Context) error {
	specs, err := in.opts.Specs(ctx)
	if err != nil {
		return err
	}
	for _, sp := range specs {
		if sp.ID == "" {
			continue
		}
		in.mu.Lock()
		s, known := in.stores[sp.ID]
		gone := in.dropped[sp.ID]
		in.mu.Unlock()
		if gone {
			continue
		}
		if !known {
			if s, err = in.openStore(ctx, sp.ID); err != nil {
				in.log.Warn("opening an event data store's ingestion failed; will retry", "store", sp.ID, "err", err)
				continue
			}
		}
		in.mu.Lock()
		s.setSpec(sp)
		if !known {
			in.stores[sp.ID] = s
		}
		in.mu.Unlock()
	}
	return nil
}

// openStore prepares a store seen for the first time by this process: its
// cursor (started at the journal's end for a new store: it takes the
// events recorded from now on), the list of its files, and the removal of
// the files of a flush that wrote but never committed (a crash between
// the two): their range is read again and written anew.
func (in *Ingester) openStore(ctx context.Context, id string) (*store, error) {
	name := CursorName(id)
	_, persisted := in.j.Cursors()[name]
	cur := in.j.Cursor(name)
	if !persisted {
		if err := cur.Commit(ctx, in.j.LastSeq()); err != nil {
			return nil, fmt.Errorf("starting the cursor of %s: %w", id, err)
		}
	}
	s := &store{id: id, cursor: cur, pos: cur.Position(), read: cur.Position(), files: map[string]fileRef{}, coveredSince: map[string]time.Time{}}
	s.committed.Store(s.pos)
	if err := in.loadFiles(ctx, s); err != nil {
		return nil, err
	}
	var orphans []fileRef
	s.filesMu.Lock()
	for _, f := range s.files {
		if f.First > s.pos {
			orphans = append(orphans, f)
		}
	}
	s.filesMu.Unlock()
	for _, f := range orphans {
		if err := in.obj.Delete(ctx, in.opts.Bucket, f.Key); err != nil {
			return nil, fmt.Errorf("removing the uncommitted file %s: %w", f.Key, err)
		}
		s.filesMu.Lock()
		delete(s.files, f.Key)
		s.filesMu.Unlock()
		in.log.Info("removed the file of a flush that was not committed; its events are read again", "store", id, "key", f.Key)
	}
	return s, nil
}

// loadFiles lists the store's objects into its index.
func (in *Ingester) loadFiles(ctx context.Context, s *store) error {
	files := map[string]fileRef{}
	err := in.obj.List(ctx, in.opts.Bucket, storePrefix(s.id), "", func(o objstore.ObjectInfo) error {
		if f, ok := parseKey(s.id, o.Key); ok {
			f.Size = o.Size
			files[o.Key] = f
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing the files of %s: %w", s.id, err)
	}
	now := in.now()
	s.filesMu.Lock()
	s.files = files
	for _, f := range covered(valuesOf(files)) {
		if _, ok := s.coveredSince[f.Key]; !ok {
			s.coveredSince[f.Key] = now
		}
	}
	s.filesMu.Unlock()
	return nil
}

// setSpec installs a store's configuration; in.mu is held.
func (s *store) setSpec(sp lake.Spec) {
	s.spec = sp
	s.kind = kindOf(sp.Category)
	s.channels = make(map[string]bool, len(sp.Channels))
	for _, c := range sp.Channels {
		s.channels[c] = true
	}
}

// accepting reports whether s takes entries now: its batch has room (or
// can be handed to a flush); in.mu is held.
func (in *Ingester) accepting(s *store) bool {
	if s.dropped.Load() {
		return false
	}
	if s.cur == nil {
		return true
	}
	full := s.cur.rows() >= in.opts.MaxBatchRows || s.cur.bytes >= in.opts.MaxBatchBytes
	return !full
}

// overBudget reports whether the batches held in memory (filling, being
// written, waiting for a retry) reach twice MaxBufferBytes: then nothing
// more is read until a flush finishes. in.mu is held.
func (in *Ingester) overBudget() bool {
	total := 0
	for _, s := range in.stores {
		if s.cur != nil {
			total += s.cur.bytes
		}
		if s.failed != nil {
			total += s.failed.bytes
		}
		total += s.flushed
	}
	return total >= 2*in.opts.MaxBufferBytes
}

// entry is one journal entry being dispatched: read once, converted once
// per schema, whatever the number of stores that take it.
type entry struct {
	seq      uint64
	raw      []byte
	src      *source
	h        header
	read     bool
	valid    bool
	row      *Row
	audit    *AuditRow
	rowErr   error
	auditErr error
}

// readOnce reads one chunk of the journal for the stores that accept
// entries and reports whether it read anything.
func (in *Ingester) readOnce(ctx context.Context, hi uint64) (bool, error) {
	in.mu.Lock()
	if in.overBudget() {
		in.mu.Unlock()
		return false, nil
	}
	var part []*store
	var lo uint64
	for _, s := range in.stores {
		if in.accepting(s) {
			if len(part) == 0 || s.read < lo {
				lo = s.read
			}
			part = append(part, s)
		}
	}
	in.mu.Unlock()
	if len(part) == 0 || lo >= hi {
		return false, nil
	}
	if first := in.j.FirstSeq(); lo+1 < first {
		for _, s := range part {
			if s.read+1 < first {
				in.m.skipped.WithLabelValues("missed").Add(float64(first - 1 - s.read))
				in.log.Error("journal entries were trimmed before the event data store took them", "store", s.id, "from", s.read+1, "to", first-1)
			}
		}
	}
	retention := map[*store]string{}
	for _, s := range part {
		retention[s] = in.cutoffDay(s.spec)
	}
	var a arena
	var full []*store
	now := in.now()
	_, err := in.j.Read(ctx, lo, readChunk, func(seq uint64, raw []byte) error {
		if seq > hi {
			return errPastHead
		}
		e := entry{seq: seq, raw: raw}
		for _, s := range part {
			if s.read >= seq || slices.Contains(full, s) {
				continue
			}
			if s.cur == nil {
				s.cur = &batch{kind: s.kind, first: s.read + 1}
				s.pendingAt = now
				if s.failed == nil {
					s.pendingNanos.Store(now.UnixNano())
				}
			}
			s.read = seq
			s.cur.last = seq
			in.take(s, &e, &a, retention[s])
			if !in.accepting(s) {
				full = append(full, s)
			}
		}
		return nil
	})
	if errors.Is(err, errPastHead) {
		err = nil
	}
	return true, err
}

// errPastHead ends a read at the head the round started with.
var errPastHead = errors.New("past the round's journal head")

// take adds the entry's row to the store's batch when the store selects
// it.
func (in *Ingester) take(s *store, e *entry, a *arena, cutoff string) {
	if !s.spec.Ingesting {
		return // stopped: events recorded meanwhile are not ingested, as on AWS
	}
	if !e.read {
		e.read = true
		e.src = newSource(e.raw, a)
		e.h, e.valid = readHeader(e.src)
		if !e.valid {
			in.m.skipped.WithLabelValues("invalid").Inc()
		}
	}
	if !e.valid {
		return
	}
	h := &e.h
	if h.category == lake.CategoryActivityAuditLog {
		if s.kind != kindAudit || !s.channels[h.channel] {
			return
		}
	} else {
		if s.kind == kindAudit {
			return
		}
		if !s.spec.MultiRegion && h.region != s.spec.Region {
			return
		}
		if !selector.Match(nil, s.spec.Selectors, &h.ev) {
			return
		}
	}
	if cutoff != "" && dayOf(h.eventTime) < cutoff {
		in.m.skipped.WithLabelValues("expired").Inc()
		return
	}
	switch s.kind {
	case kindAudit:
		if e.audit == nil && e.auditErr == nil {
			row, err := convertSafely(func() (AuditRow, error) { return makeAuditRow(e.src, h) })
			e.audit, e.auditErr = &row, err
		}
		if e.auditErr != nil {
			in.m.skipped.WithLabelValues("invalid").Inc()
			return
		}
		s.cur.audit.add(e.audit)
	default:
		if e.row == nil && e.rowErr == nil {
			row, err := convertSafely(func() (Row, error) { return makeRow(e.src, h) })
			e.row, e.rowErr = &row, err
		}
		if e.rowErr != nil {
			in.m.skipped.WithLabelValues("invalid").Inc()
			return
		}
		s.cur.events.add(e.row)
	}
	s.cur.bytes += len(e.raw)
}

// convertSafely runs a conversion, turning a panic (a record that is not
// valid compact JSON, which the journal should never hold) into an error.
func convertSafely[T any](f func() (T, error)) (row T, err error) {
	defer func() {
		if recover() != nil {
			err = errNotRecord
		}
	}()
	return f()
}

// cutoffDay is the oldest partition a store keeps: events of earlier days
// are past its retention period. "" when the store keeps everything.
func (in *Ingester) cutoffDay(sp lake.Spec) string {
	if sp.RetentionDays <= 0 {
		return ""
	}
	return dayOf(in.now().AddDate(0, 0, -sp.RetentionDays))
}

// startFlushes hands every due batch to a flush goroutine: full, old
// enough, or a failed one whose retry time has come. One flush per store
// runs at a time, so that cursor commits stay in order.
func (in *Ingester) startFlushes(ctx context.Context, wg *sync.WaitGroup, results chan flushResult) {
	now := in.now()
	in.mu.Lock()
	defer in.mu.Unlock()
	// Over the memory budget, the largest filling batch is due now.
	var largest *store
	total := 0
	for _, s := range in.stores {
		if s.cur != nil {
			total += s.cur.bytes
			if !s.flushing && s.failed == nil && (largest == nil || s.cur.bytes > largest.cur.bytes) {
				largest = s
			}
		}
	}
	if total < in.opts.MaxBufferBytes {
		largest = nil
	}
	for _, s := range in.stores {
		if s.flushing || s.dropped.Load() {
			continue
		}
		var b *batch
		switch {
		case s.failed != nil:
			if now.Before(s.retryAt) {
				continue
			}
			b = s.failed
		case s.cur != nil && s.cur.last > s.pos:
			if s != largest && in.accepting(s) && now.Before(s.pendingAt.Add(in.opts.FlushInterval)) {
				continue
			}
			b = s.cur
		default:
			continue
		}
		s.mu.Lock()
		if s.dropped.Load() {
			s.mu.Unlock()
			continue
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		if b == s.cur {
			s.cur = nil
		}
		if b == s.failed {
			s.failed = nil
		}
		s.flushing = true
		s.flushed = b.bytes
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.inflight.Done()
			files, err := in.flush(ctx, s, b)
			select {
			case results <- flushResult{s: s, b: b, files: files, err: err}:
				in.signal()
			case <-ctx.Done():
			}
		}()
	}
}

// finishFlush records a flush's outcome. A failed batch is kept and
// written again after a backoff: the same range, so the same object names.
func (in *Ingester) finishFlush(r flushResult) {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := r.s
	s.flushing = false
	s.flushed = 0
	if r.err != nil {
		s.failed = r.b
		s.failures++
		delay := backoff(s.failures)
		s.retryAt = in.now().Add(delay)
		in.m.writeErrors.Inc()
		in.log.Warn("writing an event data store's files failed; the events wait in the journal", "store", s.id, "first", r.b.first, "last", r.b.last, "err", r.err, "attempt", s.failures, "retry_in", delay.Round(time.Millisecond))
		return
	}
	s.failed = nil
	s.failures = 0
	s.pos = r.b.last
	s.committed.Store(s.pos)
	if s.cur != nil && s.cur.last > s.pos {
		s.pendingNanos.Store(s.pendingAt.UnixNano())
	} else {
		s.pendingNanos.Store(0)
	}
	s.ingested.Add(uint64(r.b.rows()))
}

func backoff(attempt int) time.Duration {
	d := defaultRetryMin
	for i := 1; i < attempt && d < defaultRetryMax; i++ {
		d *= 2
	}
	d = min(d, defaultRetryMax)
	half := d / 2
	return half + rand.N(half+1)
}

// flush writes a batch's files, one per partition (event day), then
// commits the store's cursor past the batch. A crash anywhere in between
// leaves files whose names the same range gives again: the next process
// deletes them (openStore) and writes the range anew.
func (in *Ingester) flush(ctx context.Context, s *store, b *batch) ([]fileRef, error) {
	var written []fileRef
	if b.rows() > 0 {
		byDay := map[string][]int32{}
		switch b.kind {
		case kindAudit:
			for i := range int32(b.audit.len()) {
				d := dayOf(b.audit.at(i).EventTime)
				byDay[d] = append(byDay[d], i)
			}
		default:
			for i := range int32(b.events.len()) {
				d := dayOf(b.events.at(i).EventTime)
				byDay[d] = append(byDay[d], i)
			}
		}
		days := slices.Sorted(func(yield func(string) bool) {
			for d := range byDay {
				if !yield(d) {
					return
				}
			}
		})
		for _, day := range days {
			idx := byDay[day]
			var data []byte
			var err error
			switch b.kind {
			case kindAudit:
				sortIndexes(&b.audit, idx)
				data, err = encodeChunked(&b.audit, idx, b.first, b.last)
			default:
				sortIndexes(&b.events, idx)
				data, err = encodeChunked(&b.events, idx, b.first, b.last)
			}
			if err != nil {
				return nil, fmt.Errorf("encoding %s partition %s: %w", s.id, day, err)
			}
			key := fileKey(s.id, day, b.first, b.last)
			if err := in.obj.Put(ctx, in.opts.Bucket, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{ContentType: "application/vnd.apache.parquet"}); err != nil {
				return nil, fmt.Errorf("writing %s: %w", key, err)
			}
			in.m.filesWritten.Inc()
			in.m.bytesWritten.Add(float64(len(data)))
			f := fileRef{Key: key, Date: day, First: b.first, Last: b.last, Size: int64(len(data))}
			written = append(written, f)
			s.filesMu.Lock()
			s.files[key] = f
			s.filesMu.Unlock()
		}
	}
	if err := s.cursor.Commit(ctx, b.last); err != nil {
		return written, fmt.Errorf("committing the cursor of %s at %d: %w", s.id, b.last, err)
	}
	return written, nil
}

// Drop removes a purged store: it stops ingesting it, waits for its work
// under way, deletes its files (and their cached copies) and its journal
// cursor. The store's ID is never ingested again by this Ingester.
func (in *Ingester) Drop(ctx context.Context, id string) error {
	in.mu.Lock()
	s := in.stores[id]
	in.dropped[id] = true
	delete(in.stores, id)
	in.mu.Unlock()
	if s != nil {
		s.mu.Lock()
		s.dropped.Store(true)
		s.mu.Unlock()
		s.inflight.Wait()
	}
	var keys []string
	if err := in.obj.List(ctx, in.opts.Bucket, storePrefix(id), "", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		return fmt.Errorf("lake ingest: dropping %s: listing its files: %w", id, err)
	}
	for _, k := range keys {
		if err := in.obj.Delete(ctx, in.opts.Bucket, k); err != nil {
			return fmt.Errorf("lake ingest: dropping %s: %w", id, err)
		}
	}
	if err := in.dropCache(id); err != nil {
		return fmt.Errorf("lake ingest: dropping %s: %w", id, err)
	}
	if err := in.j.DeleteCursor(ctx, CursorName(id)); err != nil {
		return fmt.Errorf("lake ingest: dropping %s: %w", id, err)
	}
	return nil
}
