package channel

import (
	"slices"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/event"
)

// An eventData string is a JSON document inside a JSON string. Taking it in
// used to cost two full passes over every event's bytes: one to unescape
// the string (fastDecoder.str), one to validate the document and drop its
// white space (event.AppendCompactObject), each with its own copy. The
// server's PutAuditEvents decoder (Service.decodeAuditEvents) does both in
// one pass for the common shape, straight from the escaped bytes of the
// body: compactData below.
//
// It accepts only what the two passes accept with the same result: the
// compact document, and the same top-level members, byte for byte. It
// reports false, having consumed nothing, for anything else: an outer
// escape other than \" \\ \/ \n \t \r, invalid UTF-8, an invalid or
// truncated document, nesting deeper than maxCompactDepth, or anything
// but an object. The caller then takes the two passes as before, so every
// refusal, and the treatment of every odd input, is what it was.
// FuzzCompactData checks the two against each other.

// maxCompactDepth bounds the nesting compactData follows; deeper documents
// take the two passes (and are refused by the record parser's limit).
const maxCompactDepth = 64

// compactScan is one eventData string being compacted: src is the body,
// i the position in it; the output goes to dst[:o], which has room for at
// least len(src)-i+8 more bytes (the document is never longer than its
// escaped form, and the eight are for word-sized stores).
type compactScan struct {
	src []byte
	i   int
	dst []byte
	o   int
	// spans are the top-level members, as event.AppendCompactObject gives
	// them, with offsets from base.
	spans []event.Member
	base  int
}

// compactData reads the eventData string at d.i (white space before it
// allowed) and, when it holds a JSON object that the two passes take,
// appends the object's compact form to d.data and its members to
// d.spans, and returns true. Otherwise it returns false and leaves d as
// it was.
func (d *fastDecoder) compactData() bool {
	d.ws()
	src := d.src
	if d.i >= len(src) || src[d.i] != '"' {
		return false
	}
	dst := d.data
	if need := len(src) - d.i + 8; cap(dst)-len(dst) < need {
		dst = slices.Grow(dst, need)
	}
	c := compactScan{src: src, i: d.i + 1, dst: dst[:cap(dst)], o: len(dst), spans: d.spans, base: len(dst)}
	c.ws()
	if c.i >= len(src) || src[c.i] != '{' || !c.object(1, true) {
		return false
	}
	c.ws()
	// The document must end where the string does.
	if c.i >= len(src) || src[c.i] != '"' {
		return false
	}
	d.i = c.i + 1
	d.data = c.dst[:c.o]
	d.spans = c.spans
	return true
}

// ws skips the document's white space: ' ' as is, or the escapes \n, \t
// and \r of the outer string (a tab or a line break of the document).
func (c *compactScan) ws() {
	for c.i < len(c.src) {
		switch c.src[c.i] {
		case ' ':
			c.i++
		case '\\':
			if c.i+1 < len(c.src) && (c.src[c.i+1] == 'n' || c.src[c.i+1] == 't' || c.src[c.i+1] == 'r') {
				c.i += 2
				continue
			}
			return
		default:
			return
		}
	}
}

func (c *compactScan) put(b byte) {
	c.dst[c.o] = b
	c.o++
}

// value compacts one value of the document.
func (c *compactScan) value(depth int) bool {
	if c.i >= len(c.src) {
		return false
	}
	switch b := c.src[c.i]; {
	case b == '\\':
		// Of the escapes that start a value, only \" (a string) can.
		return c.i+1 < len(c.src) && c.src[c.i+1] == '"' && c.str()
	case b == '{':
		return c.object(depth, false)
	case b == '[':
		return c.array(depth)
	case b == '-' || b >= '0' && b <= '9':
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	}
	return false
}

