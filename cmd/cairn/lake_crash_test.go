package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestKillDuringLakeIngestAndImport kills `cairn serve` with SIGKILL three
// times while clients send PutAuditEvents to a channel whose events go to
// an event data store, and while an import copies trail log files into a
// second store. After the last restart, Lake's SQL must find every
// acknowledged event exactly once (count(*) = count(DISTINCT eventid),
// every acknowledged eventID present; the only others allowed are events
// of requests in flight at a kill, stored but not acknowledged) and every
// imported event exactly once.
func TestKillDuringLakeIngestAndImport(t *testing.T) {
	const (
		batch    = 100
		rounds   = 3
		logFiles = 40
		perFile  = 500
	)
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	ct := sdkClient(t, dataDir, srv.URL)
	ctx := context.Background()

	appsARN := servertest.AuditStore(t, ctx, ct, "apps")
	ch, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("apps"), Source: aws.String("Custom"),
		Destinations: []types.Destination{{Type: types.DestinationTypeEventDataStore, Location: aws.String(appsARN)}}})
	if err != nil {
		t.Fatal(err)
	}
	chanARN := aws.ToString(ch.ChannelArn)
	hist, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("history"),
		StartIngestion: aws.Bool(false), TerminationProtectionEnabled: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	histARN := aws.ToString(hist.EventDataStoreArn)
	putTrailLogs(t, filepath.Join(dataDir, "buckets"), "old-trail", logFiles, perFile)

	bodies := lagCrashBodies(t, 8, batch, time.Now().Add(-10*time.Minute).Truncate(time.Second))
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		inFlight atomic.Int64 // requests sent whose answer never came
	)
	var importID string
	for round := range rounds {
		creds, err := ct.Options().Credentials.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		api := apiclient.NewClient(srv.URL, "us-east-1", creds, &http.Client{Transport: apiclient.NewTransport(2)})
		sendCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for sendCtx.Err() == nil {
					b := bodies[next.Add(1)%int64(len(bodies))]
					inFlight.Add(1)
					out, err := api.PutAuditEvents(sendCtx, chanARN, b.body, b.hash)
					if err != nil {
						return // killed: this request stays "in flight"
					}
					inFlight.Add(-1)
					mu.Lock()
					for _, s := range out.Successful {
						acked[s.EventID] = true
					}
					mu.Unlock()
				}
			}()
		}
		if round == 0 {
			out, err := ct.StartImport(ctx, &cloudtrail.StartImportInput{
				Destinations: []string{histARN},
				ImportSource: &types.ImportSource{S3: &types.S3ImportSource{S3LocationUri: aws.String("s3://old-trail"),
					S3BucketRegion: aws.String("us-east-1"), S3BucketAccessRoleArn: aws.String("arn:aws:iam::000000000000:role/import")}},
			})
			if err != nil {
				t.Fatalf("StartImport: %v", err)
			}
			importID = aws.ToString(out.ImportId)
			time.Sleep(300 * time.Millisecond) // into the import's first files
		} else {
			// Past a flush (5 s) in some rounds, before one in others.
			time.Sleep(time.Duration(2+3*round) * time.Second)
		}
		imp, _ := ct.GetImport(ctx, &cloudtrail.GetImportInput{ImportId: aws.String(importID)})
		srv.kill9(t)
		stop()
		wg.Wait()
		if imp != nil {
			t.Logf("round %d: kill -9 with the import %s at %d files; %d events acknowledged", round, imp.ImportStatus, aws.ToInt64(imp.ImportStatistics.FilesCompleted), len(acked))
		}
		srv = startCairn(t, work, "--data-dir", dataDir)
		ct = sdkClient(t, dataDir, srv.URL)
	}

	// The import resumes by itself after each restart.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		g, err := ct.GetImport(ctx, &cloudtrail.GetImportInput{ImportId: aws.String(importID)})
		if err != nil {
			t.Fatal(err)
		}
		if g.ImportStatus == types.ImportStatusCompleted {
			if n := aws.ToInt64(g.ImportStatistics.EventsCompleted); n != logFiles*perFile {
				t.Errorf("import EventsCompleted %d, want %d", n, logFiles*perFile)
			}
			break
		}
		if g.ImportStatus != types.ImportStatusInProgress && g.ImportStatus != types.ImportStatusInitializing || time.Now().After(deadline) {
			t.Fatalf("import %s with %+v", g.ImportStatus, g.ImportStatistics)
		}
	}
	histID := histARN[strings.LastIndexByte(histARN, '/')+1:]
	row := lakeRows(t, ct, "SELECT count(*) AS n, count(DISTINCT eventid) AS d FROM "+histID)[0]
	if row["n"] != fmt.Sprint(logFiles*perFile) || row["d"] != row["n"] {
		t.Errorf("imported store: %v, want %d events, each once", row, logFiles*perFile)
	}
	// Once the clients stopped, the store takes the journal's last events
	// within a flush interval (5 s); wait until it holds every
	// acknowledged one.
	appsID := appsARN[strings.LastIndexByte(appsARN, '/')+1:]
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		n, err := strconv.Atoi(lakeRows(t, ct, "SELECT count(*) AS n FROM "+appsID)[0]["n"])
		if err != nil {
			t.Fatal(err)
		}
		if n >= len(acked) || time.Now().After(deadline) {
			break
		}
	}
	stored := map[string]bool{}
	for _, r := range lakeRows(t, ct, "SELECT eventid FROM "+appsID) {
		if stored[r["eventid"]] {
			t.Fatalf("event %s is in the store twice", r["eventid"])
		}
		stored[r["eventid"]] = true
	}
	missing := 0
	for id := range acked {
		if !stored[id] {
			missing++
		}
	}
	extra := len(stored) - (len(acked) - missing)
	t.Logf("%d events acknowledged, %d in the store, %d requests unanswered at the kills", len(acked), len(stored), inFlight.Load())
	if missing > 0 {
		t.Errorf("%d acknowledged events are not in the store", missing)
	}
	if max := inFlight.Load() * batch; int64(extra) > max {
		t.Errorf("%d events in the store were never acknowledged; at most %d were in flight", extra, max)
	}
}

