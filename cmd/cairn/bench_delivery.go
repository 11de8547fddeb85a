package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/objstore/stores"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

const benchDeliveryUsage = `usage: cairn bench delivery [flags]

Measures trail delivery in-process: a temporary journal is filled with
--events realistic records (~1.3 KB, three regions), then 1 and then 5
trails (--trails) deliver them as CloudTrail log files to an object store
(a temporary file store, or the S3 server --store names), with the
delivery interval --interval. Each trail count runs on a
fresh journal. The trails stop logging once the events are in (their
windows close at the last event), so the final batch is cut as soon as it
is read: the time measured is reading, selecting, compressing, writing and
committing, not waiting for the interval.

With --store s3://HOST:PORT?..., each run writes into a new bucket named
cairn-bench-<unique>-<run>, which is left in place afterwards (remove it
with "aws s3 rb --force"); credentials come from --s3-access-key-id and
--s3-secret-access-key, else CAIRN_S3_ACCESS_KEY_ID and
CAIRN_S3_SECRET_ACCESS_KEY, else the AWS SDK's credential chain. The store
is never taken from CAIRN_STORE: a benchmark must not write into a
server's store because of its environment.

Reported: wall time until every trail's cursor reached the end, journal
entries read per second per trail and in total, records delivered, files
and compressed bytes.
`

// benchDeliveryTrails are the trails of a run, in order; a run with n
// trails uses the first n. All are multi-region except the last, so each
// reads and judges every event.
var benchDeliveryTrails = []struct {
	name     string
	multi    bool
	basic    []selector.EventSelector
	advanced []selector.AdvancedEventSelector
}{
	{name: "bench-all", multi: true},
	{name: "bench-read", multi: true, basic: []selector.EventSelector{{ReadWriteType: ptrTo("ReadOnly"), IncludeManagementEvents: ptrTo(true)}}},
	{name: "bench-write", multi: true, basic: []selector.EventSelector{{ReadWriteType: ptrTo("WriteOnly"), IncludeManagementEvents: ptrTo(true)}}},
	{name: "bench-no-kms", multi: true, advanced: []selector.AdvancedEventSelector{{FieldSelectors: []selector.FieldSelector{
		{Field: "eventCategory", Equals: []string{"Management"}},
		{Field: "eventSource", NotEquals: []string{"kms.amazonaws.com"}},
	}}}},
	{name: "bench-home", multi: false},
}

func ptrTo[T any](v T) *T { return &v }

// benchDeliveryResult is one run.
type benchDeliveryResult struct {
	Trails       int     `json:"trails"`
	Events       int     `json:"events"`
	JournalMB    float64 `json:"journal_mb"`
	FillSeconds  float64 `json:"fill_seconds"`
	Seconds      float64 `json:"seconds"`
	PerTrailEPS  float64 `json:"events_per_second_per_trail"`
	TotalEPS     float64 `json:"events_per_second_total"`
	Records      int64   `json:"records_delivered"`
	Files        int64   `json:"files"`
	CompressedMB float64 `json:"compressed_mb"`
}

