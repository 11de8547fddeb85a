package history

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/event"
)

// MaxCountBuckets bounds the buckets one Count returns.
const MaxCountBuckets = 10000

// Count returns how many events of region's event history have an
// eventTime in each bucket of width bucket from start up to end (the last
// bucket may be cut short by end); events outside [start, end) and outside
// the retention are not counted. It reads only the EventName index, whose
// keys are a few dozen bytes and hold every event exactly once, so a
// dashboard's events-per-minute chart costs one short key scan per event
// name instead of reading the events themselves.
func (h *History) Count(ctx context.Context, region string, start, end time.Time, bucket time.Duration) ([]int, error) {
	if bucket <= 0 || !end.After(start) {
		return nil, fmt.Errorf("count events: want start < end and a positive bucket, got %s..%s by %s", start, end, bucket)
	}
	n := int((end.Sub(start) + bucket - 1) / bucket)
	if n > MaxCountBuckets {
		return nil, fmt.Errorf("count events: %d buckets is more than %d", n, MaxCountBuckets)
	}
	counts := make([]int, n)
	origin := start // where bucket 0 starts
	if cutoff := h.opts.Now().Add(-h.opts.Retention); start.Before(cutoff) {
		// Expired events may linger until the next retention pass; like
		// Lookup, Count does not see them.
		start = cutoff
		if !end.After(start) {
			return counts, nil
		}
	}
	if err := h.acquire(); err != nil {
		return nil, err
	}
	defer h.release()

	names := appendPart(nil, prefixAttr, region, catDefault)
	names = append(names, attrCode[event.AttrEventName])
	it, err := h.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: names, UpperBound: prefixEnd(names)})
	if err != nil {
		return nil, fmt.Errorf("count events in %s: %w", region, err)
	}
	defer it.Close()
	newest := posAt(end)
	var valuePrefix, seek []byte
	for valid := it.First(); valid; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("count events in %s: %w", region, err)
		}
		// The key is the event name's prefix and a position: jump to the
		// name's first event before end, count down to start, then jump
		// to the next name.
		key := it.Key()
		if len(key) < len(names)+posLen {
			return nil, fmt.Errorf("count events in %s: malformed index key %x", region, key)
		}
		valuePrefix = append(valuePrefix[:0], key[:len(key)-posLen]...)
		seek = append(append(seek[:0], valuePrefix...), newest[:]...)
		for valid = it.SeekGE(seek); valid; valid = it.Next() {
			k := it.Key()
			if len(k) != len(valuePrefix)+posLen || !bytes.HasPrefix(k, valuePrefix) {
				break // the next name
			}
			t := pos(k[len(valuePrefix):]).time()
			if t.Before(start) {
				valid = it.SeekGE(prefixEnd(valuePrefix))
				break
			}
			if t.Before(end) {
				counts[int(t.Sub(origin)/bucket)]++
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("count events in %s: %w", region, err)
	}
	return counts, nil
}
