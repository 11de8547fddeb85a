package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/bench"
)

// lagCrashSource is the eventSource of the events the lag crash test sends,
// so that an attribute scan finds exactly them.
const lagCrashSource = "lag-crash.test.example"

// TestKillDuringIngestWhileHistoryLags kills `cairn serve` with SIGKILL
// while clients keep sending PutAuditEvents faster than the event history
// indexes them, the case where the history's cursor and index trail the
// journal by thousands of entries and everything between them must be
// indexed after the restart, once. The kill comes right after /metrics
// read a lag of at least minLag entries. After the restart on the same data
// directory and once the history has caught up (lag 0 on /metrics), every
// acknowledged event must be found exactly once: by its EventId, by an
// EventSource scan and by a time-range scan (neither scan may return any
// event twice, acknowledged or not: an unacknowledged request may still
// have been stored).
func TestKillDuringIngestWhileHistoryLags(t *testing.T) {
	const (
		batch = 100
		// minLag is the lag (journal entries, one per event) the kill
		// waits for: several batches that are durable in the journal
		// but not yet in the history.
		minLag = 500
		// sustained is how long the clients send before the kill may
		// come: past the history's start, into its steady state.
		sustained = 2 * time.Second
		// The time-range scan covers the events of bodies 4 and 5 (each
		// body has its own eventTime, base + its index in seconds).
		rangeFirst, rangeLast = 4, 5
	)
	// 16 clients keep ahead of the history; under the race detector the
	// history is so much slower that 4 do, and fewer events keep the
	// checks within the test's time.
	clients := 16
	if raceEnabled {
		clients = 4
	}
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	ct := sdkClient(t, dataDir, srv.URL)
	ctx := context.Background()
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	arn := createCustomChannel(t, ctx, ct, "lag-crash")
	creds, err := ct.Options().Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Bodies are built once and sent round-robin (the server assigns every
	// event a new eventID), so that the test's own CPU goes to sending.
	bodies := lagCrashBodies(t, 16, batch, base)
	hc := &http.Client{Transport: apiclient.NewTransport(clients)}
	api := apiclient.NewClient(srv.URL, "us-east-1", creds, hc)

	// The history's cursor before the ingest, once it has indexed the
	// server's own records of the calls above.
	metrics := &http.Client{Transport: apiclient.NewTransport(1)}
	var startCursor int64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lag, cursor, err := bench.HistoryLag(ctx, metrics, srv.URL+"/metrics")
		if err != nil {
			t.Fatalf("read the history lag: %v", err)
		}
		if lag == 0 {
			startCursor = cursor
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history of an idle server still lags %d entries after 20s", lag)
		}
	}

	var (
		mu      sync.Mutex
		acked   = map[string]int{} // acknowledged eventID: index of its body
		order   []string           // acknowledged eventIDs, in the order of the answers
		batches atomic.Int64
		next    atomic.Int64
	)
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sendCtx.Err() == nil {
				bi := int(next.Add(1) % int64(len(bodies)))
				body := bodies[bi]
				out, err := api.PutAuditEvents(sendCtx, arn, body.body, body.hash)
				if err != nil {
					return // the server is gone (or the test is over)
				}
				mu.Lock()
				for _, s := range out.Successful {
					acked[s.EventID] = bi
					order = append(order, s.EventID)
				}
				mu.Unlock()
				batches.Add(1)
			}
		}()
	}

	// Kill once the history trails the journal by minLag entries, as read
	// from /metrics, with the clients still sending.
	var lagAtKill, cursorAtKill int64
	sendStart := time.Now()
	logged := sendStart
	for deadline := sendStart.Add(40 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lag, cursor, err := bench.HistoryLag(ctx, metrics, srv.URL+"/metrics")
		if err != nil {
			t.Fatalf("read the history lag: %v", err)
		}
		if time.Since(logged) >= 250*time.Millisecond {
			logged = time.Now()
			t.Logf("%5.1fs: lag %d, cursor %d, %d batches acknowledged", time.Since(sendStart).Seconds(), lag, cursor, batches.Load())
		}
		// The history must also have indexed part of the ingest: the
		// kill then cuts it in the middle of its work, not at its start.
		if lag >= minLag && cursor > startCursor && time.Since(sendStart) >= sustained {
			lagAtKill, cursorAtKill = lag, cursor
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history never lagged %d entries behind the journal in 40s (last lag %d, cursor %d from %d, %d batches acknowledged)", minLag, lag, cursor, startCursor, batches.Load())
		}
	}
	srv.kill9(t)
	stopSending()
	wg.Wait()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	t.Logf("kill -9 with the history %d entries behind (cursor %d); %d events acknowledged in %d batches", lagAtKill, cursorAtKill, nAcked, batches.Load())

	srv = startCairn(t, work, "--data-dir", dataDir)
	restarted := time.Now()
	ct = sdkClient(t, dataDir, srv.URL)
	// Wait for the history to index what the journal held at the restart.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		lag, cursor, err := bench.HistoryLag(ctx, metrics, srv.URL+"/metrics")
		if err != nil {
			t.Fatalf("read the history lag after the restart: %v", err)
		}
		if lag == 0 {
			t.Logf("history caught up %v after the restart, at cursor %d", time.Since(restarted).Round(time.Millisecond), cursor)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history still lags %d entries 60s after the restart", lag)
		}
	}
	checkStart := time.Now()

	// The scans come first (the lookups by EventId below add the server's
	// audit records of them): by EventSource, which returns every event
	// sent, and by time range alone, over the eventTimes of two bodies
	// (the server's own records are 10 minutes newer).
	inRange := func(bi int) bool { return bi >= rangeFirst && bi <= rangeLast }
	scans := []struct {
		name string
		in   cloudtrail.LookupEventsInput
		want func(bi int) bool // which acknowledged events it must return
	}{
		{"EventSource scan", cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{
			AttributeKey: types.LookupAttributeKeyEventSource, AttributeValue: aws.String(lagCrashSource)}}},
			func(int) bool { return true }},
		{"time-range scan", cloudtrail.LookupEventsInput{
			StartTime: aws.Time(base.Add(rangeFirst*time.Second - time.Second/2)),
			EndTime:   aws.Time(base.Add(rangeLast*time.Second + time.Second/2))},
			inRange},
	}
	for _, sc := range scans {
		sc.in.MaxResults = aws.Int32(50)
		seen := map[string]int{}
		foreign := 0
		p := cloudtrail.NewLookupEventsPaginator(ct, &sc.in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("%s: %v", sc.name, err)
			}
			for _, e := range page.Events {
				seen[aws.ToString(e.EventId)]++
				if aws.ToString(e.EventSource) != lagCrashSource {
					foreign++
				}
			}
		}
		twice, absent, wanted, stray := 0, 0, 0, 0
		for id, n := range seen {
			if n > 1 {
				twice++
			}
			if bi, ok := acked[id]; ok && !sc.want(bi) {
				stray++
			}
		}
		for id, bi := range acked {
			if !sc.want(bi) {
				continue
			}
			wanted++
			if seen[id] == 0 {
				absent++
			}
		}
		if twice > 0 || absent > 0 || stray > 0 || foreign > 0 {
			t.Errorf("%s: %d events returned more than once, %d of %d acknowledged events missing, %d events that do not match returned (%d not ours)",
				sc.name, twice, absent, wanted, stray+foreign, foreign)
		}
		t.Logf("%s: %d events, for %d acknowledged before the kill", sc.name, len(seen), wanted)
	}
	// Acknowledged events by EventId, each must be found once. Under the
	// race detector a lookup costs milliseconds, so not all of them: the
	// scans above checked every one. These are the events around the
	// history's cursor at the kill (the journal's order is about the order
	// of the answers, and the boundary between indexed and not is where
	// an event would be indexed twice or skipped), the newest, and an
	// even sample of the rest, about maxByID in all.
	const maxByID = 1000
	byID := order
	if len(order) > maxByID {
		pick := make([]bool, len(order))
		mark := func(from, to int) {
			for i := max(0, from); i < min(len(order), to); i++ {
				pick[i] = true
			}
		}
		// The journal interleaves the server's own audit records with the
		// events: the boundary is at the indexed share of the journal.
		boundary := int(float64(len(order)) * float64(cursorAtKill) / float64(cursorAtKill+lagAtKill))
		mark(boundary-200, boundary+200)
		mark(len(order)-200, len(order))
		for i := 0; i < len(order); i += len(order) / (maxByID - 400) {
			pick[i] = true
		}
		byID = nil
		for i, ok := range pick {
			if ok {
				byID = append(byID, order[i])
			}
		}
	}
	ids := make(chan string)
	var missing, doubled atomic.Int64
	var lookups sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range 8 {
		lookups.Add(1)
		go func() {
			defer lookups.Done()
			for id := range ids {
				out, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
					LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String(id)}},
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				n := 0
				for _, e := range out.Events {
					if aws.ToString(e.EventId) == id {
						n++
					}
				}
				switch {
				case n == 0:
					missing.Add(1)
				case n > 1 || len(out.Events) > 1:
					doubled.Add(1)
				}
			}
		}()
	}
	for _, id := range byID {
		ids <- id
	}
	close(ids)
	lookups.Wait()
	if firstErr != nil {
		t.Fatalf("LookupEvents by EventId: %v", firstErr)
	}
	if missing.Load() > 0 || doubled.Load() > 0 {
		t.Errorf("by EventId: %d of %d acknowledged events looked up missing, %d found more than once", missing.Load(), len(byID), doubled.Load())
	} else {
		t.Logf("by EventId: %d of the %d acknowledged events found once each", len(byID), nAcked)
	}

	t.Logf("checked in %v", time.Since(checkStart).Round(time.Millisecond))
	srv.stop(t)
}

