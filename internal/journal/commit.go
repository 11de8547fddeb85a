package journal

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The commit pipeline. Callers enqueue requests on j.reqs. One committer
// goroutine (run) takes everything queued, assigns sequence numbers, copies
// the requests into one Pebble batch and commits it with one WAL fsync, then
// answers them all. While it syncs, new requests pile up in the queue and
// form the next group, so the number of fsyncs per second stays bounded by
// the disk's sync latency while the group size grows with load.
//
// Why not Pebble's own concurrent commit pipeline (which also groups synced
// commits in its LogWriter sync queue): with exactly one batch in Pebble's
// pipeline at a time, sequence numbers are assigned in commit order by
// construction, the durable frontier is simply the end of the last
// successful batch and no reader can ever see a gap; and after a failed
// commit no second commit ever reaches the failed database. That is what
// makes in-place recovery possible: Pebble's LogWriter keeps a write error
// forever and the next WAL write then panics while holding the commit
// pipeline's mutex, which would wedge the database until the process
// restarts.
//
// Measured alternative: a separate committer goroutine that syncs batch N
// while the builder fills batch N+1 (building overlapped with the fsync) was
// no faster here (the work is bound by the disk's write bandwidth) and made
// groups smaller, because N+1 was cut before the callers answered by N could
// queue again.

type opKind uint8

const (
	opAppend opKind = iota
	opCursor
	opDeleteCursor
	opTrim
)

// Request states, so that a caller whose context ends can withdraw a request
// the committer has not taken yet and report a definite "not written".
const (
	reqPending int32 = iota
	reqTaken
	reqCancelled
)

const (
	// maxGroupBytes bounds the entry bytes of one group commit; so does a
	// quarter of the memtable (see groupBytesLimit).
	maxGroupBytes = 16 << 20
	// maxGroupRequests bounds the requests of one group commit.
	maxGroupRequests = 4096
	probeFile        = "JOURNAL-PROBE"
)

type request struct {
	kind    opKind
	entries [][]byte
	bytes   int
	name    string
	seq     uint64 // cursor position, or Trim's bound
	state   atomic.Int32
	done    chan result
}

type result struct {
	first uint64
	err   error
}

// submit hands r to the committer and waits for its outcome.
func (j *Journal) submit(ctx context.Context, r *request) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	select {
	case <-j.closing:
		return result{}, ErrClosed
	default:
	}
	select {
	case j.reqs <- r:
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-j.closing:
		return result{}, ErrClosed
	}
	select {
	case res := <-r.done:
		return res, res.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqCancelled) {
			return result{}, ctx.Err()
		}
		return result{}, fmt.Errorf("gave up waiting; the request may still become durable: %w", ctx.Err())
	case <-j.done:
		// The committer has stopped; it answers every request it took.
		select {
		case res := <-r.done:
			return res, res.err
		default:
			return result{}, ErrClosed
		}
	}
}

// group is one batch: being built (pending), committing (in flight) or done.
type group struct {
	b        *pebble.Batch
	db       *pebble.DB
	reqs     []*request
	firsts   []uint64
	base     uint64 // the sequence number the group's entries follow
	next     uint64 // the next sequence number to assign
	trimmed  uint64 // the trim floor once the group is committed
	entries  int
	bytes    int
	maxBytes int // see groupBytesLimit
	appends  int
}

func (g *group) full() bool { return g.bytes >= g.maxBytes || len(g.reqs) >= maxGroupRequests }

// groupBytesLimit is where a group commit is cut: well below half a
// memtable, Pebble's large-batch threshold, past which a batch is not
// inserted into the memtable but forces a memtable rotation and a flush of
// its own.
func groupBytesLimit(memTableSize uint64) int {
	return int(min(maxGroupBytes, memTableSize/4))
}

// pipeline is the committer goroutine's state.
type pipeline struct {
	pending *group
	spare   *pebble.Batch // the batch of the last group, reset for reuse
	spareDB *pebble.DB    // the database spare belongs to
	// spaceErr caches the free-space check for spaceTTL.
	spaceErr  error
	spaceTime time.Time
}

const spaceTTL = 10 * time.Millisecond

