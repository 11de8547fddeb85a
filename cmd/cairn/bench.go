package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"golang.org/x/term"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/event"
)

const benchUsage = `usage:
  cairn bench ingest [flags]   PutAuditEvents load: events/s acknowledged, latency, server RSS and CPU, history lag
  cairn bench lookup [flags]   LookupEvents latency per attribute key (optionally after --fill N)
  cairn bench delivery [flags] journal-to-log-file throughput for 1 and 5 trails, in-process
  cairn bench s3proxy [flags]  S3 throughput direct vs through a running S3 audit proxy
  cairn bench lake [flags]     Lake: Parquet write rate and bytes, queries vs DuckDB over gzip JSON, in-process

ingest and lookup drive a RUNNING server through its real HTTP API with
SigV4, like any client, using realistic generated events (deterministic for
a --seed); delivery runs the delivery pipeline in-process on a scratch
journal and file store; s3proxy drives an S3 server directly and through
Cairn's S3 proxy in front of it.
Run 'cairn bench <subcommand> -h' for the flags.
`

// runBench is `cairn bench ingest|lookup|delivery`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, benchUsage, []verb{{"ingest", benchIngest}, {"lookup", benchLookup},
		{"delivery", runBenchDelivery}, {"s3proxy", runBenchS3Proxy}, {"lake", runBenchLake}}, args, stdout, stderr)
}

// benchCommon are the flags both benchmarks share.
type benchCommon struct {
	rf      *remoteFlags
	clients *int
	seed    *uint64
	pid     *int
	asJSON  *bool
	account *string
	channel *string
}

func benchFlags(name, usage string, stderr io.Writer, clients int) (*flag.FlagSet, *benchCommon) {
	fs := flag.NewFlagSet("cairn bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &benchCommon{
		clients: fs.Int("clients", clients, "concurrent clients"),
		seed:    fs.Uint64("seed", 1, "generator seed (same seed, same events)"),
		pid:     fs.Int("pid", 0, "server process to report peak RSS of (default: the local process listening on the endpoint's port)"),
		asJSON:  fs.Bool("json", false, "print machine-readable results (JSON) instead of a table"),
		account: fs.String("account", "", "the server's account ID (default: ask the server)"),
		channel: fs.String("channel", "cairn-bench", "channel name or ARN to send to (created when it does not exist)"),
	}
	c.rf = addRemoteFlags(fs)
	usageWithFlags(fs, usage, stderr)
	return fs, c
}

// setup builds the clients, the channel and the generator options.
func (c *benchCommon) setup(ctx context.Context, needChannel bool) (*apiclient.Client, *cloudtrail.Client, string, bench.Options, error) {
	hc := &http.Client{Transport: apiclient.NewTransport(*c.clients)}
	ct, creds, err := c.rf.cloudTrail(ctx, hc)
	if err != nil {
		return nil, nil, "", bench.Options{}, err
	}
	client := apiclient.NewClient(c.rf.endpoint, c.rf.region, creds, hc)
	gen := bench.Options{Seed: *c.seed, Region: c.rf.region, AccountID: *c.account}
	if !needChannel {
		return client, ct, "", gen, nil
	}
	arn := *c.channel
	if !strings.HasPrefix(arn, "arn:") {
		arn, err = bench.EnsureChannel(ctx, ct, c.rf.region, *c.channel, *c.account)
		if err != nil {
			return nil, nil, "", gen, err
		}
	}
	// The channel's ARN names the server's account, which eventData's
	// recipientAccountId must equal.
	if parts := strings.Split(arn, ":"); len(parts) > 4 && gen.AccountID == "" {
		gen.AccountID = parts[4]
	}
	return client, ct, arn, gen, nil
}

// serverPID is --pid, else the process listening on the endpoint's port
// when the endpoint is on this machine; 0 when unknown.
func (c *benchCommon) serverPID() int {
	if *c.pid != 0 {
		return *c.pid
	}
	u, err := url.Parse(c.rf.endpoint)
	if err != nil {
		return 0
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
		return 0
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0
	}
	pid, err := bench.ListenerPID(p)
	if err != nil || pid == os.Getpid() {
		return 0 // not found, or the server runs in this very process (tests)
	}
	return pid
}

