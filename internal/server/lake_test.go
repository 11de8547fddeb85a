package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/objstore"
)

// runQuery runs a Lake query through the SDK until it ends and returns
// its rows as column→value maps, in order.
func runQuery(t *testing.T, ct *cloudtrail.Client, stmt string) []map[string]string {
	t.Helper()
	ctx := testCtx(t)
	started, err := ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(stmt)})
	if err != nil {
		t.Fatalf("StartQuery %q: %v", stmt, err)
	}
	for {
		d, err := ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: started.QueryId})
		if err != nil {
			t.Fatalf("DescribeQuery: %v", err)
		}
		if d.QueryStatus == cttypes.QueryStatusFinished {
			break
		}
		if d.QueryStatus != cttypes.QueryStatusQueued && d.QueryStatus != cttypes.QueryStatusRunning {
			t.Fatalf("query %q ended %s: %s", stmt, d.QueryStatus, aws.ToString(d.ErrorMessage))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var rows []map[string]string
	var token *string
	for {
		page, err := ct.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: started.QueryId, NextToken: token})
		if err != nil {
			t.Fatalf("GetQueryResults: %v", err)
		}
		for _, r := range page.QueryResultRows {
			row := map[string]string{}
			for _, cell := range r {
				for k, v := range cell {
					row[k] = v
				}
			}
			rows = append(rows, row)
		}
		if page.NextToken == nil {
			return rows
		}
		token = page.NextToken
	}
}

