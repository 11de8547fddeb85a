package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/event"
)

// Import batching limits: the import endpoint takes 5 MB per request;
// 1,000 records or 4 MB, whichever comes first, keeps requests well
// below it and the journal's group commits large.
const (
	ImportBatchRecords = 1000
	ImportBatchBytes   = 4 << 20
)

// FillConfig fills a server's event history with generated events.
type FillConfig struct {
	Client *apiclient.Client
	// CloudTrail is used to wait until the history has indexed the fill; its
	// region must be Gen.Region.
	CloudTrail *cloudtrail.Client
	Events     int
	// Import sends CloudTrail management-event records through
	// /cairn/import (1,000 per request) instead of audit events through
	// PutAuditEvents to ChannelARN (100 per request).
	Import     bool
	ChannelARN string
	// Concurrency is the number of requests in flight (default 4 for
	// import, 16 for PutAuditEvents).
	Concurrency int
	Gen         Options
	// Tracker, when set, counts the attribute values of the fill as the
	// server's history will see them.
	Tracker *Tracker
	// Progress, when set, is called after each acknowledged batch with the
	// running total (from several goroutines; keep it cheap).
	Progress func(stored int64)
	// WaitTimeout bounds the wait for indexing (default 30 minutes).
	WaitTimeout time.Duration
}

// FillResult is what a fill took.
type FillResult struct {
	Stored     int64         `json:"stored"`
	Rejected   int64         `json:"rejected"`
	SendTime   time.Duration `json:"-"`
	SendSec    float64       `json:"send_s"`
	SendPerSec float64       `json:"send_events_per_s"`
	IndexedSec float64       `json:"indexed_s"`
}

// fillBatch is one request of a fill.
type fillBatch struct {
	body []byte
	n    int
}

// Fill stores cfg.Events generated events, then waits until the event
// history has indexed all of them: it sends one last event after every
// other batch was acknowledged and polls LookupEvents for its eventID; the
// history indexes the journal in order, so once that event is found every
// earlier one is indexed too.
func Fill(ctx context.Context, cfg FillConfig) (*FillResult, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
		if cfg.Import {
			cfg.Concurrency = 4
		}
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 30 * time.Minute
	}
	if !cfg.Import && cfg.ChannelARN == "" {
		return nil, errors.New("fill through PutAuditEvents needs a channel")
	}
	gen := New(cfg.Gen)
	var env *channel.Envelope
	if cfg.Import && cfg.Tracker != nil {
		gen.Track(cfg.Tracker)
	} else if cfg.Tracker != nil {
		env = &channel.Envelope{EventID: "00000000-0000-4000-8000-000000000000", Region: cfg.Gen.Region,
			AccountID: gen.Options().AccountID, ChannelARN: cfg.ChannelARN, IngestionTime: time.Now()}
	}
	// send stores one batch and returns how many events were stored and
	// the eventIDs the server assigned (PutAuditEvents only).
	send := func(ctx context.Context, b fillBatch) (int, int, []string, error) {
		if cfg.Import {
			out, err := importWithRetry(ctx, cfg.Client, b.body)
			if err != nil {
				return 0, 0, nil, err
			}
			return out.Accepted, len(out.Rejected), nil, nil
		}
		out, err := putWithRetry(ctx, cfg.Client, cfg.ChannelARN, b.body)
		if err != nil {
			return 0, 0, nil, err
		}
		ids := make([]string, len(out.Successful))
		for i, s := range out.Successful {
			ids[i] = s.EventID
		}
		return len(out.Successful), len(out.Failed), ids, nil
	}
	// next renders a batch of up to n events.
	var rec, ed []byte
	next := func(n int) (fillBatch, string) {
		var b []byte
		last := ""
		if cfg.Import {
			b = make([]byte, 0, ImportBatchBytes+64<<10)
			i := 0
			for ; i < n && len(b) < ImportBatchBytes-64<<10; i++ {
				rec = gen.Record(rec[:0])
				b = append(append(b, rec...), '\n')
			}
			if r, err := event.Parse(rec); err == nil {
				last = r.EventID
			}
			return fillBatch{b, i}, last
		}
		n = min(n, 100)
		b = make([]byte, 0, n*1700)
		b = append(b, `{"auditEvents":[`...)
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":"e`...)
			b = appendInt(b, i)
			b = append(b, `","eventData":`...)
			ed = gen.AuditEventData(ed[:0])
			if env != nil {
				if r, rej := channel.BuildRecord(ed, nil, env); rej == nil {
					cfg.Tracker.observe(r)
				}
			}
			b = appendBytesString(b, ed)
			b = append(b, '}')
		}
		return fillBatch{append(b, `]}`...), n}, ""
	}
	batchSize := 100
	if cfg.Import {
		batchSize = ImportBatchRecords
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan fillBatch, cfg.Concurrency)
	var (
		stored, rejected atomic.Int64
		firstErr         error
		errOnce          sync.Once
		wg               sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				ok, bad, ids, err := send(ctx, b)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				if cfg.Tracker != nil {
					cfg.Tracker.addEventIDs(ids)
				}
				rejected.Add(int64(bad))
				n := stored.Add(int64(ok))
				if cfg.Progress != nil {
					cfg.Progress(n)
				}
			}
		}()
	}
	// The generator runs here, a few batches ahead of the senders.
	for left := cfg.Events; left > 0 && ctx.Err() == nil; {
		b, _ := next(min(left, batchSize))
		left -= b.n
		select {
		case batches <- b:
		case <-ctx.Done():
		}
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("fill: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fill interrupted: %w", err)
	}
	res := &FillResult{Stored: stored.Load(), Rejected: rejected.Load(), SendTime: time.Since(start)}
	res.SendSec = res.SendTime.Seconds()
	res.SendPerSec = float64(res.Stored) / res.SendSec

	// The marker: one more event, stored after everything else.
	b, marker := next(1)
	_, _, ids, err := send(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("fill: store the marker event: %w", err)
	}
	if len(ids) > 0 {
		marker = ids[0]
	}
	if marker == "" {
		return nil, errors.New("fill: the marker event was not stored")
	}
	if err := WaitIndexed(ctx, cfg.CloudTrail, marker, cfg.WaitTimeout); err != nil {
		return nil, err
	}
	res.IndexedSec = time.Since(start).Seconds()
	return res, nil
}

