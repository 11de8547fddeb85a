package history

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
)

func ids(p Page) []string {
	out := make([]string, 0, len(p.Events))
	for _, ev := range p.Events {
		out = append(out, ev.EventID)
	}
	return out
}

func wantIDs(t *testing.T, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got events %v, want %v", got, want)
	}
}

func TestLookupEachAttributeKey(t *testing.T) {
	e := newEnv(t, Options{})
	base := testNow.Add(-time.Hour)
	a := mgmt("ev-a", base)
	a.ReqParams = map[string]any{"instanceId": "i-0abc"}
	b := mgmt("ev-b", base.Add(time.Minute))
	b.Name, b.Source, b.User, b.AccessKey, b.ReadOnly = "CreateUser", "iam.amazonaws.com", "bob", "AKIABOB", ptr(false)
	b.ReqParams = map[string]any{"userName": "carol"}
	c := mgmt("ev-c", base.Add(2*time.Minute))
	c.ReqParams = map[string]any{"instanceId": "i-0def"}
	e.append(a.json(), b.json(), c.json())

	cases := []struct {
		key, value string
		want       []string
	}{
		{event.AttrEventID, "ev-b", []string{"ev-b"}},
		{event.AttrEventID, "nope", nil},
		{event.AttrEventName, "DescribeInstances", []string{"ev-c", "ev-a"}},
		{event.AttrEventName, "CreateUser", []string{"ev-b"}},
		{event.AttrEventName, "createuser", nil}, // exact, case-sensitive
		{event.AttrReadOnly, "true", []string{"ev-c", "ev-a"}},
		{event.AttrReadOnly, "false", []string{"ev-b"}},
		{event.AttrUsername, "bob", []string{"ev-b"}},
		{event.AttrUsername, "alice", []string{"ev-c", "ev-a"}},
		{event.AttrResourceType, "AWS::EC2::Instance", []string{"ev-c", "ev-a"}},
		{event.AttrResourceType, "AWS::IAM::User", []string{"ev-b"}},
		{event.AttrResourceName, "i-0abc", []string{"ev-a"}},
		{event.AttrResourceName, "carol", []string{"ev-b"}},
		{event.AttrEventSource, "iam.amazonaws.com", []string{"ev-b"}},
		{event.AttrEventSource, "ec2.amazonaws.com", []string{"ev-c", "ev-a"}},
		{event.AttrAccessKeyID, "AKIABOB", []string{"ev-b"}},
		{event.AttrAccessKeyID, "AKIAALICE", []string{"ev-c", "ev-a"}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.key] = true
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			p := e.lookup(Query{Region: "us-east-1", Attributes: []Attribute{{tc.key, tc.value}}})
			wantIDs(t, ids(p), tc.want...)
			if p.NextToken != "" {
				t.Errorf("unexpected NextToken on the only page")
			}
		})
	}
	for _, k := range event.AttributeKeys() {
		if !covered[k] {
			t.Errorf("attribute key %s not covered", k)
		}
	}
	// No attribute: everything, newest first; and the view is complete.
	p := e.lookup(Query{Region: "us-east-1"})
	wantIDs(t, ids(p), "ev-c", "ev-b", "ev-a")
	got := p.Events[1]
	if got.EventName != "CreateUser" || got.ReadOnly != "false" || got.Username != "bob" || got.AccessKeyID != "AKIABOB" ||
		got.EventSource != "iam.amazonaws.com" || !got.EventTime.Equal(base.Add(time.Minute)) ||
		len(got.Resources) != 1 || got.Resources[0] != (event.LookupResource{ResourceType: "AWS::IAM::User", ResourceName: "carol"}) ||
		got.CloudTrailEvent != string(mustParse(t, b.json()).Raw) {
		t.Errorf("event view: %+v", got)
	}
}