// putTrailLogs writes CloudTrail log files of perFile events each into a
// bucket of the file store under dir.
func putTrailLogs(t *testing.T, dir, bucket string, files, perFile int) {
	t.Helper()
	st, err := file.New(dir, file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().AddDate(0, 0, -2).Truncate(24 * time.Hour)
	for f := range files {
		t0 := day.Add(time.Duration(f) * 10 * time.Minute)
		var b strings.Builder
		b.WriteString(`{"Records":[`)
		for i := range perFile {
			id := fmt.Sprintf("00000000-0000-4000-8000-%04d%08d", f, i)
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"eventVersion":"1.08","eventTime":%q,"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":%q,"eventType":"AwsApiCall","readOnly":true,"recipientAccountId":"000000000000","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::000000000000:user/u%d"},"requestParameters":{"bucketName":"b%d","key":"k/%d"}}`,
				t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339), id, i%13, f, i)
		}
		b.WriteString(`]}`)
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write([]byte(b.String()))
		w.Close()
		stamp := t0.Add(10 * time.Minute)
		key := fmt.Sprintf("AWSLogs/000000000000/CloudTrail/us-east-1/%s/000000000000_CloudTrail_us-east-1_%s_f%03d.json.gz", stamp.Format("2006/01/02"), stamp.Format("20060102T1504Z"), f)
		if err := st.Put(ctx, bucket, key, &gz, int64(gz.Len()), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// lakeRows runs a Lake query to its end and returns every row.
func lakeRows(t *testing.T, ct *cloudtrail.Client, stmt string) []map[string]string {
	t.Helper()
	ctx := context.Background()
	q, err := ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(stmt)})
	if err != nil {
		t.Fatalf("StartQuery %q: %v", stmt, err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		d, err := ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: q.QueryId})
		if err != nil {
			t.Fatal(err)
		}
		if d.QueryStatus == types.QueryStatusFinished {
			break
		}
		if (d.QueryStatus != types.QueryStatusQueued && d.QueryStatus != types.QueryStatusRunning) || time.Now().After(deadline) {
			t.Fatalf("query %q: %s %s", stmt, d.QueryStatus, aws.ToString(d.ErrorMessage))
		}
	}
	var rows []map[string]string
	p := cloudtrail.NewGetQueryResultsPaginator(ct, &cloudtrail.GetQueryResultsInput{QueryId: q.QueryId, MaxQueryResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.QueryResultRows {
			m := map[string]string{}
			for _, cell := range r {
				for k, v := range cell {
					m[k] = v
				}
			}
			rows = append(rows, m)
		}
	}
	return rows
}
