package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestIngestSurvivesKill9 kills `cairn serve` with SIGKILL while clients
// are sending PutAuditEvents, restarts it, and checks that every event that
// was acknowledged is in the event history exactly once.
func TestIngestSurvivesKill9(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	ct := sdkClient(t, dataDir, srv.URL)
	ctx := context.Background()
	chARN := createCustomChannel(t, ctx, ct, "crash-test")
	creds, err := ct.Options().Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		sent  int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for client := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := 0; ; batch++ {
				select {
				case <-stop:
					return
				default:
				}
				ids, err := putAuditEvents(srv.URL, chARN, creds, client, batch, 50)
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				sent++
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	// Kill while the writers are busy, once they have had batches
	// acknowledged (polled, not slept for: a loaded machine may be slow).
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := sent
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d batches acknowledged in 60s", n)
		}
	}
	srv.kill9(t)
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no event was acknowledged before the kill (%d batches sent)", sent)
	}
	t.Logf("%d events acknowledged in %d batches before kill -9", len(acked), sent)

	srv = startCairn(t, work, "--data-dir", dataDir)
	ct = sdkClient(t, dataDir, srv.URL)
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen := map[string]int{}
		p := cloudtrail.NewLookupEventsPaginator(ct, &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventSource, AttributeValue: aws.String("crash.test.example")}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				seen[aws.ToString(e.EventId)]++
			}
		}
		missing, dup := 0, 0
		for id := range acked {
			switch seen[id] {
			case 0:
				missing++
			case 1:
			default:
				dup++
			}
		}
		if dup > 0 {
			t.Fatalf("%d acknowledged events are in the history more than once", dup)
		}
		if missing == 0 {
			t.Logf("all %d acknowledged events found exactly once (%d events in history)", len(acked), len(seen))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events missing after restart", missing, len(acked))
		}
		time.Sleep(200 * time.Millisecond)
	}
	srv.stop(t)
}

// putAuditEvents sends one signed PutAuditEvents request and returns the
// event IDs the server acknowledged.
func putAuditEvents(base, channelARN string, creds aws.Credentials, client, batch, n int) ([]string, error) {
	type auditEvent struct {
		ID        string `json:"id"`
		EventData string `json:"eventData"`
	}
	events := make([]auditEvent, n)
	now := time.Now().UTC().Format("2006-01-02T15:04:05Z")
	for i := range events {
		uid := fmt.Sprintf("c%d-b%d-e%d", client, batch, i)
		data, _ := json.Marshal(map[string]any{
			"version":            "1.0",
			"userIdentity":       map[string]any{"type": "CustomUser", "principalId": fmt.Sprintf("user-%d", client)},
			"eventSource":        "crash.test.example",
			"eventName":          "Write",
			"eventTime":          now,
			"UID":                uid,
			"recipientAccountId": "000000000000",
			"requestParameters":  map[string]any{"batch": batch, "item": i},
		})
		events[i] = auditEvent{ID: uid, EventData: string(data)}
	}
	body, _ := json.Marshal(map[string]any{"auditEvents": events})
	req, err := http.NewRequest(http.MethodPost, base+"/PutAuditEvents?channelArn="+url.QueryEscape(channelARN), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "cloudtrail-data", "us-east-1", time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("PutAuditEvents: %d %s", resp.StatusCode, raw)
	}
	var out struct {
		Successful []struct{ EventID string }   `json:"successful"`
		Failed     []struct{ ErrorCode string } `json:"failed"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode PutAuditEvents response: %w", err)
	}
	if len(out.Failed) > 0 {
		return nil, fmt.Errorf("PutAuditEvents failed %d events: %s", len(out.Failed), out.Failed[0].ErrorCode)
	}
	ids := make([]string, len(out.Successful))
	for i, s := range out.Successful {
		ids[i] = s.EventID
	}
	return ids, nil
}

// createCustomChannel creates a channel of source Custom with one event
// data store destination and returns its ARN: the channel the crash and
// delivery tests send PutAuditEvents to.
func createCustomChannel(t *testing.T, ctx context.Context, ct *cloudtrail.Client, name string) string {
	t.Helper()
	ch, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{
		Name:   aws.String(name),
		Source: aws.String("Custom"),
		Destinations: []types.Destination{{
			Type:     types.DestinationTypeEventDataStore,
			Location: aws.String(servertest.AuditStore(t, ctx, ct, name+"-store")),
		}},
	})
	if err != nil {
		t.Fatalf("creating channel %s: %v", name, err)
	}
	return aws.ToString(ch.ChannelArn)
}
