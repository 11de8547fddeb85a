package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrUnavailable is wrapped by every error that means "the journal could
	// not make this durable right now": a storage fault, low disk space, or a
	// database being reopened. Callers must fail the operation (fail closed)
	// and may retry later.
	ErrUnavailable = errors.New("journal unavailable")
	// ErrNotFound is returned by Get for a sequence number that is not (or no
	// longer, after Trim) in the journal.
	ErrNotFound = errors.New("journal entry not found")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("journal closed")
	// ErrInvalid is wrapped by errors about arguments that can never succeed
	// (empty or oversized entries, bad cursor names, positions beyond the end).
	ErrInvalid = errors.New("invalid journal request")
)

const (
	// MaxEntrySize is the largest entry Append accepts.
	MaxEntrySize = 1 << 20
	// MaxAppendBytes bounds one Append call; all entries of a call are
	// committed in one atomic batch.
	MaxAppendBytes = 32 << 20
	// MaxCursorName bounds cursor names.
	MaxCursorName = 256

	defaultMinFreeBytes  = 256 << 20
	defaultRetryInterval = time.Second
	// defaultSpaceProbeInterval: free space is also checked on this timer,
	// not only when something appends, so that health reflects a disk that
	// filled or was freed while no call arrived.
	defaultSpaceProbeInterval = 2 * time.Second
	// The server must stay under 512 MB with everything else it holds.
	// Pebble keeps a flushing memtable next to the filling one, so a
	// memtable costs twice its size; 32 MiB instead of 64 saved ~60 MB of
	// RSS at 50,000 events/s for ~5% more journal CPU (more, smaller
	// flushes; BenchmarkSteadyState). The cache only serves consumers that
	// lag behind the memtables, and they read each block once, in order.
	defaultMemTableSize = 32 << 20
	defaultCacheSize    = 16 << 20

	// readChunkEntries and readChunkBytes bound how much Read copies out of
	// the database before calling the consumer's function, which it never
	// calls while holding the database (a slow consumer must not hold up
	// the reopening of the database after a fault).
	readChunkEntries = 1024
	readChunkBytes   = 4 << 20
)

// Options configures a Journal. The zero value is usable.
type Options struct {
	// Logger receives the journal's and Pebble's logs. nil means slog.Default().
	Logger *slog.Logger
	// FS is the filesystem the journal stores its files on. nil means the real
	// filesystem; tests inject faults through pebble's vfs/errorfs or their
	// own wrapper.
	FS vfs.FS
	// Registerer, if set, receives the journal's metrics (cairn_journal_*).
	// They are unregistered on Close.
	Registerer prometheus.Registerer
	// MinFreeBytes: appends are refused with ErrUnavailable while the
	// filesystem holding the journal has less space available than this, so
	// that the storage engine never runs into a full disk (Pebble crashes on
	// some of those errors instead of returning them). Zero means 256 MiB; a
	// negative value disables the check.
	MinFreeBytes int64
	// SpaceProbeInterval is how often the journal checks the free space
	// on its filesystem on its own, so that Available (and /healthz)
	// follows the disk while nothing is appended. Zero means two seconds.
	SpaceProbeInterval time.Duration
	// RetryInterval is how often a journal that failed closed probes whether
	// the storage works again. Zero means one second.
	RetryInterval time.Duration
	// MemTableSize is Pebble's memtable size. Zero means 32 MiB.
	MemTableSize uint64
	// CacheSize is Pebble's block cache size. Zero means 16 MiB.
	CacheSize int64
}

// Journal is a durable, ordered, append-only log of opaque entries with named
// durable cursors. All methods are safe for concurrent use.
type Journal struct {
	dir   string
	opts  Options
	log   *slog.Logger
	fs    vfs.FS
	lock  *pebble.Lock
	cache *pebble.Cache

	// mu guards db and closed for readers. Only the committer goroutine
	// changes db (under mu), so it reads db without locking.
	mu     sync.RWMutex
	db     *pebble.DB // nil while the committer reopens the database
	closed bool

	// frontier is the durable frontier: every entry <= frontier is
	// acknowledged and on disk. It is the only upper bound readers use.
	frontier atomic.Uint64
	// trimmed is the highest sequence number removed by Trim (0 if none).
	trimmed atomic.Uint64

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced whenever frontier advances

	// fault is non-nil while the journal fails closed after a storage error;
	// the error wraps ErrUnavailable and the cause.
	fault atomic.Pointer[error]
	// lowSpace is non-nil while appends are refused for lack of disk space.
	lowSpace atomic.Pointer[error]
	// stalled is set while Pebble stalls writes.
	stalled atomic.Bool

	cursorsMu sync.Mutex
	cursors   map[string]*Cursor

	chunks sync.Pool // *readChunk, reused across Read calls

	reqs      chan *request
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Owned by the committer goroutine (run).
	wedged bool
	keyBuf []byte

	metrics *metrics
}

