package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

// readChunk bounds the entries one journal Read hands over, so that
// config changes and the batch deadline are looked at regularly.
const readChunk = 4096

// putTimeout bounds one object write, so that a hung store shows up as a
// failed attempt (and is retried) instead of stalling the trail silently.
const putTimeout = 2 * time.Minute

var (
	errBatchFull = errors.New("batch full")
	errPastEnd   = errors.New("past the end of the read")
)

// deliveryConfig is what the manager tells a deliverer: the trail as last
// read and its logging windows.
type deliveryConfig struct {
	trail   trail.Trail
	windows []Window
}

// deliverer delivers one trail: it reads the journal from the trail's
// cursor, selects, batches, writes log files and advances the cursor. One
// goroutine per trail, started and stopped by the Manager.
type deliverer struct {
	m      *Manager
	arn    string
	cursor *journal.Cursor
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	cfg     deliveryConfig
	version uint64             // bumped by every update
	wake    context.CancelFunc // ends the current wait; nil when not waiting

	// oldest is when the oldest selected event not yet in a delivered
	// file was read (Unix nanoseconds), 0 when there is none.
	oldest atomic.Int64
}

// update hands the deliverer a new configuration and wakes it.
func (d *deliverer) update(cfg deliveryConfig) {
	d.mu.Lock()
	d.cfg = cfg
	d.version++
	wake := d.wake
	d.mu.Unlock()
	if wake != nil {
		wake()
	}
}

func (d *deliverer) config() (deliveryConfig, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg, d.version
}

// wait blocks until the journal has entries after `after` (when journal is
// true), timeout passes, the configuration changes from version ver, or ctx
// ends.
func (d *deliverer) wait(ctx context.Context, journalAfter uint64, journal bool, ver uint64, timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d.mu.Lock()
	if d.version != ver {
		d.mu.Unlock()
		return
	}
	d.wake = cancel
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.wake = nil
		d.mu.Unlock()
	}()
	if journal {
		if err := d.m.j.Wait(wctx, journalAfter); err != nil && wctx.Err() == nil {
			// The journal is closing or broken: do not spin on it.
			<-wctx.Done()
		}
		return
	}
	<-wctx.Done()
}