// run is the committer goroutine: the only code that writes to the
// database, and the only code that opens or closes it after Open.
func (j *Journal) run() {
	defer close(j.done)
	p := &pipeline{}
	var (
		retry  *time.Timer
		retryC <-chan time.Time
	)
	space := time.NewTicker(j.opts.SpaceProbeInterval)
	defer space.Stop()
	for {
		if j.fault.Load() != nil && !j.wedged && retry == nil {
			retry = time.NewTimer(j.opts.RetryInterval)
			retryC = retry.C
		}
		select {
		case <-j.closing:
			if retry != nil {
				retry.Stop()
			}
			j.shutdown(p)
			return
		case r := <-j.reqs:
			j.add(p, r)
			// Take whatever else is already queued, up to the group limits.
		drain:
			for p.pending == nil || !p.pending.full() {
				select {
				case r := <-j.reqs:
					j.add(p, r)
				default:
					break drain
				}
			}
			j.commit(p)
		case <-retryC:
			retry, retryC = nil, nil
			j.reopen()
		case <-space.C:
			// Only this goroutine writes the pipeline's cached result.
			p.spaceErr, p.spaceTime = j.checkSpace(), time.Now()
		}
	}
}

// add takes r (unless its caller gave up) into the pending group, or
// answers it at once if it cannot be written.
func (j *Journal) add(p *pipeline, r *request) {
	if !r.state.CompareAndSwap(reqPending, reqTaken) {
		return
	}
	if f := j.fault.Load(); f != nil {
		if r.kind == opAppend {
			j.metrics.refused.Inc()
		}
		reply(r, result{err: *f})
		return
	}
	if r.kind == opAppend {
		if err := j.spaceError(p); err != nil {
			j.metrics.refused.Inc()
			reply(r, result{err: err})
			return
		}
	}
	g := p.pending
	if g == nil {
		g = j.newGroup(p)
		p.pending = g
	}
	first := uint64(0)
	switch r.kind {
	case opAppend:
		first = g.next
		for _, e := range r.entries {
			j.keyBuf = appendEntryKey(j.keyBuf[:0], g.next)
			_ = g.b.Set(j.keyBuf, e, nil) // fails only on a committed batch
			g.next++
		}
		g.entries += len(r.entries)
		g.bytes += r.bytes
		g.appends++
	case opCursor:
		_ = g.b.Set(cursorKey(r.name), encodeUint64(r.seq), nil)
	case opDeleteCursor:
		_ = g.b.Delete(cursorKey(r.name), nil)
	case opTrim:
		// Only entries acknowledged before this group can be trimmed.
		if before := min(r.seq, g.base+1); before-1 > g.trimmed {
			_ = g.b.DeleteRange(entryKey(g.trimmed+1), entryKey(before), nil)
			g.trimmed = before - 1
			_ = g.b.Set([]byte(metaTrimmed), encodeUint64(g.trimmed), nil)
		}
	}
	g.reqs = append(g.reqs, r)
	g.firsts = append(g.firsts, first)
}

// newGroup starts a pending group after the durable frontier.
func (j *Journal) newGroup(p *pipeline) *group {
	g := &group{db: j.db, base: j.frontier.Load(), trimmed: j.trimmed.Load(), maxBytes: groupBytesLimit(j.opts.MemTableSize)}
	g.next = g.base + 1
	if p.spare != nil && p.spareDB == j.db {
		g.b, p.spare = p.spare, nil
	} else {
		g.b = j.db.NewBatch(pebble.WithInitialSizeBytes(1<<20), pebble.WithMaxRetainedSizeBytes(2*g.maxBytes))
	}
	return g
}

