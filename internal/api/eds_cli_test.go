package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/server/servertest"
	"github.com/cairn-audit/cairn/internal/testenv"
)

// TestAWSCLIEventDataStores runs the real AWS CLI against Cairn through an
// event data store's life, checking what botocore makes of each answer
// (timestamps, enums, the default selector). With CI=true a missing
// CLI is a failure, not a skip.
func TestAWSCLIEventDataStores(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		testenv.RequireOrSkip(t, "no aws CLI on PATH: %v", err)
	}
	h := servertest.Start(t)
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.CommandContext(servertest.Context(t), awsBin, append(args, "--output", "json")...)
		cmd.Env = append(os.Environ(),
			"AWS_ENDPOINT_URL="+h.URL,
			"AWS_SHARED_CREDENTIALS_FILE="+h.CredentialsFile(t),
			"AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "none"),
			"AWS_PROFILE=cairn",
			"AWS_DEFAULT_REGION="+servertest.DefaultRegion,
			"AWS_EC2_METADATA_DISABLED=true",
			"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=",
			"AWS_PAGER=",
		)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		v := map[string]any{}
		if len(strings.TrimSpace(string(out))) > 0 {
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("aws %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return v
	}
	created := run("cloudtrail", "create-event-data-store", "--name", "cli-store", "--retention-period", "90", "--no-termination-protection-enabled")
	arn, _ := created["EventDataStoreArn"].(string)
	sels, _ := created["AdvancedEventSelectors"].([]any)
	if !strings.Contains(arn, ":eventdatastore/") || created["Status"] != "CREATED" || created["RetentionPeriod"] != float64(90) ||
		len(sels) != 1 || sels[0].(map[string]any)["Name"] != "Default management events" {
		t.Fatalf("create-event-data-store: %v", created)
	}
	// CLI v1 prints timestamps as the epoch seconds it received.
	if ts, _ := created["CreatedTimestamp"].(float64); ts < 1e9 {
		t.Errorf("CreatedTimestamp %v", created["CreatedTimestamp"])
	}
	id := arn[strings.LastIndex(arn, "/")+1:]
	if got := run("cloudtrail", "get-event-data-store", "--event-data-store", id); got["Status"] != "ENABLED" || got["BillingMode"] != "EXTENDABLE_RETENTION_PRICING" {
		t.Errorf("get-event-data-store: %v", got)
	}
	run("cloudtrail", "stop-event-data-store-ingestion", "--event-data-store", arn)
	if got := run("cloudtrail", "update-event-data-store", "--event-data-store", arn, "--name", "cli-renamed"); got["Name"] != "cli-renamed" || got["Status"] != "STOPPED_INGESTION" {
		t.Errorf("update-event-data-store: %v", got)
	}
	run("cloudtrail", "start-event-data-store-ingestion", "--event-data-store", arn)
	listed := run("cloudtrail", "list-event-data-stores")
	if stores, _ := listed["EventDataStores"].([]any); len(stores) != 1 || stores[0].(map[string]any)["Name"] != "cli-renamed" {
		t.Errorf("list-event-data-stores: %v", listed)
	}
	run("cloudtrail", "delete-event-data-store", "--event-data-store", arn)
	if got := run("cloudtrail", "restore-event-data-store", "--event-data-store", arn); got["Status"] != "ENABLED" {
		t.Errorf("restore-event-data-store: %v", got)
	}
}
