package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxRecordBytes is the largest record Cairn stores: the journal's entry
// limit (journal.MaxEntrySize; a server test checks the two agree). A
// record is one journal entry, so a record over it could not be written
// at all, and the call it describes would go unrecorded.
const MaxRecordBytes = 1 << 20

// OmittedMarker is the member name of the object that stands in for a
// member FitRecord took out of a record.
const OmittedMarker = "omittedByCairn"

// fitSections are the record members whose own members FitRecord may
// replace, in the order it gives them up when two candidates are the same
// size: what Cairn answered before what the caller asked, so that the
// request survives longest.
var fitSections = []string{"additionalEventData", "responseElements", "requestParameters"}

// fitStrings are the top-level strings FitRecord shortens if replacing
// members was not enough (a caller can put megabytes in a User-Agent, and
// an error message can quote its input).
var fitStrings = []string{"userAgent", "errorMessage", "errorCode"}

// fitKeepBytes is how much of a string FitRecord shortens it keeps:
// CloudTrail's own cut for userAgent, errorCode and errorMessage (1 KB).
const fitKeepBytes = 1024

// FitRecord makes a compact record no longer than limit, so that a legal
// call whose record would be too large is still recorded rather than
// refused. A record that fits comes back unchanged. Otherwise, members of
// requestParameters, responseElements and additionalEventData are
// replaced, largest first, by
//
//	{"omittedByCairn":{"member":"requestParameters.nextToken","bytes":3145730,"sha256":"<hex>"}}
//
// until the record fits. bytes and sha256 are the length and SHA-256 of
// the member's value exactly as the record would have carried it
// (compact JSON, a string with its quotes). Ties go by section (additional
// event data, then response elements, then request parameters) and then
// by position, so the same record always shrinks the same way. A member
// smaller than its marker is never replaced; if that leaves the record too
// large, userAgent, errorMessage and errorCode are cut to their first 1024
// bytes followed by " [truncated by Cairn: N bytes, sha256 <hex>]", N and
// the hash being those of the whole decoded string. If that is not enough
// either (a section of many small members), whole sections are replaced
// like members, largest first, the marker's member being the section's
// name. Only a record whose other parts alone exceed limit is an error.
//
// rec must be compact JSON, as Record.Raw and Cairn's builders produce.
func FitRecord(rec []byte, limit int) ([]byte, error) {
	if len(rec) <= limit {
		return rec, nil
	}
	type candidate struct {
		section int // index into fitSections
		order   int // position within its section
		path    string
		val     []byte
	}
	var cands []candidate
	sectionVals := make([][]byte, len(fitSections))
	eachMember(rec, func(key, val []byte) bool {
		for si, name := range fitSections {
			if keyIs(key, name) && len(val) > 0 && val[0] == '{' {
				sectionVals[si] = val
				order := 0
				eachMember(val, func(k, v []byte) bool {
					cands = append(cands, candidate{section: si, order: order, path: name + "." + unescape(k), val: v})
					order++
					return true
				})
			}
		}
		return true
	})
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if len(a.val) != len(b.val) {
			return len(b.val) - len(a.val)
		}
		if a.section != b.section {
			return a.section - b.section
		}
		return a.order - b.order
	})
	// replaced maps a member's value (by its first byte's address in rec,
	// unique per member) to its marker.
	replaced := map[*byte][]byte{}
	size := len(rec)
	for _, c := range cands {
		if size <= limit {
			break
		}
		marker := omittedMarker(c.path, c.val)
		if len(marker) >= len(c.val) {
			continue
		}
		replaced[&c.val[0]] = marker
		size += len(marker) - len(c.val)
	}
	out := appendReplacing(make([]byte, 0, min(size, len(rec))+64), rec, replaced, sectionVals)
	// Long caller-chosen strings go before whole sections: a section says
	// what was done (an import's provenance lives in additionalEventData),
	// a User-Agent does not.
	if len(out) > limit {
		out = shortenStrings(out)
	}
	if len(out) > limit {
		out = replaceSections(out, limit)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("event: the record is %d bytes even with its request parameters, response elements and long strings left out; the limit is %d", len(out), limit)
	}
	return out, nil
}

