package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/query"
	"github.com/cairn-audit/cairn/internal/query/querytest"
	"github.com/cairn-audit/cairn/internal/state"
)

const (
	qRegion  = "us-east-1"
	qAccount = "123456789012"
	qStore   = "5e1f0000-0000-4000-8000-000000000001"
	qGone    = "5e1f0000-0000-4000-8000-000000000002"
	qBucket  = "query-results"
)

// qCatalog is a query.Catalog over fixed stores.
type qCatalog struct {
	specs map[string]lake.Spec
	files map[string][]string
}

func (c *qCatalog) Lookup(_ context.Context, region, account, ref string) (lake.Spec, bool, error) {
	for _, s := range c.specs {
		if s.Region == region && s.AccountID == account && (ref == s.ID || ref == s.ARN) {
			return s, true, nil
		}
	}
	return lake.Spec{}, false, nil
}

func (c *qCatalog) Files(_ context.Context, id string) ([]string, error) { return c.files[id], nil }

func (c *qCatalog) Columns(string) []query.Column {
	out := make([]query.Column, len(querytest.Columns))
	for i, col := range querytest.Columns {
		out[i] = query.Column{Name: col[0], Type: col[1]}
	}
	return out
}

func storeARN(id string) string {
	return fmt.Sprintf("arn:aws:cloudtrail:%s:%s:eventdatastore/%s", qRegion, qAccount, id)
}

// queryEnv is the query operations served over loopback HTTP the way the
// server frames JSON 1.1, and an SDK client talking to them.
type queryEnv struct {
	client *cloudtrail.Client
	objs   *file.Store
	recs   []querytest.Record
}

func startQueryEnv(t *testing.T, maxExecuting int) *queryEnv {
	t.Helper()
	ctx := context.Background()
	recs := querytest.Fixture(t)
	dir := t.TempDir()
	cat := &qCatalog{specs: map[string]lake.Spec{}, files: map[string][]string{}}
	cat.specs[qStore] = lake.Spec{ID: qStore, ARN: storeARN(qStore), Region: qRegion, AccountID: qAccount, Status: lake.StatusEnabled, Category: lake.CategoryManagement, Queryable: true}
	cat.files[qStore] = querytest.WriteStore(t, filepath.Join(dir, "stores", qStore), recs, 100)
	cat.specs[qGone] = lake.Spec{ID: qGone, ARN: storeARN(qGone), Region: qRegion, AccountID: qAccount, Status: lake.StatusPendingDeletion, Category: lake.CategoryManagement}
	eng, err := query.NewEngine(ctx, cat, query.Limits{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(ctx, filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := file.New(filepath.Join(dir, "objects"), file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := objs.CreateBucket(ctx, qBucket); err != nil {
		t.Fatal(err)
	}
	svc, err := query.NewService(ctx, query.Options{Engine: eng, State: st, Dir: filepath.Join(dir, "results"), Objects: objs, MaxExecuting: maxExecuting})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		st.Close()
		eng.Close()
		objs.Close()
	})
	reg, err := api.NewRegistry(api.QueryOperations(svc))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		op, ok := reg.Lookup(target[strings.LastIndexByte(target, '.')+1:])
		if !ok {
			awsproto.WriteError(w, "req", awsproto.ContentTypeJSON11, awsproto.Errorf("UnknownOperationException", "%s", target))
			return
		}
		body, _ := io.ReadAll(r.Body)
		out, err := op.Handle(r.Context(), &api.Request{Operation: op.Name, Region: qRegion, AccountID: qAccount, RequestID: "req", Time: time.Now()}, body)
		if err != nil {
			awsproto.WriteError(w, "req", awsproto.ContentTypeJSON11, err)
			return
		}
		awsproto.WriteJSON11(w, "req", out)
	}))
	t.Cleanup(srv.Close)
	client := cloudtrail.New(cloudtrail.Options{
		Region:       qRegion,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDQUERYTEST", "secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   awsproto.SDKHTTPClient{Client: &http.Client{}},
	})
	return &queryEnv{client: client, objs: objs, recs: recs}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// waitStatus polls DescribeQuery until the query is no longer QUEUED or