// putWithRetry sends one PutAuditEvents request, retrying what the server
// says may succeed later, with backoff.
func putWithRetry(ctx context.Context, c *apiclient.Client, channelARN string, body []byte) (*apiclient.PutAuditEventsOutput, error) {
	backoff := 100 * time.Millisecond
	hash := apiclient.PayloadHash(body)
	for attempt := 1; ; attempt++ {
		out, err := c.PutAuditEvents(ctx, channelARN, body, hash)
		if err == nil || attempt == 6 || !apiclient.IsRetryable(err) {
			return out, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff *= 2
	}
}

// importWithRetry sends one import request, retrying what the server says
// may succeed later (journal unavailable, throttled) with backoff.
func importWithRetry(ctx context.Context, c *apiclient.Client, body []byte) (*apiclient.ImportOutput, error) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := c.Import(ctx, body)
		if err == nil || attempt == 6 || !apiclient.IsRetryable(err) {
			return out, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff *= 2
	}
}

// WaitIndexed polls LookupEvents until the event eventID is in the history.
func WaitIndexed(ctx context.Context, ct *cloudtrail.Client, eventID string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String(eventID)}},
		})
		if err == nil && len(out.Events) > 0 {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			var re interface{ HTTPStatusCode() int }
			if errors.As(err, &re) && re.HTTPStatusCode() == 400 {
				return fmt.Errorf("wait for the history to index event %s: %w", eventID, err)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("the event history did not index event %s within %v: %w", eventID, timeout, ctx.Err())
		}
	}
}

// LookupQuery is one kind of lookup to measure: an attribute key with the
// values to cycle through, or (Key "") a time range alone.
type LookupQuery struct {
	Name   string     `json:"name"`
	Key    string     `json:"key,omitempty"`
	Values []string   `json:"values,omitempty"`
	Start  *time.Time `json:"start,omitempty"`
	End    *time.Time `json:"end,omitempty"`
}

