package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
)

// Lookup limits.
const (
	// DefaultMaxResults and MaxMaxResults are CloudTrail's page sizes.
	DefaultMaxResults = 50
	MaxMaxResults     = 50
	// MaxAttributes bounds the AND-ed attributes of one lookup. CloudTrail
	// accepts one; Cairn accepts one per key plus repeats of the
	// multi-valued ResourceName/ResourceType, within this bound.
	MaxAttributes = 8
	// CategoryInsight is the only EventCategory value.
	CategoryInsight = "insight"

	// defaultIntersectionBudget bounds the index seeks one page of an AND-ed
	// lookup may spend. Two frequent attributes that rarely occur together
	// would otherwise make a page scan their whole lists; past the budget
	// the page ends early (possibly empty) with a NextToken that resumes
	// where the scan stopped, as LookupEvents allows. It keeps every page
	// within a few milliseconds, whatever the data.
	defaultIntersectionBudget = 4096
)

// Attribute is one LookupAttribute.
type Attribute struct {
	Key   string
	Value string
}

// Query is one LookupEvents request.
type Query struct {
	// Region is the region the request was sent to; only its events match.
	Region string
	// Attributes are AND-ed: an event matches if it matches each one.
	// CloudTrail allows one attribute and silently ignores the others;
	// Cairn's AND is a documented extension that accepts what CloudTrail
	// accepts and answers it identically.
	Attributes []Attribute
	// StartTime and EndTime bound eventTime, both inclusive; zero means
	// unbounded (the retention always bounds the start).
	StartTime time.Time
	EndTime   time.Time
	// MaxResults is the page size, 1-50; zero means 50.
	MaxResults int
	// NextToken continues the query that returned it.
	NextToken string
	// Category is "" (management events, plus data events if indexed) or
	// "insight" (Insights events only).
	Category string
}

// Page is one page of results, newest first. NextToken is empty on the
// last page.
type Page struct {
	Events    []event.LookupEvent
	NextToken string
}

// Lookup runs a LookupEvents query. Invalid queries fail with the
// *awsproto.Error CloudTrail would send: InvalidLookupAttributesException,
// InvalidTimeRangeException, InvalidMaxResultsException,
// InvalidEventCategoryException or InvalidNextTokenException.
func (h *History) Lookup(ctx context.Context, q Query) (Page, error) {
	began := time.Now()
	if err := validate(&q); err != nil {
		return Page{}, err
	}
	if q.MaxResults == 0 {
		q.MaxResults = DefaultMaxResults
	}
	cat := byte(catDefault)
	if q.Category == CategoryInsight {
		cat = catInsight
	}
	binding := queryBinding(&q)

	// The scan covers positions [lower, upper): newest (EndTime) first,
	// down to StartTime or the retention cutoff, whichever is later.
	var lower pos
	if !q.EndTime.IsZero() {
		lower = posAt(q.EndTime)
	}
	if q.NextToken != "" {
		after, err := decodeToken(h.tokenKey, q.NextToken, binding)
		if err != nil {
			return Page{}, awsproto.Errorf("InvalidNextTokenException",
				"Invalid NextToken: pass it back unchanged, with the same parameters as the request that returned it.")
		}
		next, ok := after.next()
		if !ok {
			return Page{Events: []event.LookupEvent{}}, nil
		}
		if bytes.Compare(next[:], lower[:]) > 0 {
			lower = next
		}
	}
	start := h.opts.Now().Add(-h.opts.Retention)
	if q.StartTime.After(start) {
		start = q.StartTime
	}
	var upper []byte // exclusive; nil means the end of the partition
	if inv := invTime(start); inv != ^uint64(0) {
		upper = binary.BigEndian.AppendUint64(nil, inv+1)
		upper = append(upper, make([]byte, 8)...)
	}

	if upper != nil && bytes.Compare(lower[:], upper) >= 0 {
		// EndTime (or the token) is before StartTime or the retention.
		h.metrics.lookups.WithLabelValues("empty").Observe(time.Since(began).Seconds())
		return Page{Events: []event.LookupEvent{}}, nil
	}

	attrs := dedupAttributes(q.Attributes)
	plan := "time"
	var eventID string
	for _, a := range attrs {
		if a.Key == event.AttrEventID {
			plan, eventID = "event_id", a.Value
		}
	}
	if plan != "event_id" && len(attrs) == 1 {
		plan = "attribute"
	} else if plan != "event_id" && len(attrs) > 1 {
		plan = "intersection"
	}

	if err := h.acquire(); err != nil {
		return Page{}, err
	}
	defer h.release()
	snap := h.db.NewSnapshot()
	defer snap.Close()
	s := &scan{
		ctx:     ctx,
		snap:    snap,
		region:  q.Region,
		cat:     cat,
		upper:   upper,
		max:     q.MaxResults,
		budget:  h.intersectionBudget,
		records: recordReader{c: h.codec, r: snap, cache: h.blocks},
	}
	var err error
	switch plan {
	case "event_id":
		err = s.byEventID(eventID, attrs, lower)
	case "time":
		err = s.byTime(lower)
	default:
		err = s.byAttributes(attrs, lower)
	}
	s.close()
	if err != nil {
		if ctx.Err() != nil {
			return Page{}, fmt.Errorf("lookup: %w", ctx.Err())
		}
		return Page{}, fmt.Errorf("lookup (%s plan) in %s: %w", plan, q.Region, err)
	}
	page := Page{Events: s.events}
	if page.Events == nil {
		page.Events = []event.LookupEvent{}
	}
	if s.more {
		page.NextToken = encodeToken(h.tokenKey, s.last, binding)
	}
	h.metrics.lookups.WithLabelValues(plan).Observe(time.Since(began).Seconds())
	return page, nil
}

