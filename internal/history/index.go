package history

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/event"
)

// MaxAttributeValueLen is the longest LookupAttribute value CloudTrail
// accepts (characters). Longer record values are not indexed: no lookup
// could ever name them.
const MaxAttributeValueLen = 2000

// indexer builds one batch of index entries from journal entries.
type indexer struct {
	h      *History
	b      *pebble.Batch
	cutoff time.Time // events older than this are already expired
	expect uint64    // next journal seq expected; a larger one means a trimmed gap
	n      int       // events indexed in this batch
	key    []byte    // scratch
	// ids are the EventId keys written by this batch: the batch is not
	// indexed, so duplicates within it are caught here.
	ids map[string]struct{}
}

// add indexes one journal entry. It fails only on storage errors; entries
// that are not history material are counted and skipped, so that one bad
// record never blocks the index.
func (ix *indexer) add(seq uint64, entry []byte) error {
	if seq > ix.expect {
		ix.missed(seq)
	}
	ix.expect = seq + 1
	m := ix.h.metrics
	r, err := event.Parse(entry)
	if err != nil {
		m.skipped.WithLabelValues("invalid").Inc()
		ix.h.log.Warn("history: journal entry is not a CloudTrail record; not indexed", "seq", seq, "err", err)
		return nil
	}
	cat := byte(catDefault)
	switch classify(r) {
	case classManagement:
	case classInsight:
		cat = catInsight
	case classData:
		if !ix.h.opts.IncludeDataEvents {
			m.skipped.WithLabelValues("data_event").Inc()
			return nil
		}
	default:
		m.skipped.WithLabelValues("excluded").Inc()
		return nil
	}
	if r.AWSRegion == "" {
		m.skipped.WithLabelValues("no_region").Inc()
		return nil
	}
	if r.EventTime.Before(ix.cutoff) {
		m.skipped.WithLabelValues("expired").Inc()
		return nil
	}
	p := makePos(r.EventTime, seq)
	if r.EventID != "" {
		ix.key = appendEventIDKey(ix.key[:0], r.AWSRegion, cat, r.EventID)
		dup, err := ix.seen(ix.key)
		if err != nil {
			return err
		}
		if dup {
			m.skipped.WithLabelValues("duplicate").Inc()
			return nil
		}
		if err := ix.b.Set(ix.key, p[:], nil); err != nil {
			return fmt.Errorf("indexing journal entry %d: %w", seq, err)
		}
	}
	ix.key = appendEventKey(ix.key[:0], r.AWSRegion, cat, p)
	if err := ix.b.Set(ix.key, r.Raw, nil); err != nil {
		return fmt.Errorf("indexing journal entry %d: %w", seq, err)
	}
	err = forEachAttrKey(ix.key[:0], r, cat, p, func(k []byte) error {
		ix.key = k
		return ix.b.Set(k, nil, nil)
	})
	if err != nil {
		return fmt.Errorf("indexing journal entry %d: %w", seq, err)
	}
	ix.n++
	return nil
}

// seen reports whether an EventId key already exists, in the database or
// earlier in this batch.
func (ix *indexer) seen(key []byte) (bool, error) {
	if _, ok := ix.ids[string(key)]; ok {
		return true, nil
	}
	_, closer, err := ix.h.db.Get(key)
	switch {
	case err == nil:
		_ = closer.Close()
		return true, nil
	case errors.Is(err, pebble.ErrNotFound):
		if ix.ids == nil {
			ix.ids = make(map[string]struct{})
		}
		ix.ids[string(key)] = struct{}{}
		return false, nil
	default:
		return false, fmt.Errorf("checking for a duplicate event: %w", err)
	}
}

// missed records that the journal no longer had the entries from ix.expect
// to next-1: they were trimmed before the history indexed them.
func (ix *indexer) missed(next uint64) {
	n := next - ix.expect
	ix.h.metrics.missed.Add(float64(n))
	ix.h.log.Error("history: journal entries were trimmed before they were indexed; they are missing from the event history",
		"first", ix.expect, "last", next-1, "count", n)
	ix.expect = next
}

// forEachAttrKey calls fn with the 'a' index key of every attribute value
// of r, built in buf (reused between calls). Insights events are only
// searchable by EventId, EventName and EventSource, as on AWS.
func forEachAttrKey(buf []byte, r *event.Record, cat byte, p pos, fn func([]byte) error) error {
	for _, attr := range indexedAttrs {
		if cat == catInsight && attr != event.AttrEventName && attr != event.AttrEventSource {
			continue
		}
		code := attrCode[attr]
		for _, v := range r.AttributeValues(attr) {
			if len(v) > MaxAttributeValueLen && utf8.RuneCountInString(v) > MaxAttributeValueLen {
				continue
			}
			buf = appendAttrPrefix(buf[:0], r.AWSRegion, cat, code, v)
			buf = append(buf, p[:]...)
			if err := fn(buf); err != nil {
				return err
			}
		}
	}
	return nil
}