// run delivers until the trail is stopped and drained, or ctx ends (the
// trail was deleted or Cairn is shutting down). Nothing half-done survives
// a cancellation: an unfinished batch is simply read again next time.
func (d *deliverer) run(ctx context.Context) {
	defer close(d.done)
	resumed := false
	failures := 0
	for ctx.Err() == nil {
		var more bool
		var err error
		if !resumed {
			err = d.resume(ctx)
			resumed = err == nil
			more = true
		} else {
			more, err = d.step(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			d.log.Warn("trail delivery step failed; retrying", "err", err, "attempt", failures)
			_, ver := d.config()
			d.wait(ctx, 0, false, ver, d.m.backoff(failures))
			continue
		}
		failures = 0
		if !more {
			d.log.Info("trail delivery drained; stopping until the trail logs again")
			return
		}
	}
}

// resume finishes what a previous process left: a plan whose files may or
// may not have been written is carried out again, to the same keys.
func (d *deliverer) resume(ctx context.Context) error {
	st, err := d.m.st.load(ctx, d.arn)
	if err != nil {
		return err
	}
	p := st.Plan
	if p == nil {
		return nil
	}
	pos := d.cursor.Position()
	switch {
	case p.Last <= pos:
		// Delivered and committed; only the bookkeeping after the commit
		// was lost (so perhaps the notification too).
		return d.finishPlan(ctx, p)
	case p.First != pos+1:
		d.log.Error("discarding a delivery plan that does not start at the cursor", "plan_first", p.First, "plan_last", p.Last, "cursor", pos)
		return d.m.st.update(ctx, d.arn, func(st *trailState, _ *state.Tx) error {
			st.Plan = nil
			return nil
		})
	}
	d.log.Info("redelivering a batch interrupted by a restart", "first", p.First, "last", p.Last, "keys", p.Keys())
	files, info, err := d.rebuild(ctx, p)
	if err != nil {
		return err
	}
	return d.execute(ctx, p, files, info, time.Now())
}

// rebuild reads the plan's journal range again and produces its files.
func (d *deliverer) rebuild(ctx context.Context, p *Plan) (map[string][]byte, map[string]fileInfo, error) {
	b := newBatch(p.Selection, p.First-1, p.MaxFileBytes)
	if _, err := d.m.j.Read(ctx, p.First-1, int(p.Last-p.First+1), func(seq uint64, entry []byte) error {
		b.take(seq, entry, true)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("delivery: re-read journal %d-%d for %s: %w", p.First, p.Last, d.arn, err)
	}
	if b.last < p.Last {
		d.log.Warn("part of an interrupted batch is no longer in the journal (trimmed)", "first", p.First, "last", p.Last, "read_to", b.last)
	}
	if got := b.regions(); !slices.Equal(got, p.Regions) {
		d.log.Error("replayed batch has different regions than planned", "planned", p.Regions, "replayed", got)
		p.Regions = got
	}
	p.Records = b.records
	files := b.finish(p.FullRegion)
	return files, b.fileInfo(), nil
}

// step does one unit of work: skip a gap, or collect and deliver a batch.
// It returns false when the trail is stopped and everything captured while
// it was logging is delivered.
func (d *deliverer) step(ctx context.Context) (bool, error) {
	cfg, ver := d.config()
	pos := d.cursor.Position()
	st := trailState{Windows: cfg.windows}
	w, ok := st.next(pos)
	if !ok {
		if !cfg.trail.Status.IsLogging {
			return false, nil
		}
		// Logging, but the manager has not opened the window yet.
		d.wait(ctx, 0, false, ver, time.Minute)
		return true, nil
	}
	if w.From > pos+1 {
		// Entries the trail was not logging for: skip them.
		if err := d.cursor.Commit(ctx, w.From-1); err != nil {
			return true, fmt.Errorf("delivery: move cursor of %s past a stopped period: %w", d.arn, err)
		}
		return true, nil
	}
	b, err := d.collect(ctx, cfg, ver, w, pos)
	if err != nil || b == nil {
		return true, err
	}
	if b.empty() {
		if b.last > pos {
			if err := d.cursor.Commit(ctx, b.last); err != nil {
				return true, fmt.Errorf("delivery: advance cursor of %s: %w", d.arn, err)
			}
		}
		return true, nil
	}
	cfg, _ = d.config()
	p := &Plan{
		TrailARN:     d.arn,
		Account:      cfg.trail.AccountID,
		First:        b.first,
		Last:         b.last,
		At:           d.m.now().UTC().Truncate(time.Second),
		Selection:    b.sel,
		MaxFileBytes: b.maxBytes,
		FullRegion:   b.fullRegion,
		Regions:      b.regions(),
		Records:      b.records,
	}
	p.setDestination(&cfg.trail)
	files := b.finish("")
	info := b.fileInfo()
	if err := d.m.st.update(ctx, d.arn, func(st *trailState, _ *state.Tx) error {
		st.Plan = p
		return nil
	}); err != nil {
		return true, err
	}
	d.m.hook("planned", p)
	return true, d.execute(ctx, p, files, info, b.firstSeen)
}

// collect reads the window from pos until a batch is due: its first event
// is Interval old, a file reached the size limit, or the window is closed
// and fully read. It returns nil when the trail's selection changed
// meanwhile (the batch is dropped and read again under the new one).
func (d *deliverer) collect(ctx context.Context, cfg deliveryConfig, ver uint64, w Window, pos uint64) (*batch, error) {
	sel := SelectionOf(&cfg.trail)
	b := newBatch(sel, pos, d.m.opts.MaxFileBytes)
	interval := d.m.opts.Interval
	started := time.Now()
	defer func() {
		if b.invalid > 0 {
			d.log.Warn("skipped journal entries that are not valid records", "count", b.invalid)
		}
	}()
	for {
		if ncfg, nver := d.config(); nver != ver {
			nsel := SelectionOf(&ncfg.trail)
			if !nsel.equal(&sel) {
				d.log.Info("trail selection changed; re-reading the current batch with it", "from", b.first)
				d.oldest.Store(0)
				return nil, nil
			}
			cfg, ver = ncfg, nver
			if nw, ok := (&trailState{Windows: cfg.windows}).next(pos); ok && nw.From == w.From {
				w = nw // the window may have been closed meanwhile
			}
		}
		hi := d.m.j.LastSeq()
		if !w.open() && w.To < hi {
			hi = w.To
		}
		if b.last < hi {
			_, err := d.m.j.Read(ctx, b.last, int(min(hi-b.last, readChunk)), func(seq uint64, entry []byte) error {
				if seq > hi {
					// Only after a gap (trimmed entries): never read past
					// the window's end.
					return errPastEnd
				}
				if !b.take(seq, entry, false) {
					return errBatchFull
				}
				return nil
			})
			if errors.Is(err, errPastEnd) {
				b.last, err = hi, nil
			}
			if !b.empty() && d.oldest.Load() == 0 {
				d.oldest.Store(time.Now().UnixNano())
			}
			if errors.Is(err, errBatchFull) {
				return b, nil
			}
			if err != nil {
				return nil, fmt.Errorf("delivery: read journal for %s after %d: %w", d.arn, b.last, err)
			}
		}
		drained := !w.open() && b.last >= w.To
		var age time.Duration
		if b.empty() {
			age = time.Since(started)
		} else {
			age = time.Since(b.firstSeen)
		}
		if drained || age >= interval {
			return b, nil
		}
		if b.last < hi {
			continue // more to read right now
		}
		d.wait(ctx, b.last, true, ver, interval-age)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// execute writes the plan's files until that succeeds, then advances the
// cursor past the plan and finishes it. Every attempt is recorded in the
// trail's status. Only ctx ending stops it.
func (d *deliverer) execute(ctx context.Context, p *Plan, files map[string][]byte, info map[string]fileInfo, firstSeen time.Time) error {
	if d.oldest.Load() == 0 {
		d.oldest.Store(firstSeen.UnixNano())
	}
	for attempt := 1; ; attempt++ {
		err := d.putAll(ctx, p, files)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		code := ""
		if err != nil {
			code = ErrorCode(err, p.KmsKeyID != "")
		}
		d.m.recordDelivery(ctx, d.arn, code)
		if err == nil {
			break
		}
		delay := d.m.backoff(attempt)
		d.log.Warn("log file delivery failed; the events wait in the journal", "code", code, "err", err, "attempt", attempt, "retry_in", delay.Round(time.Millisecond))
		_, ver := d.config()
		d.wait(ctx, 0, false, ver, delay)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.adoptDestination(ctx, p); err != nil {
			return err
		}
	}
	d.m.hook("written", p)
	if err := d.reportFiles(ctx, p, info); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := d.cursor.Commit(ctx, p.Last)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.log.Warn("advancing the delivery cursor failed; retrying (the files are written and will be rewritten identically if Cairn stops first)", "err", err, "attempt", attempt)
		_, ver := d.config()
		d.wait(ctx, 0, false, ver, d.m.backoff(attempt))
	}
	d.m.hook("committed", p)
	var bytesOut int64
	for _, f := range files {
		bytesOut += int64(len(f))
	}
	d.m.metrics.delivered(d.arn, len(files), p.Records, bytesOut)
	d.log.Debug("delivered log files", "first", p.First, "last", p.Last, "files", len(files), "records", p.Records, "bytes", bytesOut)
	d.oldest.Store(0)
	return d.finishPlan(ctx, p)
}

// reportFiles hands the written files to Options.OnLogFiles (digest
// bookkeeping) before the cursor moves, retrying until it succeeds: a crash
// before it succeeded replays the plan, so the files are reported again
// rather than lost; the receiver recognises a replay by the plan's range.
func (d *deliverer) reportFiles(ctx context.Context, p *Plan, info map[string]fileInfo) error {
	if d.m.opts.OnLogFiles == nil || len(p.Regions) == 0 {
		return nil
	}
	out := make([]LogFileDelivered, 0, len(p.Regions))
	for _, r := range p.Regions {
		fi := info[r]
		out = append(out, LogFileDelivered{
			TrailARN: p.TrailARN, Region: r, Bucket: p.Bucket, Key: p.Key(r),
			SHA256: fi.sha256, NewestEventTime: fi.newest, OldestEventTime: fi.oldest,
			DeliveredAt: p.At, First: p.First, Last: p.Last,
		})
	}
	for attempt := 1; ; attempt++ {
		err := d.m.opts.OnLogFiles(ctx, out)
		if err == nil {
			d.m.hook("reported", p)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.log.Warn("recording delivered log files for digests failed; retrying before the cursor moves", "err", err, "attempt", attempt)
		_, ver := d.config()
		d.wait(ctx, 0, false, ver, d.m.backoff(attempt))
	}
}

// adoptDestination points a failing plan at the trail's current bucket,
// prefix and KMS key, so that fixing the trail (UpdateTrail) unblocks it.
// Files of the plan that already reached the old destination stay there.
func (d *deliverer) adoptDestination(ctx context.Context, p *Plan) error {
	cfg, _ := d.config()
	np := *p
	np.setDestination(&cfg.trail)
	if np.Bucket == p.Bucket && np.Prefix == p.Prefix && np.KmsKeyID == p.KmsKeyID && np.Topic == p.Topic {
		return nil
	}
	d.log.Info("trail destination changed while a delivery was failing; delivering there instead", "bucket", np.Bucket, "prefix", np.Prefix)
	*p = np
	return d.m.st.update(ctx, d.arn, func(st *trailState, _ *state.Tx) error {
		st.Plan = p
		return nil
	})
}

func (p *Plan) setDestination(t *trail.Trail) {
	p.Bucket, p.Prefix, p.KmsKeyID, p.Topic = t.S3BucketName, t.S3KeyPrefix, t.KmsKeyId, t.SnsTopicName
}

// putAll writes every file of the plan. Rewriting a file that a previous
// attempt wrote is harmless: same key, same bytes.
func (d *deliverer) putAll(ctx context.Context, p *Plan, files map[string][]byte) error {
	for _, region := range p.Regions {
		data := files[region]
		pctx, cancel := context.WithTimeout(ctx, putTimeout)
		err := d.m.store.Put(pctx, p.Bucket, p.Key(region), bytes.NewReader(data), int64(len(data)), objstore.PutOptions{
			ContentType:     ContentType,
			ContentEncoding: ContentEncoding,
			SSEKMSKeyID:     p.KmsKeyID,
		})
		cancel()
		if err != nil {
			return fmt.Errorf("delivery: write log file s3://%s/%s: %w", p.Bucket, p.Key(region), err)
		}
		d.m.hook("put", p)
	}
	return nil
}

// finishPlan removes the plan and queues its notification (if the trail
// has a topic) in one transaction.
func (d *deliverer) finishPlan(ctx context.Context, p *Plan) error {
	err := d.m.st.update(ctx, d.arn, func(st *trailState, tx *state.Tx) error {
		if st.Plan != nil && st.Plan.First == p.First {
			st.Plan = nil
		}
		if p.Topic == "" || len(p.Regions) == 0 {
			return nil
		}
		return queueNotification(tx, p, d.log)
	})
	if err != nil {
		return err
	}
	d.m.hook("finished", p)
	if p.Topic != "" {
		d.m.wakeNotifier()
	}
	return nil
}