// validate checks a query the way CloudTrail does.
func validate(q *Query) error {
	if q.MaxResults < 0 || q.MaxResults > MaxMaxResults {
		return awsproto.Errorf("InvalidMaxResultsException", "MaxResults must be between 1 and %d, got %d.", MaxMaxResults, q.MaxResults)
	}
	if q.Category != "" && q.Category != CategoryInsight {
		return awsproto.Errorf("InvalidEventCategoryException", "EventCategory %q is not valid; the only valid value is %q.", q.Category, CategoryInsight)
	}
	if !q.StartTime.IsZero() && !q.EndTime.IsZero() && q.EndTime.Before(q.StartTime) {
		return awsproto.Errorf("InvalidTimeRangeException", "Start time (%s) must be earlier than or equal to end time (%s).",
			q.StartTime.UTC().Format(time.RFC3339), q.EndTime.UTC().Format(time.RFC3339))
	}
	if len(q.Attributes) > MaxAttributes {
		return awsproto.Errorf("InvalidLookupAttributesException", "At most %d lookup attributes can be combined, got %d.", MaxAttributes, len(q.Attributes))
	}
	for _, a := range q.Attributes {
		if !event.IsAttributeKey(a.Key) {
			return awsproto.Errorf("InvalidLookupAttributesException", "Lookup attribute key %q is not valid. Valid keys are %s.",
				a.Key, strings.Join(event.AttributeKeys(), ", "))
		}
		if q.Category == CategoryInsight && a.Key != event.AttrEventID && a.Key != event.AttrEventName && a.Key != event.AttrEventSource {
			return awsproto.Errorf("InvalidLookupAttributesException", "Lookup attribute key %q is not valid for Insights events; use EventId, EventName or EventSource.", a.Key)
		}
		if n := utf8.RuneCountInString(a.Value); n < 1 || n > MaxAttributeValueLen {
			return awsproto.Errorf("InvalidLookupAttributesException", "The value of lookup attribute %s must be 1 to %d characters long, got %d.", a.Key, MaxAttributeValueLen, n)
		}
	}
	return nil
}

