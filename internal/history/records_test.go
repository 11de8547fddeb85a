package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/event"
)

// TestRecordStoreDictionariesSurviveRestart: with dictionaries renewed
// every few records, blocks compressed with each of them stay readable,
// record for record, after the history is closed and opened again (the
// dictionaries are stored with the blocks that use them).
func TestRecordStoreDictionariesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir+"/journal")
	defer j.Close()
	h := openHistory(t, dir+"/history", j, Options{})
	h.codec.minSample, h.codec.renewEvery = 3, 7
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, j: j, h: h}
	want := map[string][]byte{}
	var ids []string
	for batch := range 12 {
		var recs [][]byte
		for i := range 5 {
			id := fmt.Sprintf("ev-%02d-%d", batch, i)
			r := mgmt(id, testNow.Add(-time.Duration(batch*5+i)*time.Minute)).json()
			want[id] = r
			ids = append(ids, id)
			recs = append(recs, r)
		}
		e.append(recs...) // one indexing batch each
	}
	dicts, err := loadDicts(h.db)
	if err != nil {
		t.Fatal(err)
	}
	if len(dicts) < 5 {
		t.Fatalf("%d dictionaries stored, want at least 5 (one per 7 records)", len(dicts))
	}
	check := func(h *History) {
		t.Helper()
		p, err := h.Lookup(context.Background(), Query{Region: "us-east-1", MaxResults: 50})
		if err != nil {
			t.Fatal(err)
		}
		var got []event.LookupEvent
		got = append(got, p.Events...)
		for p.NextToken != "" {
			if p, err = h.Lookup(context.Background(), Query{Region: "us-east-1", MaxResults: 50, NextToken: p.NextToken}); err != nil {
				t.Fatal(err)
			}
			got = append(got, p.Events...)
		}
		if len(got) != len(ids) {
			t.Fatalf("lookup returned %d events, want %d", len(got), len(ids))
		}
		for i, ev := range got {
			if ev.EventID != ids[i] {
				t.Fatalf("event %d is %s, want %s", i, ev.EventID, ids[i])
			}
			r, err := event.Parse(want[ev.EventID])
			if err != nil {
				t.Fatal(err)
			}
			if ev.CloudTrailEvent != string(r.Raw) {
				t.Fatalf("event %s came back as %s, want %s", ev.EventID, ev.CloudTrailEvent, r.Raw)
			}
		}
	}
	check(h)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openHistory(t, dir+"/history", j, Options{})
	defer h.Close()
	check(h)
}

// sealRecords builds a block of recs (sequence numbers first, first+2, ...)
// with c.
func sealRecords(t testing.TB, c *codec, first uint64, recs [][]byte) sealedBlock {
	t.Helper()
	bb := &blockBuilder{}
	for i, r := range recs {
		bb.add(first+uint64(2*i), testNow, r)
	}
	sb, err := c.seal(bb)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// FuzzOpenBlock: a block read from disk is parsed and decompressed without
// panicking or reading outside what it decompressed, whatever its bytes;
// and records sealed into a block come back byte for byte.
func FuzzOpenBlock(f *testing.F) {
	plain, err := newCodec(map[uint32][]byte{})
	if err != nil {
		f.Fatal(err)
	}
	withDict, err := newCodec(map[uint32][]byte{1: bytes.Repeat([]byte(`{"eventVersion":"1.09","eventName":"Get"}`), 64)})
	if err != nil {
		f.Fatal(err)
	}
	recs := [][]byte{mgmt("a", testNow).json(), mgmt("b", testNow).json(), []byte("{}")}
	for _, c := range []*codec{plain, withDict} {
		sb := sealRecords(f, c, 10, recs)
		f.Add(sb.value, bytes.Join(recs, []byte{0}))
		f.Add(sb.value[:len(sb.value)/2], []byte("x"))
	}
	f.Add([]byte{blockVersion, 1, 0, 5}, []byte{})
	f.Add(binary.AppendUvarint([]byte{blockVersion}, 1<<40), []byte{0, 0})
	f.Fuzz(func(t *testing.T, value, joined []byte) {
		for _, c := range []*codec{plain, withDict} {
			var d decodedBlock
			if err := c.open(10, value, &d); err == nil {
				for _, s := range d.seqs {
					r, ok := d.record(s)
					if !ok || len(r) > len(d.raw) {
						t.Fatalf("record %d of an opened block: %d bytes, found %v", s, len(r), ok)
					}
				}
			}
			// Round trip.
			in := bytes.Split(joined, []byte{0})
			sb := sealRecords(t, c, 100, in)
			if err := c.open(sb.first, sb.value, &d); err != nil {
				t.Fatalf("opening a block just sealed: %v", err)
			}
			for i, r := range in {
				got, ok := d.record(100 + uint64(2*i))
				if !ok || !bytes.Equal(got, r) {
					t.Fatalf("record %d: got %q (%v), want %q", i, got, ok, r)
				}
			}
			if _, ok := d.record(101); ok {
				t.Fatal("a block returned a record for a sequence number it does not hold")
			}
		}
	})
}

// TestOpenRefusesTheOlderLayout: a database written with the layout before
// the record store (Pebble's default comparer) is refused with what to do,
// not misread.
func TestOpenRefusesTheOlderLayout(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir+"/history", &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	j := openJournal(t, dir+"/journal")
	defer j.Close()
	h, err := Open(context.Background(), dir+"/history", j, Options{Logger: testLogger()})
	if err == nil {
		_ = h.Close()
		t.Fatal("a database of the older layout was opened")
	}
	if !strings.Contains(err.Error(), "older key layout") || !strings.Contains(err.Error(), "move") {
		t.Fatalf("error %q does not say what to do", err)
	}
}

// TestBlockCacheBoundsItsBytes: the cache of decoded blocks keeps the most
// recently used within its capacity and never holds more.
func TestBlockCacheBoundsItsBytes(t *testing.T) {
	c := newBlockCache(100)
	mk := func(first uint64) *decodedBlock {
		return &decodedBlock{first: first, seqs: []uint64{first}, ends: []int{20}, raw: make([]byte, 20)}
	}
	for i := range uint64(5) {
		c.put(mk(i))
	}
	if c.get(0) == nil {
		t.Fatal("block 0 was evicted before the cache was over capacity")
	}
	c.put(mk(5)) // over: evicts the least recently used, block 1
	if c.get(1) != nil || c.get(0) == nil || c.get(5) == nil {
		t.Fatal("the cache did not evict the least recently used block")
	}
	if c.size > c.capacity {
		t.Fatalf("cache holds %d bytes, capacity %d", c.size, c.capacity)
	}
	big := &decodedBlock{first: 9, raw: make([]byte, 60)}
	c.put(big)
	if c.get(9) != nil {
		t.Fatal("a block over a quarter of the capacity was cached")
	}
	var nilCache *blockCache
	nilCache.put(mk(1))
	if nilCache.get(1) != nil {
		t.Fatal("a nil cache returned a block")
	}
}