type lagCrashBody struct {
	body []byte
	hash string
}

// lagCrashBodies renders n PutAuditEvents bodies of batch events, each
// about a kilobyte of eventData like an application's audit record. The
// events of body b happened at base + b seconds.
func lagCrashBodies(t *testing.T, n, batch int, base time.Time) []lagCrashBody {
	t.Helper()
	type auditEvent struct {
		ID        string `json:"id"`
		EventData string `json:"eventData"`
	}
	out := make([]lagCrashBody, n)
	for b := range out {
		at := base.Add(time.Duration(b) * time.Second).UTC().Format("2006-01-02T15:04:05Z")
		events := make([]auditEvent, batch)
		for i := range events {
			uid := fmt.Sprintf("b%d-e%d", b, i)
			data, err := json.Marshal(map[string]any{
				"version": "1.0",
				"userIdentity": map[string]any{"type": "CustomUser", "principalId": fmt.Sprintf("user-%d", i%7),
					"details": map[string]any{"team": "payments", "session": fmt.Sprintf("s-%d-%d", b, i)}},
				"userAgent":           "lag-crash-test/1.0 (linux; go)",
				"eventSource":         lagCrashSource,
				"eventName":           []string{"CreateInvoice", "UpdateInvoice", "GetInvoice"}[i%3],
				"eventTime":           at,
				"UID":                 uid,
				"sourceIPAddress":     fmt.Sprintf("10.0.%d.%d", b, i),
				"recipientAccountId":  "000000000000",
				"requestParameters":   map[string]any{"invoiceId": fmt.Sprintf("inv-%06d", b*batch+i), "amount": i * 100, "currency": "EUR", "note": "a line of text of the kind applications log with their events"},
				"responseElements":    map[string]any{"status": "OK", "version": i},
				"additionalEventData": map[string]any{"tenant": fmt.Sprintf("tenant-%d", i%11), "region": "eu-west-1"},
			})
			if err != nil {
				t.Fatal(err)
			}
			events[i] = auditEvent{ID: uid, EventData: string(data)}
		}
		body, err := json.Marshal(map[string]any{"auditEvents": events})
		if err != nil {
			t.Fatal(err)
		}
		out[b] = lagCrashBody{body: body, hash: apiclient.PayloadHash(body)}
	}
	return out
}