// Open opens (creating if needed) the journal stored in dir. It recovers the
// last sequence number and cursor positions from disk.
func Open(ctx context.Context, dir string, opts Options) (*Journal, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("opening journal %s: %w", dir, err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = defaultMinFreeBytes
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = defaultRetryInterval
	}
	if opts.SpaceProbeInterval <= 0 {
		opts.SpaceProbeInterval = defaultSpaceProbeInterval
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = defaultMemTableSize
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = defaultCacheSize
	}
	j := &Journal{
		dir:     dir,
		opts:    opts,
		log:     opts.Logger.With("component", "journal", "dir", dir),
		fs:      opts.FS,
		notify:  make(chan struct{}),
		cursors: make(map[string]*Cursor),
		reqs:    make(chan *request, 4096),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		metrics: newMetrics(),
	}
	if err := j.fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("opening journal: creating directory %s: %w", dir, err)
	}
	// The journal holds the directory lock itself, for its whole lifetime,
	// and lends it to each Pebble instance: reopening after a fault must not
	// let another process in between.
	lock, err := pebble.LockDirectory(dir, j.fs)
	if err != nil {
		return nil, fmt.Errorf("opening journal: locking %s (is another cairn running on it?): %w", dir, err)
	}
	j.lock = lock
	j.cache = pebble.NewCache(opts.CacheSize)
	fail := func(err error) (*Journal, error) {
		j.cache.Unref()
		_ = j.lock.Close()
		return nil, err
	}
	db, err := j.safeOpen()
	if err != nil {
		return fail(fmt.Errorf("opening journal: %w", err))
	}
	if err := j.loadState(db); err != nil {
		_ = safeClose(db)
		return fail(fmt.Errorf("opening journal: %w", err))
	}
	if err := j.metrics.register(opts.Registerer, newStateCollector(j)); err != nil {
		_ = safeClose(db)
		return fail(fmt.Errorf("opening journal: %w", err))
	}
	j.db = db
	// Before the first append: a disk that is already short says so at once.
	_ = j.checkSpace()
	j.log.Info("journal opened", "last_seq", j.frontier.Load(), "first_seq", j.FirstSeq(), "cursors", len(j.cursors))
	go j.run()
	return j, nil
}

// loadState recovers the durable frontier, the trim floor and the cursor
// positions from db. Everything on disk at open time counts as durable: the
// previous process may have died between an fsync and its acknowledgement.
func (j *Journal) loadState(db *pebble.DB) error {
	last, err := lastEntrySeq(db)
	if err != nil {
		return err
	}
	trimmed, err := getUint64(db, []byte(metaTrimmed))
	if err != nil {
		return err
	}
	j.trimmed.Store(trimmed)
	j.frontier.Store(max(last, trimmed))
	positions, err := loadCursors(db)
	if err != nil {
		return err
	}
	j.cursorsMu.Lock()
	defer j.cursorsMu.Unlock()
	for name, pos := range positions {
		c, ok := j.cursors[name]
		if !ok {
			c = &Cursor{j: j, name: name}
			j.cursors[name] = c
		}
		c.pos.Store(pos)
	}
	return nil
}

func lastEntrySeq(db *pebble.DB) (uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixEntry},
		UpperBound: entryUpperBound(),
	})
	if err != nil {
		return 0, fmt.Errorf("reading last entry: %w", err)
	}
	var last uint64
	if it.Last() {
		seq, ok := parseEntryKey(it.Key())
		if !ok {
			_ = it.Close()
			return 0, fmt.Errorf("reading last entry: malformed key %x", it.Key())
		}
		last = seq
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("reading last entry: %w", err)
	}
	return last, nil
}

