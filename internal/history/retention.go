package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/event"
)

// sweepChunk is how many expired events one sweep batch deletes.
const sweepChunk = 2048

// Sweep deletes the events older than the retention and returns how many it
// deleted. The background sweeper calls it every SweepInterval; it is
// exported for operators and tests.
//
// Expired events of a partition are a contiguous range at the old end of its
// event store, so each chunk of them goes with one DeleteRange; their
// attribute and EventId entries are scattered over the value ranges and are
// deleted one by one, computed from the stored record (re-parsed with the
// same code that indexed it). Each chunk is one atomic batch: a record and
// its index entries disappear together. Index entries that outlive their
// record anyway (e.g. if a newer Cairn extracted different values) are
// harmless: lookups never read past the retention bound and skip entries
// whose record is gone.
func (h *History) Sweep(ctx context.Context) (int, error) {
	if err := h.acquire(); err != nil {
		return 0, err
	}
	defer h.release()
	cutoff := h.opts.Now().Add(-h.opts.Retention)
	inv := invTime(cutoff)
	if inv == ^uint64(0) {
		return 0, nil // the cutoff is the oldest representable time
	}
	var oldest pos // first position strictly older than the cutoff
	binary.BigEndian.PutUint64(oldest[:8], inv+1)

	total := 0
	var part []byte
	seek := []byte{prefixEvent}
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("retention sweep: %w", err)
		}
		region, cat, ok, err := h.nextPartition(seek)
		if err != nil {
			return total, err
		}
		if !ok {
			break
		}
		part = appendPart(part[:0], prefixEvent, region, cat)
		n, err := h.sweepPartition(ctx, region, cat, append(append([]byte(nil), part...), oldest[:]...), prefixEnd(part))
		total += n
		if err != nil {
			return total, err
		}
		seek = prefixEnd(part)
	}
	h.metrics.expired.Add(float64(total))
	if err := h.sweepBlocks(ctx, cutoff); err != nil {
		return total, err
	}
	return total, nil
}

// sweepBlocks deletes the record blocks whose newest event is older than
// cutoff. It runs after the index entries of every expired event are gone
// (they are computed from the records), so a crash in between leaves
// blocks that the next sweep deletes, never entries that cannot be.
func (h *History) sweepBlocks(ctx context.Context, cutoff time.Time) error {
	lo, hi := []byte{prefixExpiry}, binary.BigEndian.AppendUint64([]byte{prefixExpiry}, orderedTime(cutoff))
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("retention sweep of record blocks: %w", err)
		}
		it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return fmt.Errorf("retention sweep of record blocks: %w", err)
		}
		b := h.db.NewBatch()
		n := 0
		for valid := it.First(); valid && n < sweepChunk; valid = it.Next() {
			k := it.Key()
			if len(k) != 17 {
				continue
			}
			_ = b.Delete(recordKey(binary.BigEndian.Uint64(k[9:])), nil)
			_ = b.Delete(k, nil)
			n++
		}
		err = it.Close()
		if err == nil && n > 0 {
			err = b.Commit(pebble.NoSync)
		}
		_ = b.Close()
		if err != nil {
			return fmt.Errorf("retention sweep of record blocks: %w", err)
		}
		if n < sweepChunk {
			return nil
		}
	}
}

// nextPartition finds the first event-store partition at or after from.
func (h *History) nextPartition(from []byte) (region string, cat byte, ok bool, err error) {
	it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return "", 0, false, fmt.Errorf("retention sweep: listing partitions: %w", err)
	}
	defer it.Close()
	if !it.First() {
		return "", 0, false, it.Error()
	}
	region, cat, _, ok = parsePart(it.Key(), prefixEvent)
	if !ok {
		return "", 0, false, fmt.Errorf("retention sweep: malformed event key %x", it.Key())
	}
	return region, cat, true, nil
}

// sweepPartition deletes the events in [start, end) of one partition.
func (h *History) sweepPartition(ctx context.Context, region string, cat byte, start, end []byte) (int, error) {
	total := 0
	var key []byte
	rr := recordReader{c: h.codec, r: h.db}
	defer func() { _ = rr.close() }()
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("retention sweep: %w", err)
		}
		it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
		if err != nil {
			return total, fmt.Errorf("retention sweep of %s: %w", region, err)
		}
		b := h.db.NewBatch()
		n := 0
		var last []byte
		for valid := it.First(); valid && n < sweepChunk; valid = it.Next() {
			k := it.Key()
			p, ok := posSuffix(k)
			if !ok {
				continue
			}
			raw, found, err := rr.get(p.seq())
			if err != nil {
				_ = it.Close()
				_ = b.Close()
				return total, fmt.Errorf("retention sweep of %s: reading the record of %x: %w", region, k, err)
			}
			if !found {
				// Never the case for what this version wrote (blocks go
				// after their events' entries); the entries of the
				// record cannot be computed, only the event key goes.
				h.log.Warn("history: retention sweep found an event whose record is gone", "region", region, "seq", p.seq())
			} else if r, err := event.Parse(raw); err == nil {
				if r.EventID != "" {
					key = appendEventIDKey(key[:0], region, cat, r.EventID)
					if err := h.deleteIfPointsTo(b, key, p); err != nil {
						_ = it.Close()
						_ = b.Close()
						return total, err
					}
				}
				_ = forEachAttrKey(key[:0], r, cat, p, func(k []byte) error {
					key = k
					return b.Delete(k, nil)
				})
			}
			last = append(last[:0], k...)
			n++
		}
		if err := it.Close(); err != nil {
			_ = b.Close()
			return total, fmt.Errorf("retention sweep of %s: %w", region, err)
		}
		if n == 0 {
			_ = b.Close()
			return total, nil
		}
		rangeEnd := append(last, 0) // just after the last deleted key
		_ = b.DeleteRange(start, rangeEnd, nil)
		if err := b.Commit(pebble.NoSync); err != nil {
			_ = b.Close()
			return total, fmt.Errorf("retention sweep of %s: committing: %w", region, err)
		}
		_ = b.Close()
		total += n
		start = rangeEnd
		if n < sweepChunk {
			return total, nil
		}
	}
}

// deleteIfPointsTo deletes an EventId entry only if it belongs to the event
// at p (a duplicate may have been skipped in favour of the first copy).
func (h *History) deleteIfPointsTo(b *pebble.Batch, key []byte, p pos) error {
	v, closer, err := h.db.Get(key)
	if err != nil {
		if err == pebble.ErrNotFound {
			return nil
		}
		return fmt.Errorf("retention sweep: reading EventId entry: %w", err)
	}
	match := bytes.Equal(v, p[:])
	_ = closer.Close()
	if match {
		return b.Delete(key, nil)
	}
	return nil
}