// rssSampler records the peak VmRSS of pid while a run lasts (VmHWM alone
// would include whatever the server did before the run).
type rssSampler struct {
	pid  int
	peak int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	if pid == 0 {
		return s
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := bench.RSS(pid); err == nil && v > s.peak {
				s.peak = v
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// ServerMemory is the server's memory as seen from /proc.
type ServerMemory struct {
	PID          int     `json:"pid"`
	PeakRSSRunMB float64 `json:"peak_rss_during_run_mb"`
	VmHWMMB      float64 `json:"vmhwm_mb"`
}

func (s *rssSampler) finish() *ServerMemory {
	if s.pid == 0 {
		return nil
	}
	close(s.stop)
	s.wg.Wait()
	m := &ServerMemory{PID: s.pid, PeakRSSRunMB: float64(s.peak) / (1 << 20)}
	if hwm, err := bench.PeakRSS(s.pid); err == nil {
		m.VmHWMMB = float64(hwm) / (1 << 20)
	}
	return m
}

const benchIngestUsage = `usage: cairn bench ingest [flags]

Sends PutAuditEvents with --clients concurrent clients and --batch events
per request for --duration (or until --events were sent), at up to --rate
events/s, to a channel (created when missing), and reports events/s
acknowledged (durable), request latency, the server's peak RSS and CPU,
this load generator's CPU, and the event history's lag from the server's
/metrics: at the end of the sending, its maximum, its trend over the last
minute, and how long after the sending the history caught up.

  cairn bench ingest --data-dir ./cairn-data --clients 16 --batch 100 --duration 30s
  cairn bench ingest --rate 50000 --duration 10m --clients 16
`

func benchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := benchFlags("ingest", benchIngestUsage, stderr, 16)
	batch := fs.Int("batch", 100, "events per PutAuditEvents request (1-100)")
	duration := fs.Duration("duration", 30*time.Second, "how long to send (ignored when --events is set)")
	events := fs.Int64("events", 0, "send this many events, then stop")
	rate := fs.Float64("rate", 0, "target events/s across all clients (0: as fast as the server answers)")
	catchUp := fs.Duration("catch-up-timeout", 10*time.Minute, "after sending, wait up to this long for the event history to catch up (0: do not wait)")
	pool := fs.Int("pool", 64, "distinct request bodies generated before the clock starts, then sent round-robin")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this client (not of the server) to `file`, to check how much of the machine the load generator itself takes")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(pos, " "))
	}
	client, _, arn, gen, err := c.setup(ctx, true)
	if err != nil {
		return err
	}
	if *rate < 0 || *catchUp < 0 {
		return errors.New("--rate and --catch-up-timeout must not be negative")
	}
	cfg := bench.IngestConfig{Client: client, ChannelARN: arn, Clients: *c.clients, Batch: *batch, Events: *events, Rate: *rate, Pool: *pool, Gen: gen}
	if *events == 0 {
		cfg.Duration = *duration
	}
	// The history's lag comes from /metrics, which needs no credentials.
	lag, err := bench.WatchLag(ctx, &http.Client{Transport: apiclient.NewTransport(1)}, strings.TrimRight(c.rf.endpoint, "/")+"/metrics", 250*time.Millisecond)
	if err != nil {
		fmt.Fprintf(stderr, "cairn bench ingest: no history lag report: %v\n", err)
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Progress = func(p bench.IngestProgress) {
			fmt.Fprintf(stderr, "\r\033[K%5.0fs  %d events  %.0f events/s  %d errors", p.Elapsed.Seconds(), p.Accepted, float64(p.Accepted)/p.Elapsed.Seconds(), p.Errors)
			if lag != nil {
				fmt.Fprintf(stderr, "  history lag %d", lag.Lag())
			}
		}
	}
	pid := c.serverPID()
	rss := sampleRSS(pid)
	cpu := startServerCPU(pid)
	res, err := bench.RunIngest(ctx, cfg)
	if cfg.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		rss.finish()
		if lag != nil {
			_ = lag.EndSending(ctx) // stops its polling
		}
		return err
	}
	cpu.mark(res.Elapsed, res.Accepted)
	var lagRep *bench.LagReport
	if lag != nil {
		if err := lag.EndSending(ctx); err != nil {
			fmt.Fprintf(stderr, "cairn bench ingest: %v\n", err)
		}
		if *catchUp > 0 && cfg.Progress != nil {
			fmt.Fprintf(stderr, "waiting up to %v for the event history to catch up (lag %d)", *catchUp, lag.Lag())
		}
		err := lag.WaitCaughtUp(ctx, *catchUp)
		if *catchUp > 0 && cfg.Progress != nil {
			fmt.Fprint(stderr, "\r\033[K")
		}
		if err != nil {
			rss.finish()
			return err
		}
		lagRep = lag.Report(res.EventsPerSec, *catchUp)
		if lagRep.CatchUpSec != nil {
			cpu.mark(res.Elapsed+time.Duration(*lagRep.CatchUpSec*float64(time.Second)), res.Accepted)
		}
	}
	mem := rss.finish()
	if *c.asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Channel string `json:"channel"`
			*bench.IngestResult
			HistoryLag *bench.LagReport `json:"history_lag,omitempty"`
			Server     *ServerMemory    `json:"server,omitempty"`
			ServerCPU  *ServerCPU       `json:"server_cpu,omitempty"`
		}{arn, res, lagRep, mem, cpu.result()})
	}
	fmt.Fprintf(stdout, "PutAuditEvents to %s\n", arn)
	target := "as fast as possible"
	if res.TargetRate > 0 {
		target = fmt.Sprintf("target %.0f events/s", res.TargetRate)
	}
	fmt.Fprintf(stdout, "clients %d, batch %d, %s, %.1fs\n\n", res.Clients, res.Batch, target, res.ElapsedSec)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "events acknowledged\t%d\t(%.0f events/s)\n", res.Accepted, res.EventsPerSec)
	fmt.Fprintf(tw, "requests\t%d\t(%.1f MB/s of request bodies)\n", res.Requests, res.MBPerSec)
	fmt.Fprintf(tw, "events failed\t%d\t\n", res.Failed)
	fmt.Fprintf(tw, "request errors\t%d\t\n", res.Errors)
	l := res.Latency
	fmt.Fprintf(tw, "latency ms\tp50 %.1f  p90 %.1f  p99 %.1f  max %.1f\t\n", l.P50, l.P90, l.P99, l.Max)
	if mem != nil {
		fmt.Fprintf(tw, "server pid %d\tpeak RSS during run %.0f MB, VmHWM %.0f MB\t\n", mem.PID, mem.PeakRSSRunMB, mem.VmHWMMB)
	}
	// The lines below end without a tab so that their long text does not
	// widen the column of the numbers above.
	if sc := cpu.result(); sc != nil {
		fmt.Fprintf(tw, "server CPU\t%s while sending\n", shareText(sc.Sending))
		if sc.UntilCaughtUp != nil {
			fmt.Fprintf(tw, "\t%s until the history caught up\n", shareText(sc.UntilCaughtUp))
		}
	}
	if g := res.LoadGenerator; g != nil {
		fmt.Fprintf(tw, "load generator CPU\t%s\n", shareText(g))
	}
	if r := lagRep; r != nil {
		fmt.Fprintf(tw, "history lag at end\t%d entries (%.1f s of intake)\n", r.AtEnd, r.AtEndSec)
		fmt.Fprintf(tw, "history lag max\t%d entries (%.1f s of intake), %.0fs into the run\n", r.Max, r.MaxSec, r.MaxAtSec)
		trend := "too short to tell"
		if r.Growing != nil {
			trend = map[bool]string{true: "growing", false: "not growing"}[*r.Growing]
		}
		fmt.Fprintf(tw, "history lag trend\t%+.0f entries/s over the last %.0fs of sending: %s\n", r.SlopePerSec, r.SlopeWindowSec, trend)
		switch {
		case r.CatchUpSec != nil:
			fmt.Fprintf(tw, "history caught up\t%.1fs after sending; indexed %.0f entries/s while sending, %.0f/s until caught up\n", *r.CatchUpSec, r.IndexedPerSec, r.IndexedPerSecToCatchUp)
		case r.CatchUpTimeoutSec > 0:
			fmt.Fprintf(tw, "history caught up\tNOT within %v: %d entries left; indexed %.0f entries/s while sending\n", time.Duration(r.CatchUpTimeoutSec*float64(time.Second)), r.LagAfterWait, r.IndexedPerSec)
		default:
			fmt.Fprintf(tw, "history indexed\t%.0f entries/s while sending\n", r.IndexedPerSec)
		}
		if r.ScrapeErrors > 0 {
			fmt.Fprintf(tw, "/metrics errors\t%d, first: %s\n", r.ScrapeErrors, r.FirstError)
		}
	}
	_ = tw.Flush()
	for _, k := range bench.SortedCounts(res.ErrorCounts) {
		fmt.Fprintf(stdout, "  %6d  %s\n", res.ErrorCounts[k], k)
	}
	return nil
}