// runBenchDelivery is `cairn bench delivery`.
func runBenchDelivery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cairn bench delivery", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		events   = fs.Int("events", 100_000, "records in the journal")
		counts   = fs.String("trails", "1,5", "comma-separated trail counts (1 to 5), one run each on a fresh journal")
		interval = fs.Duration("interval", time.Second, "delivery interval (1s to 15m)")
		dir      = fs.String("dir", "", "working directory (default: a temporary directory, removed afterwards)")
		seed     = fs.Uint64("seed", 1, "generator seed (same seed, same events)")
		asJSON   = fs.Bool("json", false, "print machine-readable results (JSON) instead of a table")
		storeURL = fs.String("store", "", "object store to deliver to: s3://HOST[:PORT]?region=..&tls=false (default: a file store in the working directory)")
		s3Key    = fs.String("s3-access-key-id", "", "access key for an s3:// --store (env CAIRN_S3_ACCESS_KEY_ID; default: the AWS SDK's credential chain)")
		s3Secret = fs.String("s3-secret-access-key", "", "secret key for an s3:// --store; prefer the env CAIRN_S3_SECRET_ACCESS_KEY")
	)
	usageWithFlags(fs, benchDeliveryUsage, stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *events < 1 {
		return errors.New("--events must be at least 1")
	}
	if *s3Key == "" {
		*s3Key = os.Getenv("CAIRN_S3_ACCESS_KEY_ID")
	}
	if *s3Secret == "" {
		*s3Secret = os.Getenv("CAIRN_S3_SECRET_ACCESS_KEY")
	}
	target := benchStore{url: *storeURL, opts: stores.Options{AccessKeyID: *s3Key, SecretAccessKey: *s3Secret}}
	if target.url != "" {
		if _, err := stores.ParseS3(target.url); err != nil {
			return fmt.Errorf("--store: %w", err)
		}
		// Unique per invocation, so that runs never overwrite or count
		// each other's files in a store that outlives them.
		target.bucketPrefix = "cairn-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	var runs []int
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > len(benchDeliveryTrails) {
			return fmt.Errorf("--trails %q: want numbers from 1 to %d", *counts, len(benchDeliveryTrails))
		}
		runs = append(runs, n)
	}
	work := *dir
	if work == "" {
		tmp, err := os.MkdirTemp("", "cairn-bench-delivery-")
		if err != nil {
			return fmt.Errorf("create a working directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	var results []benchDeliveryResult
	for i, n := range runs {
		if !*asJSON {
			fmt.Fprintf(stderr, "run %d: %d trail(s), %d events...\n", i+1, n, *events)
		}
		res, err := benchDeliveryRun(ctx, filepath.Join(work, fmt.Sprintf("run-%d", i+1)), target, i+1, n, *events, *interval, *seed)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"cpus": runtime.NumCPU(), "load_average": loadAverage(), "interval": interval.String(), "store": target.describe(), "runs": results})
	}
	fmt.Fprintf(stdout, "cairn bench delivery: %d CPUs, load average %s, interval %s, %s\n", runtime.NumCPU(), loadAverage(), *interval, target.describe())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trails\tevents\tjournal MB\tfill s\tdeliver s\tevents/s/trail\tevents/s total\trecords out\tfiles\tcompressed MB\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.2f\t%.2f\t%.0f\t%.0f\t%d\t%d\t%.1f\t\n",
			r.Trails, r.Events, r.JournalMB, r.FillSeconds, r.Seconds, r.PerTrailEPS, r.TotalEPS, r.Records, r.Files, r.CompressedMB)
	}
	return tw.Flush()
}

func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// benchStore is where a benchmark delivers: a file store inside each run's
// directory when url is empty, else the s3:// store url names, with one
// new bucket per run.
type benchStore struct {
	url          string
	opts         stores.Options
	bucketPrefix string
}

func (b benchStore) describe() string {
	if b.url == "" {
		return "file store"
	}
	return "store " + b.url
}

// open returns the run's store and the bucket to deliver to, created.
func (b benchStore) open(ctx context.Context, dir string, run int, log *slog.Logger) (objstore.Store, string, error) {
	if b.url == "" {
		store, err := file.New(datadir.Path(dir, datadir.Buckets), file.Options{Logger: log})
		if err != nil {
			return nil, "", err
		}
		const bucket = "cairn-bench"
		if err := store.CreateBucket(ctx, bucket); err != nil {
			store.Close()
			return nil, "", err
		}
		return store, bucket, nil
	}
	opts := b.opts
	opts.Logger = log
	store, err := stores.Open(ctx, b.url, opts)
	if err != nil {
		return nil, "", err
	}
	bucket := fmt.Sprintf("%s-%d", b.bucketPrefix, run)
	if err := store.CreateBucket(ctx, bucket); err != nil {
		store.Close()
		return nil, "", fmt.Errorf("create bucket %s in %s: %w", bucket, b.url, err)
	}
	return store, bucket, nil
}