// omittedMarker is the stand-in for the member at path whose compact
// value is val.
func omittedMarker(path string, val []byte) []byte {
	sum := sha256.Sum256(val)
	b := make([]byte, 0, 64+len(path)+sha256.Size*2)
	b = append(b, `{"`+OmittedMarker+`":{"member":`...)
	b = appendJSONString(b, path)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(len(val)), 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, `"}}`...)
	return b
}

// replaceSections replaces whole sections, largest first (ties in
// fitSections order), until rec fits: the case of a section made of many
// members each smaller than its marker would be.
func replaceSections(rec []byte, limit int) []byte {
	type section struct {
		rank int
		val  []byte
	}
	var secs []section
	eachMember(rec, func(key, val []byte) bool {
		for si, name := range fitSections {
			if keyIs(key, name) && len(val) > 0 && val[0] == '{' {
				secs = append(secs, section{si, val})
			}
		}
		return true
	})
	slices.SortStableFunc(secs, func(a, b section) int {
		if len(a.val) != len(b.val) {
			return len(b.val) - len(a.val)
		}
		return a.rank - b.rank
	})
	replaced := map[*byte][]byte{}
	size := len(rec)
	for _, sec := range secs {
		if size <= limit {
			break
		}
		marker := omittedMarker(fitSections[sec.rank], sec.val)
		if len(marker) >= len(sec.val) {
			continue
		}
		replaced[&sec.val[0]] = marker
		size += len(marker) - len(sec.val)
	}
	return appendReplacing(make([]byte, 0, size), rec, replaced, nil)
}

// appendReplacing appends the compact JSON object obj to out with every
// member value whose first byte is a key of replaced written as its
// replacement instead, and the members that are one of sections (values
// inside obj) written the same way one level down.
func appendReplacing(out, obj []byte, replaced map[*byte][]byte, sections [][]byte) []byte {
	return appendObject(out, obj, func(out, _, val []byte) []byte {
		if m, ok := replaced[&val[0]]; ok {
			return append(out, m...)
		}
		if slices.ContainsFunc(sections, func(s []byte) bool { return len(s) > 0 && &s[0] == &val[0] }) {
			return appendReplacing(out, val, replaced, nil)
		}
		return append(out, val...)
	})
}

// appendObject appends the compact JSON object obj to out, each member's
// value written by value (which appends it, changed or not, to out).
func appendObject(out, obj []byte, value func(out, key, val []byte) []byte) []byte {
	out = append(out, '{')
	first := true
	eachMember(obj, func(key, val []byte) bool {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
		out = value(out, key, val)
		return true
	})
	return append(out, '}')
}

// shortenStrings cuts the fitStrings members of rec that are longer than
// fitKeepBytes.
func shortenStrings(rec []byte) []byte {
	return appendObject(make([]byte, 0, len(rec)), rec, func(out, key, val []byte) []byte {
		if slices.ContainsFunc(fitStrings, func(n string) bool { return keyIs(key, n) }) && len(val) > fitKeepBytes+2 {
			if s, ok := stringValue(val); ok && len(s) > fitKeepBytes {
				return appendJSONString(out, shortened(s))
			}
		}
		return append(out, val...)
	})
}

// shortened keeps the first fitKeepBytes of s (whole characters) and says
// what was cut.
func shortened(s string) string {
	n := fitKeepBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	keep := s[:n]
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%s [truncated by Cairn: %d bytes, sha256 %s]", keep, len(s), hex.EncodeToString(sum[:]))
}

// appendJSONString appends s as a JSON string the way MarshalNoEscape
// writes it (no HTML escaping).
func appendJSONString(b []byte, s string) []byte {
	enc, err := MarshalNoEscape(s)
	if err != nil {
		// A Go string always marshals; invalid UTF-8 becomes U+FFFD.
		return append(b, `""`...)
	}
	return append(b, bytes.TrimSpace(enc)...)
}
