package history

import (
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/zstd"
)

// The record store keeps the records themselves apart from the index, in
// compressed blocks keyed by journal sequence number:
//
//	'r' firstSeq (8 bytes BE)                -> block (see below)
//	'x' orderedTime(newest) firstSeq (16 B)  -> empty (retention: blocks by their newest event)
//	'm' "dict" id (4 bytes BE)               -> raw zstd dictionary content
//
// Why apart, and why blocks:
//
//   - An index entry is a few dozen bytes, a record ~1.3 KB. Kept as the
//     value of an index key, records were most of what every flush and
//     compaction copied and re-compressed: more than half the indexing CPU
//     went there. A block is written once, a few KB compressed, and its key
//     is a sequence number, so a batch's blocks are one contiguous run.
//   - CloudTrail records compress well only together: alone, zstd gets
//     ~1.3 KB down to ~600 B; in a block of ~32 KB behind a dictionary of
//     the installation's own records, to ~170 B, less than CloudTrail's own
//     gzip log files (~195 B for the same events). The dictionary is raw
//     content (sample records), which costs nothing to build and does as
//     well here as a trained one.
//   - A lookup needs one record of a block: decompressing 32 KB takes
//     ~20-30 µs, and a scan keeps the block it decoded last, so a page of a
//     time-range lookup (consecutive sequence numbers) decodes one or two.
//
// Block format (version 1):
//
//	byte      version (1)
//	uvarint   count
//	count ×   uvarint seq-firstSeq, uvarint length
//	rest      one zstd frame of the records concatenated in that order
//
// Sequence numbers in a block ascend but need not be dense: entries that
// are not history material, and duplicates, are not stored.
const (
	prefixRecords = 'r'
	prefixExpiry  = 'x'

	blockVersion = 1
	// blockTarget is the raw size at which a block is closed.
	blockTarget = 32 << 10
	// maxBlockRaw bounds what one block may decompress to: a block holds at
	// most one record over blockTarget, and records are at most the
	// journal's 1 MiB entry.
	maxBlockRaw = 4 << 20
	// dictSize is the dictionary content taken from sample records.
	dictSize = 112 << 10
	// dictMinSample is the least number of records a batch needs to supply
	// a dictionary; dictRenewEvery is how many records a dictionary serves
	// before the next batch that can replaces it, so that it follows the
	// workload.
	dictMinSample  = 512
	dictRenewEvery = 1 << 20
)

var metaDictPrefix = []byte("mdict")

func recordKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixRecords}, seq)
}

func expiryKey(newest time.Time, first uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixExpiry}, orderedTime(newest))
	return binary.BigEndian.AppendUint64(k, first)
}

func dictKey(id uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), metaDictPrefix...), id)
}

// codec compresses and decompresses blocks. Its dictionaries only grow;
// a new one comes with a new encoder and decoder, swapped in under mu.
type codec struct {
	mu    sync.RWMutex
	dicts map[uint32][]byte
	cur   uint32 // dictionary new blocks use; 0 = none
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	// sinceDict counts records compressed with cur (in memory only).
	sinceDict int
	// minSample and renewEvery are dictMinSample and dictRenewEvery;
	// tests lower them.
	minSample, renewEvery int
}

func newCodec(dicts map[uint32][]byte) (*codec, error) {
	c := &codec{dicts: dicts, minSample: dictMinSample, renewEvery: dictRenewEvery}
	for id := range dicts {
		c.cur = max(c.cur, id)
	}
	if err := c.rebuild(); err != nil {
		return nil, err
	}
	return c, nil
}

// rebuild makes the encoder for c.cur and a decoder knowing every
// dictionary. Callers hold mu (or own c exclusively).
func (c *codec) rebuild() error {
	eopts := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0))}
	if c.cur != 0 {
		eopts = append(eopts, zstd.WithEncoderDictRaw(c.cur, c.dicts[c.cur]))
	}
	enc, err := zstd.NewWriter(nil, eopts...)
	if err != nil {
		return fmt.Errorf("history record codec: %w", err)
	}
	dopts := []zstd.DOption{zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBlockRaw), zstd.WithDecodeAllCapLimit(true)}
	for id, d := range c.dicts {
		dopts = append(dopts, zstd.WithDecoderDictRaw(id, d))
	}
	dec, err := zstd.NewReader(nil, dopts...)
	if err != nil {
		_ = enc.Close()
		return fmt.Errorf("history record codec: %w", err)
	}
	// The replaced encoder and decoder are not closed: a lookup may be in
	// DecodeAll on them right now. Used through EncodeAll and DecodeAll
	// only, they own no goroutines, and the collector takes them.
	c.enc, c.dec = enc, dec
	return nil
}

func (c *codec) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.enc != nil {
		_ = c.enc.Close()
		c.dec.Close()
		c.enc, c.dec = nil, nil
	}
}

