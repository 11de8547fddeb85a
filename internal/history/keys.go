package history

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/event"
)

// Key layout of the history database. Every index entry of an event lives
// in the partition of its region and category, and every partition is
// ordered newest first by a 16-byte position (see pos):
//
//	'e' part pos                      -> empty                    (the event list; the record is in the record store)
//	'a' part attr len(value) value pos -> empty                    (one per attribute value)
//	'i' part eventID                  -> pos                      (EventId: unique)
//	'm' name                          -> metadata (cursor, token key, format)
//	'p' seq (8 bytes BE)              -> import provenance (JSON)
//
//	part = uvarint(len(region)) region category
//	pos  = ^orderedTime(eventTime) (8 bytes BE) ^seq (8 bytes BE)
//
// Why this shape:
//
//   - One bounded range per lookup: a time-range lookup is a single scan of
//     'e' part [pos(EndTime), pos(StartTime)]; a single-attribute lookup is a
//     single scan of 'a' part attr value [same bounds], then one seek per
//     result into the event store. No lookup ever reads outside the ranges of
//     the attributes it names, so latency depends on the page, not on the
//     number of events stored.
//   - The position is the same in every index of a partition, so several
//     attributes are AND-ed by intersecting sorted lists (see intersect), and
//     a NextToken is just a position: valid for whichever index drives.
//   - The records themselves are in the record store (records.go), in
//     compressed blocks keyed by journal sequence number, which a position
//     ends with: the history never reads the journal after indexing and
//     survives the journal trimming entries it has indexed, while the
//     index LSM holds only short keys.
//   - EventId is unique, so its index maps the ID to the position directly:
//     a lookup is one Get, and the same key deduplicates re-delivered events.
//   - Region and category come first so that LookupEvents never sees events
//     of another region, and retention can delete whole time ranges of each
//     partition with one DeleteRange.
//   - Values are length-prefixed, not terminated, so any byte may appear in
//     an attribute value and no value's range contains another value's keys.
//   - An import's provenance is stored once, keyed by the journal sequence
//     number of its first record, with the number of records: the events
//     of an import are exactly the journal entries after its header
//     (event.ImportHeader), and a position ends with its sequence number,
//     so a result finds its import with one seek. Journal bytes stay the
//     imported ones; re-indexing the journal rebuilds the same keys.
const (
	prefixEvent   = 'e'
	prefixAttr    = 'a'
	prefixEventID = 'i'
	prefixMeta    = 'm'
	prefixImport  = 'p'

	posLen = 16
)

// Categories as stored in keys. Management and (opt-in) data events share
// the default partition because LookupEvents without EventCategory returns
// them together; Insights events are only returned with EventCategory=insight.
const (
	catDefault = 'd'
	catInsight = 'i'
)

// Metadata keys.
var (
	metaCursor   = []byte("mcursor")   // uint64 BE: last journal seq indexed
	metaTokenKey = []byte("mtokenkey") // 32 random bytes: NextToken HMAC key
	metaFormat   = []byte("mformat")   // uint64 BE: key layout version
)

// formatVersion is the key layout version written in metaFormat. Opening a
// database with another version is refused rather than misread.
const formatVersion = FormatVersion

// FormatVersion is the history database's layout version: caches of built
// databases (benchmarks) name it so that a new layout builds anew.
const FormatVersion = 2

// attrCode is the one-byte code of each indexed attribute key. EventId has
// its own index ('i') and no code.
var attrCode = map[string]byte{
	event.AttrEventName:    'n',
	event.AttrReadOnly:     'r',
	event.AttrUsername:     'u',
	event.AttrResourceType: 't',
	event.AttrResourceName: 'R',
	event.AttrEventSource:  's',
	event.AttrAccessKeyID:  'k',
}

// indexedAttrs lists the attribute keys with an 'a' index, in a fixed order.
var indexedAttrs = []string{
	event.AttrEventName, event.AttrReadOnly, event.AttrUsername, event.AttrResourceType,
	event.AttrResourceName, event.AttrEventSource, event.AttrAccessKeyID,
}

// pos is an event's position: its place in the newest-first order of every
// index. Events are ordered by eventTime, newest first, and events with the
// same eventTime by journal sequence number, last indexed first.
type pos [posLen]byte

// Time bounds representable in the position (UnixNano's range).
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// orderedTime maps t to a uint64 that sorts like t.
func orderedTime(t time.Time) uint64 {
	if t.Before(minTime) {
		t = minTime
	} else if t.After(maxTime) {
		t = maxTime
	}
	return uint64(t.UnixNano()) ^ (1 << 63)
}

// invTime is the 8-byte big-endian prefix of the positions of events at t.
func invTime(t time.Time) uint64 { return ^orderedTime(t) }

