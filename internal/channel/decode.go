package channel

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/event"
)

// PutAuditEvents bodies are decoded by a single pass written for their one
// shape, {"auditEvents":[{"id":..,"eventData":..,"eventDataChecksum":..}]},
// because encoding/json cost more than a tenth of the server's CPU under
// load: its Decoder copies the body into its own buffer, validates it in a
// byte-at-a-time state machine, then walks it again through reflection and
// allocates every string separately.
//
// The fast pass only accepts what encoding/json decodes to the same
// events: the exact member names (encoding/json also matches them without
// regard to case), each at most once, no other members, string values,
// valid UTF-8 and nothing but whitespace after the object. Anything else,
// including every malformed body, goes to the encoding/json decoder, so
// that every error and every corner of its semantics (case-insensitive
// names, the last of duplicate members winning, nulls, invalid UTF-8
// replaced by U+FFFD) stays exactly what it was. FuzzDecodeFast checks the
// two against each other.

// fastDecoder is one pass over a trimmed request body.
type fastDecoder struct {
	src []byte
	i   int
	// data holds the unescaped eventData strings of every event back to
	// back; AuditEvent.EventData slices it.
	data []byte
	// compact makes the decoder compact each eventData as it reads it
	// (compactData), when it can; spans holds the members it found.
	compact bool
	spans   []event.Member
}

// decodeAuditEventsFast decodes body (already trimmed of surrounding white
// space) or reports ok false when the body is anything but a well-formed
// request of the common shape, 1 to MaxEventsPerRequest events. The
// eventData of the events is unescaped into data, which should have room
// for len(body) bytes; the events refer to the returned buffer.
func decodeAuditEventsFast(body, data []byte) (events []AuditEvent, buf []byte, ok bool) {
	d := fastDecoder{src: body, data: data[:0]}
	events, ok = d.decode()
	return events, d.data, ok
}

func (d *fastDecoder) decode() (events []AuditEvent, ok bool) {
	if !d.byte('{') || !d.key("auditEvents") || !d.byte(':') || !d.byte('[') {
		return nil, false
	}
	type span struct{ start, end int }
	type raw struct {
		id, data, checksum span // checksum.end < 0: absent
		// spans are the members of data when compactData compacted
		// it (spans.end >= 0); src is where the string is in the body.
		spans span
		src   int
	}
	var (
		list [MaxEventsPerRequest]raw
		n    int
		// text holds the ids and checksums, which become one string.
		textBuf [4096]byte
		text    = textBuf[:0]
	)
	d.ws()
	if d.peek() == ']' {
		return nil, false // empty: the slow path words the error
	}
	for {
		if n == MaxEventsPerRequest {
			return nil, false
		}
		if !d.byte('{') {
			return nil, false
		}
		var (
			e    = raw{checksum: span{0, -1}, spans: span{0, -1}}
			seen uint8
		)
		for {
			name, ok := d.name()
			if !ok || !d.byte(':') {
				return nil, false
			}
			switch string(name) {
			case "id":
				if seen&1 != 0 {
					return nil, false
				}
				seen |= 1
				start := len(d.data)
				if !d.str() {
					return nil, false
				}
				e.id = span{len(text), len(text) + len(d.data) - start}
				text = append(text, d.data[start:]...)
				d.data = d.data[:start]
			case "eventData":
				if seen&2 != 0 {
					return nil, false
				}
				seen |= 2
				d.ws()
				start, sp := len(d.data), len(d.spans)
				e.src = d.i
				// An event with a checksum needs its eventData as sent.
				if d.compact && seen&4 == 0 && d.compactData() {
					e.spans = span{sp, len(d.spans)}
				} else if !d.str() {
					return nil, false
				}
				e.data = span{start, len(d.data)}
			case "eventDataChecksum":
				if seen&4 != 0 {
					return nil, false
				}
				seen |= 4
				start := len(d.data)
				if !d.str() {
					return nil, false
				}
				e.checksum = span{len(text), len(text) + len(d.data) - start}
				text = append(text, d.data[start:]...)
				d.data = d.data[:start]
			default:
				return nil, false
			}
			if d.byte(',') {
				continue
			}
			if !d.byte('}') {
				return nil, false
			}
			break
		}
		if seen&3 != 3 {
			return nil, false // a missing id or eventData: the slow path words the error
		}
		if e.spans.end >= 0 && e.checksum.end >= 0 {
			// The checksum came after eventData, which compactData had
			// already compacted: read it again as sent. It is the last
			// thing in d.data (ids and checksums move to text).
			d.data, d.spans = d.data[:e.data.start], d.spans[:e.spans.start]
			at := d.i
			d.i = e.src
			if !d.str() {
				return nil, false
			}
			e.data, e.spans = span{e.data.start, len(d.data)}, span{0, -1}
			d.i = at
		}
		list[n] = e
		n++
		if d.byte(',') {
			continue
		}
		if !d.byte(']') {
			return nil, false
		}
		break
	}
	if !d.byte('}') {
		return nil, false
	}
	d.ws()
	if d.i != len(d.src) {
		return nil, false
	}
	all := string(text)
	events = make([]AuditEvent, n)
	checksums := make([]string, n)
	for i, e := range list[:n] {
		events[i] = AuditEvent{ID: all[e.id.start:e.id.end], EventData: d.data[e.data.start:e.data.end:e.data.end]}
		if e.spans.end >= 0 {
			events[i].compacted = true
			events[i].spans = d.spans[e.spans.start:e.spans.end:e.spans.end]
		}
		if e.checksum.end >= 0 {
			checksums[i] = all[e.checksum.start:e.checksum.end]
			events[i].EventDataChecksum = &checksums[i]
		}
	}
	return events, true
}

