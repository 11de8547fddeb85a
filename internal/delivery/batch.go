package delivery

import (
	"slices"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
)

// batch is the selected events of one journal range, compressed as they
// are read into one log file per region.
type batch struct {
	sel      Selection
	maxBytes int64
	// first is the range's first sequence number (the cursor plus one);
	// last the last one read (first-1 while nothing was read).
	first, last uint64
	files       map[string]*fileBuilder
	records     int
	// fullRegion is the region whose file refused the record that ended
	// the batch (the refusal may have flushed that file's compressor,
	// which a replay must repeat to produce identical bytes).
	fullRegion string
	// firstSeen is when the first selected event was read (monotonic).
	firstSeen time.Time
	// invalid counts entries that are not parseable records.
	invalid int
}

func newBatch(sel Selection, pos uint64, maxBytes int64) *batch {
	return &batch{sel: sel, maxBytes: maxBytes, first: pos + 1, last: pos, files: map[string]*fileBuilder{}}
}

func (b *batch) empty() bool { return b.records == 0 }

// take offers the journal entry seq to the batch. It returns false, taking
// nothing, when the entry is selected but would push its region's file
// over the size limit: the batch ends before it. With force (replays) a
// selected entry is always taken, after the same size check so that the
// compressor sees the same calls.
func (b *batch) take(seq uint64, entry []byte, force bool) bool {
	rec, err := event.Parse(entry)
	if err != nil {
		// The journal only holds records intake validated; a damaged one
		// is skipped (and counted) rather than stalling the trail forever.
		b.invalid++
		b.last = seq
		return true
	}
	if !b.sel.Selects(rec) {
		b.last = seq
		return true
	}
	region := b.sel.fileRegion(rec)
	f := b.files[region]
	if f == nil {
		f = newFileBuilder()
		b.files[region] = f
	}
	if !f.fits(len(entry), b.maxBytes) && !force {
		b.fullRegion = region
		return false
	}
	f.add(entry, rec.EventTime)
	b.records++
	b.last = seq
	if b.firstSeen.IsZero() {
		b.firstSeen = time.Now()
	}
	return true
}

// regions lists the regions with a file, sorted.
func (b *batch) regions() []string {
	out := make([]string, 0, len(b.files))
	for r, f := range b.files {
		if f.records > 0 {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// finish completes every file: region -> gzip bytes. For a replay,
// fullRegion repeats the compressor flush the original refusal caused.
func (b *batch) finish(fullRegion string) map[string][]byte {
	if f := b.files[fullRegion]; f != nil && f.unflushed > 0 {
		_ = f.gz.Flush()
		f.unflushed = 0
	}
	out := make(map[string][]byte, len(b.files))
	for r, f := range b.files {
		if f.records > 0 {
			out[r] = f.finish()
		}
	}
	return out
}

// fileInfo describes each finished file for digests: region -> SHA-256 of
// the uncompressed bytes and the records' event time range. Call it after
// finish.
func (b *batch) fileInfo() map[string]fileInfo {
	out := make(map[string]fileInfo, len(b.files))
	for r, f := range b.files {
		if f.records > 0 {
			var fi fileInfo
			copy(fi.sha256[:], f.sum.Sum(nil))
			fi.newest, fi.oldest = f.newest, f.oldest
			out[r] = fi
		}
	}
	return out
}

type fileInfo struct {
	sha256         [32]byte
	newest, oldest time.Time
}
