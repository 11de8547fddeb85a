package history

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/journal"
)

// Defaults for Options.
const (
	DefaultRetention      = 90 * 24 * time.Hour
	DefaultCursorName     = "history"
	defaultBatchEntries   = 8192
	defaultMirrorInterval = 5 * time.Second
	defaultSweepInterval  = time.Hour
	defaultCacheSize      = 64 << 20
	defaultMemTableSize   = 16 << 20
	// decodedBlockCache is the bytes of decoded record blocks kept for
	// lookups (see blockCache).
	decodedBlockCache = 16 << 20
)

var (
	// ErrClosed is returned by WaitIndexed and Lookup after Close.
	ErrClosed = errors.New("history closed")
	// ErrStopped is returned by WaitIndexed when the consumer is not running
	// (Start was not called or its context ended): nothing will be indexed.
	ErrStopped = errors.New("history consumer not running")
)

// Options configures a History. The zero value is usable.
type Options struct {
	// Logger receives the history's and Pebble's logs; nil means slog.Default().
	Logger *slog.Logger
	// FS holds the database files; nil means the real filesystem. Tests use
	// pebble's vfs.NewStrictMem to simulate crashes.
	FS vfs.FS
	// Registerer, if set, receives the cairn_history_* metrics. They are
	// unregistered on Close.
	Registerer prometheus.Registerer
	// Retention is how long events stay searchable, counted from their
	// eventTime (--history-retention). Zero means 90 days, CloudTrail's fixed
	// retention.
	Retention time.Duration
	// IncludeDataEvents also indexes data and network activity events, which
	// CloudTrail leaves out of the event history (a Cairn extension).
	IncludeDataEvents bool
	// CursorName is the journal cursor the history mirrors its position to;
	// empty means "history".
	CursorName string
	// Now is the clock for retention; nil means time.Now.
	Now func() time.Time
	// BatchEntries bounds the journal entries indexed in one batch; zero
	// means 8192.
	BatchEntries int
	// MirrorInterval is how often the durable position is mirrored to the
	// journal cursor (which bounds journal trimming and feeds its lag
	// metric); zero means 5 s.
	MirrorInterval time.Duration
	// SweepInterval is how often expired events are deleted; zero means an
	// hour. Lookups never return expired events in between.
	SweepInterval time.Duration
	// CacheSize sizes Pebble's block cache; zero means 64 MiB.
	CacheSize int64
	// MemTableSize is Pebble's memtable size; zero means 16 MiB. Batches
	// larger than half of it skip the memtable (Pebble sorts them and
	// flushes them as they are). With the records in compressed blocks a
	// full batch of BatchEntries events is ~5-6 MB, so at the default it
	// goes through the memtable.
	MemTableSize uint64
}

// History is the event history of one Cairn: a journal consumer that
// maintains the LookupEvents index, and the lookups on it. All methods are
// safe for concurrent use.
type History struct {
	dir    string
	opts   Options
	log    *slog.Logger
	j      *journal.Journal
	jcur   *journal.Cursor
	db     *pebble.DB
	cache  *pebble.Cache
	codec  *codec      // compresses the record store's blocks
	blocks *blockCache // decoded blocks shared by lookups

	tokenKey []byte
	// intersectionBudget is defaultIntersectionBudget; tests lower it.
	intersectionBudget int

	// cursor is the last journal seq whose index entries are committed.
	cursor atomic.Uint64
	// mirrored is the last position committed to the journal cursor.
	mirrored atomic.Uint64

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced when cursor advances or the consumer stops
	running  bool          // consumer goroutine alive; guarded by notifyMu
	closed   bool          // guarded by notifyMu

	startOnce sync.Once
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// dbMu is held for reading by every user of db (acquire/release) and
	// for writing by Close, so that Pebble is never used after it is closed.
	dbMu     sync.RWMutex
	dbClosed bool

	metrics *metrics
}