func (d *fastDecoder) ws() {
	for d.i < len(d.src) {
		switch d.src[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDecoder) peek() byte {
	if d.i < len(d.src) {
		return d.src[d.i]
	}
	return 0
}

// byte skips white space and then c, reporting whether c was there.
func (d *fastDecoder) byte(c byte) bool {
	d.ws()
	if d.i < len(d.src) && d.src[d.i] == c {
		d.i++
		return true
	}
	return false
}

// key reads the member name want, which has no escapes.
func (d *fastDecoder) key(want string) bool {
	name, ok := d.name()
	return ok && string(name) == want
}

// name reads a member name without escapes (names with escapes take the
// slow path). The returned slice aliases the body.
func (d *fastDecoder) name() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.src) || d.src[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.src); j++ {
		switch c := d.src[j]; {
		case c == '"':
			d.i = j + 1
			return d.src[start:j], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// str reads a JSON string and appends its unescaped value to d.data,
// exactly as encoding/json unquotes it. Invalid UTF-8 (which encoding/json
// replaces by U+FFFD) reports false.
//
// An eventData string is JSON inside JSON: a backslash every few bytes
// (every quote of the inner document is escaped), so the runs between
// escapes are short and copying each with append (a memmove call) cost
// more than finding it. Instead every eight bytes loaded for the scan are
// stored at once to the output, and the output advances by as many of
// them as are plain; the bytes stored past that point are overwritten
// next. The value is never longer than its escaped form, so room for the
// rest of the body (plus the eight bytes of a store) is enough.
func (d *fastDecoder) str() bool {
	d.ws()
	src := d.src
	if d.i >= len(src) || src[d.i] != '"' {
		return false
	}
	i := d.i + 1
	dst := d.data
	if need := len(src) - i + 8; cap(dst)-len(dst) < need {
		dst = slices.Grow(dst, need)
	}
	o := len(dst)
	dst = dst[:cap(dst)]
	for {
		i, o = copyPlain(dst, src, i, o)
		if i >= len(src) {
			return false
		}
		switch c := src[i]; {
		case c == '"':
			d.i = i + 1
			d.data = dst[:o]
			return true
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			o += copy(dst[o:], src[i:i+size])
			i += size
		default: // backslash
			if i+1 >= len(src) {
				return false
			}
			switch src[i+1] {
			case '"', '\\', '/':
				dst[o] = src[i+1]
			case 'b':
				dst[o] = '\b'
			case 'f':
				dst[o] = '\f'
			case 'n':
				dst[o] = '\n'
			case 'r':
				dst[o] = '\r'
			case 't':
				dst[o] = '\t'
			case 'u':
				r, ok := hex4(src[i+2:])
				if !ok {
					return false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair is one character; anything else
					// becomes U+FFFD, and what follows is read on its own.
					if len(src) >= i+6 && src[i] == '\\' && src[i+1] == 'u' {
						if r2, ok := hex4(src[i+2:]); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								o += utf8.EncodeRune(dst[o:], dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				o += utf8.EncodeRune(dst[o:], r)
				continue
			default:
				return false
			}
			i, o = i+2, o+1
		}
	}
}

// copyPlain copies the plain bytes of src from i to dst from o (a string's
// bytes up to its first '"', '\\', control character or non-ASCII byte) and
// returns where each stopped. Eight bytes are loaded and stored at a time
// and the output advances by as many of them as are plain, so dst needs
// eight bytes of room past the longest output (the bytes stored past the
// stop are overwritten next). Both of the server's decoders use it.
func copyPlain(dst, src []byte, i, o int) (int, int) {
	for len(src)-i >= 8 {
		w := binary.LittleEndian.Uint64(src[i:])
		binary.LittleEndian.PutUint64(dst[o:], w)
		if m := plainMask(w); m != 0 {
			n := bits.TrailingZeros64(m) / 8
			return i + n, o + n
		}
		i, o = i+8, o+8
	}
	for i < len(src) {
		if c := src[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		dst[o] = src[i]
		i, o = i+1, o+1
	}
	return i, o
}

// plainMask flags, in the high bit of each byte of w (eight bytes of a
// string, little-endian), the bytes that end a run of plain ASCII as
// event.PlainRun(b, true) sees them: '"', '\\', control characters and
// bytes with the high bit set. Borrows can only flag bytes after a
// flagged one, so the lowest flag is exact.
func plainMask(w uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return (((q - ones) &^ q) | ((bs - ones) &^ bs) | ((w - ones*0x20) &^ w) | w) & highs
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
