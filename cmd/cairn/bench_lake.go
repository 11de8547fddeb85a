package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/cairn-audit/cairn/internal/bench/lakebench"
)

const benchLakeUsage = `usage: cairn bench lake [flags]

Measures CloudTrail Lake in-process, on this machine: --events realistic
CloudTrail events spread over --days days are written as an event data
store's Parquet files (the ingestion's writer and layout) and, side by
side, as CloudTrail's gzip log files (one per 5 minutes); then the issue's
queries run through Cairn's sandboxed engine (--reps times; best and
median) and once with DuckDB reading the gzip JSON files, the "Athena over
S3" way, pruned to the days each query needs:

  GROUP BY eventname over all days, and over one day;
  a needle (eventid = ...) over 7 days; a useridentity.arn filter over 7 days.

Also reported: write rate (events/s converted and written as Parquet),
bytes of Parquet and of gzip log files, per event. Everything goes into a
temporary directory (--dir to keep it elsewhere) that is removed after.
`

func runBenchLake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench lake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchLakeUsage); fs.PrintDefaults() }
	events := fs.Int("events", 1_000_000, "events in the store")
	days := fs.Int("days", 30, "days the events are spread over")
	reps := fs.Int("reps", 3, "runs of each query through Cairn's engine")
	dir := fs.String("dir", "", "work directory (default: a temporary one, removed after)")
	seed := fs.Uint64("seed", 1, "generator seed")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work := *dir
	if work == "" {
		d, err := os.MkdirTemp("", "cairn-bench-lake-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	res, err := lakebench.Run(ctx, lakebench.Config{Dir: work, Events: *events, Days: *days, Seed: *seed, Reps: *reps,
		Logf: func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "%d events over %d days, %d CPUs (GOMAXPROCS %d)\n", res.Events, res.Days, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(stdout, "write: %.0f events/s as Parquet (%v), generation and gzip log files %v\n",
		float64(res.Events)/res.Write.Seconds(), res.Write.Round(time.Millisecond), res.Generate.Round(time.Millisecond))
	fmt.Fprintf(stdout, "bytes: Parquet %d in %d files (%.1f B/event), gzip log files %d in %d files (%.1f B/event): %.2fx\n",
		res.ParquetBytes, res.ParquetFiles, float64(res.ParquetBytes)/float64(res.Events),
		res.GzipBytes, res.GzipFiles, float64(res.GzipBytes)/float64(res.Events), float64(res.ParquetBytes)/float64(res.GzipBytes))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "query\tCairn best\tCairn median\tgzip JSON\tspeed-up\trows")
	for _, q := range res.Queries {
		best, med := q.Cairn[0], q.Cairn[len(q.Cairn)/2]
		base, ratio := "failed: "+q.JSONFailed, "-"
		if len(q.JSON) > 0 {
			base = q.JSON[0].Round(time.Millisecond).String()
			ratio = fmt.Sprintf("%.0fx", q.JSON[0].Seconds()/best.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%v\t%v\t%s\t%s\t%d\n", q.Name, best.Round(time.Millisecond), med.Round(time.Millisecond), base, ratio, q.Rows)
	}
	return tw.Flush()
}