// Open opens (creating if needed) the history database in dir and attaches
// it to j. Call Start to begin indexing and Close when done; Close the
// history before the journal.
func Open(ctx context.Context, dir string, j *journal.Journal, opts Options) (*History, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("opening history %s: %w", dir, err)
	}
	if j == nil {
		return nil, fmt.Errorf("opening history %s: no journal", dir)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.CursorName == "" {
		opts.CursorName = DefaultCursorName
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchEntries <= 0 {
		opts.BatchEntries = defaultBatchEntries
	}
	if opts.MirrorInterval <= 0 {
		opts.MirrorInterval = defaultMirrorInterval
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = defaultSweepInterval
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = defaultCacheSize
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = defaultMemTableSize
	}
	h := &History{
		dir:     dir,
		opts:    opts,
		log:     opts.Logger.With("component", "history"),
		j:       j,
		jcur:    j.Cursor(opts.CursorName),
		notify:  make(chan struct{}),
		metrics: newMetrics(),
		blocks:  newBlockCache(decodedBlockCache),

		intersectionBudget: defaultIntersectionBudget,
	}
	h.cache = pebble.NewCache(opts.CacheSize)
	db, err := pebble.Open(dir, h.pebbleOptions())
	h.cache.Unref() // the database holds its own reference
	if err != nil && strings.Contains(err.Error(), "comparer name") {
		// Version 1 databases were written with Pebble's default comparer;
		// Pebble refuses them before metaFormat can be read.
		return nil, fmt.Errorf("opening history database in %s: it has an older key layout than version %d (%w): move %s away and the event history is rebuilt from the journal (events the journal has already trimmed are then only in the trails' log files)", dir, formatVersion, err, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening history database in %s: %w", dir, err)
	}
	h.db = db
	if err := h.loadMeta(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening history %s: %w", dir, err)
	}
	// The journal cursor must never be ahead of what this database holds
	// durably (it bounds trimming): after the history database was lost or
	// restored from an older copy, move it back so the journal keeps what
	// is to be indexed again.
	if pos := h.cursor.Load(); pos < h.jcur.Position() {
		if err := h.jcur.Commit(ctx, pos); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("opening history %s: moving journal cursor %q back to %d: %w", dir, opts.CursorName, pos, err)
		}
	}
	h.mirrored.Store(h.jcur.Position())
	if err := h.metrics.register(opts.Registerer, h); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening history %s: %w", dir, err)
	}
	h.log.Info("history opened", "dir", dir, "cursor", h.cursor.Load(), "journal_last_seq", j.LastSeq(),
		"retention", opts.Retention, "include_data_events", opts.IncludeDataEvents)
	return h, nil
}

// pebbleOptions configures the history database for its workload: batched
// writes spread over many key ranges, short prefix scans and point reads.
func (h *History) pebbleOptions() *pebble.Options {
	o := &pebble.Options{
		FS:                          h.opts.FS,
		Comparer:                    comparer,
		Cache:                       h.cache,
		Logger:                      pebbleLogger{log: h.log},
		MemTableSize:                h.opts.MemTableSize,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       32,
		BytesPerSync:                1 << 20,
		FormatMajorVersion:          pebble.FormatNewest,
	}
	// Bloom filters speed up the point reads (EventId lookups and the
	// duplicate check at indexing); range scans do not use them.
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].BlockSize = 16 << 10
	}
	// Index keys compress well together: zstd on the bottom levels, where
	// nearly all data ends up, at Pebble's "good" level on the last one
	// (attribute entries 97 -> 83 B an event in BenchmarkBytesPerEvent).
	// The record store's blocks are already compressed.
	o.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionGood })
	return o
}