func shareText(p *bench.ProcessShare) string {
	return fmt.Sprintf("%.1fs = %.0f%% of %d cores, %.1f µs/event", p.CPUSec, p.MachinePct, p.Cores, p.MicrosPerEvent)
}

// ServerCPU is the server's CPU time (from /proc) while the benchmark sent,
// and until its event history had indexed everything sent (the whole cost
// of an event: ingest and indexing).
type ServerCPU struct {
	PID           int                 `json:"pid"`
	Sending       *bench.ProcessShare `json:"sending"`
	UntilCaughtUp *bench.ProcessShare `json:"until_caught_up,omitempty"`
}

// serverCPU reads the server's CPU time at the start and at each mark.
type serverCPU struct {
	pid   int
	start time.Duration
	marks []*bench.ProcessShare
}

func startServerCPU(pid int) *serverCPU {
	s := &serverCPU{pid: pid}
	if pid == 0 {
		return s
	}
	v, err := bench.ProcessCPU(pid)
	if err != nil {
		s.pid = 0
		return s
	}
	s.start = v
	return s
}

// mark records the CPU used since the start over wall (since the start).
func (s *serverCPU) mark(wall time.Duration, events int64) {
	if s.pid == 0 {
		return
	}
	if v, err := bench.ProcessCPU(s.pid); err == nil {
		s.marks = append(s.marks, bench.NewProcessShare(v-s.start, wall, events))
	}
}