func timeOfInv(inv uint64) time.Time {
	return time.Unix(0, int64(^inv^(1<<63))).UTC()
}

func makePos(t time.Time, seq uint64) pos {
	var p pos
	binary.BigEndian.PutUint64(p[:8], invTime(t))
	binary.BigEndian.PutUint64(p[8:], ^seq)
	return p
}

// posAt is the first position of events at exactly t (the newest end of t).
func posAt(t time.Time) pos {
	var p pos
	binary.BigEndian.PutUint64(p[:8], invTime(t))
	return p
}

func (p pos) time() time.Time { return timeOfInv(binary.BigEndian.Uint64(p[:8])) }
func (p pos) seq() uint64     { return ^binary.BigEndian.Uint64(p[8:]) }

// next returns the position immediately after p and false if p is the last
// representable position.
func (p pos) next() (pos, bool) {
	for i := posLen - 1; i >= 0; i-- {
		p[i]++
		if p[i] != 0 {
			return p, true
		}
	}
	return p, false
}

// prev returns the position immediately before p and false if p is the
// first representable position.
func (p pos) prev() (pos, bool) {
	for i := posLen - 1; i >= 0; i-- {
		p[i]--
		if p[i] != 0xff {
			return p, true
		}
	}
	return p, false
}

// appendPart appends the partition prefix of region and category.
func appendPart(dst []byte, prefix byte, region string, cat byte) []byte {
	dst = append(dst, prefix)
	dst = binary.AppendUvarint(dst, uint64(len(region)))
	dst = append(dst, region...)
	return append(dst, cat)
}

func appendEventKey(dst []byte, region string, cat byte, p pos) []byte {
	dst = appendPart(dst, prefixEvent, region, cat)
	return append(dst, p[:]...)
}

// appendAttrPrefix appends the prefix shared by every entry of one
// attribute value; the entries follow it with their position.
func appendAttrPrefix(dst []byte, region string, cat byte, code byte, value string) []byte {
	dst = appendPart(dst, prefixAttr, region, cat)
	dst = append(dst, code)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

func appendEventIDKey(dst []byte, region string, cat byte, id string) []byte {
	dst = appendPart(dst, prefixEventID, region, cat)
	return append(dst, id...)
}

// comparer orders keys bytewise, as Pebble's default does, but tells
// Pebble where each key's prefix ends (splitKey): the position of an event
// and attribute entry is its suffix. Pebble's bloom filters hold one entry
// per distinct prefix, so they cover the EventIds (the only keys probed by
// point: the duplicate check and EventId lookups) plus one entry per
// attribute value and partition, instead of every index key: with ten
// keys an event, filters ten times the size evicted each other from the
// block cache and the duplicate check read them from disk again and again.
var comparer = func() *pebble.Comparer {
	c := *pebble.DefaultComparer
	c.Split = splitKey
	c.Name = "cairn.history.v2"
	return &c
}()

// splitKey returns the length of the prefix of key: an event key's
// partition, an attribute entry's partition, attribute and value, and for
// every other key (EventIds, records, metadata) the whole key. Pebble's
// rules for a Split hold because every prefix is self-delimiting (lengths
// are encoded before the bytes they count), so no prefix of a key with a
// suffix is a proper prefix of another, and bytewise order sorts by prefix
// first; a key that does not parse is all prefix.
func splitKey(key []byte) int {
	if len(key) == 0 || (key[0] != prefixEvent && key[0] != prefixAttr) {
		return len(key)
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || n > uint64(len(key)) {
		return len(key)
	}
	end := 1 + w + int(n) + 1 // region and category
	if key[0] == prefixAttr {
		if end >= len(key) {
			return len(key)
		}
		end++ // attribute code
		n, w := binary.Uvarint(key[end:])
		if w <= 0 || n > uint64(len(key)) {
			return len(key)
		}
		end += w + int(n)
	}
	if end > len(key) {
		return len(key)
	}
	return end
}

// parsePart splits a key of the given prefix into region, category and the
// rest of the key.
func parsePart(key []byte, prefix byte) (region string, cat byte, rest []byte, ok bool) {
	if len(key) < 3 || key[0] != prefix {
		return "", 0, nil, false
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || n > uint64(len(key)) {
		return "", 0, nil, false
	}
	start := 1 + w
	end := start + int(n)
	if end >= len(key) {
		return "", 0, nil, false
	}
	return string(key[start:end]), key[end], key[end+1:], true
}

// posSuffix returns the position at the end of an index key.
func posSuffix(key []byte) (pos, bool) {
	var p pos
	if len(key) < posLen {
		return p, false
	}
	copy(p[:], key[len(key)-posLen:])
	return p, true
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (nil if there is none).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// importKey is the provenance key of the import whose first record is at
// journal sequence number first.
func importKey(first uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixImport}, first)
}