// loadMeta reads the cursor and the token key, creating them on first use.
func (h *History) loadMeta() error {
	format, err := h.getUint64(metaFormat)
	if err != nil {
		return err
	}
	cursor, err := h.getUint64(metaCursor)
	if err != nil {
		return err
	}
	key, closer, err := h.db.Get(metaTokenKey)
	switch {
	case err == nil:
		h.tokenKey = append([]byte(nil), key...)
		_ = closer.Close()
	case errors.Is(err, pebble.ErrNotFound):
		if format != 0 {
			return fmt.Errorf("history database has no NextToken key but format %d: refusing a damaged database", format)
		}
	default:
		return fmt.Errorf("reading the NextToken key: %w", err)
	}
	if format == 0 {
		// New database: create the token key and the format marker durably
		// before any token can be handed out.
		h.tokenKey = make([]byte, tokenKeyLen)
		if _, err := rand.Read(h.tokenKey); err != nil {
			return fmt.Errorf("generating the NextToken key: %w", err)
		}
		b := h.db.NewBatch()
		_ = b.Set(metaTokenKey, h.tokenKey, nil)
		_ = b.Set(metaFormat, encodeUint64(formatVersion), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("initialising the history database: %w", err)
		}
		format = formatVersion
	}
	if format != formatVersion {
		return fmt.Errorf("history database has key layout version %d, this cairn reads version %d: move %s away and the event history is rebuilt from the journal (events the journal has already trimmed are then only in the trails' log files)", format, formatVersion, h.dir)
	}
	if len(h.tokenKey) != tokenKeyLen {
		return fmt.Errorf("history database NextToken key is %d bytes, want %d", len(h.tokenKey), tokenKeyLen)
	}
	dicts, err := loadDicts(h.db)
	if err != nil {
		return err
	}
	if h.codec, err = newCodec(dicts); err != nil {
		return err
	}
	h.cursor.Store(cursor)
	return nil
}

// newDict gives the record store a new compression dictionary taken from
// samples when it is due (see codec.maybeNewDict). The dictionary is
// committed in a batch of its own before any block that uses it: the
// write-ahead log is sequential, so whatever survives a crash that holds
// such a block holds the dictionary too.
func (h *History) newDict(samples [][]byte) error {
	id, d, err := h.codec.maybeNewDict(samples)
	if err != nil || id == 0 {
		return err
	}
	if err := h.db.Set(dictKey(id), d, pebble.NoSync); err != nil {
		h.codec.dropDict(id)
		return fmt.Errorf("storing record dictionary %d: %w", id, err)
	}
	h.log.Info("history: new record compression dictionary", "id", id, "bytes", len(d))
	return nil
}

func (h *History) getUint64(key []byte) (uint64, error) {
	v, closer, err := h.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %q: %w", key, err)
	}
	defer closer.Close()
	n, ok := decodeUint64(v)
	if !ok {
		return 0, fmt.Errorf("reading %q: malformed value %x", key, v)
	}
	return n, nil
}

// Position returns the last journal sequence number the history has indexed
// (committed to its database; visible to lookups).
func (h *History) Position() uint64 { return h.cursor.Load() }

// Start launches the consumer, which indexes journal entries until ctx ends
// or Close, and the retention sweeper. It fails if the history database is
// ahead of the journal, which means the journal was replaced: sequence
// numbers are never reused, so the index would silently miss the new
// journal's first entries.
func (h *History) Start(ctx context.Context) error {
	if last, pos := h.j.LastSeq(), h.cursor.Load(); pos > last {
		return fmt.Errorf("starting history: its cursor %d is beyond the journal's last entry %d (was the journal replaced? move %s away to rebuild the index)", pos, last, h.dir)
	}
	started := false
	h.startOnce.Do(func() {
		h.notifyMu.Lock()
		if h.closed {
			h.notifyMu.Unlock()
			return
		}
		ctx, h.stop = context.WithCancel(ctx)
		h.running = true
		h.notifyMu.Unlock()
		started = true
		h.wg.Add(3)
		go h.consume(ctx)
		go h.mirrorLoop(ctx)
		go h.sweepLoop(ctx)
	})
	if !started {
		return errors.New("starting history: already started or closed")
	}
	return nil
}

// Close stops the goroutines, makes the indexed position durable, mirrors
// it to the journal cursor (if the journal is still open) and closes the
// database.
func (h *History) Close() error {
	h.closeOnce.Do(func() {
		h.notifyMu.Lock()
		h.closed = true
		stop := h.stop
		h.notifyMu.Unlock()
		if stop != nil {
			stop()
		}
		h.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.mirror(ctx); err != nil && !errors.Is(err, journal.ErrClosed) {
			h.log.Warn("history: could not mirror the final position to the journal cursor", "err", err)
		}
		h.wake()
		h.dbMu.Lock()
		h.dbClosed = true
		h.closeErr = h.db.Close()
		if h.codec != nil {
			h.codec.close()
		}
		h.dbMu.Unlock()
		h.metrics.unregister()
		if h.closeErr != nil {
			h.closeErr = fmt.Errorf("closing history database %s: %w", h.dir, h.closeErr)
		}
	})
	return h.closeErr
}

