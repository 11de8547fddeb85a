package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/event"
)

// MaxAttributeValueLen is the longest LookupAttribute value CloudTrail
// accepts (characters). Longer record values are not indexed: no lookup
// could ever name them.
const MaxAttributeValueLen = 2000

// indexer builds one batch of index entries from journal entries. add
// parses and classifies entries as the journal hands them out; write then
// checks all EventIds of the batch for duplicates in one sorted pass and
// fills the Pebble batch.
type indexer struct {
	h       *History
	cutoff  time.Time // events older than this are already expired
	expect  uint64    // next journal seq expected; a larger one means a trimmed gap
	pending []pendingEvent
	n       int // events written by write

	imp        importRange   // the latest import seen; see noteImport
	newImports []importRange // imports that began in this batch
}

// pendingEvent is an event of the batch that belongs in the history.
type pendingEvent struct {
	r     *event.Record
	cat   byte
	pos   pos
	idKey []byte // EventId key, nil if the record has no eventID
	dup   bool
}

// parsedEntry is a journal entry parsed ahead of indexing (see readAhead).
type parsedEntry struct {
	seq uint64
	r   *event.Record
	err error
}

// readBatch reads and parses up to max journal entries after after. It is
// the part of indexing that needs nothing but the journal, so it runs for
// the next batch while the current one is written (see consume).
func (h *History) readBatch(ctx context.Context, after uint64, max int) (readResult, error) {
	res := readResult{after: after, entries: make([]parsedEntry, 0, min(max, 1024))}
	last, err := h.j.Read(ctx, after, max, func(seq uint64, entry []byte) error {
		r, err := event.Parse(entry)
		res.entries = append(res.entries, parsedEntry{seq: seq, r: r, err: err})
		return nil
	})
	if err != nil {
		return readResult{}, fmt.Errorf("reading journal entries after %d: %w", after, err)
	}
	res.last = last
	return res, nil
}

// readResult is one batch of parsed journal entries: those in (after, last].
type readResult struct {
	after, last uint64
	entries     []parsedEntry
}

// add takes one parsed journal entry. Entries that are not history
// material are counted and skipped, so that one bad record never blocks
// the index.
func (ix *indexer) add(e parsedEntry) {
	seq, r := e.seq, e.r
	if seq > ix.expect {
		ix.missed(seq)
	}
	ix.expect = seq + 1
	m := ix.h.metrics
	if e.err != nil {
		m.skipped.WithLabelValues("invalid").Inc()
		ix.h.log.Warn("history: journal entry is not a CloudTrail record; not indexed", "seq", seq, "err", e.err)
		return
	}
	ix.noteImport(seq, r)
	cat := byte(catDefault)
	switch classify(r) {
	case classManagement:
	case classInsight:
		cat = catInsight
	case classData:
		if !ix.h.opts.IncludeDataEvents {
			m.skipped.WithLabelValues("data_event").Inc()
			return
		}
	default:
		m.skipped.WithLabelValues("excluded").Inc()
		return
	}
	if r.AWSRegion == "" {
		m.skipped.WithLabelValues("no_region").Inc()
		return
	}
	if r.EventTime.Before(ix.cutoff) {
		m.skipped.WithLabelValues("expired").Inc()
		return
	}
	pe := pendingEvent{r: r, cat: cat, pos: makePos(r.EventTime, seq)}
	if r.EventID != "" {
		pe.idKey = appendEventIDKey(nil, r.AWSRegion, cat, r.EventID)
	}
	ix.pending = append(ix.pending, pe)
}

// markDuplicates flags the pending events whose EventId is already indexed
// in their partition, or appears earlier in the batch. The keys are probed
// in sorted order through one iterator, so each sstable level is walked
// once per batch instead of once per event.
func (ix *indexer) markDuplicates() error {
	order := make([]int, 0, len(ix.pending))
	for i := range ix.pending {
		if ix.pending[i].idKey != nil {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return nil
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := bytes.Compare(ix.pending[a].idKey, ix.pending[b].idKey); c != 0 {
			return c
		}
		return a - b // the first in the journal wins
	})
	// UseL6Filters: nearly every probe is for a new ID, in no table, and
	// the last level is where nearly all tables are; without its bloom
	// filters (Pebble skips them by default) every probe read and
	// decompressed a data block there, most of the indexing cost of a
	// large history.
	it, err := ix.h.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEventID}, UpperBound: []byte{prefixEventID + 1}, UseL6Filters: true})
	if err != nil {
		return fmt.Errorf("checking for duplicate events: %w", err)
	}
	var prev []byte
	for _, i := range order {
		pe := &ix.pending[i]
		if prev != nil && bytes.Equal(prev, pe.idKey) {
			pe.dup = true
			continue
		}
		prev = pe.idKey
		if it.SeekPrefixGE(pe.idKey) && bytes.Equal(it.Key(), pe.idKey) {
			pe.dup = true
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("checking for duplicate events: %w", err)
	}
	return nil
}

// write adds the index entries of the pending events to b.
func (ix *indexer) write(b *pebble.Batch) error {
	if err := ix.writeImports(b); err != nil {
		return err
	}
	if err := ix.markDuplicates(); err != nil {
		return err
	}
	if err := ix.writeRecords(b); err != nil {
		return err
	}
	var key []byte
	for i := range ix.pending {
		pe := &ix.pending[i]
		if pe.dup {
			ix.h.metrics.skipped.WithLabelValues("duplicate").Inc()
			continue
		}
		r := pe.r
		if pe.idKey != nil {
			if err := b.Set(pe.idKey, pe.pos[:], nil); err != nil {
				return err
			}
		}
		key = appendEventKey(key[:0], r.AWSRegion, pe.cat, pe.pos)
		if err := b.Set(key, nil, nil); err != nil {
			return err
		}
		err := forEachAttrKey(key[:0], r, pe.cat, pe.pos, func(k []byte) error {
			key = k
			return b.Set(k, nil, nil)
		})
		if err != nil {
			return err
		}
		ix.n++
	}
	return nil
}

// writeRecords stores the records of the batch's events (duplicates
// excluded) in blocks of the record store (see records.go), compressed in
// parallel: compression is most of what storing a record costs.
func (ix *indexer) writeRecords(b *pebble.Batch) error {
	var samples [][]byte
	for i := range ix.pending {
		if !ix.pending[i].dup {
			samples = append(samples, ix.pending[i].r.Raw)
		}
	}
	if len(samples) == 0 {
		return nil
	}
	if err := ix.h.newDict(samples); err != nil {
		return err
	}
	var blocks []*blockBuilder
	var bb *blockBuilder
	for i := range ix.pending {
		pe := &ix.pending[i]
		if pe.dup {
			continue
		}
		if bb == nil || len(bb.raw) >= blockTarget {
			bb = &blockBuilder{raw: make([]byte, 0, blockTarget+4<<10)}
			blocks = append(blocks, bb)
		}
		bb.add(pe.pos.seq(), pe.r.EventTime, pe.r.Raw)
	}
	sealed := make([]sealedBlock, len(blocks))
	errs := make([]error, len(blocks))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(runtime.GOMAXPROCS(0), len(blocks)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(blocks); i = int(next.Add(1) - 1) {
				sealed[i], errs[i] = ix.h.codec.seal(blocks[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("compressing records: %w", err)
	}
	for _, s := range sealed {
		if err := b.Set(recordKey(s.first), s.value, nil); err != nil {
			return err
		}
		if err := b.Set(expiryKey(s.newest, s.first), nil, nil); err != nil {
			return err
		}
	}
	ix.h.codec.counted(len(samples))
	return nil
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