// RUNNING (or, with want set, has that status).
func (e *queryEnv) waitStatus(t *testing.T, id string, want types.QueryStatus) *cloudtrail.DescribeQueryOutput {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := e.client.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		done := out.QueryStatus != types.QueryStatusQueued && out.QueryStatus != types.QueryStatusRunning
		if want != "" {
			done = out.QueryStatus == want
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s still %s", id, out.QueryStatus)
		}
		time.Sleep(20 * time.Millisecond) // polling for a status, as a client does
	}
}

// TestQueryLifecycleSDK drives StartQuery, DescribeQuery,
// GetQueryResults (paged, Lake's row shape), CancelQuery and ListQueries
// with the real SDK client, with their modeled errors.
func TestQueryLifecycleSDK(t *testing.T) {
	e := startQueryEnv(t, 2)
	ctx := context.Background()
	stmt := "SELECT eventname, count(*) AS n, max(eventtime) AS last FROM " + qStore + " GROUP BY eventname ORDER BY n DESC, eventname LIMIT 7"
	start, err := e.client.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(stmt)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(start.QueryId)
	if len(id) != 36 {
		t.Fatalf("QueryId %q", id)
	}
	desc := e.waitStatus(t, id, "")
	if desc.QueryStatus != types.QueryStatusFinished {
		t.Fatalf("status %s: %s", desc.QueryStatus, aws.ToString(desc.ErrorMessage))
	}
	s := desc.QueryStatistics
	if aws.ToString(desc.QueryString) != stmt || aws.ToInt64(s.EventsScanned) != int64(len(e.recs)) || aws.ToInt64(s.BytesScanned) <= 0 || s.CreationTime == nil || aws.ToInt64(s.EventsMatched) != 7 {
		t.Fatalf("DescribeQuery: %q %+v", aws.ToString(desc.QueryString), s)
	}

	// Page through the results two rows at a time.
	var rows [][]map[string]string
	var token *string
	pages := 0
	for {
		res, err := e.client.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(id), MaxQueryResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if res.QueryStatus != types.QueryStatusFinished || aws.ToInt32(res.QueryStatistics.TotalResultsCount) != 7 || int(aws.ToInt32(res.QueryStatistics.ResultsCount)) != len(res.QueryResultRows) {
			t.Fatalf("page %d: %s %+v", pages, res.QueryStatus, res.QueryStatistics)
		}
		rows = append(rows, res.QueryResultRows...)
		if res.NextToken == nil {
			break
		}
		token = res.NextToken
	}
	if pages != 4 || len(rows) != 7 {
		t.Fatalf("%d pages, %d rows", pages, len(rows))
	}
	counts := map[string]int{}
	for _, r := range e.recs {
		counts[querytest.Str(r["eventName"])]++
	}
	for _, row := range rows {
		if len(row) != 3 || len(row[0]) != 1 || len(row[1]) != 1 || len(row[2]) != 1 {
			t.Fatalf("row shape %v", row)
		}
		name, n, last := row[0]["eventname"], row[1]["n"], row[2]["last"]
		if n != fmt.Sprint(counts[name]) || len(last) != len("2024-01-02 03:04:05.000") {
			t.Fatalf("row %v: want n=%d", row, counts[name])
		}
	}
	if rows[0][0]["eventname"] != "DescribeInstanceInformation" {
		t.Fatalf("first row %v", rows[0])
	}
	_, err = e.client.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(id), NextToken: aws.String("bm90LWEtdG9rZW4")})
	wantCode(t, err, "InvalidNextTokenException")
	_, err = e.client.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(id), MaxQueryResults: aws.Int32(1001)})
	wantCode(t, err, "InvalidMaxResultsException")
	_, err = e.client.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String("00000000-0000-4000-8000-000000000000")})
	wantCode(t, err, "QueryIdNotFoundException")
	//lint:ignore SA1019 clients still send the deprecated member; Cairn checks it
	_, err = e.client.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(id), EventDataStore: aws.String("arn:aws:cloudtrail:nope")})
	wantCode(t, err, "EventDataStoreARNInvalidException")
	//lint:ignore SA1019 clients still send the deprecated member; Cairn checks it
	_, err = e.client.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: aws.String(id), EventDataStore: aws.String(qGone)})
	wantCode(t, err, "InactiveEventDataStoreException")
	_, err = e.client.CancelQuery(ctx, &cloudtrail.CancelQueryInput{QueryId: aws.String(id)})
	wantCode(t, err, "InactiveQueryException")

	// A NULL value keeps its place in the row: JSON null, "" in the SDK.
	nul, err := e.client.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT eventname, errorcode FROM " + qStore + " WHERE eventname = 'ConsoleLogin'")})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, aws.ToString(nul.QueryId), types.QueryStatusFinished)
	res, err := e.client.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: nul.QueryId})
	if err != nil || len(res.QueryResultRows) != 1 || len(res.QueryResultRows[0]) != 2 {
		t.Fatalf("NULL row: %v %+v", err, res)
	}
	if v, ok := res.QueryResultRows[0][1]["errorcode"]; !ok || v != "" {
		t.Fatalf("NULL value: %q %v", v, ok)
	}

	// A failing query: FAILED with DuckDB's message.
	bad, err := e.client.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT CAST(eventname AS INTEGER) FROM " + qStore)})
	if err != nil {
		t.Fatal(err)
	}
	if d := e.waitStatus(t, aws.ToString(bad.QueryId), ""); d.QueryStatus != types.QueryStatusFailed || !strings.Contains(aws.ToString(d.ErrorMessage), "Conversion Error") {
		t.Fatalf("failed query: %s %q", d.QueryStatus, aws.ToString(d.ErrorMessage))
	}

	// ListQueries: both, newest first; filters; paging; errors.
	list, err := e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(storeARN(qStore))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Queries) != 3 || aws.ToString(list.Queries[0].QueryId) != aws.ToString(bad.QueryId) || list.Queries[2].CreationTime == nil {
		t.Fatalf("ListQueries %+v", list.Queries)
	}
	list, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), QueryStatus: types.QueryStatusFailed})
	if err != nil || len(list.Queries) != 1 || aws.ToString(list.Queries[0].QueryId) != aws.ToString(bad.QueryId) {
		t.Fatalf("ListQueries FINISHED: %v %+v", err, list)
	}
	page1, err := e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), MaxResults: aws.Int32(1)})
	if err != nil || len(page1.Queries) != 1 || page1.NextToken == nil {
		t.Fatalf("ListQueries page 1: %v %+v", err, page1)
	}
	page2, err := e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), MaxResults: aws.Int32(2), NextToken: page1.NextToken})
	if err != nil || len(page2.Queries) != 2 || page2.NextToken != nil || aws.ToString(page2.Queries[1].QueryId) != id {
		t.Fatalf("ListQueries page 2: %v %+v", err, page2)
	}
	_, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), MaxResults: aws.Int32(1), NextToken: page1.NextToken, QueryStatus: types.QueryStatusFailed})
	wantCode(t, err, "InvalidNextTokenException")
	now := time.Now()
	list, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), StartTime: aws.Time(now.Add(time.Hour)), EndTime: aws.Time(now.Add(2 * time.Hour))})
	if err != nil || len(list.Queries) != 0 {
		t.Fatalf("ListQueries in the future: %v %+v", err, list)
	}
	_, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Hour))})
	wantCode(t, err, "InvalidDateRangeException")
	_, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), QueryStatus: "DONE"})
	wantCode(t, err, "InvalidQueryStatusException")
	_, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qStore), MaxResults: aws.Int32(0)})
	wantCode(t, err, "InvalidMaxResultsException")
	_, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String("5e1f0000-0000-4000-8000-00000000ffff")})
	wantCode(t, err, "EventDataStoreNotFoundException")
	_, err = e.client.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(qGone)})
	wantCode(t, err, "InactiveEventDataStoreException")
}