// waitRows runs stmt until its first row's column col is want.
func waitRows(t *testing.T, ct *cloudtrail.Client, stmt, col, want string) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows := runQuery(t, ct, stmt)
		if len(rows) > 0 && rows[0][col] == want {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q: still %v, want %s=%s", stmt, rows, col, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLakeEndToEnd: events recorded after a store is created land in its
// Parquet files and Lake's SQL finds them: API calls in a management
// store, PutAuditEvents events in the channel's ActivityAuditLog store,
// each exactly once.
func TestLakeEndToEnd(t *testing.T) {
	e := startDataEnv(t)
	ctx := testCtx(t)
	created, err := e.ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{
		Name: aws.String("management"), TerminationProtectionEnabled: aws.Bool(false),
	})
	if err != nil {
		t.Fatal(err)
	}
	mgmtARN := aws.ToString(created.EventDataStoreArn)
	mgmtID := mgmtARN[strings.LastIndexByte(mgmtARN, '/')+1:]
	const calls = 25
	for range calls {
		if _, err := e.ct.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}

	chanARN := e.createChannel(t, "app-events")
	const audits = 40
	now := time.Now().UTC().Truncate(time.Second)
	var evs []auditEvent
	for i := range audits {
		evs = append(evs, auditEvent{ID: fmt.Sprintf("e%d", i), EventData: appEvent(map[string]any{
			"UID": fmt.Sprintf("uid-%d", i), "eventTime": now.Add(-time.Duration(i) * time.Second).Format(time.RFC3339),
		})})
	}
	if r := e.put(t, chanARN, auditBody(evs...), putOpts{}); r.Status != 200 || len(r.Out.Successful) != audits {
		t.Fatalf("PutAuditEvents: %d %s", r.Status, r.Body)
	}

	waitRows(t, e.ct, "SELECT count(*) AS n, count(DISTINCT eventid) AS d FROM "+mgmtID+" WHERE eventname = 'DescribeTrails'", "n", fmt.Sprint(calls))
	rows := runQuery(t, e.ct, "SELECT count(DISTINCT eventid) AS d, min(useridentity.accesskeyid) AS k, bool_and(readonly) AS ro FROM "+mgmtARN+" WHERE eventname = 'DescribeTrails'")
	if rows[0]["d"] != fmt.Sprint(calls) || rows[0]["k"] != e.adminID || rows[0]["ro"] != "true" {
		t.Errorf("management store rows %v", rows)
	}

	edsID := e.eds[strings.LastIndexByte(e.eds, '/')+1:]
	waitRows(t, e.ct, "SELECT count(*) AS n FROM "+edsID, "n", fmt.Sprint(audits))
	rows = runQuery(t, e.ct, "SELECT count(DISTINCT eventid) AS d, min(eventdata.eventname) AS name, min(metadata.channelarn) AS ch, "+
		"min(element_at(eventdata.requestparameters, 'orderId')) AS o, min(eventcategory) AS cat FROM "+edsID)
	want := map[string]string{"d": fmt.Sprint(audits), "name": "RefundIssued", "ch": chanARN, "o": "o-1", "cat": "ActivityAuditLog"}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("audit store %s = %q, want %q (row %v)", k, rows[0][k], v, rows[0])
		}
	}

	// A dashboard's widget runs through the same engine: by refresh
	// (DescribeQuery by QueryAlias and RefreshId) and by alias with
	// parameters (StartQuery).
	dash, err := e.ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{
		Name: aws.String("ops"),
		Widgets: []cttypes.RequestWidget{{
			QueryStatement:  aws.String("SELECT count(*) AS n FROM " + mgmtID + " WHERE eventname = 'DescribeTrails' AND eventtime > '?'"),
			QueryParameters: []string{"$StartTime$"},
			ViewProperties:  map[string]string{"View": "Table"},
		}},
	})
	if err != nil {
		t.Fatalf("CreateDashboard: %v", err)
	}
	alias := aws.ToString(dash.Widgets[0].QueryAlias)
	refresh, err := e.ct.StartDashboardRefresh(ctx, &cloudtrail.StartDashboardRefreshInput{
		DashboardId: dash.DashboardArn, QueryParameterValues: map[string]string{"$StartTime$": "2000-01-01 00:00:00"},
	})
	if err != nil {
		t.Fatalf("StartDashboardRefresh: %v", err)
	}
	var widgetQuery *string
	for {
		d, err := e.ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryAlias: aws.String(alias), RefreshId: refresh.RefreshId})
		if err != nil {
			t.Fatalf("DescribeQuery by alias and refresh: %v", err)
		}
		if d.QueryStatus == cttypes.QueryStatusFinished {
			widgetQuery = d.QueryId
			break
		}
		if d.QueryStatus != cttypes.QueryStatusQueued && d.QueryStatus != cttypes.QueryStatusRunning {
			t.Fatalf("widget query %s: %s", d.QueryStatus, aws.ToString(d.ErrorMessage))
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := e.ct.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: widgetQuery})
	if err != nil || len(res.QueryResultRows) != 1 || res.QueryResultRows[0][0]["n"] != fmt.Sprint(calls) {
		t.Fatalf("widget results %v %v", res, err)
	}
	byAlias, err := e.ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryAlias: aws.String(alias), QueryParameters: []string{"2999-01-01 00:00:00"}})
	if err != nil || byAlias.QueryId == nil {
		t.Fatalf("StartQuery by alias: %v", err)
	}
}

