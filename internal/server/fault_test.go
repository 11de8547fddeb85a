package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/cairn-audit/cairn/internal/journal/journaltest"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestFailsClosedOnAFullDisk fills the journal's disk under a running
// server: changes are refused with a clear error and not made, nothing
// acknowledged before is lost, and the server recovers by itself once the
// disk has room again.
func TestFailsClosedOnAFullDisk(t *testing.T) {
	disk := journaltest.NewFullDisk()
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.JournalFS = disk }})
	h.CreateBucket(t, "logs")
	ctx := context.Background()
	ct := h.CloudTrail
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("before"), S3BucketName: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}

	disk.Full.Store(true)
	var refusals int
	for i := range 5 {
		_, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("during"), S3BucketName: aws.String("logs")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailableException" {
			t.Fatalf("CreateTrail %d on a full disk: got %v, want ServiceUnavailableException", i, err)
		}
		if !strings.Contains(ae.ErrorMessage(), "journal") {
			t.Errorf("the refusal does not say why: %q", ae.ErrorMessage())
		}
		refusals++
	}
	resp, err := http.Get(h.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz on a full disk: %d, want 503", resp.StatusCode)
	}
	disk.Full.Store(false)

	// Recovery needs no restart: the journal probes the disk and reopens.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("after"), S3BucketName: aws.String("logs")})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 20s after the disk was freed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := ct.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range out.TrailList {
		names = append(names, aws.ToString(tr.Name))
	}
	if strings.Join(names, ",") != "after,before" && strings.Join(names, ",") != "before,after" {
		t.Fatalf("trails after the fault: %v, want before and after only (no change made while refusing)", names)
	}
	// Every acknowledged call is recorded; the refused ones changed nothing.
	waitFor := func(name string) {
		t.Helper()
		if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
			t.Fatal(err)
		}
		ev, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}}})
		if err != nil {
			t.Fatal(err)
		}
		var ok int
		for _, e := range ev.Events {
			if strings.Contains(aws.ToString(e.CloudTrailEvent), `"errorCode"`) {
				continue
			}
			ok++
		}
		if ok != 2 {
			t.Fatalf("%d successful %s events recorded, want 2 (before and after the fault)", ok, name)
		}
	}
	waitFor("CreateTrail")
	t.Logf("%d calls refused during the fault", refusals)
}

// TestACallerHangingUpDoesNotSplitChangeAndRecord: a caller that gives up
// while its change's record waits for a slow disk must not leave the
// record in the journal and the change undone (or the reverse): the
// record and the change stand or fall together.
func TestACallerHangingUpDoesNotSplitChangeAndRecord(t *testing.T) {
	var slow atomic.Bool
	disk := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if slow.Load() && strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo) {
			time.Sleep(400 * time.Millisecond)
		}
		return nil
	}))
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.JournalFS = disk }})
	h.CreateBucket(t, "logs")
	slow.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("hung-up"), S3BucketName: aws.String("logs")})
	cancel()
	if err == nil {
		t.Fatal("the call returned before its record could be synced; the test needs a slower disk")
	}
	slow.Store(false)

	// The server finishes the abandoned call: wait until it has (record
	// and trail both there). If it dropped the call instead, neither ever
	// appears, which only the deadline can tell.
	var recorded, exists bool
	var getErr error
	for deadline := time.Now().Add(10 * time.Second); ; {
		recorded = false
		for _, r := range records(t, h) {
			if r.EventName == "CreateTrail" && r.ErrorCode == "" {
				recorded = true
			}
		}
		_, getErr = h.CloudTrail.GetTrail(context.Background(), &cloudtrail.GetTrailInput{Name: aws.String("hung-up")})
		exists = getErr == nil
		if recorded && exists || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if recorded != exists {
		t.Fatalf("record in the journal: %v, trail exists: %v (GetTrail: %v)", recorded, exists, getErr)
	}
}