// TestStartQueryErrorsSDK: StartQuery's modeled errors.
func TestStartQueryErrorsSDK(t *testing.T) {
	e := startQueryEnv(t, 1)
	ctx := context.Background()
	cases := []struct {
		in   cloudtrail.StartQueryInput
		code string
	}{
		{cloudtrail.StartQueryInput{}, "InvalidParameterException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT 1 FROM " + qStore), QueryAlias: aws.String("x")}, "InvalidParameterException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT 1 FROM " + qStore), QueryParameters: []string{"a"}}, "InvalidParameterException"},
		{cloudtrail.StartQueryInput{QueryAlias: aws.String("no-such-alias")}, "InvalidParameterException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM read_csv('/etc/passwd')")}, "InvalidQueryStatementException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("DROP TABLE x")}, "InvalidQueryStatementException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT 1")}, "InvalidQueryStatementException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM 5e1f0000-0000-4000-8000-00000000ffff")}, "EventDataStoreNotFoundException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM " + qGone)}, "InactiveEventDataStoreException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM " + qStore), DeliveryS3Uri: aws.String("https://bucket/x")}, "InvalidS3PrefixException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM " + qStore), DeliveryS3Uri: aws.String("s3://Bad_Bucket/x")}, "InvalidS3BucketNameException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM " + qStore), DeliveryS3Uri: aws.String("s3://no-such-bucket/x")}, "S3BucketDoesNotExistException"},
		{cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM " + qStore), EventDataStoreOwnerAccountId: aws.String("210987654321")}, "EventDataStoreNotFoundException"},
	}
	for i, c := range cases {
		_, err := e.client.StartQuery(ctx, &c.in)
		t.Run(fmt.Sprint(i), func(t *testing.T) { wantCode(t, err, c.code) })
	}
}