func (s *serverCPU) result() *ServerCPU {
	if s.pid == 0 || len(s.marks) == 0 {
		return nil
	}
	r := &ServerCPU{PID: s.pid, Sending: s.marks[0]}
	if len(s.marks) > 1 {
		r.UntilCaughtUp = s.marks[1]
	}
	return r
}

const benchLookupUsage = `usage: cairn bench lookup [flags]

Measures LookupEvents pages for each of the eight attribute keys and for a
time range alone. With --fill N it first stores N generated events
(through PutAuditEvents, or the import endpoint with --fill-import) and
waits until the history has indexed them; query values are then chosen
from what was generated (for each key a common, a median and a rare
value). Without --fill, values are sampled from the newest events the
server already has.

  cairn bench lookup --fill 1000000 --fill-import --requests 300 --clients 4
`

func benchLookup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := benchFlags("lookup", benchLookupUsage, stderr, 4)
	fill := fs.Int("fill", 0, "first store this many generated events")
	fillImport := fs.Bool("fill-import", false, "fill through /cairn/import (CloudTrail management records) instead of PutAuditEvents")
	span := fs.Duration("fill-span", 7*24*time.Hour, "spread filled eventTimes over this much time before now")
	requests := fs.Int("requests", 200, "pages per query")
	depth := fs.Int("depth", 3, "pages to follow through NextToken before starting over with the next value")
	sample := fs.Int("sample", 2000, "without --fill: newest events to sample query values from")
	saveQueries := fs.String("save-queries", "", "write the queries run to `file` (JSON), so that a later run can repeat them with --queries")
	loadQueries := fs.String("queries", "", "run the queries in `file` (written by --save-queries) instead of choosing values")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	client, ct, arn, gen, err := c.setup(ctx, *fill > 0 && !*fillImport)
	if err != nil {
		return err
	}
	interactive := false
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		interactive = true
	}
	pid := c.serverPID()
	tracker := bench.NewTracker(*c.seed)
	var fillRes *bench.FillResult
	if *fill > 0 {
		gen.End, gen.Span = time.Now(), *span
		fc := bench.FillConfig{Client: client, CloudTrail: ct, Events: *fill, Import: *fillImport, ChannelARN: arn, Gen: gen, Tracker: tracker}
		if interactive {
			start := time.Now()
			var mu sync.Mutex
			last := time.Time{}
			fc.Progress = func(n int64) {
				mu.Lock()
				defer mu.Unlock()
				if time.Since(last) > 250*time.Millisecond {
					last = time.Now()
					fmt.Fprintf(stderr, "\r\033[Kfill: %d/%d events  %.0f events/s", n, *fill, float64(n)/time.Since(start).Seconds())
				}
			}
		}
		fillRes, err = bench.Fill(ctx, fc)
		if interactive {
			fmt.Fprint(stderr, "\r\033[K")
		}
		if err != nil {
			return err
		}
	} else if *loadQueries == "" {
		if err := sampleServer(ctx, ct, tracker, *sample); err != nil {
			return err
		}
	}
	queries := bench.QueriesFromProbes(tracker)
	if *loadQueries != "" {
		if *fill > 0 {
			return errors.New("--queries repeats an earlier run's queries and does not go with --fill")
		}
		raw, err := os.ReadFile(*loadQueries)
		if err != nil {
			return fmt.Errorf("read --queries: %w", err)
		}
		if err := json.Unmarshal(raw, &queries); err != nil {
			return fmt.Errorf("parse --queries %s: %w", *loadQueries, err)
		}
	}
	if *saveQueries != "" {
		raw, err := json.MarshalIndent(queries, "", "  ")
		if err != nil {
			return fmt.Errorf("encode --save-queries: %w", err)
		}
		if err := os.WriteFile(*saveQueries, append(raw, '\n'), 0o644); err != nil {
			return fmt.Errorf("write --save-queries: %w", err)
		}
	}
	if len(queries) == 0 {
		return errors.New("the server's event history is empty in this region: use --fill N")
	}
	rss := sampleRSS(pid)
	stats, err := bench.RunLookup(ctx, bench.LookupConfig{CloudTrail: ct, Clients: *c.clients, Requests: *requests, Depth: *depth, Queries: queries})
	mem := rss.finish()
	if err != nil {
		return err
	}
	probes := tracker.Probes()
	if *c.asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Fill    *bench.FillResult        `json:"fill,omitempty"`
			Clients int                      `json:"clients"`
			Queries []bench.LookupStat       `json:"queries"`
			Probes  map[string][]bench.Probe `json:"probes"`
			Server  *ServerMemory            `json:"server,omitempty"`
		}{fillRes, *c.clients, stats, trimProbes(probes), mem})
	}
	if fillRes != nil {
		how := "PutAuditEvents"
		if *fillImport {
			how = "import"
		}
		fmt.Fprintf(stdout, "fill: %d events through %s in %.1fs (%.0f events/s), all indexed after %.1fs\n\n",
			fillRes.Stored, how, fillRes.SendSec, fillRes.SendPerSec, fillRes.IndexedSec)
	}
	fmt.Fprintf(stdout, "LookupEvents, %d clients, up to 50 events per page, ms per page\n\n", *c.clients)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "query\tpages\tpages/s\tevents/page\tp50\tp90\tp99\tmax\terrors\t")
	for _, s := range stats {
		perPage := 0.0
		if s.Pages > 0 {
			perPage = float64(s.Events) / float64(s.Pages)
		}
		l := s.Latency
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", s.Query, s.Pages, s.PagesPerSec, perPage, l.P50, l.P90, l.P99, l.Max, s.Errors)
	}
	_ = tw.Flush()
	fmt.Fprintln(stdout, "\nvalues queried (events matching, of those generated):")
	for _, k := range event.AttributeKeys() {
		ps := probes[k]
		if len(ps) == 0 || k == event.AttrEventID {
			continue
		}
		var parts []string
		for _, p := range ps {
			parts = append(parts, fmt.Sprintf("%s (%d)", p.Value, p.Count))
		}
		fmt.Fprintf(stdout, "  %-13s %s\n", k, strings.Join(parts, ", "))
	}
	for _, s := range stats {
		if s.FirstError != "" {
			fmt.Fprintf(stdout, "  %s: first error: %s\n", s.Query, s.FirstError)
		}
	}
	if mem != nil {
		fmt.Fprintf(stdout, "\nserver pid %d: peak RSS during the lookups %.0f MB, VmHWM %.0f MB\n", mem.PID, mem.PeakRSSRunMB, mem.VmHWMMB)
	}
	return nil
}

// trimProbes keeps at most 10 sampled eventIDs in the JSON output.
func trimProbes(p map[string][]bench.Probe) map[string][]bench.Probe {
	if ids := p[event.AttrEventID]; len(ids) > 10 {
		p[event.AttrEventID] = ids[:10]
	}
	return p
}

// sampleServer feeds the newest n events of the history to t, so that a
// lookup benchmark on an existing server queries values it holds.
func sampleServer(ctx context.Context, ct *cloudtrail.Client, t *bench.Tracker, n int) error {
	p := cloudtrail.NewLookupEventsPaginator(ct, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(50)})
	seen := 0
	for p.HasMorePages() && seen < n {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("sample the event history: %w", err)
		}
		for _, e := range page.Events {
			t.Observe([]byte(aws.ToString(e.CloudTrailEvent)))
			seen++
		}
	}
	return nil
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