func mustParse(t testing.TB, b []byte) *event.Record {
	t.Helper()
	r, err := event.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLookupTimeRangeInclusive(t *testing.T) {
	e := newEnv(t, Options{})
	base := testNow.Add(-24 * time.Hour).Truncate(time.Second)
	var recs [][]byte
	for i := range 10 {
		recs = append(recs, mgmt(fmt.Sprintf("t%d", i), base.Add(time.Duration(i)*time.Minute)).json())
	}
	e.append(recs...)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	for _, attrs := range [][]Attribute{nil, {{event.AttrEventName, "DescribeInstances"}}, {{event.AttrEventName, "DescribeInstances"}, {event.AttrUsername, "alice"}}} {
		t.Run(fmt.Sprint(len(attrs), "attributes"), func(t *testing.T) {
			q := Query{Region: "us-east-1", Attributes: attrs, StartTime: at(3), EndTime: at(6)}
			wantIDs(t, ids(e.lookup(q)), "t6", "t5", "t4", "t3")
			q = Query{Region: "us-east-1", Attributes: attrs, StartTime: at(4), EndTime: at(4)}
			wantIDs(t, ids(e.lookup(q)), "t4")
			q = Query{Region: "us-east-1", Attributes: attrs, StartTime: at(4).Add(time.Millisecond), EndTime: at(5).Add(-time.Millisecond)}
			wantIDs(t, ids(e.lookup(q)))
			q = Query{Region: "us-east-1", Attributes: attrs, StartTime: at(8)}
			wantIDs(t, ids(e.lookup(q)), "t9", "t8")
			q = Query{Region: "us-east-1", Attributes: attrs, EndTime: at(1)}
			wantIDs(t, ids(e.lookup(q)), "t1", "t0")
		})
	}
	_, err := e.h.Lookup(context.Background(), Query{Region: "us-east-1", StartTime: at(5), EndTime: at(4)})
	if !awsproto.IsCode(err, "InvalidTimeRangeException") {
		t.Errorf("EndTime before StartTime: got %v", err)
	}
}

func TestLookupANDsAttributes(t *testing.T) {
	e := newEnv(t, Options{})
	base := testNow.Add(-time.Hour)
	var recs [][]byte
	// alice and bob each call DescribeInstances and CreateUser, alternating.
	for i := range 40 {
		r := mgmt(fmt.Sprintf("e%02d", i), base.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			r.User, r.AccessKey = "bob", "AKIABOB"
		}
		if i%4 >= 2 {
			r.Name, r.Source, r.ReadOnly = "CreateUser", "iam.amazonaws.com", ptr(false)
		}
		recs = append(recs, r.json())
	}
	e.append(recs...)
	q := Query{Region: "us-east-1", Attributes: []Attribute{{event.AttrUsername, "bob"}, {event.AttrEventName, "CreateUser"}}}
	var want []string
	for i := 39; i >= 0; i-- {
		if i%2 == 1 && i%4 >= 2 {
			want = append(want, fmt.Sprintf("e%02d", i))
		}
	}
	wantIDs(t, e.lookupAll(q), want...)
	// Three attributes, order irrelevant, repeats ignored.
	q.Attributes = []Attribute{{event.AttrReadOnly, "false"}, {event.AttrUsername, "bob"}, {event.AttrEventName, "CreateUser"}, {event.AttrUsername, "bob"}}
	q.MaxResults = 3
	wantIDs(t, e.lookupAll(q), want...)
	// Contradictory attributes match nothing.
	q.Attributes = []Attribute{{event.AttrReadOnly, "true"}, {event.AttrEventName, "CreateUser"}}
	wantIDs(t, e.lookupAll(q))
	// EventId with another attribute: checked on the record.
	q.Attributes = []Attribute{{event.AttrEventID, "e03"}, {event.AttrUsername, "bob"}}
	wantIDs(t, e.lookupAll(q), "e03")
	q.Attributes = []Attribute{{event.AttrEventID, "e03"}, {event.AttrUsername, "alice"}}
	wantIDs(t, e.lookupAll(q))
}

func TestLookupValidation(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		q    Query
		code string
	}{
		{Query{MaxResults: 51}, "InvalidMaxResultsException"},
		{Query{MaxResults: -1}, "InvalidMaxResultsException"},
		{Query{Category: "Insight"}, "InvalidEventCategoryException"},
		{Query{Category: "management"}, "InvalidEventCategoryException"},
		{Query{Attributes: []Attribute{{"eventname", "x"}}}, "InvalidLookupAttributesException"},
		{Query{Attributes: []Attribute{{"EventName", ""}}}, "InvalidLookupAttributesException"},
		{Query{Attributes: []Attribute{{"EventName", strings.Repeat("é", 2001)}}}, "InvalidLookupAttributesException"},
		{Query{Attributes: make([]Attribute, 9)}, "InvalidLookupAttributesException"},
		{Query{Category: "insight", Attributes: []Attribute{{"Username", "x"}}}, "InvalidLookupAttributesException"},
		{Query{StartTime: testNow, EndTime: testNow.Add(-time.Second)}, "InvalidTimeRangeException"},
		{Query{NextToken: "garbage"}, "InvalidNextTokenException"},
		{Query{NextToken: strings.Repeat("A", 44)}, "InvalidNextTokenException"},
	}
	for _, tc := range cases {
		tc.q.Region = "us-east-1"
		_, err := e.h.Lookup(context.Background(), tc.q)
		if !awsproto.IsCode(err, tc.code) {
			t.Errorf("%+v: got %v, want %s", tc.q, err, tc.code)
		}
	}
	// The longest allowed value is fine.
	if _, err := e.h.Lookup(context.Background(), Query{Region: "us-east-1", Attributes: []Attribute{{"EventName", strings.Repeat("é", 2000)}}}); err != nil {
		t.Errorf("2000-character value: %v", err)
	}
}

