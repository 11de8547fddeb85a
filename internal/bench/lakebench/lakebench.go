// Package lakebench measures CloudTrail Lake in-process (cairn bench lake):
// the store's Parquet writer and files, and the queries through
// the sandboxed engine next to DuckDB over the same events as gzip log
// files. It is apart from package bench because ingestion's own
// benchmarks use bench's generator.
package lakebench

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "Athena over S3" baseline reads JSON with DuckDB

	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/lake/ingest"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/query"
)

// Config configures RunLake.
type Config struct {
	// Dir is the work directory (the store's files, the gzip log files);
	// it must exist and be empty.
	Dir string
	// Events are spread uniformly over Days days ending at the last
	// midnight (UTC) before now.
	Events int
	Days   int
	Seed   uint64
	// Reps is how many times each query runs (the best and the median
	// are reported).
	Reps int
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// QueryStat is one query's timings, Cairn's and the baseline's.
type QueryStat struct {
	Name       string
	Cairn      []time.Duration // sorted
	JSON       []time.Duration // sorted; empty when the baseline was not run
	Rows       int
	CairnSQL   string
	JSONSQL    string
	JSONFailed string
}

// Result is what RunLake measured.
type Result struct {
	Events       int
	Days         int
	Generate     time.Duration // making the events and their gzip log files
	Write        time.Duration // converting and writing them as the store's Parquet files
	ParquetBytes int64
	ParquetFiles int
	GzipBytes    int64
	GzipFiles    int
	Queries      []QueryStat
}

const lakeBenchStore = "0b0b0b0b-1111-4222-8333-444455556666"

// lakeBenchCatalog serves the one store of the bench.
type lakeBenchCatalog struct {
	spec  lake.Spec
	files []string
}

func (c *lakeBenchCatalog) Lookup(_ context.Context, _, _, ref string) (lake.Spec, bool, error) {
	if ref == c.spec.ID || ref == c.spec.ARN {
		return c.spec, true, nil
	}
	return lake.Spec{}, false, nil
}

func (c *lakeBenchCatalog) Files(context.Context, string) ([]string, error) { return c.files, nil }

func (c *lakeBenchCatalog) Columns(string) []query.Column { return nil }

// discardSink counts a query's rows.
type discardSink struct{ rows int }

func (d *discardSink) Columns([]string) error { return nil }
func (d *discardSink) Row([]*string) error    { d.rows++; return nil }

// RunLake measures CloudTrail Lake on this machine: it generates Events
// realistic CloudTrail events over Days days, writes them as a store's
// Parquet files (the same writer and layout as ingestion) and as
// CloudTrail's gzip log files (one per 5 minutes, as trails deliver), then
// runs the queries through Cairn's sandboxed engine and, side by
// side, the same questions with DuckDB reading the gzip JSON files (the
// "Athena over S3" way, with the date prefix pruning Athena's partition
// projection would give it).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Days <= 0 || cfg.Events <= 0 {
		return nil, fmt.Errorf("bench lake: need events and days")
	}
	if cfg.Reps <= 0 {
		cfg.Reps = 3
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	quiet := slog.New(slog.DiscardHandler)
	j, err := journal.Open(ctx, filepath.Join(cfg.Dir, "journal"), journal.Options{Logger: quiet, MinFreeBytes: -1})
	if err != nil {
		return nil, err
	}
	defer j.Close()
	obj, err := file.New(filepath.Join(cfg.Dir, "buckets"), file.Options{Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	end := time.Now().UTC().Truncate(24 * time.Hour)
	spec := lake.Spec{
		ID: lakeBenchStore, ARN: "arn:aws:cloudtrail:us-east-1:000000000000:eventdatastore/" + lakeBenchStore,
		Region: "us-east-1", AccountID: "000000000000", Status: lake.StatusEnabled, Category: lake.CategoryManagement,
		Categories: []string{lake.CategoryManagement}, RetentionDays: 3653, MultiRegion: true, Ingesting: true, Queryable: true,
	}
	in, err := ingest.New(ctx, ingest.Options{Journal: j, Store: obj, Specs: func(context.Context) ([]lake.Spec, error) { return []lake.Spec{spec}, nil }, Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer in.Close()

	res := &Result{Events: cfg.Events, Days: cfg.Days}
	logDir := filepath.Join(cfg.Dir, "logs")
	var needleID, needleARN string
	perDay := cfg.Events / cfg.Days
	for d := range cfg.Days {
		dayStart := end.AddDate(0, 0, d-cfg.Days)
		n := perDay
		if d == cfg.Days-1 {
			n = cfg.Events - perDay*(cfg.Days-1)
		}
		g := bench.New(bench.Options{Seed: cfg.Seed + uint64(d), End: dayStart.Add(24*time.Hour - time.Second), Span: 24*time.Hour - time.Second})
		t0 := time.Now()
		recs := make([][]byte, 0, n)
		windows := make([][][]byte, 288)
		for range n {
			raw := g.Record(nil)
			rec, err := event.Parse(raw)
			if err != nil {
				return nil, fmt.Errorf("bench lake: generated record: %w", err)
			}
			recs = append(recs, raw)
			w := int(rec.EventTime.Sub(dayStart) / (5 * time.Minute))
			windows[min(max(w, 0), 287)] = append(windows[min(max(w, 0), 287)], raw)
			if d == max(cfg.Days-3, 0) && needleID == "" && rec.EventID != "" && rec.UserIdentityARN != "" {
				needleID, needleARN = rec.EventID, rec.UserIdentityARN
			}
		}
		files, size, err := writeLogFiles(logDir, dayStart, windows)
		if err != nil {
			return nil, err
		}
		res.GzipFiles += files
		res.GzipBytes += size
		res.Generate += time.Since(t0)
		t1 := time.Now()
		for i := 0; i < len(recs); i += 200_000 {
			chunk := recs[i:min(i+200_000, len(recs))]
			if err := in.WriteImport(ctx, spec, fmt.Sprintf("bench-%03d-%04d", d, i/200_000), chunk); err != nil {
				return nil, err
			}
		}
		res.Write += time.Since(t1)
		logf("day %d/%d: %d events", d+1, cfg.Days, n)
	}
	files, err := in.Files(ctx, spec.ID)
	if err != nil {
		return nil, err
	}
	res.ParquetFiles = len(files)
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		res.ParquetBytes += st.Size()
	}

	eng, err := query.NewEngine(ctx, &lakeBenchCatalog{spec: spec, files: files}, query.Limits{})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	base, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer base.Close()

	day := func(offset int) time.Time { return end.AddDate(0, 0, offset) }
	ts := func(t time.Time) string { return t.Format("2006-01-02 15:04:05") }
	globs := func(from, to time.Time) string {
		var gs []string
		for t := from; t.Before(to); t = t.AddDate(0, 0, 1) {
			gs = append(gs, sqlQuote(filepath.Join(logDir, t.Format("2006/01/02"), "*.json.gz")))
		}
		return "[" + strings.Join(gs, ", ") + "]"
	}
	jsonFrom := func(from, to time.Time) string {
		return "(SELECT unnest(Records) AS e FROM read_json(" + globs(from, to) + ", columns = {Records: 'JSON[]'}, maximum_object_size = 1073741824))"
	}
	// The windows stay within the days there are (a short run has fewer
	// than 7); the needle comes from the third day from the end.
	later := func(a, b time.Time) time.Time {
		if a.After(b) {
			return a
		}
		return b
	}
	all0, all1 := day(-cfg.Days), end
	week0 := later(day(-7), all0)
	one0 := later(day(-2), all0)
	one1 := one0.AddDate(0, 0, 1)
	cases := []QueryStat{
		{Name: "GROUP BY eventname, all days",
			CairnSQL: "SELECT eventname, count(*) AS n FROM " + spec.ID + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
			JSONSQL:  "SELECT e->>'eventName' AS eventname, count(*) AS n FROM " + jsonFrom(all0, all1) + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10"},
		{Name: "GROUP BY eventname, one day",
			CairnSQL: "SELECT eventname, count(*) AS n FROM " + spec.ID + " WHERE eventtime >= '" + ts(one0) + "' AND eventtime < '" + ts(one1) + "' GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
			JSONSQL:  "SELECT e->>'eventName' AS eventname, count(*) AS n FROM " + jsonFrom(one0, one1) + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10"},
		{Name: "needle eventid, 7 days",
			CairnSQL: "SELECT * FROM " + spec.ID + " WHERE eventid = '" + needleID + "' AND eventtime >= '" + ts(week0) + "'",
			JSONSQL:  "SELECT e FROM " + jsonFrom(week0, all1) + " WHERE e->>'eventID' = '" + needleID + "'"},
		{Name: "useridentity.arn, 7 days",
			CairnSQL: "SELECT eventname, count(*) AS n FROM " + spec.ID + " WHERE useridentity.arn = '" + needleARN + "' AND eventtime >= '" + ts(week0) + "' GROUP BY 1",
			JSONSQL:  "SELECT e->'userIdentity'->>'arn' AS arn, e->>'eventName' AS eventname, count(*) AS n FROM " + jsonFrom(week0, all1) + " WHERE e->'userIdentity'->>'arn' = '" + needleARN + "' GROUP BY 1, 2"},
	}
	for i := range cases {
		c := &cases[i]
		for range cfg.Reps {
			t0 := time.Now()
			q, err := eng.Check(ctx, spec.Region, spec.AccountID, c.CairnSQL)
			if err != nil {
				return nil, fmt.Errorf("bench lake: %s: %w", c.Name, err)
			}
			var sink discardSink
			if _, err := eng.Run(ctx, q, &sink); err != nil {
				return nil, fmt.Errorf("bench lake: %s: %w", c.Name, err)
			}
			c.Cairn = append(c.Cairn, time.Since(t0))
			c.Rows = sink.rows
		}
		slices.Sort(c.Cairn)
		// The baseline is slow: it runs once.
		t0 := time.Now()
		rows, err := base.QueryContext(ctx, c.JSONSQL)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		if err != nil {
			c.JSONFailed = err.Error()
		} else {
			c.JSON = []time.Duration{time.Since(t0)}
		}
		logf("%s: Cairn best %v, JSON %v", c.Name, c.Cairn[0], c.JSON)
	}
	res.Queries = cases
	return res, nil
}

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// writeLogFiles writes each 5-minute window's records as one CloudTrail
// log file under dir/YYYY/MM/DD.
func writeLogFiles(dir string, day time.Time, windows [][][]byte) (int, int64, error) {
	sub := filepath.Join(dir, day.Format("2006/01/02"))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return 0, 0, err
	}
	var n int
	var size int64
	var buf bytes.Buffer
	for i, recs := range windows {
		if len(recs) == 0 {
			continue
		}
		buf.Reset()
		zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		zw.Write([]byte(`{"Records":[`))
		for k, r := range recs {
			if k > 0 {
				zw.Write([]byte(","))
			}
			zw.Write(r)
		}
		zw.Write([]byte("]}"))
		if err := zw.Close(); err != nil {
			return 0, 0, err
		}
		stamp := day.Add(time.Duration(i+1) * 5 * time.Minute)
		name := fmt.Sprintf("000000000000_CloudTrail_us-east-1_%s_bench%04d.json.gz", stamp.Format("20060102T1504Z"), i)
		if err := os.WriteFile(filepath.Join(sub, name), buf.Bytes(), 0o644); err != nil {
			return 0, 0, err
		}
		n++
		size += int64(buf.Len())
	}
	return n, size, nil
}