func getUint64(db *pebble.DB, key []byte) (uint64, error) {
	v, closer, err := db.Get(key)
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

func loadCursors(db *pebble.DB) (map[string]uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixCursor},
		UpperBound: []byte{prefixCursor + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("reading cursors: %w", err)
	}
	out := make(map[string]uint64)
	for it.First(); it.Valid(); it.Next() {
		name := string(it.Key()[1:])
		pos, ok := decodeUint64(it.Value())
		if !ok {
			_ = it.Close()
			return nil, fmt.Errorf("reading cursor %q: malformed value %x", name, it.Value())
		}
		out[name] = pos
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("reading cursors: %w", err)
	}
	return out, nil
}

// Close stops accepting requests, fails those still queued with ErrClosed,
// and closes the storage. Appends acknowledged before Close are durable.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		close(j.closing)
		<-j.done
	})
	return j.closeErr
}

// LastSeq returns the durable frontier: the sequence number of the last
// acknowledged entry (0 for an empty journal). Every entry from FirstSeq to
// LastSeq is readable.
func (j *Journal) LastSeq() uint64 { return j.frontier.Load() }

// FirstSeq returns the lowest sequence number still in the journal, i.e. one
// more than the highest trimmed. A consumer whose cursor is below
// FirstSeq()-1 has missed trimmed entries.
func (j *Journal) FirstSeq() uint64 { return j.trimmed.Load() + 1 }

// Available returns nil if the journal accepts appends right now, or the
// error (wrapping ErrUnavailable) it would refuse them with. Health checks
// and GetTrailStatus-style reporting use it.
func (j *Journal) Available() error {
	if f := j.fault.Load(); f != nil {
		return *f
	}
	if f := j.lowSpace.Load(); f != nil {
		return *f
	}
	j.mu.RLock()
	closed := j.closed
	j.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return nil
}

// Append makes entries durable as one atomic unit, assigns them consecutive
// sequence numbers and returns the first one. It returns only after the
// entries are fsynced. On error nothing of the call is acknowledged: storage
// problems wrap ErrUnavailable (with the cause), bad arguments wrap
// ErrInvalid. The journal does not retain entries after Append returns, but
// the caller must not modify them before.
//
// If ctx ends before the entries were handed to the committer, nothing is
// written. If it ends while they are being committed, Append returns the
// context's error and the entries may or may not become durable.
func (j *Journal) Append(ctx context.Context, entries [][]byte) (first uint64, err error) {
	if len(entries) == 0 {
		return 0, fmt.Errorf("journal append: no entries: %w", ErrInvalid)
	}
	total := 0
	for i, e := range entries {
		if len(e) == 0 {
			return 0, fmt.Errorf("journal append: entry %d is empty: %w", i, ErrInvalid)
		}
		if len(e) > MaxEntrySize {
			return 0, fmt.Errorf("journal append: entry %d is %d bytes, over the %d-byte limit: %w", i, len(e), MaxEntrySize, ErrInvalid)
		}
		total += len(e)
	}
	if total > MaxAppendBytes {
		return 0, fmt.Errorf("journal append: %d bytes in one call, over the %d-byte limit: %w", total, MaxAppendBytes, ErrInvalid)
	}
	// Fail fast while the storage is known to be broken: no queueing, no
	// waiting for a sync that cannot happen.
	if f := j.fault.Load(); f != nil {
		j.metrics.refused.Inc()
		return 0, fmt.Errorf("journal append: %w", *f)
	}
	r := &request{kind: opAppend, entries: entries, bytes: total, done: make(chan result, 1)}
	res, err := j.submit(ctx, r)
	if err != nil {
		return 0, fmt.Errorf("journal append of %d entries: %w", len(entries), err)
	}
	return res.first, nil
}