// LookupConfig is one LookupEvents load run.
type LookupConfig struct {
	CloudTrail *cloudtrail.Client
	// Clients is the number of concurrent callers (default 4).
	Clients int
	// Requests is the number of pages per query (default 200).
	Requests int
	// Depth is how many pages a chain follows through NextToken before it
	// starts over with the next value (default 3): first pages and later
	// pages both count.
	Depth int
	// MaxResults per page (default 50, the API's maximum).
	MaxResults int32
	Queries    []LookupQuery
}

// LookupStat is what one query measured, per page.
type LookupStat struct {
	Query       string  `json:"query"`
	Pages       int     `json:"pages"`
	Events      int     `json:"events"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	PagesPerSec float64 `json:"pages_per_s"`
	Latency     Summary `json:"latency"`
}

// RunLookup measures every query in turn.
func RunLookup(ctx context.Context, cfg LookupConfig) ([]LookupStat, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 4
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 200
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 3
	}
	if cfg.MaxResults <= 0 {
		cfg.MaxResults = 50
	}
	var out []LookupStat
	for _, q := range cfg.Queries {
		st, err := runQuery(ctx, cfg, q)
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}

func runQuery(ctx context.Context, cfg LookupConfig, q LookupQuery) (LookupStat, error) {
	var (
		remaining atomic.Int64
		chains    atomic.Int64
		mu        sync.Mutex
		lat       Latencies
		st        = LookupStat{Query: q.Name}
		wg        sync.WaitGroup
	)
	remaining.Store(int64(cfg.Requests))
	start := time.Now()
	for w := 0; w < cfg.Clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine Latencies
			events, errs := 0, 0
			firstErr := ""
			defer func() {
				mu.Lock()
				lat.Merge(&mine)
				st.Events += events
				st.Errors += errs
				if st.FirstError == "" {
					st.FirstError = firstErr
				}
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				in := &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(cfg.MaxResults), StartTime: q.Start, EndTime: q.End}
				if q.Key != "" {
					v := q.Values[int(chains.Add(1)-1)%len(q.Values)]
					in.LookupAttributes = []types.LookupAttribute{{AttributeKey: types.LookupAttributeKey(q.Key), AttributeValue: aws.String(v)}}
				}
				for depth := 0; depth < cfg.Depth; depth++ {
					if remaining.Add(-1) < 0 {
						return
					}
					t0 := time.Now()
					page, err := cfg.CloudTrail.LookupEvents(ctx, in)
					d := time.Since(t0)
					if err != nil {
						if ctx.Err() != nil {
							return
						}
						errs++
						if firstErr == "" {
							firstErr = err.Error()
						}
						break
					}
					mine.Add(d)
					events += len(page.Events)
					if page.NextToken == nil {
						break
					}
					in.NextToken = page.NextToken
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("lookup benchmark interrupted: %w", err)
	}
	elapsed := time.Since(start)
	st.Latency = lat.Summary()
	st.Pages = st.Latency.Count
	st.PagesPerSec = float64(st.Pages) / elapsed.Seconds()
	return st, nil
}

// QueriesFromProbes turns a Tracker's probes into one query per attribute
// key (cycling through its common, median and rare values) plus a query by
// time range alone: the hour in the middle of the generated span.
func QueriesFromProbes(t *Tracker) []LookupQuery {
	probes := t.Probes()
	var qs []LookupQuery
	for _, k := range event.AttributeKeys() {
		ps := probes[k]
		if len(ps) == 0 {
			continue
		}
		q := LookupQuery{Name: k, Key: k}
		for _, p := range ps {
			q.Values = append(q.Values, p.Value)
		}
		qs = append(qs, q)
	}
	oldest, newest := t.TimeRange()
	if !oldest.IsZero() {
		mid := oldest.Add(newest.Sub(oldest) / 2)
		s, e := mid.Add(-30*time.Minute), mid.Add(30*time.Minute)
		qs = append(qs, LookupQuery{Name: "time range (1h)", Start: &s, End: &e})
	}
	return qs
}