// commit commits the pending group with one fsync, then publishes it and
// answers its requests, or takes the journal offline if the commit failed.
func (j *Journal) commit(p *pipeline) {
	g := p.pending
	if g == nil {
		return
	}
	p.pending = nil
	start := time.Now()
	wedged, err := safeApply(g.db, g.b)
	if err != nil {
		j.failWrites(err, wedged)
		f := *j.fault.Load()
		for _, r := range g.reqs {
			reply(r, result{err: f})
		}
		return // Pebble forbids reusing a batch whose commit failed
	}
	j.metrics.syncSeconds.Observe(time.Since(start).Seconds())
	// Publish before answering, so that a caller whose Append returned can
	// read its own entries.
	j.trimmed.Store(g.trimmed)
	if g.next-1 > g.base {
		j.advance(g.next - 1)
		j.metrics.groupEntries.Observe(float64(g.entries))
		j.metrics.entries.Add(float64(g.entries))
		j.metrics.bytes.Add(float64(g.bytes))
		j.metrics.appends.Add(float64(g.appends))
	}
	for i, r := range g.reqs {
		switch r.kind {
		case opCursor:
			c := j.Cursor(r.name)
			j.cursorsMu.Lock()
			c.pos.Store(r.seq)
			j.cursorsMu.Unlock()
		case opDeleteCursor:
			j.cursorsMu.Lock()
			delete(j.cursors, r.name)
			j.cursorsMu.Unlock()
		}
		reply(r, result{first: g.firsts[i]})
	}
	g.b.Reset()
	p.spare, p.spareDB = g.b, g.db
}

// reply answers r.
func reply(r *request, res result) { r.done <- res }

// spaceError returns the cached result of checkSpace.
func (j *Journal) spaceError(p *pipeline) error {
	if now := time.Now(); now.Sub(p.spaceTime) >= spaceTTL {
		p.spaceErr, p.spaceTime = j.checkSpace(), now
	}
	return p.spaceErr
}

// checkSpace returns an error wrapping ErrUnavailable while free space is
// below Options.MinFreeBytes.
func (j *Journal) checkSpace() error {
	if j.opts.MinFreeBytes < 0 {
		return nil
	}
	du, err := j.fs.GetDiskUsage(j.dir)
	if err != nil {
		// Not knowing the free space is not a reason to refuse a write that
		// will itself report any real problem.
		j.log.Debug("journal: reading disk usage failed", "err", err)
		return nil
	}
	if du.AvailBytes >= uint64(j.opts.MinFreeBytes) {
		if j.lowSpace.Swap(nil) != nil {
			j.log.Info("journal: disk space recovered, accepting appends again", "avail_bytes", du.AvailBytes)
		}
		return nil
	}
	err = fmt.Errorf("%w: only %d bytes free on the journal's filesystem, below the %d-byte reserve (free space or trim the journal)",
		ErrUnavailable, du.AvailBytes, j.opts.MinFreeBytes)
	if j.lowSpace.Swap(&err) == nil {
		j.log.Error("journal: refusing appends, disk space low", "avail_bytes", du.AvailBytes, "min_free_bytes", j.opts.MinFreeBytes)
	}
	return err
}

// failWrites takes the journal offline after a failed commit.
func (j *Journal) failWrites(cause error, wedged bool) {
	j.metrics.writeFailures.Inc()
	var err error
	if wedged {
		j.wedged = true
		err = fmt.Errorf("%w: storage engine stuck after a write failure, restart the process: %w", ErrUnavailable, cause)
		j.log.Error("journal: storage engine stuck after a write failure; refusing writes until restart (acknowledged entries are safe)", "err", cause)
	} else {
		err = fmt.Errorf("%w: storage write failed: %w", ErrUnavailable, cause)
		j.log.Error("journal: write failed; refusing appends until the storage works again", "err", cause, "retry_interval", j.opts.RetryInterval)
	}
	j.fault.Store(&err)
}

// setFault replaces the fault's cause while the journal stays offline. It
// logs only when the cause changes, not on every retry.
func (j *Journal) setFault(err error) {
	prev := j.fault.Swap(&err)
	if prev == nil || (*prev).Error() != err.Error() {
		j.log.Warn("journal: storage still unavailable; retrying", "err", err, "retry_interval", j.opts.RetryInterval)
	}
}