// maybeNewDict starts a new dictionary from samples when there is none yet
// or the current one has served dictRenewEvery records. It returns the new
// dictionary's ID and content, to be stored with the blocks that first use
// it (0, nil if none).
func (c *codec) maybeNewDict(samples [][]byte) (uint32, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(samples) < c.minSample || (c.cur != 0 && c.sinceDict < c.renewEvery) {
		return 0, nil, nil
	}
	// Records spread evenly over the batch, whole, up to dictSize.
	var total int
	for _, s := range samples {
		total += len(s)
	}
	stride := max(1, total/dictSize)
	d := make([]byte, 0, dictSize)
	for i := 0; i < len(samples) && len(d) < dictSize; i += stride {
		d = append(d, samples[i][:min(len(samples[i]), dictSize-len(d))]...)
	}
	if len(d) < 8 {
		return 0, nil, nil
	}
	id := c.cur + 1
	c.dicts[id] = d
	old := c.cur
	c.cur = id
	if err := c.rebuild(); err != nil {
		delete(c.dicts, id)
		c.cur = old
		return 0, nil, err
	}
	c.sinceDict = 0
	return id, d, nil
}

// dropDict forgets dictionary id, which could not be stored: new blocks go
// back to the previous one.
func (c *codec) dropDict(id uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != id {
		return
	}
	delete(c.dicts, id)
	c.cur = 0
	for d := range c.dicts {
		c.cur = max(c.cur, d)
	}
	if err := c.rebuild(); err != nil {
		c.enc, c.dec = nil, nil // seal and open fail from now on
	}
}

// blockBuilder accumulates records into one block.
type blockBuilder struct {
	first   uint64
	newest  time.Time
	header  []byte
	raw     []byte
	n       int
	lastSeq uint64
}

func (bb *blockBuilder) add(seq uint64, t time.Time, rec []byte) {
	if bb.n == 0 {
		bb.first = seq
	}
	bb.header = binary.AppendUvarint(bb.header, seq-bb.first)
	bb.header = binary.AppendUvarint(bb.header, uint64(len(rec)))
	bb.raw = append(bb.raw, rec...)
	if t.After(bb.newest) || bb.n == 0 {
		bb.newest = t
	}
	bb.n++
	bb.lastSeq = seq
}

// sealedBlock is a finished block: its keys and value.
type sealedBlock struct {
	first  uint64
	newest time.Time
	value  []byte
}

// seal compresses the builder's records into a block value.
func (c *codec) seal(bb *blockBuilder) (sealedBlock, error) {
	c.mu.RLock()
	enc := c.enc
	c.mu.RUnlock()
	if enc == nil {
		return sealedBlock{}, errors.New("history record codec is closed")
	}
	v := make([]byte, 0, len(bb.header)+len(bb.raw)/4+16)
	v = append(v, blockVersion)
	v = binary.AppendUvarint(v, uint64(bb.n))
	v = append(v, bb.header...)
	v = enc.EncodeAll(bb.raw, v)
	return sealedBlock{first: bb.first, newest: bb.newest, value: v}, nil
}

// counted notes that n records were compressed with the current dictionary.
func (c *codec) counted(n int) {
	c.mu.Lock()
	c.sinceDict += n
	c.mu.Unlock()
}

// decodedBlock is a block opened for reading.
type decodedBlock struct {
	first uint64
	seqs  []uint64
	ends  []int // record i is raw[ends[i-1]:ends[i]]
	raw   []byte
}

