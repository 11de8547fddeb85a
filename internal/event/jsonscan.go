package event

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small single-pass JSON validator/compactor and a few
// helpers that walk already-validated compact JSON.
//
// Why not encoding/json or goccy/go-json: Parse has to (1) keep every number
// literal and every unknown field exactly as it came in, (2) produce the
// compact form stored in the journal, and (3) pull out a dozen fields. A
// decoder into map[string]any loses literal fidelity and allocates a node per
// value; json.Compact followed by a struct decode walks the bytes twice and
// still needs RawMessage plumbing for the fields whose type varies in the wild.
// One pass that copies non-whitespace bytes while checking the grammar, then
// cheap skips over the compact copy for extraction, is both faithful and
// several times faster on CloudTrail-shaped records.

// maxDepth bounds nesting so hostile input cannot exhaust the stack. It
// matches encoding/json's limit, so anything Parse accepts can also be decoded
// by encoding/json (the API layer re-encodes CloudTrailEvent with it).
const maxDepth = 10000

// syntaxError reports where and why the input is not valid JSON.
type syntaxError struct {
	Offset int
	Msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// span is a half-open byte range in the compact output.
type span struct{ start, end int }

// member is one top-level object member: key is the raw key between the
// quotes (escapes not decoded), val the compact value bytes.
type member struct {
	key span
	val span
}

// compactor copies src into dst without insignificant whitespace, validating
// RFC 8259 grammar as it goes. Bytes inside strings, including invalid UTF-8,
// are copied unchanged: json.Compact semantics, nothing reordered or re-escaped.
type compactor struct {
	src []byte
	dst []byte
	i   int
	// src[:flushed] is done with: copied to dst or skipped as white space.
	// The scan itself copies nothing; a run of white space flushes the
	// bytes before it, and finish the rest, so that compact input (the
	// journal's, delivery files') costs one copy in bulk instead of one
	// append per token.
	flushed int
	// limit is the nesting depth at which a container is refused; zero
	// means maxDepth.
	limit int
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ws skips white space, flushing what precedes it. It is called between
// every two tokens and there is rarely any white space, so the check is
// kept small enough to be inlined (every white space byte is at most ' ')
// and the work is a call apart.
func (c *compactor) ws() {
	if c.i < len(c.src) && c.src[c.i] <= ' ' {
		c.skipWS()
	}
}

// skipWS is ws once a byte that may be white space was found at c.i.
//
//go:noinline
func (c *compactor) skipWS() {
	c.dst = append(c.dst, c.src[c.flushed:c.i]...)
	for c.i < len(c.src) && isWS(c.src[c.i]) {
		c.i++
	}
	c.flushed = c.i
}

// out is the length the output has once everything scanned is flushed.
func (c *compactor) out() int { return len(c.dst) + c.i - c.flushed }

// finish flushes the rest of what was scanned.
func (c *compactor) finish() {
	c.dst = append(c.dst, c.src[c.flushed:c.i]...)
	c.flushed = c.i
}

func (c *compactor) errf(format string, args ...any) error {
	return &syntaxError{Offset: c.i, Msg: fmt.Sprintf(format, args...)}
}

// topObject compacts a whole document that must be a single JSON object and
// returns the spans of its members in dst.
func (c *compactor) topObject(members []member) ([]member, error) {
	c.ws()
	if c.i >= len(c.src) {
		return nil, c.errf("empty input")
	}
	if c.src[c.i] != '{' {
		return nil, errNotObject
	}
	c.i++
	c.ws()
	if c.i < len(c.src) && c.src[c.i] == '}' {
		c.i++
	} else {
		for {
			c.ws()
			if c.i >= len(c.src) || c.src[c.i] != '"' {
				return nil, c.errf("expected string key")
			}
			ks := c.out() + 1
			if err := c.str(); err != nil {
				return nil, err
			}
			ke := c.out() - 1
			c.ws()
			if c.i >= len(c.src) || c.src[c.i] != ':' {
				return nil, c.errf("expected ':' after object key")
			}
			c.i++
			c.ws()
			vs := c.out()
			if err := c.value(1); err != nil {
				return nil, err
			}
			members = append(members, member{key: span{ks, ke}, val: span{vs, c.out()}})
			c.ws()
			if c.i >= len(c.src) {
				return nil, c.errf("unexpected end of input in object")
			}
			if c.src[c.i] == ',' {
				c.i++
				continue
			}
			if c.src[c.i] == '}' {
				c.i++
				break
			}
			return nil, c.errf("expected ',' or '}' in object, found %q", c.src[c.i])
		}
	}
	c.ws()
	if c.i != len(c.src) {
		return nil, c.errf("unexpected data after the top-level object")
	}
	c.finish()
	return members, nil
}

func (c *compactor) depthLimit() int {
	if c.limit > 0 {
		return c.limit
	}
	return maxDepth
}

// AppendCompactObject appends the compact form of src to dst when src is
// one JSON object (whitespace around it allowed) in which no container is
// nested depth or more levels below the object itself, and appends the
// object's members to members; ok is false otherwise, and dst's contents
// beyond its length are then unspecified.
//
// It is Parse's validating pass without the extraction, for callers that
// embed a document they must validate first in a record they build (a
// channel event's eventData): the output is byte for byte what
// encoding/json.Compact gives for the same input, in one pass that costs
// a fraction of it, and the members come with it, so that the caller does
// not walk the object again to find them. A document embedded as a member
// of a record sits one level deeper there, so such a caller passes
// maxDepth-1 (MaxEmbedDepth) to accept exactly what Parse will accept in
// the record.
func AppendCompactObject(dst, src []byte, depth int, members []Member) (out []byte, ms []Member, ok bool) {
	if depth <= 0 {
		return dst, members, false
	}
	c := compactor{src: src, dst: dst, limit: depth}
	var membersBuf [32]member
	found, err := c.topObject(membersBuf[:0])
	if err != nil {
		return dst, members, false
	}
	for _, m := range found {
		members = append(members, Member{KeyStart: m.key.start, KeyEnd: m.key.end, ValueStart: m.val.start, ValueEnd: m.val.end})
	}
	return c.dst, members, true
}

// Member locates one member of the object AppendCompactObject compacted,
// by offsets into its output: the key between its quotes, escapes not
// decoded, and the compact value.
type Member struct {
	KeyStart, KeyEnd     int
	ValueStart, ValueEnd int
}

// MaxEmbedDepth is the depth to give AppendCompactObject for a document
// that will be a top-level member of a record: Parse refuses a record
// whose containers are nested maxDepth levels deep.
const MaxEmbedDepth = maxDepth - 1

// value compacts one JSON value at any depth.
func (c *compactor) value(depth int) error {
	if c.i >= len(c.src) {
		return c.errf("unexpected end of input, expected a value")
	}
	switch b := c.src[c.i]; {
	case b == '"':
		return c.str()
	case b == '{' || b == '[':
		if limit := c.depthLimit(); depth >= limit {
			return c.errf("nesting deeper than %d", limit)
		}
		closeB := byte('}')
		if b == '[' {
			closeB = ']'
		}
		c.i++
		c.ws()
		if c.i < len(c.src) && c.src[c.i] == closeB {
			c.i++
			return nil
		}
		for {
			c.ws()
			if b == '{' {
				if c.i >= len(c.src) || c.src[c.i] != '"' {
					return c.errf("expected string key")
				}
				if err := c.str(); err != nil {
					return err
				}
				c.ws()
				if c.i >= len(c.src) || c.src[c.i] != ':' {
					return c.errf("expected ':' after object key")
				}
				c.i++
				c.ws()
			}
			if err := c.value(depth + 1); err != nil {
				return err
			}
			c.ws()
			if c.i >= len(c.src) {
				return c.errf("unexpected end of input in %s", containerName(b))
			}
			if c.src[c.i] == ',' {
				c.i++
				continue
			}
			if c.src[c.i] == closeB {
				c.i++
				return nil
			}
			return c.errf("expected ',' or '%c' in %s, found %q", closeB, containerName(b), c.src[c.i])
		}
	case b == '-' || (b >= '0' && b <= '9'):
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	default:
		return c.errf("unexpected character %q, expected a value", b)
	}
}

func containerName(open byte) string {
	if open == '{' {
		return "object"
	}
	return "array"
}

func (c *compactor) literal(lit string) error {
	if len(c.src)-c.i < len(lit) || string(c.src[c.i:c.i+len(lit)]) != lit {
		return c.errf("invalid literal, expected %s", lit)
	}
	c.i += len(lit)
	return nil
}

// number validates a JSON number, whose literal is copied unchanged, so
// 1.0 stays 1.0 and 12345678901234567890 keeps every digit.
func (c *compactor) number() error {
	src := c.src
	i := c.i
	if i < len(src) && src[i] == '-' {
		i++
	}
	if i >= len(src) {
		return c.errf("truncated number")
	}
	switch {
	case src[i] == '0':
		i++
	case src[i] >= '1' && src[i] <= '9':
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
	default:
		return c.errf("invalid number")
	}
	if i < len(src) && src[i] == '.' {
		i++
		d := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		if i == d {
			c.i = i
			return c.errf("invalid number: no digits after '.'")
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		d := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		if i == d {
			c.i = i
			return c.errf("invalid number: no digits in exponent")
		}
	}
	c.i = i
	return nil
}

// str validates one string including its quotes, which is copied as is.
func (c *compactor) str() error {
	src := c.src
	i := c.i + 1
	for {
		// Fast scan over the common bytes, eight at a time.
		i += PlainRun(src[i:], false)
		if i >= len(src) {
			c.i = i
			return c.errf("unterminated string")
		}
		switch b := src[i]; {
		case b == '"':
			c.i = i + 1
			return nil
		case b < 0x20:
			c.i = i
			return c.errf("control character %#02x in string", b)
		default: // backslash
			if i+1 >= len(src) {
				c.i = i
				return c.errf("unterminated escape")
			}
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(src) || !isHex4(src[i+2:i+6]) {
					c.i = i
					return c.errf("invalid \\u escape")
				}
				i += 6
			default:
				c.i = i
				return c.errf("invalid escape \\%c", src[i+1])
			}
		}
	}
}

// PlainRun returns the length of the run at the start of b that holds no
// '"', no '\\' and no control character (and, when ascii is set, no byte of
// a multi-byte UTF-8 sequence): the bytes a string's content is copied over
// without a look. Strings are most of a record's bytes, so the run is found
// eight bytes at a time (SWAR): a byte is flagged when it equals '"' or
// '\\', is below 0x20 or (ascii) has its high bit set; borrows can only
// flag bytes after a flagged one, so the lowest flag is exact. The record's
// scanner and PutAuditEvents' decoder share it.
func PlainRun(b []byte, ascii bool) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	var high uint64 // every bit when high bytes end the run
	if ascii {
		high = ^uint64(0)
	}
	n := 0
	for len(b)-n >= 8 {
		w := binary.LittleEndian.Uint64(b[n:])
		q := w ^ (ones * '"')
		bs := w ^ (ones * '\\')
		mask := ((q - ones) &^ q) | ((bs - ones) &^ bs) | ((w - ones*0x20) &^ w) | (w & high)
		if mask &= highs; mask != 0 {
			return n + bits.TrailingZeros64(mask)/8
		}
		n += 8
	}
	for n < len(b) {
		if c := b[n]; c == '"' || c == '\\' || c < 0x20 || ascii && c >= 0x80 {
			break
		}
		n++
	}
	return n
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// --- Helpers over validated compact JSON -------------------------------

// SkipValue and SkipString are exported so that other decoders of compact
// JSON (the PutAuditEvents decoder) walk values with the same code as Parse.
func SkipValue(b []byte, i int) int { return skipValue(b, i) }

// SkipString returns the index just past the string starting at b[i].
func SkipString(b []byte, i int) int { return skipString(b, i) }

// skipValue returns the index just past the value that starts at b[i].
// b must be valid compact JSON.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		i += j
		// Count preceding backslashes: an odd number escapes this quote.
		n := 0
		for k := i - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
}

// eachMember calls fn with the raw key (between the quotes, escapes kept) and
// the value of every member of the compact object obj, in order, until fn
// returns false. Non-objects are ignored.
func eachMember(obj []byte, fn func(key, val []byte) bool) {
	if len(obj) < 2 || obj[0] != '{' {
		return
	}
	i := 1
	for i < len(obj) && obj[i] != '}' {
		ke := skipString(obj, i)
		key := obj[i+1 : ke-1]
		vs := ke + 1 // skip ':'
		ve := skipValue(obj, vs)
		if !fn(key, obj[vs:ve]) {
			return
		}
		i = ve
		if i < len(obj) && obj[i] == ',' {
			i++
		}
	}
}

// eachElem calls fn for every element of the compact array arr.
// Non-arrays are ignored.
func eachElem(arr []byte, fn func(val []byte)) {
	if len(arr) < 2 || arr[0] != '[' {
		return
	}
	i := 1
	for i < len(arr) && arr[i] != ']' {
		e := skipValue(arr, i)
		fn(arr[i:e])
		i = e
		if i < len(arr) && arr[i] == ',' {
			i++
		}
	}
}

// keyIs reports whether a raw key equals name once its escapes are decoded.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	return unescape(raw) == name
}

// member returns the value of the last member of obj named name (last wins,
// as in encoding/json and JavaScript), or nil.
func getMember(obj []byte, name string) []byte {
	var v []byte
	eachMember(obj, func(k, val []byte) bool {
		if keyIs(k, name) {
			v = val
		}
		return true
	})
	return v
}

// stringValue decodes a compact JSON string value. ok is false when v is not
// a string (the extracted view then falls back to "").
func stringValue(v []byte) (s string, ok bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	return unescape(inner), true
}

// str is stringValue without the ok flag.
func str(v []byte) string {
	s, _ := stringValue(v)
	return s
}

// unescape decodes the JSON escapes in the body of a validated string.
// Lone or mismatched surrogates become U+FFFD, as encoding/json does.
func unescape(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch b[i+1] {
		case '"', '\\', '/':
			out = append(out, b[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hexRune(b[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2 = hexRune(b[i+2 : i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					i += 6
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		}
		i += 2
	}
	return string(out)
}

func hexRune(h []byte) rune {
	n, err := strconv.ParseUint(string(h), 16, 32)
	if err != nil {
		return utf8.RuneError
	}
	return rune(n)
}
