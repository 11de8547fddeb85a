package query

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchRows is the size of the generated store.
const benchRows = 1_000_000

// writeBenchStore generates benchRows events over 30 days in ten Parquet
// files (zstd), with the columns the benchmarked queries read and a
// realistic eventjson payload, using an ordinary DuckDB.
func writeBenchStore(b *testing.B, dir string) []string {
	b.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const files = 10
	var out []string
	for f := range files {
		path := filepath.Join(dir, fmt.Sprintf("part-%02d.parquet", f))
		lo, hi := f*benchRows/files, (f+1)*benchRows/files
		q := fmt.Sprintf(`COPY (
  SELECT
    md5(CAST(i AS VARCHAR)) AS eventid,
    TIMESTAMP '2024-06-01 00:00:00' + to_microseconds(CAST(i AS BIGINT) * 2592000000000 // %[1]d) AS eventtime,
    ['DescribeInstances','GetObject','PutObject','AssumeRole','ListBuckets','GetSecretValue','ConsoleLogin','CreateUser','DescribeInstanceInformation','GetParameters'][1 + CAST(floor(pow(random(), 2) * 10) AS INTEGER)]
      || CAST(i %% 7 AS VARCHAR) AS eventname,
    ['ec2.amazonaws.com','s3.amazonaws.com','sts.amazonaws.com','iam.amazonaws.com','ssm.amazonaws.com'][1 + i %% 5] AS eventsource,
    'us-east-1' AS awsregion,
    {'type': 'AssumedRole', 'principalid': 'AROA' || (i %% 1000), 'arn': 'arn:aws:sts::123456789012:assumed-role/role-' || (i %% 1000) || '/session', 'accountid': '123456789012'} AS useridentity,
    MAP {'bucketName': 'bucket-' || (i %% 100), 'key': 'k/' || i} AS requestparameters,
    '{"eventVersion":"1.08","eventID":"' || md5(CAST(i AS VARCHAR)) || '","userAgent":"aws-cli/2.15.0 Python/3.11 Linux/6.1 exe/x86_64","sourceIPAddress":"198.51.100.' || (i %% 250) || '","requestParameters":{"bucketName":"bucket-' || (i %% 100) || '","key":"k/' || i || '"}}' AS eventjson
  FROM range(%[2]d, %[3]d) t(i)
  ORDER BY eventtime
) TO '%[4]s' (FORMAT parquet, COMPRESSION zstd)`, benchRows, lo, hi, path)
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
		out = append(out, path)
	}
	return out
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discard is a Sink that counts rows.
type discard struct{ rows int }

func (d *discard) Columns([]string) error { return nil }
func (d *discard) Row([]*string) error    { d.rows++; return nil }

// BenchmarkEngine runs Lake queries on a generated store of a million
// events: the statement check and rewrite, a fresh sandboxed database,
// the scan. It reports wall and CPU nanoseconds per event of the store
// (CPU time is what to compare on a loaded machine).
func BenchmarkEngine(b *testing.B) {
	dir := b.TempDir()
	files := writeBenchStore(b, dir)
	cat := newTestCatalog()
	cat.add(fixtureID, files, true)
	ctx := context.Background()
	eng, err := NewEngine(ctx, cat, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	var needle string
	if err := sql.OpenDB(eng.parserConn).QueryRowContext(ctx, "SELECT md5('777777')").Scan(&needle); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, stmt string
		rows       int
	}{
		{"fixed-cost", "SELECT 1 FROM " + fixtureID + " LIMIT 1", 1},
		{"needle-eventid-only", "SELECT eventid FROM " + fixtureID + " WHERE eventid = '" + needle + "'", 1},
		{"groupby-eventname", "SELECT eventname, count(*) FROM " + fixtureID + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10", 10},
		{"groupby-one-day", "SELECT eventname, count(*) FROM " + fixtureID + " WHERE eventtime >= '2024-06-10 00:00:00' AND eventtime < '2024-06-11 00:00:00' GROUP BY 1 ORDER BY 2 DESC LIMIT 10", 10},
		{"needle-eventid", "SELECT * FROM " + fixtureID + " WHERE eventid = '" + needle + "'", 1},
		{"arn-filter-7-days", "SELECT count(*) FROM " + fixtureID + " WHERE useridentity.arn = 'arn:aws:sts::123456789012:assumed-role/role-42/session' AND eventtime >= '2024-06-10 00:00:00' AND eventtime < '2024-06-17 00:00:00'", 1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				q, err := eng.Check(ctx, testRegion, testAccount, c.stmt)
				if err != nil {
					b.Fatal(err)
				}
				var d discard
				if _, err := eng.Run(ctx, q, &d); err != nil {
					b.Fatal(err)
				}
				if d.rows != c.rows {
					b.Fatalf("%d rows, want %d", d.rows, c.rows)
				}
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRows, "ns/event")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/benchRows, "cpu-ns/event")
		})
	}
}