// dedupAttributes drops repeated (key, value) pairs, which change nothing.
func dedupAttributes(in []Attribute) []Attribute {
	out := make([]Attribute, 0, len(in))
	for _, a := range in {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// scan collects one page from a snapshot.
type scan struct {
	ctx    context.Context
	snap   *pebble.Snapshot
	region string
	cat    byte
	upper  []byte // exclusive position bound (8-16 bytes) or nil
	max    int
	budget int // index seeks allowed for an intersection

	events []event.LookupEvent
	last   pos  // position of the last event in events
	more   bool // another match follows last

	iters   []*pebble.Iterator
	records recordReader     // the record store, for loading records by position
	imports *pebble.Iterator // import provenance; see provenance
}

func (s *scan) close() {
	for _, it := range s.iters {
		_ = it.Close()
	}
	_ = s.records.close()
	if s.imports != nil {
		_ = s.imports.Close()
	}
}

// bounds returns the iterator bounds for positions [lower, upper) under
// prefix.
func (s *scan) bounds(prefix []byte, lower pos) *pebble.IterOptions {
	lo := append(slices.Clone(prefix), lower[:]...)
	var hi []byte
	if s.upper != nil {
		hi = append(slices.Clone(prefix), s.upper...)
	} else {
		hi = prefixEnd(prefix)
	}
	return &pebble.IterOptions{LowerBound: lo, UpperBound: hi}
}

func (s *scan) newIter(prefix []byte, lower pos) (*pebble.Iterator, error) {
	it, err := s.snap.NewIterWithContext(s.ctx, s.bounds(prefix, lower))
	if err != nil {
		return nil, err
	}
	s.iters = append(s.iters, it)
	return it, nil
}

// add appends a record to the page; it reports whether the page is full.
func (s *scan) add(p pos, raw []byte) (bool, error) {
	r, err := event.Parse(raw)
	if err != nil {
		return false, fmt.Errorf("stored record at %x is unreadable: %w", p, err)
	}
	le := r.LookupEvent()
	if le.Import, err = s.provenance(p); err != nil {
		return false, fmt.Errorf("provenance of the record at %x: %w", p, err)
	}
	s.events = append(s.events, le)
	s.last = p
	return len(s.events) >= s.max, nil
}

// byTime is the plan without attributes: one scan of the event store's
// keys, each record loaded from the record store by its sequence number.
func (s *scan) byTime(lower pos) error {
	prefix := appendPart(nil, prefixEvent, s.region, s.cat)
	it, err := s.newIter(prefix, lower)
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		p, _ := posSuffix(it.Key())
		if len(s.events) >= s.max {
			s.more = true
			return nil
		}
		raw, found, err := s.load(p)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if _, err := s.add(p, raw); err != nil {
			return err
		}
	}
	return it.Error()
}

// byEventID is the plan when an EventId is given: one point read, then the
// other attributes are checked on the record.
func (s *scan) byEventID(id string, attrs []Attribute, lower pos) error {
	s.events = []event.LookupEvent{}
	key := appendEventIDKey(nil, s.region, s.cat, id)
	v, closer, err := s.snap.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var p pos
	ok := len(v) == posLen
	copy(p[:], v)
	_ = closer.Close()
	if !ok {
		return fmt.Errorf("malformed EventId entry for %q", id)
	}
	if bytes.Compare(p[:], lower[:]) < 0 || (s.upper != nil && bytes.Compare(p[:], s.upper) >= 0) {
		return nil
	}
	raw, found, err := s.load(p)
	if err != nil || !found {
		return err
	}
	r, err := event.Parse(raw)
	if err != nil {
		return fmt.Errorf("stored record at %x is unreadable: %w", p, err)
	}
	for _, a := range attrs {
		if a.Key == event.AttrEventID {
			if a.Value != id { // two different EventIds: nothing has both
				return nil
			}
			continue
		}
		if !r.MatchAttribute(a.Key, a.Value) {
			return nil
		}
	}
	le := r.LookupEvent()
	if le.Import, err = s.provenance(p); err != nil {
		return fmt.Errorf("provenance of the record at %x: %w", p, err)
	}
	s.events = append(s.events, le)
	s.last = p
	return nil
}

// load reads the record at p from the record store. found is false when
// the record was swept after its index entry was read.
func (s *scan) load(p pos) ([]byte, bool, error) {
	return s.records.get(p.seq())
}

// byAttributes is the plan for one or more attribute indexes. With several,
// it intersects them by leapfrogging: the iterator that is behind seeks to
// the position of the one ahead, so the work follows the sparsest index at
// every step (effectively driving from the most selective attribute and
// checking the others by seeking) without needing statistics.
func (s *scan) byAttributes(attrs []Attribute, lower pos) error {
	prefixes := make([][]byte, len(attrs))
	for i, a := range attrs {
		prefixes[i] = appendAttrPrefix(nil, s.region, s.cat, attrCode[a.Key], a.Value)
		if _, err := s.newIter(prefixes[i], lower); err != nil {
			return err
		}
	}
	var seekBuf []byte
	// seek positions iterator i at its first entry at or after target.
	seek := func(i int, target pos) (pos, bool) {
		seekBuf = append(append(seekBuf[:0], prefixes[i]...), target[:]...)
		if !s.iters[i].SeekGE(seekBuf) {
			return pos{}, false
		}
		p, _ := posSuffix(s.iters[i].Key())
		return p, true
	}
	target, steps := lower, 0
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		// Leapfrog to the next position all iterators agree on.
		cand, agree, i := target, 0, 0
		for agree < len(s.iters) {
			if steps++; steps > s.budget && len(s.iters) > 1 && cand != lower {
				// Out of budget: end the page; the token resumes at cand
				// (positions before it are ruled out).
				if p, ok := cand.prev(); ok {
					s.last, s.more = p, true
				}
				return nil
			}
			p, ok := seek(i, cand)
			if !ok {
				return s.iterErr()
			}
			if p == cand {
				agree++
			} else {
				cand, agree = p, 1
			}
			i = (i + 1) % len(s.iters)
		}
		if len(s.events) >= s.max {
			s.more = true
			return nil
		}
		raw, found, err := s.load(cand)
		if err != nil {
			return err
		}
		if found {
			if _, err := s.add(cand, raw); err != nil {
				return err
			}
		}
		next, ok := cand.next()
		if !ok {
			return nil
		}
		target = next
	}
}

func (s *scan) iterErr() error {
	for _, it := range s.iters {
		if err := it.Error(); err != nil {
			return err
		}
	}
	return nil
}
