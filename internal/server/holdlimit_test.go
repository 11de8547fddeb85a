package server_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestStuckTrailDoesNotHoldJournal (issue 12, defect 7): a trail whose
// delivery keeps failing (its bucket is gone) holds the journal back no
// further than the hold limit; the trim past it is counted in /metrics and
// shown in GetTrailStatus's LatestDeliveryError.
func TestStuckTrailDoesNotHoldJournal(t *testing.T) {
	const limit = 40
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.JournalHoldLimit = limit
		c.DeliveryInterval = time.Second
	}})
	ctx := servertest.Context(t)
	h.CreateBucket(t, "doomed")
	if _, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("stuck"), S3BucketName: aws.String("doomed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CloudTrail.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("stuck")}); err != nil {
		t.Fatal(err)
	}
	// The bucket disappears behind the server's back: every delivery fails.
	if err := os.RemoveAll(filepath.Join(h.DataDir, "buckets", "doomed")); err != nil {
		t.Fatal(err)
	}
	for range 3 * limit {
		if _, err := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	status := func() string {
		st, err := h.CloudTrail.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("stuck")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(st.LatestDeliveryError)
	}
	waitUntil(t, 20*time.Second, "delivery to the missing bucket to fail", func() bool { return status() != "" })

	j := h.Server.Journal()
	if err := h.Server.History().WaitIndexed(ctx, j.LastSeq()); err != nil {
		t.Fatal(err)
	}
	last := j.LastSeq()
	// The history mirrors its position to its journal cursor every few
	// seconds; until then it, not the trail, holds the journal.
	waitUntil(t, 20*time.Second, "the history's journal cursor to catch up", func() bool { return j.Cursors()["history"] >= last })
	if err := h.Server.TrimOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if held := last - (j.FirstSeq() - 1); held > limit {
		t.Errorf("after trimming, the journal holds %d entries (last %d, first %d) for the stuck trail, over the hold limit %d", held, last, j.FirstSeq(), limit)
	}
	// Alone, or after the code of a retry that failed meanwhile.
	if got := status(); !strings.HasPrefix(got, delivery.SkippedText) && !strings.HasPrefix(got, "NoSuchBucket; "+delivery.SkippedText) {
		t.Errorf("LatestDeliveryError = %q, want it to report the gap (%s...)", got, delivery.SkippedText)
	}
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^cairn_delivery_skipped_entries_total\{trail="[^"]*:trail/stuck"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no cairn_delivery_skipped_entries_total for the stuck trail in /metrics")
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 2*limit-10 {
		t.Errorf("cairn_delivery_skipped_entries_total = %d, want about %d (the entries trimmed past the trail)", n, 2*limit)
	}
}

// TestStuckEventDataStoreDoesNotHoldJournal: an event data store whose
// files cannot be written (its bucket is gone) holds the journal back no
// further than the hold limit, like a stuck trail.
func TestStuckEventDataStoreDoesNotHoldJournal(t *testing.T) {
	const limit = 40
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.JournalHoldLimit = limit }})
	ctx := servertest.Context(t)
	if _, err := h.CloudTrail.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("stuck"), TerminationProtectionEnabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	// The stores' bucket disappears behind the server's back and a file
	// stands where it was: every write of the store's files fails.
	bucket := filepath.Join(h.DataDir, "buckets", "cairn-lake")
	if err := os.RemoveAll(bucket); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bucket, []byte("not a bucket"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 * limit {
		if _, err := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	j := h.Server.Journal()
	if err := h.Server.History().WaitIndexed(ctx, j.LastSeq()); err != nil {
		t.Fatal(err)
	}
	last := j.LastSeq()
	waitUntil(t, 20*time.Second, "the history's journal cursor to catch up", func() bool { return j.Cursors()["history"] >= last })
	var storeCursor uint64
	for name, pos := range j.Cursors() {
		if strings.HasPrefix(name, "lake-") {
			storeCursor = pos
		}
	}
	if last-storeCursor <= limit {
		t.Fatalf("the store's cursor is at %d of %d: its ingestion is not stuck, the test proves nothing", storeCursor, last)
	}
	if err := h.Server.TrimOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if held := last - (j.FirstSeq() - 1); held > limit {
		t.Errorf("after trimming, the journal holds %d entries for the stuck store, over the hold limit %d", held, limit)
	}
}