func TestLookupRegionCategoryAndDataEvents(t *testing.T) {
	for _, include := range []bool{false, true} {
		t.Run(fmt.Sprint("IncludeDataEvents=", include), func(t *testing.T) {
			e := newEnv(t, Options{IncludeDataEvents: include})
			base := testNow.Add(-time.Hour)
			east := mgmt("east", base)
			west := mgmt("west", base)
			west.Region = "eu-west-1"
			data := mgmt("data", base.Add(time.Second))
			data.Name, data.Source, data.Category, data.Management = "GetObject", "s3.amazonaws.com", "Data", ptr(false)
			// An eventVersion 1.05 S3 object read: no category fields at all.
			old := mgmt("old-data", base.Add(2*time.Second))
			old.Name, old.Source, old.Category, old.Management, old.ReadOnly = "GetObject", "s3.amazonaws.com", "", nil, nil
			old.Resources = []map[string]string{{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::b/k"}}
			oldMgmt := mgmt("old-mgmt", base.Add(3*time.Second))
			oldMgmt.Category, oldMgmt.Management = "", nil
			insight := rec{ID: "insight", Region: "us-east-1", Time: base.Add(4 * time.Second), EventType: "AwsCloudTrailInsight",
				Category: "Insight", Extra: map[string]any{
					"userIdentity": nil, "eventSource": nil, "eventName": nil, "sourceIPAddress": nil, "userAgent": nil,
					"requestParameters": nil, "responseElements": nil, "requestID": nil,
					"insightDetails": map[string]any{"state": "Start", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "insightType": "ApiCallRateInsight"},
				}}
			lake := mgmt("lake", base.Add(5*time.Second))
			lake.Category = "ConfigurationItem"
			e.append(east.json(), west.json(), data.json(), old.json(), oldMgmt.json(), insight.json(), lake.json())

			want := []string{"old-mgmt", "east"}
			if include {
				want = []string{"old-mgmt", "old-data", "data", "east"}
			}
			wantIDs(t, e.lookupAll(Query{Region: "us-east-1"}), want...)
			wantIDs(t, e.lookupAll(Query{Region: "eu-west-1"}), "west")
			wantIDs(t, e.lookupAll(Query{Region: "us-west-2"}))
			wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Category: "insight"}), "insight")
			wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Category: "insight", Attributes: []Attribute{{"EventName", "CreateUser"}}}), "insight")
			wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Category: "insight", Attributes: []Attribute{{"EventSource", "iam.amazonaws.com"}}}), "insight")
			wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Category: "insight", Attributes: []Attribute{{"EventId", "insight"}}}), "insight")
			wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Attributes: []Attribute{{"EventId", "insight"}}}))
			wantIDs(t, e.lookupAll(Query{Region: "eu-west-1", Attributes: []Attribute{{"EventId", "east"}}}))
		})
	}
}

