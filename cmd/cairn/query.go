package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

const queryUsage = `usage: cairn query [flags] "SQL" | --file query.sql

Runs a CloudTrail Lake query (StartQuery, then DescribeQuery until it ends,
then every page of GetQueryResults) and prints the result.

  cairn query --store my-store "SELECT eventname, count(*) FROM $EDS_ID GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
  cairn query --file top-callers.sql --store my-store --output csv > top.csv

--store names an event data store (its name, ID or ARN); its ID replaces
every $EDS_ID in the statement, as in CloudTrail's sample queries. Progress
goes to stderr while the query runs; rows go to stdout as an aligned table
(default), CSV with a header, or JSON (one object per row, keys in column
order).
`

// runQuery is `cairn query`.
func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, queryUsage); fs.PrintDefaults() }
	rf := addRemoteFlags(fs)
	file := fs.String("file", "", "read the statement from this file (- for stdin)")
	store := fs.String("store", "", "event data store (name, ID or ARN) whose ID replaces $EDS_ID")
	output := fs.String("output", "table", "table, csv or json")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	timeout := fs.Duration("timeout", time.Hour, "give up (and cancel the query) after this long")
	// Flags may follow the statement.
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	stmt, err := queryStatement(pos, *file)
	if err != nil {
		return err
	}
	switch *output {
	case "table", "csv", "json":
	default:
		return fmt.Errorf("--output %q: want table, csv or json", *output)
	}
	client, _, err := rf.cloudTrail(ctx, nil)
	if err != nil {
		return err
	}
	if *store != "" {
		id, err := resolveStoreID(ctx, client, *store)
		if err != nil {
			return err
		}
		stmt = strings.ReplaceAll(stmt, "$EDS_ID", id)
	} else if strings.Contains(stmt, "$EDS_ID") {
		return errors.New("the statement uses $EDS_ID: name the event data store with --store")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	started, err := client.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(stmt)})
	if err != nil {
		return fmt.Errorf("StartQuery: %w", err)
	}
	id := aws.ToString(started.QueryId)
	desc, err := waitQuery(ctx, client, id, stderr, *quiet)
	if err != nil {
		// Do not leave it running on the server.
		client.CancelQuery(context.WithoutCancel(ctx), &cloudtrail.CancelQueryInput{QueryId: aws.String(id)})
		return err
	}
	if desc.QueryStatus != types.QueryStatusFinished {
		return fmt.Errorf("query %s %s: %s", id, desc.QueryStatus, aws.ToString(desc.ErrorMessage))
	}
	w, err := newRowWriter(*output, stdout)
	if err != nil {
		return err
	}
	var token *string
	for {
		page, err := client.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(id), NextToken: token, MaxQueryResults: aws.Int32(1000)})
		if err != nil {
			return fmt.Errorf("GetQueryResults: %w", err)
		}
		for _, row := range page.QueryResultRows {
			if err := w.row(row); err != nil {
				return err
			}
		}
		if page.NextToken == nil {
			break
		}
		token = page.NextToken
	}
	return w.close()
}

// queryStatement takes the statement from the argument or --file.
func queryStatement(args []string, file string) (string, error) {
	switch {
	case file != "" && len(args) > 0:
		return "", errors.New("give the statement as an argument or with --file, not both")
	case file == "-":
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		return string(b), err
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read the statement: %w", err)
		}
		return string(b), nil
	case len(args) == 1:
		return args[0], nil
	case len(args) == 0:
		return "", errors.New("no statement: give it as an argument or with --file (see cairn query -h)")
	}
	return "", fmt.Errorf("one statement argument expected, got %d (quote the SQL)", len(args))
}

// resolveStoreID finds a store by name, ID or ARN.
func resolveStoreID(ctx context.Context, client *cloudtrail.Client, ref string) (string, error) {
	p := cloudtrail.NewListEventDataStoresPaginator(client, &cloudtrail.ListEventDataStoresInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("ListEventDataStores: %w", err)
		}
		for _, s := range page.EventDataStores {
			arn := aws.ToString(s.EventDataStoreArn)
			id := arn[strings.LastIndexByte(arn, '/')+1:]
			if ref == aws.ToString(s.Name) || ref == arn || ref == id {
				return id, nil
			}
		}
	}
	return "", fmt.Errorf("no event data store named %q in this region", ref)
}

// waitQuery polls DescribeQuery until the query ends, showing progress.
func waitQuery(ctx context.Context, client *cloudtrail.Client, id string, stderr io.Writer, quiet bool) (*cloudtrail.DescribeQueryOutput, error) {
	start := time.Now()
	delay := 50 * time.Millisecond
	for {
		d, err := client.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("DescribeQuery: %w", err)
		}
		switch d.QueryStatus {
		case types.QueryStatusQueued, types.QueryStatusRunning:
		default:
			if !quiet {
				fmt.Fprintf(stderr, "\rquery %s %s in %s%s\n", id, d.QueryStatus, time.Since(start).Round(time.Millisecond), statsNote(d.QueryStatistics))
			}
			return d, nil
		}
		if !quiet {
			fmt.Fprintf(stderr, "\rquery %s %s %s%s", id, d.QueryStatus, time.Since(start).Round(100*time.Millisecond), statsNote(d.QueryStatistics))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("query %s: %w", id, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

func statsNote(s *types.QueryStatisticsForDescribeQuery) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf(", %d events scanned, %d matched, %d bytes", aws.ToInt64(s.EventsScanned), aws.ToInt64(s.EventsMatched), aws.ToInt64(s.BytesScanned))
}

// rowWriter prints QueryResultRows: each row is a list of one-entry maps,
// in column order.
type rowWriter struct {
	format string
	out    io.Writer
	tw     *tabwriter.Writer
	cw     *csv.Writer
	header bool
}

func newRowWriter(format string, out io.Writer) (*rowWriter, error) {
	w := &rowWriter{format: format, out: out}
	switch format {
	case "table":
		w.tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	case "csv":
		w.cw = csv.NewWriter(out)
	}
	return w, nil
}

func rowColumns(row []map[string]string) (names, values []string) {
	for _, cell := range row {
		for k, v := range cell {
			names = append(names, k)
			values = append(values, v)
		}
	}
	return names, values
}

func (w *rowWriter) row(row []map[string]string) error {
	names, values := rowColumns(row)
	switch w.format {
	case "json":
		var b strings.Builder
		b.WriteByte('{')
		for i := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(names[i])
			v, _ := json.Marshal(values[i])
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteString("}\n")
		_, err := io.WriteString(w.out, b.String())
		return err
	case "csv":
		if !w.header {
			w.header = true
			if err := w.cw.Write(names); err != nil {
				return err
			}
		}
		return w.cw.Write(values)
	}
	if !w.header {
		w.header = true
		fmt.Fprintln(w.tw, strings.Join(names, "\t"))
	}
	clean := make([]string, len(values))
	for i, v := range values {
		clean[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(v)
	}
	_, err := fmt.Fprintln(w.tw, strings.Join(clean, "\t"))
	return err
}

func (w *rowWriter) close() error {
	switch w.format {
	case "table":
		return w.tw.Flush()
	case "csv":
		w.cw.Flush()
		return w.cw.Error()
	}
	return nil
}