// wake wakes every WaitIndexed caller.
func (h *History) wake() {
	h.notifyMu.Lock()
	close(h.notify)
	h.notify = make(chan struct{})
	h.notifyMu.Unlock()
}

// WaitIndexed blocks until the journal entry seq (and everything before it)
// is indexed and visible to Lookup, ctx ends, or the history stops. Servers
// use it to make an acknowledged event searchable before answering, tests to
// wait for freshness without sleeping.
func (h *History) WaitIndexed(ctx context.Context, seq uint64) error {
	for {
		h.notifyMu.Lock()
		ch, running, closed := h.notify, h.running, h.closed
		h.notifyMu.Unlock()
		if h.cursor.Load() >= seq {
			return nil
		}
		if closed {
			return fmt.Errorf("waiting for journal entry %d to be indexed: %w", seq, ErrClosed)
		}
		if !running {
			return fmt.Errorf("waiting for journal entry %d to be indexed (at %d): %w", seq, h.cursor.Load(), ErrStopped)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for journal entry %d to be indexed (at %d): %w", seq, h.cursor.Load(), ctx.Err())
		}
	}
}

// consume is the consumer goroutine: index what the journal has, wait for
// more, repeat. While one batch is written, the next is read from the
// journal and parsed on another goroutine (readBatch), so the two halves
// of the work use both cores under load. Storage errors are retried with
// backoff: the history lags instead of giving up, and the lag shows in
// cairn_history_index_lag.
func (h *History) consume(ctx context.Context) {
	defer h.wg.Done()
	defer func() {
		h.notifyMu.Lock()
		h.running = false
		h.notifyMu.Unlock()
		h.wake()
	}()
	var ahead chan readAheadResult // the next batch, being read; nil if none
	defer func() {
		if ahead != nil {
			<-ahead
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		after := h.cursor.Load()
		var rb readResult
		var err error
		if ahead != nil {
			res := <-ahead
			ahead = nil
			rb, err = res.rb, res.err
			if err == nil && rb.after != after {
				rb, err = h.readBatch(ctx, after, h.opts.BatchEntries)
			}
		} else {
			rb, err = h.readBatch(ctx, after, h.opts.BatchEntries)
		}
		if err == nil && rb.last > after && len(rb.entries) >= h.opts.BatchEntries {
			// A full batch: there is likely more behind it.
			ahead = make(chan readAheadResult, 1)
			go func(from uint64) {
				rb, err := h.readBatch(ctx, from, h.opts.BatchEntries)
				ahead <- readAheadResult{rb, err}
			}(rb.last)
		}
		var progressed bool
		if err == nil {
			progressed, err = h.indexBatch(rb)
		}
		if err == nil && !progressed {
			err = h.j.Wait(ctx, h.cursor.Load())
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, journal.ErrClosed) {
			h.log.Info("history: journal closed, indexing stops", "cursor", h.cursor.Load())
			return
		}
		h.metrics.indexErrors.Inc()
		h.log.Error("history: indexing failed; retrying", "cursor", h.cursor.Load(), "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// readAheadResult carries a batch read ahead by consume.
type readAheadResult struct {
	rb  readResult
	err error
}

// indexBatch indexes the parsed entries of rb (those after the cursor) in
// one atomic batch together with the new cursor. It reports whether the
// cursor moved.
func (h *History) indexBatch(rb readResult) (bool, error) {
	if err := h.acquire(); err != nil {
		return false, err
	}
	defer h.release()
	after := h.cursor.Load()
	if rb.after != after {
		return false, fmt.Errorf("indexing: batch read after %d but the cursor is at %d", rb.after, after)
	}
	imp, err := h.currentImport(after)
	if err != nil {
		return false, err
	}
	ix := indexer{h: h, cutoff: h.opts.Now().Add(-h.opts.Retention), expect: after + 1, imp: imp}
	for _, e := range rb.entries {
		ix.add(e)
	}
	last := rb.last
	if last == after {
		// Nothing was read. If the journal trimmed entries the history never
		// indexed, Read skips them and finds nothing, while Wait returns at
		// once: move the cursor over the gap (counted as missed) instead of
		// spinning.
		floor := h.j.FirstSeq() - 1
		if floor <= after {
			return false, nil
		}
		last = floor
	}
	if last >= ix.expect {
		ix.missed(last + 1)
	}
	b := h.db.NewBatch()
	defer func() { _ = b.Close() }()
	if err := ix.write(b); err != nil {
		return false, fmt.Errorf("indexing journal entries %d-%d: %w", after+1, last, err)
	}
	_ = b.Set(metaCursor, encodeUint64(last), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return false, fmt.Errorf("committing the index of journal entries %d-%d: %w", after+1, last, err)
	}
	h.cursor.Store(last)
	h.metrics.indexed.Add(float64(ix.n))
	h.wake()
	return true, nil
}

// mirror makes the indexed position durable in the history database (a
// synced WAL write covers every batch committed before it) and then records
// it in the journal cursor. The order matters: the journal may trim up to
// its cursor, so the cursor must never claim more than survives a crash.
func (h *History) mirror(ctx context.Context) error {
	pos := h.cursor.Load()
	if pos <= h.mirrored.Load() {
		return nil
	}
	if err := h.acquire(); err != nil {
		return err
	}
	err := h.db.LogData(nil, pebble.Sync)
	h.release()
	if err != nil {
		return fmt.Errorf("syncing the history database at position %d: %w", pos, err)
	}
	if err := h.jcur.Commit(ctx, pos); err != nil {
		return fmt.Errorf("mirroring history position %d to the journal: %w", pos, err)
	}
	h.mirrored.Store(pos)
	return nil
}

// mirrorLoop mirrors the position every MirrorInterval.
func (h *History) mirrorLoop(ctx context.Context) {
	defer h.wg.Done()
	t := time.NewTicker(h.opts.MirrorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.mirror(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("history: mirroring the position to the journal cursor failed; retrying", "err", err)
		}
	}
}

// sweepLoop deletes expired events at start and every SweepInterval.
func (h *History) sweepLoop(ctx context.Context) {
	defer h.wg.Done()
	for {
		n, err := h.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			h.log.Error("history: retention sweep failed; retrying at the next interval", "err", err)
		case n > 0:
			h.log.Info("history: retention sweep deleted expired events", "events", n, "retention", h.opts.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.opts.SweepInterval):
		}
	}
}

// Compact compacts the whole history database, so that the space of
// swept events is returned to the file system now. Pebble compacts on its
// own; this is for measurements (bytes per event) and operators.
func (h *History) Compact(ctx context.Context) error {
	if err := h.acquire(); err != nil {
		return err
	}
	defer h.release()
	if err := h.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("compacting the history database: %w", err)
	}
	return nil
}

// DiskUsage estimates the bytes on disk of each part of the database: the
// record store's blocks ("records"), the index entries of the events
// ("events", "attributes", "event_ids") and the rest ("other": metadata,
// import provenance, retention entries). For measurements and operators.
func (h *History) DiskUsage() (map[string]uint64, error) {
	if err := h.acquire(); err != nil {
		return nil, err
	}
	defer h.release()
	parts := []struct {
		name   string
		prefix byte
	}{{"records", prefixRecords}, {"events", prefixEvent}, {"attributes", prefixAttr}, {"event_ids", prefixEventID}}
	out := map[string]uint64{}
	var named uint64
	for _, p := range parts {
		n, err := h.db.EstimateDiskUsage([]byte{p.prefix}, []byte{p.prefix + 1})
		if err != nil {
			return nil, fmt.Errorf("estimating the disk usage of the history's %s: %w", p.name, err)
		}
		out[p.name] = n
		named += n
	}
	all, err := h.db.EstimateDiskUsage([]byte{0}, []byte{0xff})
	if err != nil {
		return nil, fmt.Errorf("estimating the disk usage of the history: %w", err)
	}
	out["other"] = all - min(all, named)
	return out, nil
}

// Sync makes everything indexed so far durable and mirrors the position to
// the journal cursor (which lets the journal trim up to it), as the
// background mirror does every MirrorInterval.
func (h *History) Sync(ctx context.Context) error { return h.mirror(ctx) }

// acquire makes sure the database stays open until release.
func (h *History) acquire() error {
	h.dbMu.RLock()
	if h.dbClosed {
		h.dbMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (h *History) release() { h.dbMu.RUnlock() }