// TestLookupPagingWhileIngesting pages through 1,200 events with small pages
// while new (newer) events keep arriving: every event present at the first
// page is returned exactly once, in order, and nothing else is.
func TestLookupPagingWhileIngesting(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGenerator(1)
	base := testNow.Add(-48 * time.Hour)
	const n = 1200
	var recs [][]byte
	for i := range n {
		r := mgmt(fmt.Sprintf("p%04d", i), base.Add(time.Duration(i/3)*time.Second)) // 3 events per second
		if i%5 == 0 {
			r.User = "bob"
		}
		recs = append(recs, r.json())
	}
	e.append(recs...)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// Newer events arrive during the paging.
		i := 0
		for ctx.Err() == nil {
			batch := [][]byte{g.next(testNow.Add(-time.Minute))}
			r := mgmt(fmt.Sprintf("late%04d", i), testNow.Add(-time.Minute))
			r.User = "bob"
			batch = append(batch, r.json())
			if _, err := e.j.Append(ctx, batch); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
			i++
			time.Sleep(time.Millisecond)
		}
		done <- nil
	}()

	check := func(q Query, want func(i int) bool) {
		t.Helper()
		seen := map[string]bool{}
		var got []string
		pages := 0
		for {
			p := e.lookup(q)
			pages++
			for _, ev := range p.Events {
				if seen[ev.EventID] {
					t.Fatalf("event %s returned twice", ev.EventID)
				}
				seen[ev.EventID] = true
				got = append(got, ev.EventID)
			}
			if p.NextToken == "" {
				break
			}
			q.NextToken = p.NextToken
		}
		var exp []string
		for i := n - 1; i >= 0; i-- {
			if want(i) {
				exp = append(exp, fmt.Sprintf("p%04d", i))
			}
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("paged %d pages: got %d events, want %d (first diff around %v)", pages, len(got), len(exp), firstDiff(got, exp))
		}
	}
	end := base.Add(time.Hour)
	check(Query{Region: "us-east-1", EndTime: end, MaxResults: 7}, func(int) bool { return true })
	check(Query{Region: "us-east-1", EndTime: end, MaxResults: 50, Attributes: []Attribute{{"EventName", "DescribeInstances"}}}, func(int) bool { return true })
	check(Query{Region: "us-east-1", EndTime: end, MaxResults: 9, Attributes: []Attribute{{"Username", "bob"}}}, func(i int) bool { return i%5 == 0 })
	check(Query{Region: "us-east-1", EndTime: end, MaxResults: 11, Attributes: []Attribute{{"Username", "bob"}, {"ReadOnly", "true"}}}, func(i int) bool { return i%5 == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("index %d: %s vs %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("length %d vs %d", len(a), len(b))
}

func TestNextTokenBoundToQuery(t *testing.T) {
	e := newEnv(t, Options{})
	base := testNow.Add(-time.Hour)
	var recs [][]byte
	for i := range 10 {
		recs = append(recs, mgmt(fmt.Sprintf("n%d", i), base.Add(time.Duration(i)*time.Second)).json())
	}
	e.append(recs...)
	q := Query{Region: "us-east-1", MaxResults: 3, Attributes: []Attribute{{"Username", "alice"}}, StartTime: base.Add(-time.Minute)}
	p := e.lookup(q)
	if p.NextToken == "" {
		t.Fatal("no NextToken")
	}
	tok := p.NextToken

	// The same query continues, also with another page size and with its
	// attributes restated in another order.
	q.NextToken = tok
	wantIDs(t, ids(e.lookup(q)), "n6", "n5", "n4")
	q2 := q
	q2.MaxResults = 2
	wantIDs(t, ids(e.lookup(q2)), "n6", "n5")

	// Any other parameter refuses the token.
	others := []Query{
		{Region: "eu-west-1", MaxResults: 3, Attributes: q.Attributes, StartTime: q.StartTime},
		{Region: "us-east-1", MaxResults: 3, Attributes: []Attribute{{"Username", "bob"}}, StartTime: q.StartTime},
		{Region: "us-east-1", MaxResults: 3, Attributes: []Attribute{{"EventName", "alice"}}, StartTime: q.StartTime},
		{Region: "us-east-1", MaxResults: 3, StartTime: q.StartTime},
		{Region: "us-east-1", MaxResults: 3, Attributes: q.Attributes},
		{Region: "us-east-1", MaxResults: 3, Attributes: q.Attributes, StartTime: q.StartTime, EndTime: testNow},
		{Region: "us-east-1", MaxResults: 3, Attributes: q.Attributes, StartTime: q.StartTime.Add(time.Millisecond)},
		{Region: "us-east-1", MaxResults: 3, Attributes: append(slices.Clone(q.Attributes), Attribute{"ReadOnly", "true"}), StartTime: q.StartTime},
		{Region: "us-east-1", MaxResults: 3, Attributes: []Attribute{{"EventName", "CreateUser"}}, StartTime: q.StartTime, Category: "insight"},
	}
	for _, o := range others {
		o.NextToken = tok
		if _, err := e.h.Lookup(context.Background(), o); !awsproto.IsCode(err, "InvalidNextTokenException") {
			t.Errorf("token reused with %+v: got %v", o, err)
		}
	}
	// Tampering with any character (position or MAC) is refused.
	for i := range tok {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		bad := q
		bad.NextToken = string(b)
		if _, err := e.h.Lookup(context.Background(), bad); !awsproto.IsCode(err, "InvalidNextTokenException") {
			t.Errorf("token with byte %d changed: got %v", i, err)
		}
	}
	// A token forged for another position with a guessed key is refused.
	forged := q
	forged.NextToken = encodeToken(make([]byte, tokenKeyLen), makePos(base, 1), queryBinding(&q))
	if _, err := e.h.Lookup(context.Background(), forged); !awsproto.IsCode(err, "InvalidNextTokenException") {
		t.Errorf("forged token: got %v", err)
	}
}

// TestNextTokenSurvivesRestart: the token key is stored, so a client paging
// across a server restart continues where it was.
func TestNextTokenSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir+"/journal")
	defer j.Close()
	h := openHistory(t, dir+"/history", j, Options{})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for i := range 5 {
		recs = append(recs, mgmt(fmt.Sprintf("r%d", i), testNow.Add(-time.Duration(i)*time.Minute)).json())
	}
	last, err := j.Append(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.WaitIndexed(context.Background(), last+4); err != nil {
		t.Fatal(err)
	}
	p, err := h.Lookup(context.Background(), Query{Region: "us-east-1", MaxResults: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h = openHistory(t, dir+"/history", j, Options{})
	defer h.Close()
	p, err = h.Lookup(context.Background(), Query{Region: "us-east-1", MaxResults: 2, NextToken: p.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, ids(p), "r2", "r3")
}

// TestRetention: expired events are never returned, not indexed on arrival,
// and deleted by the sweep together with their index entries.
func TestRetention(t *testing.T) {
	var now atomic.Int64 // read by the history's goroutines
	now.Store(testNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	e := newEnv(t, Options{Retention: 10 * 24 * time.Hour, Now: clock, SweepInterval: time.Hour})
	var recs [][]byte
	for d := range 15 { // one event per day, 0 to 14 days old
		recs = append(recs, mgmt(fmt.Sprintf("d%02d", d), testNow.Add(-time.Duration(d)*24*time.Hour)).json())
	}
	e.append(recs...)
	// Days 11-14 were already expired on arrival; day 10 is exactly at the
	// cutoff and kept.
	want := []string{"d00", "d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10"}
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1"}), want...)

	// Five days later: days 6-10 are past the retention. Lookups exclude
	// them at once, before any sweep.
	now.Store(testNow.Add(5 * 24 * time.Hour).UnixNano())
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1"}), want[:6]...)
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Attributes: []Attribute{{"Username", "alice"}}}), want[:6]...)
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Attributes: []Attribute{{"EventId", "d08"}}}))

	n, err := e.h.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("sweep deleted %d events, want 5", n)
	}
	// Nothing of the swept events is left in any index.
	if keys := countKeys(t, e.h); keys != 6*(1+1+attrKeysPerMgmt) {
		t.Errorf("after the sweep the database holds %d index keys, want %d", keys, 6*(1+1+attrKeysPerMgmt))
	}
	// The block holding them also holds live events: it stays.
	if blocks := countBlocks(t, e.h); blocks != 1 {
		t.Errorf("after the first sweep %d record blocks, want 1", blocks)
	}
	now.Store(testNow.UnixNano())
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1"}), want[:6]...)
	if n, err := e.h.Sweep(context.Background()); err != nil || n != 0 {
		t.Errorf("second sweep: %d, %v", n, err)
	}
	// Once its newest event expires, the block goes with it.
	now.Store(testNow.Add(11 * 24 * time.Hour).UnixNano())
	if n, err := e.h.Sweep(context.Background()); err != nil || n != 6 {
		t.Errorf("last sweep: %d, %v; want 6 events", n, err)
	}
	if keys, blocks := countKeys(t, e.h), countBlocks(t, e.h); keys != 0 || blocks != 0 {
		t.Errorf("after everything expired: %d index keys and %d record blocks are left", keys, blocks)
	}
}