// reopen tries to bring a failed journal back: probe the filesystem, reopen
// the database, discard the unacknowledged tail and prove a synced write
// works. Acknowledged entries are untouched throughout.
func (j *Journal) reopen() {
	if err := j.probe(); err != nil {
		j.setFault(fmt.Errorf("%w: storage write failed and the filesystem still fails: %w", ErrUnavailable, err))
		return
	}
	j.mu.Lock()
	old := j.db
	j.db = nil
	j.mu.Unlock()
	if old != nil {
		// The failed WAL makes Close report the original error again.
		if err := safeClose(old); err != nil {
			j.log.Debug("journal: closing the failed database", "err", err)
		}
	}
	db, err := j.safeOpen()
	if err != nil {
		j.setFault(fmt.Errorf("%w: reopening storage after a write failure: %w", ErrUnavailable, err))
		return
	}
	last, err := lastEntrySeq(db)
	if err == nil {
		var trimmed uint64
		if trimmed, err = getUint64(db, []byte(metaTrimmed)); err == nil && trimmed > j.trimmed.Load() {
			j.trimmed.Store(trimmed) // a failed Trim may have reached the disk
		}
	}
	if err != nil {
		_ = safeClose(db)
		j.setFault(fmt.Errorf("%w: reading storage after reopening: %w", ErrUnavailable, err))
		return
	}
	// Reads work again from here on, bounded by the durable frontier.
	j.mu.Lock()
	j.db = db
	j.mu.Unlock()

	frontier := j.frontier.Load()
	if last < frontier && frontier > j.trimmed.Load() {
		j.wedged = true
		err := fmt.Errorf("%w: entries up to %d were acknowledged but storage only has entries up to %d after reopening; refusing writes so no sequence number is reused, restart to investigate",
			ErrUnavailable, frontier, last)
		j.fault.Store(&err)
		j.log.Error("journal: acknowledged entries missing after reopening storage", "acknowledged", frontier, "found", last)
		return
	}
	if positions, err := loadCursors(db); err == nil {
		j.cursorsMu.Lock()
		for name, pos := range positions {
			if c, ok := j.cursors[name]; ok {
				c.pos.Store(pos)
			}
		}
		j.cursorsMu.Unlock()
	}

	// The failed batch may or may not have reached the disk. It was never
	// acknowledged nor visible to readers; delete it so that its sequence
	// numbers go to the next appends and "failed" means "not appended".
	b := db.NewBatch()
	if last > frontier {
		_ = b.DeleteRange(entryKey(frontier+1), entryUpperBound(), nil)
		j.log.Warn("journal: discarding the unacknowledged entries of the failed commit", "from", frontier+1, "to", last)
	}
	_ = b.Set([]byte(metaProbe), []byte(time.Now().UTC().Format(time.RFC3339Nano)), nil)
	wedged, err := safeApply(db, b)
	if err != nil {
		j.failWrites(err, wedged)
		return
	}
	_ = b.Close()
	j.fault.Store(nil)
	j.metrics.reopens.Inc()
	j.log.Info("journal: storage works again, accepting appends", "last_seq", frontier)
}

// probe checks that the filesystem accepts a small synced write, without
// touching the database.
func (j *Journal) probe() error {
	name := j.fs.PathJoin(j.dir, probeFile)
	f, err := j.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("creating probe file: %w", err)
	}
	var buf [4096]byte
	_, werr := f.Write(buf[:])
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := j.fs.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("writing probe file: %w", err)
	}
	return nil
}

// shutdown answers queued requests with ErrClosed and closes the database.
func (j *Journal) shutdown(p *pipeline) {
	if pg := p.pending; pg != nil {
		for _, r := range pg.reqs {
			reply(r, result{err: ErrClosed})
		}
		_ = pg.b.Close()
	}
	if p.spare != nil {
		_ = p.spare.Close()
	}
drain:
	for {
		select {
		case r := <-j.reqs:
			if r.state.CompareAndSwap(reqPending, reqTaken) {
				reply(r, result{err: ErrClosed})
			}
		default:
			break drain
		}
	}
	j.mu.Lock()
	db := j.db
	j.db = nil
	j.closed = true
	j.mu.Unlock()
	var err error
	switch {
	case db == nil:
	case j.wedged:
		// Closing would block forever on Pebble's commit mutex.
		j.log.Error("journal: not closing the stuck storage engine; restart the process")
	default:
		if cerr := safeClose(db); cerr != nil && j.fault.Load() == nil {
			err = fmt.Errorf("closing journal storage: %w", cerr)
		}
	}
	if !j.wedged {
		if lerr := j.lock.Close(); lerr != nil && err == nil {
			err = fmt.Errorf("releasing journal lock: %w", lerr)
		}
	}
	j.cache.Unref()
	j.metrics.unregister()
	j.closeErr = err
	j.log.Info("journal closed", "last_seq", j.frontier.Load())
}
