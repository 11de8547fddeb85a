package event

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// MaxRecordSize bounds one record read by Reader. CloudTrail's own limits
// are 256 KB per event (1 MB for "large" event data stores); 8 MiB leaves
// room for hand-made records while keeping a corrupt file from exhausting
// memory.
const MaxRecordSize = 8 << 20

// Reader streams CloudTrail records out of the file shapes importers meet,
// detected from the bytes, not the file name:
//
//   - gzip (magic 1f 8b, any number of members) or plain;
//   - a CloudTrail delivery file {"Records":[...]} (other top-level members
//     are skipped);
//   - a JSON array of records [...];
//   - a single record {...};
//   - JSON Lines or any whitespace-separated sequence of the above.
//
// An object is a delivery envelope when it has a "Records" member whose
// value is an array; any other object is a record. Records are streamed: a
// 50 MB delivery file is never held in memory, only one record at a time.
//
// Reader only finds record boundaries; it does not validate records. A
// malformed record inside a well-formed envelope comes out as its raw bytes
// and Parse reports it, so one bad record does not stop an import. Errors
// from Next are about the stream itself (bad gzip, not JSON, truncation) and
// end it.
type Reader struct {
	br   *bufio.Reader
	src  io.Reader
	init bool
	off  int64 // bytes consumed from the (decompressed) stream

	state    int
	envelope bool // the array being streamed is an envelope's Records
	first    bool // no element read yet from the current array
	rec      []byte
	err      error
}

const (
	stTop = iota
	stArray
)

// NewReader returns a Reader over r. Detection happens on the first Next.
func NewReader(r io.Reader) *Reader {
	return &Reader{src: r}
}

// ReadRecords calls fn with the raw bytes of every record in r, in file
// order, and stops at the first error from the stream or from fn. The slice
// passed to fn is only valid during the call (Parse copies what it keeps).
func ReadRecords(r io.Reader, fn func(raw []byte) error) error {
	rd := NewReader(r)
	for {
		raw, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
}

// Next returns the raw bytes of the next record, or io.EOF after the last.
// The slice is valid until the next call to Next.
func (d *Reader) Next() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	raw, err := d.next()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = d.errf("truncated input: %w", io.ErrUnexpectedEOF)
		}
		d.err = err
		return nil, err
	}
	return raw, nil
}

func (d *Reader) errf(format string, args ...any) error {
	return fmt.Errorf("reading CloudTrail records at byte %d: "+format, append([]any{d.off}, args...)...)
}

func (d *Reader) start() error {
	d.init = true
	br := bufio.NewReaderSize(d.src, 64<<10)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("reading CloudTrail records: opening gzip stream: %w", err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	// A UTF-8 byte order mark is not JSON but some exporters write one.
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
		d.off += 3
	}
	d.br = br
	return nil
}

func (d *Reader) next() ([]byte, error) {
	if !d.init {
		if err := d.start(); err != nil {
			return nil, err
		}
	}
	for {
		switch d.state {
		case stTop:
			c, err := d.skipWS()
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			if err != nil {
				return nil, d.wrap(err)
			}
			switch c {
			case '[':
				d.consume()
				d.state, d.envelope, d.first = stArray, false, true
			case '{':
				rec, isEnvelope, err := d.object()
				if err != nil {
					return nil, err
				}
				if !isEnvelope {
					return rec, nil
				}
				d.state, d.envelope, d.first = stArray, true, true
			default:
				return nil, d.errf("expected a JSON object or array, found %q", c)
			}
		case stArray:
			c, err := d.skipWS()
			if err != nil {
				return nil, d.wrap(noEOF(err))
			}
			if c == ']' {
				d.consume()
				d.state = stTop
				if d.envelope {
					if err := d.finishObject(); err != nil {
						return nil, err
					}
				}
				continue
			}
			if !d.first {
				if c != ',' {
					return nil, d.errf("expected ',' or ']' between records, found %q", c)
				}
				d.consume()
				if _, err := d.skipWS(); err != nil {
					return nil, d.wrap(noEOF(err))
				}
			}
			d.first = false
			rec, err := d.value(d.rec[:0], true)
			if err != nil {
				return nil, err
			}
			d.rec = rec
			return rec, nil
		}
	}
}

