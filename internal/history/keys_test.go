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
