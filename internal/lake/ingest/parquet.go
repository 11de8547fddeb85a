package ingest

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Parquet file settings. Row groups of 16,384 rows keep a writer's column
// buffers near 25 MB for CloudTrail's ~1.3 KB records (the whole row group
// is buffered before it is compressed; the server runs under a 320 MiB
// heap limit), and still give DuckDB and Trino units big enough to scan in
// parallel with statistics worth checking.
const (
	rowGroupRows = 16 << 10
	// bloomBitsPerValue: 10 bits per distinct eventid is a ~1% false
	// positive rate, which lets a needle query (WHERE eventid = ...) skip
	// nearly every row group without reading it.
	bloomBitsPerValue = 10
	// pageBytes is the size pages are cut at before compression. The
	// eventjson column is most of a file; 1 MiB pages give zstd some 800
	// records of context (18% smaller than the 256 KiB default on
	// generated records), while small columns never fill a page anyway.
	pageBytes = 1 << 20
	// createdBy is the application named in each file's footer.
	createdBy = "cairn"
	// Key-value metadata in each file's footer: the journal range it
	// holds, so that a file says where it came from even renamed.
	metaFirst = "cairn.journal.first"
	metaLast  = "cairn.journal.last"
)

// zstdCodec is shared by all writers; it pools its encoders.
var zstdCodec = &zstd.Codec{Level: zstd.SpeedDefault}

// rowTime is what a row type must tell the writer: its event time (the
// sort key) and its eventid.
type rowTime interface {
	Row | AuditRow
}

func timeOf[T rowTime](r *T) time.Time {
	switch r := any(r).(type) {
	case *Row:
		return r.EventTime
	case *AuditRow:
		return r.EventTime
	}
	return time.Time{}
}

// writerOptions are the options of every Lake file.
func writerOptions(first, last uint64) []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.Compression(zstdCodec),
		parquet.BloomFilters(parquet.SplitBlockFilter(bloomBitsPerValue, "eventid")),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.PageBufferSize(pageBytes),
		parquet.CreatedBy(createdBy, "lake", ""),
		parquet.SkipPageBounds("eventjson"),
		parquet.SkipPageBounds("eventjsonchecksum"),
		parquet.KeyValueMetadata(metaFirst, strconv.FormatUint(first, 10)),
		parquet.KeyValueMetadata(metaLast, strconv.FormatUint(last, 10)),
	}
}

// rowChunk is how many rows a chunk of a batch holds: batches grow by
// chunks, so that a row (a few hundred bytes) is never copied as the batch
// grows.
const rowChunk = 1024

// chunked is a growing list of rows in fixed-size chunks.
type chunked[T rowTime] struct {
	chunks [][]T
	n      int
}

func (c *chunked[T]) add(v *T) {
	if c.n%rowChunk == 0 {
		c.chunks = append(c.chunks, make([]T, 0, rowChunk))
	}
	last := len(c.chunks) - 1
	c.chunks[last] = append(c.chunks[last], *v)
	c.n++
}

func (c *chunked[T]) at(i int32) *T { return &c.chunks[i/rowChunk][i%rowChunk] }

func (c *chunked[T]) len() int { return c.n }

// chunkedOf wraps a slice (tests, merges).
func chunkedOf[T rowTime](rows []T) *chunked[T] {
	c := &chunked[T]{}
	for i := range rows {
		c.add(&rows[i])
	}
	return c
}

// sortOrder returns the indexes of rows in eventtime order (ties in
// journal order, which is the slice's order), without moving the rows,
// which are large.
func sortOrder[T rowTime](rows []T) []int32 {
	order := make([]int32, len(rows))
	for i := range order {
		order[i] = int32(i)
	}
	sortIndexes(chunkedOf(rows), order)
	return order
}

// sortIndexes orders idx (indexes into rows) by event time, ties in
// journal order.
func sortIndexes[T rowTime](rows *chunked[T], idx []int32) {
	slices.SortStableFunc(idx, func(a, b int32) int {
		return timeOf(rows.at(a)).Compare(timeOf(rows.at(b)))
	})
}

// encode writes rows (picked in order) as one Parquet file to w.
func encode[T rowTime](w io.Writer, rows *chunked[T], order []int32, first, last uint64) error {
	pw := parquet.NewGenericWriter[T](w, writerOptions(first, last)...)
	buf := make([]T, 0, 256)
	for _, i := range order {
		buf = append(buf, *rows.at(i))
		if len(buf) == cap(buf) {
			if _, err := pw.Write(buf); err != nil {
				return fmt.Errorf("writing parquet rows: %w", err)
			}
			clear(buf)
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := pw.Write(buf); err != nil {
			return fmt.Errorf("writing parquet rows: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("closing parquet file: %w", err)
	}
	return nil
}

// encodeBytes is encode into memory. Lake files take some 320 bytes an
// event; the buffer starts there so that it rarely grows.
func encodeBytes[T rowTime](rows []T, order []int32, first, last uint64) ([]byte, error) {
	return encodeChunked(chunkedOf(rows), order, first, last)
}

func encodeChunked[T rowTime](rows *chunked[T], order []int32, first, last uint64) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(order)*320 + 64<<10)
	if err := encode(&b, rows, order, first, last); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// readRows reads every row of a Lake file.
func readRows[T rowTime](r io.ReaderAt, size int64) ([]T, error) {
	rows, err := parquet.Read[T](r, size)
	if err != nil {
		return nil, fmt.Errorf("reading parquet file: %w", err)
	}
	return rows, nil
}
