package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/apiclient"
)

// EnsureChannel returns the ARN of the channel called name, creating it
// (source Custom) when it does not exist, with the event data store
// "<name>-store" (eventCategory ActivityAuditLog, created too when
// missing) as its destination, since a channel's store must exist. The
// store's ARN carries the server's account, so account is only a
// cross-check: when set, it must be the server's.
func EnsureChannel(ctx context.Context, ct *cloudtrail.Client, region, name, account string) (string, error) {
	if arn, err := findChannel(ctx, ct, name); err != nil || arn != "" {
		return arn, err
	}
	store, err := ensureAuditStore(ctx, ct, name+"-store")
	if err != nil {
		return "", err
	}
	if account != "" && !strings.Contains(store, ":"+account+":") {
		return "", fmt.Errorf("the server's account is not %s: its event data store is %s", account, store)
	}
	out, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{
		Name:         aws.String(name),
		Source:       aws.String("Custom"),
		Destinations: []types.Destination{{Type: types.DestinationTypeEventDataStore, Location: aws.String(store)}},
	})
	if err == nil {
		return aws.ToString(out.ChannelArn), nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ChannelAlreadyExistsException" {
		if arn, ferr := findChannel(ctx, ct, name); ferr != nil || arn != "" {
			return arn, ferr
		}
	}
	return "", fmt.Errorf("create channel %s in %s: %w", name, region, err)
}

// ensureAuditStore returns the ARN of the ActivityAuditLog event data
// store called name, creating it when it does not exist.
func ensureAuditStore(ctx context.Context, ct *cloudtrail.Client, name string) (string, error) {
	p := cloudtrail.NewListEventDataStoresPaginator(ct, &cloudtrail.ListEventDataStoresInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list event data stores: %w", err)
		}
		for _, st := range page.EventDataStores {
			if aws.ToString(st.Name) == name {
				return aws.ToString(st.EventDataStoreArn), nil
			}
		}
	}
	out, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{
		Name: aws.String(name),
		AdvancedEventSelectors: []types.AdvancedEventSelector{{
			Name:           aws.String("Channel events"),
			FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"ActivityAuditLog"}}},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("create event data store %s: %w", name, err)
	}
	return aws.ToString(out.EventDataStoreArn), nil
}

func findChannel(ctx context.Context, ct *cloudtrail.Client, name string) (string, error) {
	p := cloudtrail.NewListChannelsPaginator(ct, &cloudtrail.ListChannelsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list channels: %w", err)
		}
		for _, c := range page.Channels {
			if aws.ToString(c.Name) == name {
				return aws.ToString(c.ChannelArn), nil
			}
		}
	}
	return "", nil
}

// IngestConfig is one PutAuditEvents load run.
type IngestConfig struct {
	Client     *apiclient.Client
	ChannelARN string
	// Clients is the number of concurrent senders (default 16).
	Clients int
	// Batch is the number of events per request (1-100, default 100).
	Batch int
	// Duration bounds the run; Events (when > 0) stops it after that many
	// events were sent. At least one of them must be set.
	Duration time.Duration
	Events   int64
	// Rate, when > 0, paces the senders together to about this many
	// events/s (requests are scheduled at batch/Rate intervals; a sender
	// that falls behind the schedule sends at once, so the achieved rate
	// is lower only when the server cannot take more). 0 sends as fast as
	// the server answers.
	Rate float64
	// Pool is how many distinct request bodies are generated before the
	// clock starts and then sent round-robin (default 64). Generating
	// while measuring would take CPU from the server on a small machine;
	// the server does the same work for a repeated body (it assigns new
	// eventIDs and stores every event again).
	Pool int
	// Gen configures the event generator; Gen.AccountID must be the
	// server's account.
	Gen Options
	// Progress, when set, is called about once a second from a separate
	// goroutine.
	Progress func(IngestProgress)
}

// IngestProgress is a running count.
type IngestProgress struct {
	Elapsed  time.Duration
	Accepted int64
	Errors   int64
}