// object reads a top-level object. If it is a delivery envelope, it stops
// right after the '[' of its Records array and reports isEnvelope; otherwise
// it returns the whole object as a record.
func (d *Reader) object() (rec []byte, isEnvelope bool, err error) {
	buf := append(d.rec[:0], '{')
	d.consume()
	for n := 0; ; n++ {
		c, err := d.skipWS()
		if err != nil {
			return nil, false, d.wrap(noEOF(err))
		}
		if c == '}' {
			d.consume()
			buf = append(buf, '}')
			d.rec = buf
			return buf, false, nil
		}
		if n > 0 {
			if c != ',' {
				return nil, false, d.errf("expected ',' or '}' in object, found %q", c)
			}
			d.consume()
			buf = append(buf, ',')
			if c, err = d.skipWS(); err != nil {
				return nil, false, d.wrap(noEOF(err))
			}
		}
		if c != '"' {
			return nil, false, d.errf("expected an object key, found %q", c)
		}
		ks := len(buf)
		if buf, err = d.value(buf, true); err != nil {
			return nil, false, err
		}
		key := buf[ks+1 : len(buf)-1]
		if c, err = d.skipWS(); err != nil {
			return nil, false, d.wrap(noEOF(err))
		}
		if c != ':' {
			return nil, false, d.errf("expected ':' after object key, found %q", c)
		}
		d.consume()
		buf = append(buf, ':')
		if c, err = d.skipWS(); err != nil {
			return nil, false, d.wrap(noEOF(err))
		}
		if c == '[' && keyIs(key, "Records") {
			d.consume()
			d.rec = buf
			return nil, true, nil
		}
		if buf, err = d.value(buf, true); err != nil {
			return nil, false, err
		}
		if len(buf) > MaxRecordSize {
			return nil, false, d.errf("a record is larger than %d bytes", MaxRecordSize)
		}
	}
}

// finishObject skips the members after an envelope's Records array, up to
// and including the envelope's closing '}'.
func (d *Reader) finishObject() error {
	for {
		c, err := d.skipWS()
		if err != nil {
			return d.wrap(noEOF(err))
		}
		switch c {
		case '}':
			d.consume()
			return nil
		case ',':
			d.consume()
			if c, err = d.skipWS(); err != nil {
				return d.wrap(noEOF(err))
			}
			if c != '"' {
				return d.errf("expected an object key, found %q", c)
			}
			if _, err := d.value(nil, false); err != nil {
				return err
			}
			if c, err = d.skipWS(); err != nil {
				return d.wrap(noEOF(err))
			}
			if c != ':' {
				return d.errf("expected ':' after object key, found %q", c)
			}
			d.consume()
			if _, err = d.skipWS(); err != nil {
				return d.wrap(noEOF(err))
			}
			if _, err := d.value(nil, false); err != nil {
				return err
			}
		default:
			return d.errf("expected ',' or '}' after Records, found %q", c)
		}
	}
}

// skipWS discards whitespace and returns the next byte without consuming it.
func (d *Reader) skipWS() (byte, error) {
	for {
		c, err := d.br.ReadByte()
		if err != nil {
			return 0, err
		}
		if !isWS(c) {
			_ = d.br.UnreadByte()
			return c, nil
		}
		d.off++
	}
}

func (d *Reader) consume() {
	_, _ = d.br.ReadByte()
	d.off++
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (d *Reader) wrap(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return d.errf("truncated input: %w", err)
	}
	return d.errf("%w", err)
}

// value reads one JSON value starting at the current (non-space) byte and
// appends its bytes to dst when keep is set. It finds the value's end by
// tracking strings and bracket depth only; full validation is Parse's job.
// It works on the bufio buffer a chunk at a time rather than byte by byte.
func (d *Reader) value(dst []byte, keep bool) ([]byte, error) {
	depth := 0
	inStr, esc := false, false
	size := 0
	first := true
	for {
		if _, err := d.br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) && !first && depth == 0 && !inStr {
				// A bare literal or number ending the input.
				return dst, nil
			}
			return nil, d.wrap(noEOF(err))
		}
		chunk, _ := d.br.Peek(d.br.Buffered())
		i := 0
		done := false
		for ; i < len(chunk); i++ {
			c := chunk[i]
			if first {
				first = false
				switch c {
				case '"':
					inStr = true
				case '{', '[':
					depth++
				}
				continue
			}
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
					if depth == 0 {
						i++
						done = true
					}
				}
				if done {
					break
				}
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					done = true // end of a bare scalar inside a container
				} else {
					depth--
					if depth == 0 {
						i++
						done = true
					}
				}
			case ',', ' ', '\t', '\n', '\r':
				if depth == 0 {
					done = true
				}
			}
			if done {
				break
			}
		}
		if keep {
			dst = append(dst, chunk[:i]...)
		}
		size += i
		_, _ = d.br.Discard(i)
		d.off += int64(i)
		if size > MaxRecordSize {
			return nil, d.errf("a record is larger than %d bytes", MaxRecordSize)
		}
		if done {
			return dst, nil
		}
	}
}
