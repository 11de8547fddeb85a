package delivery

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Log file object headers. CloudTrail stores its log files with these
// (the body is gzip; Content-Encoding says so, so that HTTP clients that
// honour it can read the JSON directly).
const (
	ContentType     = "application/json"
	ContentEncoding = "gzip"
)

// LogFileKey is a log file's object key, CloudTrail's layout (reference §4.1):
//
//	[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz
//
// at is the delivery time; both the date folders and the file name's
// timestamp come from it (minute precision, UTC).
func LogFileKey(prefix, account, region string, at time.Time, unique string) string {
	at = at.UTC()
	var b strings.Builder
	if prefix != "" {
		b.WriteString(prefix)
		b.WriteByte('/')
	}
	fmt.Fprintf(&b, "AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%s.json.gz",
		account, region, at.Format("2006/01/02"), account, region, at.Format("20060102T1504Z"), unique)
	return b.String()
}

// LogFileNameRE matches log file names; it is the pattern AWS's own
// CloudTrail processing library uses.
var LogFileNameRE = regexp.MustCompile(`.+_CloudTrail_[\w\-]+_\d{8}T\d{4}Z_[\w]+\.json\.gz$`)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// uniqueString is the 16-character [A-Za-z0-9] part of a log file name.
// CloudTrail's is random; Cairn's is derived from the trail and the
// journal range the file holds, so that redelivering the same range after a
// crash overwrites the same object instead of adding a duplicate.
func uniqueString(trailARN string, first, last uint64, region string) string {
	h := sha256.New()
	h.Write([]byte(trailARN))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint64(nil, first))
	h.Write(binary.BigEndian.AppendUint64(nil, last))
	h.Write([]byte(region))
	sum := h.Sum(nil)
	out := make([]byte, 16)
	for i := range out {
		// 256 mod 62 bias is irrelevant: the string only needs to differ.
		out[i] = base62[sum[i]%62]
	}
	return string(out)
}

// fileBuilder streams one log file, {"Records":[r1,r2,...]}, through gzip
// into memory, and keeps an upper bound of the finished file's size so
// that a file can be cut before it would exceed the size limit.
//
// The bytes it produces depend only on the sequence of add calls, which is
// what lets a replay after a crash rebuild a byte-identical file.
type fileBuilder struct {
	buf     bytes.Buffer
	gz      *gzip.Writer
	records int
	raw     int64 // uncompressed bytes written
	// unflushed is how many uncompressed bytes went in since the last
	// explicit Flush; the compressor may still hold up to that much.
	unflushed int64
	// sum hashes the uncompressed bytes and newest/oldest bound the
	// records' eventTime: what a digest file lists for the log file.
	sum            hash.Hash
	newest, oldest time.Time
}

// fileOverhead bounds what is written after the last record: "]}", the
// final deflate block and the gzip trailer, with room to spare.
const fileOverhead = 64

func newFileBuilder() *fileBuilder {
	f := &fileBuilder{sum: sha256.New()}
	f.gz, _ = gzip.NewWriterLevel(&f.buf, gzip.DefaultCompression) // the level is valid
	f.write([]byte(`{"Records":[`))
	return f
}

func (f *fileBuilder) write(p []byte) {
	_, _ = f.gz.Write(p) // writes to a bytes.Buffer cannot fail
	f.sum.Write(p)
	f.raw += int64(len(p))
	f.unflushed += int64(len(p))
}

// fits reports whether a record of n bytes can be added while keeping the
// finished file within max bytes. A file always takes its first record,
// whatever its size. fits may flush the compressor to learn the exact size
// so far, so it must be called before every add, in replays too.
func (f *fileBuilder) fits(n int, max int64) bool {
	if f.records == 0 {
		return true
	}
	// Deflate never expands data by more than 5 bytes per 16 KiB stored
	// block, hence the 1/1024 margin.
	bound := func() int64 {
		pending := f.unflushed + int64(n) + 1
		return int64(f.buf.Len()) + pending + pending/1024 + fileOverhead
	}
	if bound() <= max {
		return true
	}
	if f.unflushed > 0 {
		_ = f.gz.Flush()
		f.unflushed = 0
	}
	return bound() <= max
}

func (f *fileBuilder) add(record []byte, eventTime time.Time) {
	if f.records > 0 {
		f.write([]byte{','})
	}
	f.write(record)
	f.records++
	if !eventTime.IsZero() {
		if f.newest.IsZero() || eventTime.After(f.newest) {
			f.newest = eventTime
		}
		if f.oldest.IsZero() || eventTime.Before(f.oldest) {
			f.oldest = eventTime
		}
	}
}

// finish closes the JSON and the gzip stream and returns the file.
func (f *fileBuilder) finish() []byte {
	f.write([]byte(`]}`))
	_ = f.gz.Close()
	return f.buf.Bytes()
}