// IngestResult is what a run measured.
type IngestResult struct {
	Clients      int              `json:"clients"`
	Batch        int              `json:"batch"`
	Requests     int64            `json:"requests"`
	Accepted     int64            `json:"events_accepted"`
	Failed       int64            `json:"events_failed"`
	Errors       int64            `json:"request_errors"`
	ErrorCounts  map[string]int64 `json:"error_counts,omitempty"`
	Elapsed      time.Duration    `json:"-"`
	ElapsedSec   float64          `json:"elapsed_s"`
	EventsPerSec float64          `json:"events_per_s"`
	BytesSent    int64            `json:"bytes_sent"`
	MBPerSec     float64          `json:"request_mb_per_s"`
	Latency      Summary          `json:"latency"`
	// TargetRate is IngestConfig.Rate (0: as fast as possible).
	TargetRate float64 `json:"target_events_per_s,omitempty"`
	// LoadGenerator is this process's CPU while sending, so that a run on
	// a machine it shares with the server says how much it took.
	LoadGenerator *ProcessShare `json:"load_generator,omitempty"`
}

// ProcessShare is a process's CPU time over a stretch of wall time.
type ProcessShare struct {
	CPUSec float64 `json:"cpu_s"`
	// MachinePct is CPU time / wall time as a percentage of all the
	// machine's cores (100 = every core busy).
	MachinePct float64 `json:"cpu_pct_of_machine"`
	Cores      int     `json:"cores"`
	// MicrosPerEvent is the CPU time per acknowledged event.
	MicrosPerEvent float64 `json:"cpu_us_per_event"`
}

// NewProcessShare computes the share of cpu over wall for events events.
func NewProcessShare(cpu, wall time.Duration, events int64) *ProcessShare {
	p := &ProcessShare{CPUSec: cpu.Seconds(), Cores: runtime.NumCPU()}
	if wall > 0 {
		p.MachinePct = 100 * cpu.Seconds() / wall.Seconds() / float64(p.Cores)
	}
	if events > 0 {
		p.MicrosPerEvent = float64(cpu.Microseconds()) / float64(events)
	}
	return p
}

type ingestBody struct {
	body []byte
	hash string
	n    int // events in body
}

// buildIngestBodies renders n PutAuditEvents bodies of batch events.
func buildIngestBodies(gen *Generator, n, batch int) []ingestBody {
	out := make([]ingestBody, n)
	var ed []byte
	for i := range out {
		b := make([]byte, 0, batch*1600)
		b = append(b, `{"auditEvents":[`...)
		for j := 0; j < batch; j++ {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":"e`...)
			b = strconv.AppendInt(b, int64(j), 10)
			b = append(b, `","eventData":`...)
			ed = gen.AuditEventData(ed[:0])
			b = appendBytesString(b, ed)
			b = append(b, '}')
		}
		b = append(b, `]}`...)
		out[i] = ingestBody{body: b, hash: apiclient.PayloadHash(b), n: batch}
	}
	return out
}