// benchDeliveryRun fills a fresh journal in dir and delivers it with n
// trails into a new bucket of target.
func benchDeliveryRun(ctx context.Context, dir string, target benchStore, run, n, events int, interval time.Duration, seed uint64) (benchDeliveryResult, error) {
	res := benchDeliveryResult{Trails: n, Events: events}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := journal.Open(ctx, datadir.Path(dir, datadir.Journal), journal.Options{Logger: log})
	if err != nil {
		return res, err
	}
	defer j.Close()
	st, err := state.Open(ctx, datadir.Path(dir, datadir.State), state.Options{Logger: log})
	if err != nil {
		return res, err
	}
	defer st.Close()
	store, bucket, err := target.open(ctx, dir, run, log)
	if err != nil {
		return res, err
	}
	defer store.Close()
	const account, home = "000000000000", "us-east-1"
	trails := trail.New(st, store, account, nil, trail.WithLogger(log))
	var arns []string
	for _, spec := range benchDeliveryTrails[:n] {
		t, err := trails.Create(ctx, home, trail.CreateInput{Name: spec.name, S3BucketName: bucket, IsMultiRegionTrail: &spec.multi})
		if err != nil {
			return res, err
		}
		if spec.basic != nil || spec.advanced != nil {
			if _, err := trails.PutEventSelectors(ctx, home, spec.name, spec.basic, spec.advanced); err != nil {
				return res, err
			}
		}
		if err := trails.StartLogging(ctx, home, spec.name); err != nil {
			return res, err
		}
		arns = append(arns, t.ARN())
	}
	reg := prometheus.NewRegistry()
	m, err := delivery.NewManager(j, st, trails, store, delivery.Options{Interval: interval, Logger: log, Registerer: reg})
	if err != nil {
		return res, err
	}
	if err := m.TrailChanged(ctx); err != nil { // open the logging windows
		return res, err
	}

	// Fill: realistic records from three regions.
	gens := []*bench.Generator{
		bench.New(bench.Options{Seed: seed, AccountID: account, Region: "us-east-1", End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}),
		bench.New(bench.Options{Seed: seed + 1, AccountID: account, Region: "eu-west-1", End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}),
		bench.New(bench.Options{Seed: seed + 2, AccountID: account, Region: "us-west-2", End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}),
	}
	start := time.Now()
	var size int64
	for done := 0; done < events; {
		k := min(1000, events-done)
		batch := make([][]byte, k)
		for i := range batch {
			batch[i] = gens[(done+i)%len(gens)].Record(nil)
			size += int64(len(batch[i]))
		}
		if _, err := j.Append(ctx, batch); err != nil {
			return res, err
		}
		done += k
	}
	res.FillSeconds = time.Since(start).Seconds()
	res.JournalMB = float64(size) / 1e6
	// Close the windows at the last event, as StopLogging would.
	for _, spec := range benchDeliveryTrails[:n] {
		if err := trails.StopLogging(ctx, home, spec.name); err != nil {
			return res, err
		}
	}
	if err := m.TrailChanged(ctx); err != nil {
		return res, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	start = time.Now()
	wg.Go(func() { runErr = m.Run(runCtx) })
	last := j.LastSeq()
	for {
		// A trail is done when its cursor reached the end, or when it is
		// gone: a stopped trail releases its cursor once it delivered
		// everything.
		doneAll := true
		cursors := j.Cursors()
		for _, arn := range arns {
			if pos, ok := cursors[delivery.CursorName(arn)]; ok && pos < last {
				doneAll = false
			}
		}
		if doneAll {
			break
		}
		if err := ctx.Err(); err != nil {
			cancel()
			wg.Wait()
			return res, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.Seconds = time.Since(start).Seconds()
	mfs, err := reg.Gather() // before Run returns and unregisters them
	cancel()
	wg.Wait()
	if err != nil {
		return res, err
	}
	if runErr != nil {
		return res, runErr
	}
	res.PerTrailEPS = float64(events) / res.Seconds
	res.TotalEPS = float64(events*n) / res.Seconds
	var compressed float64
	for _, mf := range mfs {
		var sum float64
		for _, mt := range mf.GetMetric() {
			sum += mt.GetCounter().GetValue()
		}
		switch mf.GetName() {
		case "cairn_delivery_records_total":
			res.Records = int64(sum)
		case "cairn_delivery_files_total":
			res.Files = int64(sum)
		case "cairn_delivery_bytes_total":
			compressed = sum
		}
	}
	res.CompressedMB = compressed / 1e6
	return res, nil
}