// object compacts the object at c.i ('{'); top records its members.
func (c *compactScan) object(depth int, top bool) bool {
	if depth >= maxCompactDepth {
		return false
	}
	c.put('{')
	c.i++
	c.ws()
	if c.i < len(c.src) && c.src[c.i] == '}' {
		c.put('}')
		c.i++
		return true
	}
	for {
		c.ws()
		if c.i+1 >= len(c.src) || c.src[c.i] != '\\' || c.src[c.i+1] != '"' {
			return false
		}
		ks := c.o + 1
		if !c.str() {
			return false
		}
		ke := c.o - 1
		c.ws()
		if c.i >= len(c.src) || c.src[c.i] != ':' {
			return false
		}
		c.put(':')
		c.i++
		c.ws()
		vs := c.o
		if !c.value(depth + 1) {
			return false
		}
		if top {
			c.spans = append(c.spans, event.Member{KeyStart: ks - c.base, KeyEnd: ke - c.base, ValueStart: vs - c.base, ValueEnd: c.o - c.base})
		}
		c.ws()
		if c.i >= len(c.src) {
			return false
		}
		switch c.src[c.i] {
		case ',':
			c.put(',')
			c.i++
			continue
		case '}':
			c.put('}')
			c.i++
			return true
		}
		return false
	}
}

func (c *compactScan) array(depth int) bool {
	if depth >= maxCompactDepth {
		return false
	}
	c.put('[')
	c.i++
	c.ws()
	if c.i < len(c.src) && c.src[c.i] == ']' {
		c.put(']')
		c.i++
		return true
	}
	for {
		c.ws()
		if !c.value(depth + 1) {
			return false
		}
		c.ws()
		if c.i >= len(c.src) {
			return false
		}
		switch c.src[c.i] {
		case ',':
			c.put(',')
			c.i++
			continue
		case ']':
			c.put(']')
			c.i++
			return true
		}
		return false
	}
}

func (c *compactScan) literal(lit string) bool {
	if len(c.src)-c.i < len(lit) || string(c.src[c.i:c.i+len(lit)]) != lit {
		return false
	}
	c.o += copy(c.dst[c.o:], lit)
	c.i += len(lit)
	return true
}

// number copies a number literal of the document unchanged, checking it
// as the compactor does.
func (c *compactScan) number() bool {
	src, i := c.src, c.i
	if src[i] == '-' {
		i++
	}
	if i >= len(src) {
		return false
	}
	switch {
	case src[i] == '0':
		i++
	case src[i] >= '1' && src[i] <= '9':
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(src) && src[i] == '.' {
		i++
		d := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		if i == d {
			return false
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
			return false
		}
	}
	c.o += copy(c.dst[c.o:], src[c.i:i])
	c.i = i
	return true
}

// str copies a string of the document, which starts at c.i with the
// outer escape \" and ends with the next one. Its bytes go out as the
// document has them: escapes of the document stay escapes (\\\" in the
// body is \" in the document), plain bytes eight at a time as in
// fastDecoder.str.
func (c *compactScan) str() bool {
	src, dst := c.src, c.dst
	i, o := c.i+2, c.o
	dst[o] = '"'
	o++
	for {
		i, o = copyPlain(dst, src, i, o)
		if i+1 >= len(src) {
			return false
		}
		switch b := src[i]; {
		case b >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			o += copy(dst[o:], src[i:i+size])
			i += size
			continue
		case b != '\\':
			// A '"' ends the outer string inside the document's string;
			// a control character is invalid in both.
			return false
		}
		switch src[i+1] {
		case '"': // the end of the document's string
			dst[o] = '"'
			c.i, c.o = i+2, o+1
			return true
		case '/':
			dst[o] = '/'
			i, o = i+2, o+1
		case '\\': // an escape of the document: \ and what it escapes
			dst[o] = '\\'
			i, o = i+2, o+1
			if i >= len(src) {
				return false
			}
			switch e := src[i]; e {
			case '/', 'b', 'f', 'n', 'r', 't':
				dst[o] = e
				i, o = i+1, o+1
			case 'u':
				if len(src)-i < 5 || !isHex4(src[i+1:i+5]) {
					return false
				}
				o += copy(dst[o:], src[i:i+5])
				i += 5
			case '\\':
				// \\\" or \\\\ in the body: \" or \\ in the document.
				if i+1 >= len(src) {
					return false
				}
				switch src[i+1] {
				case '"', '\\', '/':
					dst[o] = src[i+1]
					i, o = i+2, o+1
				default:
					return false
				}
			default:
				return false
			}
		default:
			// \n, \t, \r, \b, \f and \u in the body are characters of
			// the document's string: control characters (invalid) or
			// anything else (left to the two passes).
			return false
		}
	}
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