// Read calls fn for the entries with sequence numbers greater than after, in
// order, up to max entries and no further than LastSeq at the time of the
// call. It returns the sequence number of the last entry fn accepted (after
// if none). Entries removed by Trim are skipped, so the first seq passed to
// fn may be greater than after+1. entry is only valid during the call (its
// buffer is reused by later reads); fn must copy it to keep it. An error from
// fn stops the read and is returned as is.
func (j *Journal) Read(ctx context.Context, after uint64, max int, fn func(seq uint64, entry []byte) error) (uint64, error) {
	hi := j.frontier.Load()
	last := after
	if max <= 0 || last >= hi {
		return last, nil
	}
	c, _ := j.chunks.Get().(*readChunk)
	if c == nil {
		c = &readChunk{}
	}
	defer j.putChunk(c)
	for max > 0 && last < hi {
		if err := ctx.Err(); err != nil {
			return last, fmt.Errorf("journal read after %d: %w", last, err)
		}
		if err := j.fetch(ctx, c, last, hi, min(max, readChunkEntries)); err != nil {
			return last, fmt.Errorf("journal read after %d: %w", last, err)
		}
		if len(c.seqs) == 0 {
			break // the rest up to hi was trimmed
		}
		start := 0
		for i, seq := range c.seqs {
			end := c.ends[i]
			if err := fn(seq, c.buf[start:end:end]); err != nil {
				return last, err
			}
			start = end
			last = seq
		}
		max -= len(c.seqs)
	}
	return last, nil
}

// readChunk is Read's reusable copy buffer.
type readChunk struct {
	seqs []uint64
	ends []int
	buf  []byte
}

func (j *Journal) putChunk(c *readChunk) {
	if cap(c.buf) > 2*readChunkBytes+MaxEntrySize {
		return // an outsized chunk is not worth keeping
	}
	j.chunks.Put(c)
}

// fetch copies up to n entries in (after, hi] out of the database into c.
func (j *Journal) fetch(ctx context.Context, c *readChunk, after, hi uint64, n int) error {
	c.seqs, c.ends, c.buf = c.seqs[:0], c.ends[:0], c.buf[:0]
	j.mu.RLock()
	defer j.mu.RUnlock()
	db, err := j.readableDB()
	if err != nil {
		return err
	}
	it, err := db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: entryKey(after + 1),
		UpperBound: entryKey(hi + 1),
	})
	if err != nil {
		return fmt.Errorf("opening iterator: %w", err)
	}
	for valid := it.First(); valid && len(c.seqs) < n && (len(c.buf) < readChunkBytes || len(c.seqs) == 0); valid = it.Next() {
		seq, ok := parseEntryKey(it.Key())
		if !ok {
			_ = it.Close()
			return fmt.Errorf("malformed entry key %x", it.Key())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("reading entry %d: %w", seq, err)
		}
		c.buf = append(c.buf, v...)
		c.seqs = append(c.seqs, seq)
		c.ends = append(c.ends, len(c.buf))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("iterating entries: %w", err)
	}
	return nil
}

// readableDB returns the database for reading; j.mu must be held.
func (j *Journal) readableDB() (*pebble.DB, error) {
	if j.closed {
		return nil, ErrClosed
	}
	if j.db == nil {
		return nil, fmt.Errorf("%w: storage is being reopened after a fault", ErrUnavailable)
	}
	return j.db, nil
}