// RunIngest drives PutAuditEvents with cfg.Clients concurrent senders and
// measures what the server acknowledged. An event counts as accepted only
// when it is in the answer's successful list, which Cairn sends after the
// event is durable in its journal.
func RunIngest(ctx context.Context, cfg IngestConfig) (*IngestResult, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 16
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Batch > 100 {
		return nil, fmt.Errorf("batch %d: PutAuditEvents takes at most 100 events", cfg.Batch)
	}
	if cfg.Duration <= 0 && cfg.Events <= 0 {
		return nil, errors.New("set a duration or a number of events")
	}
	if cfg.Pool <= 0 {
		cfg.Pool = 64
	}
	if cfg.Events > 0 {
		if need := int((cfg.Events + int64(cfg.Batch) - 1) / int64(cfg.Batch)); need < cfg.Pool {
			cfg.Pool = need
		}
	}
	gen := New(cfg.Gen)
	bodies := buildIngestBodies(gen, cfg.Pool, cfg.Batch)
	var partial *ingestBody
	if cfg.Events > 0 && cfg.Events%int64(cfg.Batch) != 0 {
		b := buildIngestBodies(gen, 1, int(cfg.Events%int64(cfg.Batch)))[0]
		partial = &b
	}

	runCtx := ctx
	var cancel context.CancelFunc = func() {}
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()

	var (
		claimed  atomic.Int64 // events claimed by senders
		accepted atomic.Int64
		failed   atomic.Int64
		errs     atomic.Int64
		requests atomic.Int64
		sent     atomic.Int64
		next     atomic.Int64
		mu       sync.Mutex
		errCount = map[string]int64{}
		lat      Latencies
		wg       sync.WaitGroup
	)
	cpu0, cpuErr := ProcessCPU(os.Getpid())
	start := time.Now()
	// pace waits until the request that carries events n.. is due.
	var scheduled atomic.Int64
	pace := func(n int64) bool {
		if cfg.Rate <= 0 {
			return true
		}
		due := start.Add(time.Duration(float64(scheduled.Add(n)-n) / cfg.Rate * float64(time.Second)))
		wait := time.Until(due)
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-runCtx.Done():
			return false
		}
	}
	stopProgress := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					cfg.Progress(IngestProgress{Elapsed: time.Since(start), Accepted: accepted.Load(), Errors: errs.Load()})
				}
			}
		}()
	}
	for w := 0; w < cfg.Clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine Latencies
			defer func() {
				mu.Lock()
				lat.Merge(&mine)
				mu.Unlock()
			}()
			for runCtx.Err() == nil {
				b := &bodies[int(next.Add(1)-1)%len(bodies)]
				if cfg.Events > 0 {
					batch := int64(cfg.Batch)
					c := claimed.Add(batch)
					if c > cfg.Events {
						if c-batch >= cfg.Events || partial == nil {
							return // the events are all claimed
						}
						b = partial // the one short batch that completes the count
					}
				}
				if !pace(int64(b.n)) {
					return
				}
				t0 := time.Now()
				out, err := cfg.Client.PutAuditEvents(runCtx, cfg.ChannelARN, b.body, b.hash)
				d := time.Since(t0)
				if err != nil {
					if runCtx.Err() != nil && cfg.Duration > 0 && ctx.Err() == nil {
						return // the run's time is up; this request does not count
					}
					errs.Add(1)
					mu.Lock()
					errCount[errorKey(err)]++
					mu.Unlock()
					if ctx.Err() != nil {
						return
					}
					continue
				}
				requests.Add(1)
				sent.Add(int64(len(b.body)))
				mine.Add(d)
				accepted.Add(int64(len(out.Successful)))
				if len(out.Failed) > 0 {
					failed.Add(int64(len(out.Failed)))
					mu.Lock()
					for _, f := range out.Failed {
						errCount["event:"+f.ErrorCode]++
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cpuErr1 := ProcessCPU(os.Getpid())
	close(stopProgress)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ingest benchmark interrupted: %w", err)
	}
	res := &IngestResult{
		Clients: cfg.Clients, Batch: cfg.Batch,
		Requests: requests.Load(), Accepted: accepted.Load(), Failed: failed.Load(), Errors: errs.Load(),
		ErrorCounts: errCount, Elapsed: elapsed, ElapsedSec: elapsed.Seconds(), BytesSent: sent.Load(),
		Latency: lat.Summary(), TargetRate: cfg.Rate,
	}
	if cpuErr == nil && cpuErr1 == nil {
		res.LoadGenerator = NewProcessShare(cpu1-cpu0, elapsed, res.Accepted)
	}
	res.EventsPerSec = float64(res.Accepted) / elapsed.Seconds()
	res.MBPerSec = float64(res.BytesSent) / elapsed.Seconds() / 1e6
	return res, nil
}

// errorKey names an error for counting: the API error code, or the Go
// error text for transport failures.
func errorKey(err error) string {
	var ae *apiclient.APIError
	if errors.As(err, &ae) {
		if ae.Code != "" {
			return ae.Code
		}
		return "HTTP " + strconv.Itoa(ae.Status)
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// SortedCounts returns m's keys ordered by count, largest first.
func SortedCounts(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
