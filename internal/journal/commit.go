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

// The commit pipeline: callers enqueue requests on j.reqs; one committer
// goroutine (run) takes everything pending, builds one Pebble batch, commits
// it with one fsync and answers every request. While it syncs, new requests
// pile up and form the next group, so the number of fsyncs per second stays
// bounded by the disk's sync latency while the batch size grows with load.
//
// Why one goroutine rather than Pebble's own concurrent commit pipeline
// (which also groups synced commits in its LogWriter sync queue): sequence
// numbers are then assigned in commit order by construction, so the durable
// frontier is simply the end of the last successful batch and no reader can
// ever see a gap; and after a failed commit no second commit can reach the
// failed database, which is what makes in-place recovery possible (a second
// WAL write after an error panics inside Pebble while it holds its commit
// mutex, which would wedge the database until the process restarts).

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
	// maxGroupBytes bounds the entry bytes of one group commit, well below
	// half a memtable (Pebble's large-batch threshold, which forces a
	// memtable rotation).
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

// run is the committer goroutine: the only goroutine that writes to the
// database, opens or closes it after Open.
func (j *Journal) run() {
	defer close(j.done)
	var (
		retry  *time.Timer
		retryC <-chan time.Time
		group  = make([]*request, 0, 64)
	)
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
			j.shutdown()
			return
		case r := <-j.reqs:
			group = j.gather(append(group[:0], r))
			j.process(group)
			clear(group)
		case <-retryC:
			retry, retryC = nil, nil
			j.reopen()
		}
	}
}

// gather adds every request already queued to group, up to the group limits.
func (j *Journal) gather(group []*request) []*request {
	bytes := group[0].bytes
	for bytes < maxGroupBytes && len(group) < maxGroupRequests {
		select {
		case r := <-j.reqs:
			group = append(group, r)
			bytes += r.bytes
		default:
			return group
		}
	}
	return group
}

// reply answers r, if r is still the committer's to answer.
func reply(r *request, res result) { r.done <- res }

// process commits one group.
func (j *Journal) process(group []*request) {
	// Take the requests whose callers are still waiting.
	live := group[:0]
	appends := 0
	for _, r := range group {
		if r.state.CompareAndSwap(reqPending, reqTaken) {
			live = append(live, r)
			if r.kind == opAppend {
				appends++
			}
		}
	}
	if f := j.fault.Load(); f != nil {
		for _, r := range live {
			if r.kind == opAppend {
				j.metrics.refused.Inc()
			}
			reply(r, result{err: *f})
		}
		return
	}
	if appends > 0 {
		if err := j.checkSpace(); err != nil {
			kept := live[:0]
			for _, r := range live {
				if r.kind == opAppend {
					j.metrics.refused.Inc()
					reply(r, result{err: err})
					continue
				}
				kept = append(kept, r)
			}
			live = kept
		}
	}
	if len(live) == 0 {
		return
	}

	db := j.db
	if j.batch == nil {
		j.batch = db.NewBatch(pebble.WithInitialSizeBytes(1<<20), pebble.WithMaxRetainedSizeBytes(2*maxGroupBytes))
	}
	b := j.batch
	frontier := j.frontier.Load()
	next := frontier + 1
	trimmed := j.trimmed.Load()
	var nEntries, nBytes int
	firsts := make([]uint64, len(live))
	for i, r := range live {
		switch r.kind {
		case opAppend:
			firsts[i] = next
			for _, e := range r.entries {
				j.keyBuf = appendEntryKey(j.keyBuf[:0], next)
				_ = b.Set(j.keyBuf, e, nil) // only fails on a closed or committed batch
				next++
			}
			nEntries += len(r.entries)
			nBytes += r.bytes
		case opCursor:
			_ = b.Set(cursorKey(r.name), encodeUint64(r.seq), nil)
		case opDeleteCursor:
			_ = b.Delete(cursorKey(r.name), nil)
		case opTrim:
			// Only entries acknowledged before this batch can be trimmed.
			if before := min(r.seq, frontier+1); before-1 > trimmed {
				_ = b.DeleteRange(entryKey(trimmed+1), entryKey(before), nil)
				trimmed = before - 1
				_ = b.Set([]byte(metaTrimmed), encodeUint64(trimmed), nil)
			}
		}
	}

	start := time.Now()
	wedged, err := safeApply(db, b)
	if err != nil {
		j.batch = nil // Pebble forbids reusing a batch whose commit failed
		j.failWrites(err, wedged)
		f := j.fault.Load()
		for _, r := range live {
			reply(r, result{err: *f})
		}
		return
	}
	b.Reset()
	j.metrics.syncSeconds.Observe(time.Since(start).Seconds())

	// Publish before answering, so that a caller whose Append returned can
	// read its own entries.
	j.trimmed.Store(trimmed)
	if next-1 > frontier {
		j.advance(next - 1)
		j.metrics.groupEntries.Observe(float64(nEntries))
		j.metrics.entries.Add(float64(nEntries))
		j.metrics.bytes.Add(float64(nBytes))
		j.metrics.appends.Add(float64(appends))
	}
	for i, r := range live {
		switch r.kind {
		case opCursor:
			c := j.Cursor(r.name)
			j.cursorsMu.Lock()
			c.pos.Store(r.seq)
			c.persisted = true
			j.cursorsMu.Unlock()
		case opDeleteCursor:
			j.cursorsMu.Lock()
			delete(j.cursors, r.name)
			j.cursorsMu.Unlock()
		}
		reply(r, result{first: firsts[i]})
	}
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

// setFault replaces the fault's cause while the journal stays offline.
func (j *Journal) setFault(err error) {
	j.fault.Store(&err)
	j.log.Warn("journal: storage still unavailable", "err", err)
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
	j.batch = nil
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
func (j *Journal) shutdown() {
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
	if j.batch != nil {
		_ = j.batch.Close()
		j.batch = nil
	}
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
