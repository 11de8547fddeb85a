package journal

import "encoding/binary"

// Key layout inside the Pebble database. One byte of prefix keeps the three
// kinds of records in disjoint ranges, so an iterator over entries never
// sees a cursor and the last entry can be found with a single SeekLT.
//
//	'e' + uint64 big-endian seq   -> entry bytes, exactly as appended
//	'c' + cursor name             -> uint64 big-endian position
//	'm' + name                    -> journal metadata (see metaTrimmed)
//
// Big-endian sequence numbers sort numerically under Pebble's bytewise
// comparer, and consecutive appends produce strictly increasing keys, which
// lets Pebble flush non-overlapping sstables and move them down the LSM
// without rewriting them.
const (
	prefixEntry  = 'e'
	prefixCursor = 'c'
	prefixMeta   = 'm'

	entryKeyLen = 9

	// metaTrimmed holds the highest sequence number removed by Trim. It keeps
	// sequence numbers from being reused after a restart even when every
	// entry has been trimmed away.
	metaTrimmed = "mtrimmed"
	// metaProbe is written (synced) when the journal reopens its database
	// after a fault, to prove the write path works before accepting appends.
	metaProbe = "mprobe"
)

// appendEntryKey appends the key of entry seq to dst.
func appendEntryKey(dst []byte, seq uint64) []byte {
	dst = append(dst, prefixEntry)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func entryKey(seq uint64) []byte { return appendEntryKey(make([]byte, 0, entryKeyLen), seq) }

// parseEntryKey returns the sequence number of an entry key.
func parseEntryKey(k []byte) (uint64, bool) {
	if len(k) != entryKeyLen || k[0] != prefixEntry {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// entryUpperBound is the first key after every entry key.
func entryUpperBound() []byte { return []byte{prefixEntry + 1} }

func cursorKey(name string) []byte {
	k := make([]byte, 0, 1+len(name))
	k = append(k, prefixCursor)
	return append(k, name...)
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
