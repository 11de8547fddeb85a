package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/journal/journaltest"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// frontEnd makes one CreateTrail call and returns the AWS error code of its
// refusal ("" on success).
type frontEnd func(t *testing.T, h *servertest.Harness, name string) string

// frontEnds are the ways a change reaches the server's audited call: the
// JSON 1.1 API through the real SDK, and the web console's backend.
var frontEnds = map[string]frontEnd{
	"api": func(t *testing.T, h *servertest.Harness, name string) string {
		_, err := h.CloudTrail.CreateTrail(context.Background(), &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String("logs")})
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		} else if err != nil {
			t.Fatalf("CreateTrail %s: %v", name, err)
		}
		return ""
	},
	"console": func(t *testing.T, h *servertest.Harness, name string) string {
		body, _ := json.Marshal(map[string]string{"Name": name, "S3BucketName": "logs"})
		_, err := h.Server.ConsoleCall(context.Background(), h.AdminKeyID, "CreateTrail", body)
		var ae *awsproto.Error
		if errors.As(err, &ae) {
			return ae.Code
		} else if err != nil {
			t.Fatalf("console CreateTrail %s: %v", name, err)
		}
		return ""
	},
}

// TestAuditedCallThroughEveryFrontEnd runs the audited call's three
// promises once for each front end: a change is recorded (marked as the
// console's when it came from there); a change whose record the journal
// refuses is undone and refused; and while the journal refuses writes,
// changes are refused before they are made (fail closed).
func TestAuditedCallThroughEveryFrontEnd(t *testing.T) {
	for name, call := range frontEnds {
		t.Run(name, func(t *testing.T) {
			disk := journaltest.NewFullDisk()
			h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.JournalFS = disk }})
			h.CreateBucket(t, "logs")
			ctx := context.Background()

			recorded := name + "-recorded"
			if code := call(t, h, recorded); code != "" {
				t.Fatalf("CreateTrail: refused with %s", code)
			}
			ev := waitForRecord(t, h, recorded)
			if got := ev["sessionCredentialFromConsole"] == "true"; got != (name == "console") {
				t.Errorf("record's sessionCredentialFromConsole = %v for the %s front end", ev["sessionCredentialFromConsole"], name)
			}
			if rp, _ := ev["requestParameters"].(map[string]any); rp["name"] != recorded {
				t.Errorf("record's requestParameters = %v, want the trail acted on", ev["requestParameters"])
			}

			// The first change after the disk fills passes the journal's
			// check, is made, then cannot be recorded: it must be undone.
			// Later ones are refused before they are made.
			disk.Full.Store(true)
			for i := range 3 {
				if code := call(t, h, fmt.Sprintf("%s-refused-%d", name, i)); code != "ServiceUnavailableException" {
					t.Fatalf("CreateTrail %d on a full disk: %q, want ServiceUnavailableException", i, code)
				}
			}
			// Reads are recorded too: they answer once the journal has
			// recovered from the freed disk.
			disk.Full.Store(false)
			var out *cloudtrail.DescribeTrailsOutput
			deadline := time.Now().Add(20 * time.Second)
			for {
				var err error
				if out, err = h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err == nil {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("DescribeTrails 20s after the disk was freed: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, tr := range out.TrailList {
				if n := aws.ToString(tr.Name); n != recorded {
					t.Errorf("trail %s exists although its record was refused", n)
				}
			}
		})
	}
}

// waitForRecord waits for the CreateTrail record naming trail in the event
// history and returns it.
func waitForRecord(t *testing.T, h *servertest.Harness, trail string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := h.CloudTrail.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyResourceName, AttributeValue: aws.String(trail)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			if aws.ToString(e.EventName) == "CreateTrail" {
				var rec map[string]any
				if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &rec); err != nil {
					t.Fatal(err)
				}
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CreateTrail record for %s in the event history", trail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
