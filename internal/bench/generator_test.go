package bench

import (
	"bytes"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/event"
)

var testEnd = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestGeneratorIsDeterministic(t *testing.T) {
	a := New(Options{Seed: 42, End: testEnd})
	b := New(Options{Seed: 42, End: testEnd})
	c := New(Options{Seed: 43, End: testEnd})
	var ra, rb, rc []byte
	for i := 0; i < 500; i++ {
		ra, rb, rc = a.Record(ra[:0]), b.Record(rb[:0]), c.Record(rc[:0])
		if !bytes.Equal(ra, rb) {
			t.Fatalf("record %d differs between two generators with the same seed:\n%s\n%s", i, ra, rb)
		}
	}
	if bytes.Equal(ra, rc) {
		t.Error("different seeds produced the same record")
	}
	ea := New(Options{Seed: 7, End: testEnd}).AuditEventData(nil)
	eb := New(Options{Seed: 7, End: testEnd}).AuditEventData(nil)
	if !bytes.Equal(ea, eb) {
		t.Error("eventData is not deterministic")
	}
}

// sizeStats generates n records and returns sorted sizes.
func sizes(n int, render func([]byte) []byte) []int {
	out := make([]int, n)
	var buf []byte
	for i := range out {
		buf = render(buf[:0])
		out[i] = len(buf)
	}
	sort.Ints(out)
	return out
}

func mean(s []int) float64 {
	sum := 0
	for _, v := range s {
		sum += v
	}
	return float64(sum) / float64(len(s))
}

// TestRecordSizeDistribution checks the shape STATS.md describes: mean
// about 1.3 KB (±20%), median near 1 KB, and a long tail reaching tens of KB.
func TestRecordSizeDistribution(t *testing.T) {
	g := New(Options{Seed: 1, End: testEnd})
	s := sizes(50_000, g.Record)
	m, med, p99, max := mean(s), s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
	t.Logf("records: mean %.0f median %d p99 %d max %d", m, med, p99, max)
	if m < 1300*0.8 || m > 1300*1.2 {
		t.Errorf("mean record size %.0f bytes, want 1300 ± 20%%", m)
	}
	if med < 800 || med > 1400 {
		t.Errorf("median %d bytes, want about 1 KB", med)
	}
	if max < 10_000 {
		t.Errorf("largest record %d bytes: no long tail", max)
	}
	if p99 > 10_000 {
		t.Errorf("p99 %d bytes: the tail is too fat", p99)
	}

	g = New(Options{Seed: 1, End: testEnd})
	s = sizes(20_000, g.AuditEventData)
	m = mean(s)
	t.Logf("eventData: mean %.0f median %d p99 %d max %d", m, s[len(s)/2], s[len(s)*99/100], s[len(s)-1])
	if m < 1300*0.8 || m > 1300*1.2 {
		t.Errorf("mean eventData size %.0f bytes, want about 1.3 KB", m)
	}
}

// TestRecordsAreValidManagementEvents parses every generated record as the
// server will and checks the spread of what LookupEvents filters on.
func TestRecordsAreValidManagementEvents(t *testing.T) {
	g := New(Options{Seed: 3, End: testEnd, Span: time.Hour, AccountID: "123456789012", Region: "eu-west-1"})
	tr := NewTracker(1)
	g.Track(tr)
	types := map[string]int{}
	errs := 0
	var buf []byte
	const n = 5_000
	for i := 0; i < n; i++ {
		buf = g.Record(buf[:0])
		rec, err := event.Parse(buf)
		if err != nil {
			t.Fatalf("record %d does not parse: %v\n%s", i, err, buf)
		}
		if !rec.IsManagementEvent() || rec.AWSRegion != "eu-west-1" || rec.RecipientAccountID != "123456789012" {
			t.Fatalf("record %d: category %s region %s account %s", i, rec.Category(), rec.AWSRegion, rec.RecipientAccountID)
		}
		if rec.EventTime.Before(testEnd.Add(-time.Hour)) || rec.EventTime.After(testEnd) {
			t.Fatalf("record %d: eventTime %v outside the span", i, rec.EventTime)
		}
		var v map[string]any
		if err := json.Unmarshal(buf, &v); err != nil {
			t.Fatalf("record %d is not JSON for encoding/json: %v", i, err)
		}
		types[rec.UserIdentityType]++
		if rec.ErrorCode != "" {
			errs++
		}
	}
	t.Logf("identity types %v, errors %d", types, errs)
	if types["IAMUser"] < n/3 || types["AssumedRole"] < n/4 || types["AWSService"] == 0 || types["Root"] == 0 {
		t.Errorf("identity types %v", types)
	}
	if errs < n/20 || errs > n/5 {
		t.Errorf("%d of %d records have an errorCode, want about 10%%", errs, n)
	}
	if tr.Records() != n {
		t.Errorf("tracker saw %d records", tr.Records())
	}
	probes := tr.Probes()
	for _, k := range event.AttributeKeys() {
		p := probes[k]
		if len(p) == 0 {
			t.Errorf("no probe values for %s", k)
			continue
		}
		t.Logf("%s: %v", k, p[:min(3, len(p))])
	}
	if ps := probes[event.AttrEventName]; len(ps) < 3 || ps[0].Count < 20*ps[len(ps)-1].Count {
		t.Errorf("event names are not skewed: %v", ps)
	}
	if len(probes[event.AttrEventID]) != eventIDSample {
		t.Errorf("%d sampled eventIDs", len(probes[event.AttrEventID]))
	}
}

// TestAuditEventDataPassesChannelValidation runs generated eventData
// through the channel package's own PutAuditEvents validation.
func TestAuditEventDataPassesChannelValidation(t *testing.T) {
	g := New(Options{Seed: 9, End: testEnd, AccountID: "123456789012"})
	env := &channel.Envelope{EventID: "6f2b0c0e-3a47-4f0e-9d4c-2b1f2f1f0a11", Region: "us-east-1", AccountID: "123456789012",
		ChannelARN: "arn:aws:cloudtrail:us-east-1:123456789012:channel/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c", IngestionTime: testEnd}
	var buf []byte
	for i := 0; i < 3000; i++ {
		buf = g.AuditEventData(buf[:0])
		if _, rej := channel.BuildRecord(buf, nil, env); rej != nil {
			t.Fatalf("eventData %d rejected: %v\n%s", i, rej, buf)
		}
	}
}