// countBlocks counts the record store's blocks and checks that each has
// its retention entry.
func countBlocks(t testing.TB, h *History) int {
	t.Helper()
	it, err := h.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	blocks, expiries := 0, 0
	for it.First(); it.Valid(); it.Next() {
		switch it.Key()[0] {
		case prefixRecords:
			blocks++
		case prefixExpiry:
			expiries++
		}
	}
	if blocks != expiries {
		t.Errorf("%d record blocks but %d retention entries", blocks, expiries)
	}
	return blocks
}

// attrKeysPerMgmt is the number of attribute entries of mgmt(): EventName,
// ReadOnly, Username, EventSource, AccessKeyId (no resources).
const attrKeysPerMgmt = 5

// countKeys counts the event, EventId and attribute keys.
func countKeys(t testing.TB, h *History) int {
	t.Helper()
	it, err := h.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		switch it.Key()[0] {
		case prefixMeta, prefixRecords, prefixExpiry: // see countBlocks
		default:
			n++
		}
	}
	return n
}

// TestLookupIntersectionBudget: two frequent attributes that rarely occur
// together. Each page stops after a bounded number of index seeks (maybe
// with no events, but with a NextToken), and paging to the end returns
// exactly the matches.
func TestLookupIntersectionBudget(t *testing.T) {
	e := newEnv(t, Options{})
	e.h.intersectionBudget = 64
	base := testNow.Add(-24 * time.Hour)
	var recs [][]byte
	var want []string
	const n = 6 * 64 * 8
	for i := range n {
		r := mgmt(fmt.Sprintf("b%05d", i), base.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			r.User, r.Name = "bob", "CreateUser"
		}
		if i%250 == 0 { // alice calling CreateUser: the rare combination
			r.Name = "CreateUser"
			want = append(want, r.ID)
		}
		recs = append(recs, r.json())
	}
	e.append(recs...)
	slices.Reverse(want)
	q := Query{Region: "us-east-1", Attributes: []Attribute{{"Username", "alice"}, {"EventName", "CreateUser"}}}
	var got []string
	pages, empty := 0, 0
	for {
		p := e.lookup(q)
		pages++
		if len(p.Events) == 0 {
			empty++
		}
		got = append(got, ids(p)...)
		if p.NextToken == "" {
			break
		}
		q.NextToken = p.NextToken
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	wantIDs(t, got, want...)
	if empty == 0 {
		t.Errorf("no page ended early on the budget (%d pages)", pages)
	}
}

func TestLookupEdgeCases(t *testing.T) {
	e := newEnv(t, Options{Retention: 48 * time.Hour})
	e.append(mgmt("x", testNow.Add(-time.Hour)).json(), mgmt("y", testNow.Add(-2*time.Hour)).json())
	// Two different EventIds: nothing has both.
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Attributes: []Attribute{{"EventId", "x"}, {"EventId", "y"}}}))
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Attributes: []Attribute{{"EventId", "x"}, {"EventId", "x"}}}), "x")
	// A range entirely before the retention, or in the future.
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1", EndTime: testNow.Add(-72 * time.Hour)}))
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1", Attributes: []Attribute{{"Username", "alice"}}, EndTime: testNow.Add(-72 * time.Hour)}))
	wantIDs(t, e.lookupAll(Query{Region: "us-east-1", StartTime: testNow.Add(time.Hour)}))
	// MaxResults 1 pages one by one; the last page has no token.
	p := e.lookup(Query{Region: "us-east-1", MaxResults: 1})
	wantIDs(t, ids(p), "x")
	p = e.lookup(Query{Region: "us-east-1", MaxResults: 1, NextToken: p.NextToken})
	wantIDs(t, ids(p), "y")
	if p.NextToken != "" {
		t.Error("token on the last page")
	}
	// Events with no region never match (and are not indexed).
	noRegion := mgmt("nr", testNow)
	noRegion.Region = ""
	e.append(noRegion.json())
	wantIDs(t, e.lookupAll(Query{Region: ""}))
}
