package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/testenv"
)

// awsCLI returns a function that runs the real AWS CLI against a child
// server with the credentials file that server wrote.
func awsCLI(t *testing.T, dataDir, url string) func(args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath("aws")
	if err != nil {
		testenv.RequireOrSkip(t, "no aws CLI on PATH: %v", err)
	}
	home := t.TempDir()
	return func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = append(cleanAWSEnv(os.Environ()),
			"HOME="+home,
			"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dataDir, "credentials"),
			"AWS_PROFILE=cairn",
			"AWS_ENDPOINT_URL="+url,
			"AWS_EC2_METADATA_DISABLED=true",
		)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("aws %v: %v\n%s", args, err, stderr)
		}
		return out
	}
}

// TestAWSCLILookupEventsPaging pages through the event history with the
// real AWS CLI, both with its automatic pagination and by hand with
// --starting-token, and checks no event is lost or repeated.
func TestAWSCLILookupEventsPaging(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	aws := awsCLI(t, dataDir, srv.URL)
	ct := sdkClient(t, dataDir, srv.URL)
	const calls = 120
	for range calls {
		if _, err := ct.ListTrails(context.Background(), &cloudtrail.ListTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	waitForHistory(t, ct, "ListTrails", calls)
	type page struct {
		Events []struct {
			EventID         string `json:"EventId"`
			EventName       string
			CloudTrailEvent string
		}
		NextToken string
	}
	filter := []string{"cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=ListTrails"}

	// Automatic pagination in pages of 25.
	var all page
	if err := json.Unmarshal(aws(append(filter, "--page-size", "25")...), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.Events) != calls {
		t.Fatalf("automatic paging returned %d events, want %d", len(all.Events), calls)
	}

	// By hand: --max-items makes the CLI hand back a token to continue from.
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		args := append(filter, "--max-items", "50", "--page-size", "50")
		if token != "" {
			args = append(args, "--starting-token", token)
		}
		var p page
		if err := json.Unmarshal(aws(args...), &p); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if seen[e.EventID] {
				t.Fatalf("event %s returned twice", e.EventID)
			}
			seen[e.EventID] = true
			var rec map[string]any
			if err := json.Unmarshal([]byte(e.CloudTrailEvent), &rec); err != nil || rec["eventName"] != "ListTrails" {
				t.Fatalf("CloudTrailEvent is not the ListTrails record: %v %v", err, rec["eventName"])
			}
		}
		if p.NextToken == "" || pages > 10 {
			break
		}
		token = p.NextToken
	}
	if len(seen) != calls {
		t.Fatalf("paging by hand returned %d distinct events, want %d", len(seen), calls)
	}
	srv.stop(t)
}

// waitForHistory waits until the event history holds n events named
// name: indexing follows the journal asynchronously.
func waitForHistory(t *testing.T, ct *cloudtrail.Client, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := 0
		p := cloudtrail.NewLookupEventsPaginator(ct, &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: &name}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got += len(page.Events)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d %s events indexed after 30s", got, n, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