// open parses and decompresses a block value stored under first. dst is
// reused for the decompressed bytes.
func (c *codec) open(first uint64, v []byte, dst *decodedBlock) error {
	if len(v) < 2 || v[0] != blockVersion {
		return fmt.Errorf("record block %d: unknown format", first)
	}
	rest := v[1:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n == 0 || n > uint64(len(rest)) {
		return fmt.Errorf("record block %d: malformed count", first)
	}
	rest = rest[w:]
	dst.first = first
	dst.seqs, dst.ends = dst.seqs[:0], dst.ends[:0]
	total := 0
	for range n {
		d, w1 := binary.Uvarint(rest)
		if w1 <= 0 {
			return fmt.Errorf("record block %d: malformed header", first)
		}
		l, w2 := binary.Uvarint(rest[w1:])
		if w2 <= 0 || l > maxBlockRaw || total+int(l) > maxBlockRaw {
			return fmt.Errorf("record block %d: malformed header", first)
		}
		rest = rest[w1+w2:]
		total += int(l)
		dst.seqs = append(dst.seqs, first+d)
		dst.ends = append(dst.ends, total)
	}
	c.mu.RLock()
	dec := c.dec
	c.mu.RUnlock()
	if dec == nil {
		return errors.New("history record codec is closed")
	}
	if cap(dst.raw) < total {
		dst.raw = make([]byte, 0, total)
	}
	// WithDecodeAllCapLimit: a frame that would decompress to more than
	// the header says fails instead of growing the buffer.
	raw, err := dec.DecodeAll(rest, dst.raw[:0:total])
	if err != nil {
		return fmt.Errorf("record block %d: %w", first, err)
	}
	if len(raw) != total {
		return fmt.Errorf("record block %d: decompressed to %d bytes, header says %d", first, len(raw), total)
	}
	dst.raw = raw
	return nil
}

// record returns the record with sequence number seq, if the block has it.
func (d *decodedBlock) record(seq uint64) ([]byte, bool) {
	lo, hi := 0, len(d.seqs)
	for lo < hi {
		m := (lo + hi) / 2
		if d.seqs[m] < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(d.seqs) || d.seqs[lo] != seq {
		return nil, false
	}
	start := 0
	if lo > 0 {
		start = d.ends[lo-1]
	}
	return d.raw[start:d.ends[lo]:d.ends[lo]], true
}

// recordReader reads records by sequence number, keeping the block it
// decoded last, and sharing decoded blocks with other readers through
// cache (nil: none). Not safe for concurrent use.
type recordReader struct {
	c     *codec
	r     pebble.Reader
	cache *blockCache
	it    *pebble.Iterator
	blk   *decodedBlock
	key   []byte
}

// get returns the record at seq; found is false if no block holds it
// (swept after its index entry was read). The result is read-only, and
// valid for as long as the caller keeps it (blocks are never reused).
func (rr *recordReader) get(seq uint64) (rec []byte, found bool, err error) {
	if b := rr.blk; b != nil && seq >= b.first && len(b.seqs) > 0 && seq <= b.seqs[len(b.seqs)-1] {
		rec, found = b.record(seq)
		return rec, found, nil
	}
	if rr.it == nil {
		rr.it, err = rr.r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRecords}, UpperBound: []byte{prefixRecords + 1}})
		if err != nil {
			return nil, false, fmt.Errorf("reading record %d: %w", seq, err)
		}
	}
	rr.key = binary.BigEndian.AppendUint64(append(rr.key[:0], prefixRecords), seq+1)
	if !rr.it.SeekLT(rr.key) {
		return nil, false, rr.it.Error()
	}
	k := rr.it.Key()
	if len(k) != 9 {
		return nil, false, fmt.Errorf("reading record %d: malformed block key %x", seq, k)
	}
	first := binary.BigEndian.Uint64(k[1:])
	rr.blk = rr.cache.get(first)
	if rr.blk == nil {
		v, err := rr.it.ValueAndErr()
		if err != nil {
			return nil, false, fmt.Errorf("reading record %d: %w", seq, err)
		}
		b := &decodedBlock{}
		if err := rr.c.open(first, v, b); err != nil {
			return nil, false, fmt.Errorf("reading record %d: %w", seq, err)
		}
		rr.blk = b
		rr.cache.put(b)
	}
	rec, found = rr.blk.record(seq)
	return rec, found, nil
}

// blockCache keeps the most recently decoded record blocks for every
// lookup: a page of a common attribute value touches a dozen blocks, and
// the next page, the console's refresh and other callers' pages touch the
// same ones again; decoding them was most of a lookup's CPU. A block's
// contents never change (the same key is only ever rewritten with the
// same records, after a crash), so a cached block is never stale; one
// that retention has since deleted is only asked for by a lookup whose
// snapshot still holds it.
type blockCache struct {
	mu       sync.Mutex
	capacity int // bytes of decoded records
	size     int
	blocks   map[uint64]*list.Element // of *decodedBlock
	lru      list.List                // front: most recently used
}

func newBlockCache(capacity int) *blockCache {
	return &blockCache{capacity: capacity, blocks: map[uint64]*list.Element{}}
}

func (c *blockCache) get(first uint64) *decodedBlock {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.blocks[first]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*decodedBlock)
}

func (c *blockCache) put(b *decodedBlock) {
	if c == nil || len(b.raw) > c.capacity/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.blocks[b.first]; ok {
		return
	}
	c.blocks[b.first] = c.lru.PushFront(b)
	c.size += len(b.raw)
	for c.size > c.capacity {
		old := c.lru.Back()
		ob := old.Value.(*decodedBlock)
		c.lru.Remove(old)
		delete(c.blocks, ob.first)
		c.size -= len(ob.raw)
	}
}

func (rr *recordReader) close() error {
	if rr.it == nil {
		return nil
	}
	err := rr.it.Close()
	rr.it = nil
	return err
}

// loadDicts reads every stored dictionary.
func loadDicts(db *pebble.DB) (map[uint32][]byte, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: metaDictPrefix, UpperBound: prefixEnd(metaDictPrefix)})
	if err != nil {
		return nil, fmt.Errorf("reading record dictionaries: %w", err)
	}
	defer it.Close()
	dicts := map[uint32][]byte{}
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) != len(metaDictPrefix)+4 {
			return nil, fmt.Errorf("reading record dictionaries: malformed key %x", k)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("reading record dictionaries: %w", err)
		}
		id := binary.BigEndian.Uint32(k[len(metaDictPrefix):])
		if id == 0 {
			return nil, fmt.Errorf("reading record dictionaries: dictionary ID 0")
		}
		dicts[id] = append([]byte(nil), v...)
	}
	return dicts, it.Error()
}