// Get returns a copy of entry seq, or ErrNotFound if seq is beyond LastSeq
// or was trimmed.
func (j *Journal) Get(ctx context.Context, seq uint64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("journal get %d: %w", seq, err)
	}
	if seq == 0 || seq > j.frontier.Load() {
		return nil, fmt.Errorf("journal get %d (last is %d): %w", seq, j.frontier.Load(), ErrNotFound)
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	db, err := j.readableDB()
	if err != nil {
		return nil, fmt.Errorf("journal get %d: %w", seq, err)
	}
	v, closer, err := db.Get(entryKey(seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("journal get %d (first is %d): %w", seq, j.FirstSeq(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("journal get %d: %w", seq, err)
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, nil
}

// Compact compacts the whole journal, so that the space of trimmed
// entries is returned to the file system now rather than when Pebble's own
// compactions reach it. Pebble compacts on its own; this is for
// measurements (bytes per event) and operators.
func (j *Journal) Compact(ctx context.Context) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	db, err := j.readableDB()
	if err != nil {
		return fmt.Errorf("journal compact: %w", err)
	}
	if err := db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("journal compact: %w", err)
	}
	return nil
}

// Wait blocks until LastSeq() > after, ctx ends or the journal is closed.
// Consumers use it to follow the journal without polling.
func (j *Journal) Wait(ctx context.Context, after uint64) error {
	for {
		j.notifyMu.Lock()
		ch := j.notify
		j.notifyMu.Unlock()
		// The committer advances the frontier before it closes the channel,
		// so checking after taking the channel cannot miss a wake-up.
		if j.frontier.Load() > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-j.closing:
			return ErrClosed
		}
	}
}

// advance publishes a new durable frontier and wakes waiters.
func (j *Journal) advance(seq uint64) {
	j.frontier.Store(seq)
	j.notifyMu.Lock()
	close(j.notify)
	j.notify = make(chan struct{})
	j.notifyMu.Unlock()
}

// Trim deletes the entries with sequence numbers below before. Callers decide
// retention (typically the minimum over all cursors and retention windows).
// before is capped at LastSeq()+1: sequence numbers are never reused, even
// when everything has been trimmed.
func (j *Journal) Trim(ctx context.Context, before uint64) error {
	if before <= j.FirstSeq() {
		return nil
	}
	r := &request{kind: opTrim, seq: before, done: make(chan result, 1)}
	if _, err := j.submit(ctx, r); err != nil {
		return fmt.Errorf("journal trim before %d: %w", before, err)
	}
	return nil
}

// Cursor returns the named durable cursor, creating it at position 0 if it
// does not exist yet. A new cursor counts in Cursors (and so holds back
// retention) from now on, but is persisted only by its first Commit; a
// consumer that should start at the current end commits LastSeq() first.
// An invalid name yields a cursor whose Commit fails with ErrInvalid and
// that is not listed.
func (j *Journal) Cursor(name string) *Cursor {
	if validCursorName(name) != nil {
		return &Cursor{j: j, name: name}
	}
	j.cursorsMu.Lock()
	defer j.cursorsMu.Unlock()
	c, ok := j.cursors[name]
	if !ok {
		c = &Cursor{j: j, name: name}
		j.cursors[name] = c
	}
	return c
}

// Cursors returns the position of every known cursor.
func (j *Journal) Cursors() map[string]uint64 {
	j.cursorsMu.Lock()
	defer j.cursorsMu.Unlock()
	out := make(map[string]uint64, len(j.cursors))
	for name, c := range j.cursors {
		out[name] = c.pos.Load()
	}
	return out
}

// DeleteCursor durably removes a cursor, so that it no longer holds back
// retention (for example when a trail is deleted).
func (j *Journal) DeleteCursor(ctx context.Context, name string) error {
	if err := validCursorName(name); err != nil {
		return fmt.Errorf("journal delete cursor: %w", err)
	}
	r := &request{kind: opDeleteCursor, name: name, done: make(chan result, 1)}
	if _, err := j.submit(ctx, r); err != nil {
		return fmt.Errorf("journal delete cursor %q: %w", name, err)
	}
	return nil
}

// Cursor is a consumer's durable position in the journal: the last sequence
// number it has fully processed.
type Cursor struct {
	j    *Journal
	name string
	pos  atomic.Uint64
}

// Name returns the cursor's name.
func (c *Cursor) Name() string { return c.name }

// Position returns the last committed position (0 for a new cursor).
func (c *Cursor) Position() uint64 { return c.pos.Load() }

// Lag returns how many entries the consumer is behind LastSeq.
func (c *Cursor) Lag() uint64 {
	last, pos := c.j.LastSeq(), c.pos.Load()
	if last > pos {
		return last - pos
	}
	return 0
}

// Commit durably records seq as the cursor's position; it returns once the
// position is fsynced. seq must not exceed LastSeq. Moving a cursor back is
// allowed (a consumer rebuilding its state replays from an earlier point).
// Commits are cheap: they share the group commit with appends.
func (c *Cursor) Commit(ctx context.Context, seq uint64) error {
	if err := validCursorName(c.name); err != nil {
		return fmt.Errorf("journal cursor commit: %w", err)
	}
	if last := c.j.LastSeq(); seq > last {
		return fmt.Errorf("journal cursor %q: position %d is beyond the last entry %d: %w", c.name, seq, last, ErrInvalid)
	}
	r := &request{kind: opCursor, name: c.name, seq: seq, done: make(chan result, 1)}
	if _, err := c.j.submit(ctx, r); err != nil {
		return fmt.Errorf("journal cursor %q commit %d: %w", c.name, seq, err)
	}
	return nil
}

func validCursorName(name string) error {
	if name == "" || len(name) > MaxCursorName {
		return fmt.Errorf("cursor name must be 1 to %d bytes, got %d: %w", MaxCursorName, len(name), ErrInvalid)
	}
	return nil
}