// TestLakeImportThroughSDK: StartImport copies a trail's log files from
// Cairn's object store into a store, where Lake's SQL finds every event
// once; GetImport reports the statistics.
func TestLakeImportThroughSDK(t *testing.T) {
	e := startDataEnv(t)
	ctx := testCtx(t)
	created, err := e.ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{
		Name: aws.String("copied"), TerminationProtectionEnabled: aws.Bool(false), StartIngestion: aws.Bool(false),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.EventDataStoreArn)
	id := arn[strings.LastIndexByte(arn, '/')+1:]
	if err := e.srv.store.CreateBucket(ctx, "old-trail"); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().AddDate(0, 0, -3).Truncate(time.Hour)
	const files, perFile = 3, 20
	for f := range files {
		t0 := day.Add(time.Duration(f) * time.Hour)
		var recs []string
		for i := range perFile {
			recs = append(recs, fmt.Sprintf(`{"eventVersion":"1.08","eventTime":%q,"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","eventID":"00000000-0000-4000-8000-%04d%08d","eventType":"AwsApiCall","readOnly":true,"recipientAccountId":%q,"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::%s:user/bob"}}`,
				t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), f, i, dataAccount, dataAccount))
		}
		body := gzipBytes(t, []byte(`{"Records":[`+strings.Join(recs, ",")+`]}`))
		stamp := t0.Add(perFile * time.Minute)
		key := fmt.Sprintf("AWSLogs/%s/CloudTrail/us-east-1/%s/%s_CloudTrail_us-east-1_%s_file%d.json.gz", dataAccount, stamp.Format("2006/01/02"), dataAccount, stamp.Format("20060102T1504Z"), f)
		if err := e.srv.store.Put(ctx, "old-trail", key, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	started, err := e.ct.StartImport(ctx, &cloudtrail.StartImportInput{
		Destinations: []string{arn},
		ImportSource: &cttypes.ImportSource{S3: &cttypes.S3ImportSource{S3LocationUri: aws.String("s3://old-trail"), S3BucketRegion: aws.String("us-east-1"),
			S3BucketAccessRoleArn: aws.String("arn:aws:iam::" + dataAccount + ":role/import")}},
	})
	if err != nil {
		t.Fatalf("StartImport: %v", err)
	}
	var got *cloudtrail.GetImportOutput
	for {
		got, err = e.ct.GetImport(ctx, &cloudtrail.GetImportInput{ImportId: started.ImportId})
		if err != nil {
			t.Fatalf("GetImport: %v", err)
		}
		if got.ImportStatus != cttypes.ImportStatusInitializing && got.ImportStatus != cttypes.ImportStatusInProgress {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := got.ImportStatistics
	if got.ImportStatus != cttypes.ImportStatusCompleted || aws.ToInt64(st.FilesCompleted) != files || aws.ToInt64(st.EventsCompleted) != files*perFile ||
		aws.ToInt64(st.PrefixesFound) != aws.ToInt64(st.PrefixesCompleted) || aws.ToInt64(st.FailedEntries) != 0 {
		t.Fatalf("import ended %s with %+v", got.ImportStatus, st)
	}
	rows := runQuery(t, e.ct, "SELECT count(*) AS n, count(DISTINCT eventid) AS d, min(useridentity.arn) AS who FROM "+id)
	if rows[0]["n"] != fmt.Sprint(files*perFile) || rows[0]["d"] != fmt.Sprint(files*perFile) || rows[0]["who"] != "arn:aws:iam::"+dataAccount+":user/bob" {
		t.Errorf("imported rows %v", rows)
	}
	list, err := e.ct.ListImports(ctx, &cloudtrail.ListImportsInput{Destination: aws.String(arn)})
	if err != nil || len(list.Imports) != 1 || aws.ToString(list.Imports[0].ImportId) != aws.ToString(started.ImportId) {
		t.Errorf("ListImports %+v %v", list, err)
	}
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLakeEscapesAreRefusedAndRecorded: a statement that tries to leave
// the stores is refused with InvalidQueryStatementException, and the
// refusal is in the audit record like every call.
func TestLakeEscapesAreRefusedAndRecorded(t *testing.T) {
	e := startDataEnv(t)
	ctx := testCtx(t)
	edsID := e.eds[strings.LastIndexByte(e.eds, '/')+1:]
	escapes := []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM '/etc/passwd'",
		"COPY (SELECT 1) TO '/tmp/x.csv'",
		"ATTACH '/tmp/x.db' AS x",
		"INSTALL httpfs",
		"SET enable_external_access = true",
		"PRAGMA version",
		"SELECT 1 FROM " + edsID + "; DROP TABLE x",
		"SELECT getenv('HOME') FROM " + edsID,
	}
	for _, stmt := range escapes {
		_, err := e.ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(stmt)})
		var iqs *cttypes.InvalidQueryStatementException
		if !errors.As(err, &iqs) {
			t.Errorf("%q: %v, want InvalidQueryStatementException", stmt, err)
		}
	}
	recorded := 0
	for _, rec := range e.records(t) {
		if rec.EventName == "StartQuery" && string(rec.Field("errorCode")) == `"InvalidQueryStatementException"` {
			recorded++
		}
	}
	if recorded != len(escapes) {
		t.Errorf("%d refused StartQuery calls recorded, want %d", recorded, len(escapes))
	}
}
