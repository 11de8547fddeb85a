package history

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// Positions sort newest first, then by journal sequence, last first, across
// the whole representable time range, including before 1970.
func TestPosOrder(t *testing.T) {
	times := []time.Time{
		maxTime, testNow.Add(time.Nanosecond), testNow, testNow.Add(-time.Millisecond),
		time.Unix(0, 0), time.Unix(-1, 0), time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC), minTime,
	}
	var prev pos
	for i, tm := range times {
		for j, seq := range []uint64{1 << 60, 1000, 1} {
			p := makePos(tm, seq)
			if (i > 0 || j > 0) && bytes.Compare(prev[:], p[:]) >= 0 {
				t.Fatalf("position of %v seq %d does not sort after the previous one", tm, seq)
			}
			if !p.time().Equal(tm) || p.seq() != seq {
				t.Fatalf("position of %v seq %d decodes to %v seq %d", tm, seq, p.time(), p.seq())
			}
			if posAt(tm) != makePos(tm, ^uint64(0)) {
				t.Fatalf("posAt(%v) is not the first position at that time", tm)
			}
			prev = p
		}
	}
	// Out-of-range times clamp instead of wrapping around.
	if makePos(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 1) != makePos(maxTime, 1) {
		t.Error("times after 2262 do not clamp")
	}
}

func TestPosNextPrev(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var p pos
		for i := range p {
			p[i] = byte(rng.IntN(3)) * 0x7f // many 0x00 and 0xfe/0xff carries
		}
		n, ok := p.next()
		if ok {
			if bytes.Compare(n[:], p[:]) <= 0 {
				t.Fatalf("next(%x) = %x", p, n)
			}
			if back, _ := n.prev(); back != p {
				t.Fatalf("prev(next(%x)) = %x", p, back)
			}
		}
	}
	var last pos
	for i := range last {
		last[i] = 0xff
	}
	if _, ok := last.next(); ok {
		t.Error("the last position has a next")
	}
	if _, ok := (pos{}).prev(); ok {
		t.Error("the first position has a prev")
	}
}

func TestPartitionKeys(t *testing.T) {
	p := makePos(testNow, 9)
	for _, region := range []string{"", "us-east-1", string(make([]byte, 300)), "a\x00b"} {
		for _, cat := range []byte{catDefault, catInsight} {
			k := appendEventKey(nil, region, cat, p)
			r, c, rest, ok := parsePart(k, prefixEvent)
			if !ok || r != region || c != cat || !bytes.Equal(rest, p[:]) {
				t.Errorf("parsePart(%q, %c) = %q %c %x %v", region, cat, r, c, rest, ok)
			}
		}
	}
	// No region's partition contains another's keys, even when one name
	// is a prefix of the other.
	a := appendPart(nil, prefixEvent, "us-east-1", catDefault)
	b := appendEventKey(nil, "us-east-10", catDefault, p)
	if bytes.HasPrefix(b, a) {
		t.Error("us-east-10 keys fall in the us-east-1 partition")
	}
	// Attribute values are length-prefixed: "ab" is not inside "a".
	va := appendAttrPrefix(nil, "r", catDefault, 'u', "a")
	vb := appendAttrPrefix(nil, "r", catDefault, 'u', "ab")
	if bytes.HasPrefix(vb, va) {
		t.Error("value ab falls in the range of value a")
	}
	for _, bad := range [][]byte{nil, {prefixEvent}, {prefixEvent, 5, 'a'}, {prefixAttr, 0, 'd'}, {prefixEvent, 0xff}} {
		if _, _, _, ok := parsePart(bad, prefixEvent); ok {
			t.Errorf("parsePart accepted %x", bad)
		}
	}
	if got := prefixEnd([]byte{1, 0xff, 0xff}); !bytes.Equal(got, []byte{2}) {
		t.Errorf("prefixEnd = %x", got)
	}
	if prefixEnd([]byte{0xff}) != nil {
		t.Error("prefixEnd of 0xff")
	}
}

// FuzzSplitKey: the prefix Pebble's filters and columnar blocks use is the
// attribute value's or the partition's for the keys that have a position,
// the whole key for the others, and within the key whatever its bytes; and
// the order of two keys is the order of their prefixes first (Pebble's
// rule for a Split).
func FuzzSplitKey(f *testing.F) {
	f.Add("us-east-1", "ConsoleLogin", []byte("\x00\x01"), byte(0))
	f.Add("", "", []byte{}, byte(1))
	f.Add("eu-west-3", "a\xffb", []byte{0xff, 0xff}, byte(2))
	f.Fuzz(func(t *testing.T, region, value string, raw []byte, kind byte) {
		p := makePos(testNow, uint64(len(raw)))
		var key []byte
		var want int
		switch kind % 4 {
		case 0:
			key = appendAttrPrefix(nil, region, catDefault, attrCode["EventName"], value)
			want = len(key)
			key = append(key, p[:]...)
		case 1:
			key = appendPart(nil, prefixEvent, region, catInsight)
			want = len(key)
			key = append(key, p[:]...)
		case 2:
			key = appendEventIDKey(nil, region, catDefault, value)
			want = len(key)
		default:
			key = raw
			want = -1
		}
		n := splitKey(key)
		if n < 0 || n > len(key) {
			t.Fatalf("splitKey(%x) = %d", key, n)
		}
		if want >= 0 && n != want {
			t.Fatalf("splitKey(%x) = %d, want %d", key, n, want)
		}
		if splitKey(key[:n]) != n {
			t.Fatalf("the prefix %x of %x splits at %d", key[:n], key, splitKey(key[:n]))
		}
		// Against a second key: bytewise order agrees with prefix-first order.
		other := appendAttrPrefix(nil, value, catDefault, attrCode["Username"], region)
		other = append(other, raw...)
		for _, pair := range [][2][]byte{{key, other}, {other, key}} {
			a, b := pair[0], pair[1]
			pa, pb := a[:splitKey(a)], b[:splitKey(b)]
			if c := bytes.Compare(pa, pb); c < 0 && bytes.Compare(a, b) >= 0 {
				t.Fatalf("prefix %x < %x but key %x >= %x", pa, pb, a, b)
			}
			if bytes.Compare(a, b) <= 0 && bytes.Compare(pa, pb) > 0 {
				t.Fatalf("key %x <= %x but prefix %x > %x", a, b, pa, pb)
			}
		}
	})
}