// TestQueryConcurrencyAndCancelSDK: at most ten queries QUEUED or
// RUNNING (MaxConcurrentQueriesException, HTTP 429, beyond); CancelQuery
// ends running and queued ones.
func TestQueryConcurrencyAndCancelSDK(t *testing.T) {
	e := startQueryEnv(t, 1)
	ctx := context.Background()
	// A query that runs for minutes: four self-joins of the store.
	slow := fmt.Sprintf("SELECT count(*) FROM %s a, %s b, %s c, %s d WHERE a.eventid < b.eventid OR c.eventid < d.eventid", qStore, qStore, qStore, qStore)
	var ids []string
	for range 10 {
		out, err := e.client.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(slow)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.QueryId))
	}
	_, err := e.client.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(slow)})
	wantCode(t, err, "MaxConcurrentQueriesException")
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusTooManyRequests {
		t.Fatalf("MaxConcurrentQueries status: %v", err)
	}
	e.waitStatus(t, ids[0], types.QueryStatusRunning)
	for _, id := range ids {
		out, err := e.client.CancelQuery(ctx, &cloudtrail.CancelQueryInput{QueryId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if out.QueryStatus != types.QueryStatusCancelled {
			t.Fatalf("CancelQuery %s: %s", id, out.QueryStatus)
		}
	}
	for _, id := range ids {
		if d := e.waitStatus(t, id, ""); d.QueryStatus != types.QueryStatusCancelled {
			t.Fatalf("%s: %s", id, d.QueryStatus)
		}
	}
	// The slots are free again.
	out, err := e.client.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT count(*) FROM " + qStore)})
	if err != nil {
		t.Fatal(err)
	}
	if d := e.waitStatus(t, aws.ToString(out.QueryId), ""); d.QueryStatus != types.QueryStatusFinished {
		t.Fatalf("after cancels: %s %s", d.QueryStatus, aws.ToString(d.ErrorMessage))
	}
}

// TestQueryDeliverySDK: DeliveryS3Uri puts the results as gzip CSV in the
// bucket and DescribeQuery reports SUCCESS.
func TestQueryDeliverySDK(t *testing.T) {
	e := startQueryEnv(t, 1)
	ctx := context.Background()
	out, err := e.client.StartQuery(ctx, &cloudtrail.StartQueryInput{
		QueryStatement: aws.String("SELECT eventid, eventname FROM " + qStore + " ORDER BY eventid"),
		DeliveryS3Uri:  aws.String("s3://" + qBucket + "/lake/results"),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.QueryId)
	e.waitStatus(t, id, types.QueryStatusFinished)
	var d *cloudtrail.DescribeQueryOutput
	deadline := time.Now().Add(time.Minute)
	for d = e.waitStatus(t, id, ""); d.DeliveryStatus == types.DeliveryStatusPending; d = e.waitStatus(t, id, "") {
		if time.Now().After(deadline) {
			t.Fatal("delivery still PENDING")
		}
		time.Sleep(20 * time.Millisecond) // polling, as a client does
	}
	if d.DeliveryStatus != types.DeliveryStatusSuccess || aws.ToString(d.DeliveryS3Uri) != "s3://"+qBucket+"/lake/results" {
		t.Fatalf("delivery %s to %s", d.DeliveryStatus, aws.ToString(d.DeliveryS3Uri))
	}
	body, _, err := e.objs.Get(ctx, qBucket, "lake/results/"+id+"/result_1.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	raw, _ := io.ReadAll(body)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(e.recs)+1 || recs[0][0] != "eventid" || recs[0][1] != "eventname" || recs[1][0] != querytest.Str(e.recs[0]["eventID"]) {
		t.Fatalf("CSV: %d lines, header %v, first %v", len(recs), recs[0], recs[1])
	}
}

// TestSampleSearchAndGenerateQuerySDK: SearchSampleQueries ranks the
// library; GenerateQuery is refused as unsupported.
func TestSampleSearchAndGenerateQuerySDK(t *testing.T) {
	e := startQueryEnv(t, 1)
	ctx := context.Background()
	out, err := e.client.SearchSampleQueries(ctx, &cloudtrail.SearchSampleQueriesInput{SearchPhrase: aws.String("console logins without MFA")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SearchResults) == 0 || aws.ToString(out.SearchResults[0].Name) != "Console logins without MFA" || out.SearchResults[0].Relevance <= 0 || !strings.Contains(aws.ToString(out.SearchResults[0].SQL), "MFAUsed") {
		t.Fatalf("search: %+v", out.SearchResults)
	}
	p1, err := e.client.SearchSampleQueries(ctx, &cloudtrail.SearchSampleQueriesInput{SearchPhrase: aws.String("event time role"), MaxResults: aws.Int32(1)})
	if err != nil || len(p1.SearchResults) != 1 || p1.NextToken == nil {
		t.Fatalf("search page 1: %v %+v", err, p1)
	}
	p2, err := e.client.SearchSampleQueries(ctx, &cloudtrail.SearchSampleQueriesInput{SearchPhrase: aws.String("event time role"), MaxResults: aws.Int32(1), NextToken: p1.NextToken})
	if err != nil || len(p2.SearchResults) != 1 || aws.ToString(p2.SearchResults[0].Name) == aws.ToString(p1.SearchResults[0].Name) || p2.SearchResults[0].Relevance > p1.SearchResults[0].Relevance {
		t.Fatalf("search page 2: %v %+v", err, p2)
	}
	_, err = e.client.SearchSampleQueries(ctx, &cloudtrail.SearchSampleQueriesInput{SearchPhrase: aws.String("x")})
	wantCode(t, err, "InvalidParameterException")
	_, err = e.client.SearchSampleQueries(ctx, &cloudtrail.SearchSampleQueriesInput{SearchPhrase: aws.String("errors"), MaxResults: aws.Int32(51)})
	wantCode(t, err, "InvalidParameterException")
	_, err = e.client.GenerateQuery(ctx, &cloudtrail.GenerateQueryInput{EventDataStores: []string{qStore}, Prompt: aws.String("What are my top errors in the past month?")})
	wantCode(t, err, "UnsupportedOperationException")
	if !strings.Contains(err.Error(), "no language model") {
		t.Fatalf("GenerateQuery message: %v", err)
	}
}
