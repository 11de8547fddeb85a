package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestCallsShowUpInEventHistory is the done-when: the example
// service, run as its main does (flags, the Cairn data dir's credentials
// file), serves calls over real HTTP, and after it shuts down every call is
// in Cairn's event history with its name, caller and outcome.
func TestCallsShowUpInEventHistory(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	ch, err := h.CloudTrail.CreateChannel(ctx, &cloudtrail.CreateChannelInput{
		Name: aws.String("notes"), Source: aws.String("Custom"),
		Destinations: []cttypes.Destination{{Type: cttypes.DestinationTypeEventDataStore,
			Location: aws.String(servertest.AuditStore(t, ctx, h.CloudTrail, "notes-store"))}},
	})
	if err != nil {
		t.Fatalf("create channel: %v", err)
	}

	svcCtx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := []string{"-listen", "127.0.0.1:0", "-cairn-endpoint", h.URL, "-channel-arn", aws.ToString(ch.ChannelArn),
		"-credentials-file", h.CredentialsFile(t), "-profile", "cairn"}
	noEnv := func(string) string { return "" }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- run(svcCtx, args, noEnv, log, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("service did not start: %v", err)
	case <-ctx.Done():
		t.Fatal("service did not start")
	}

	call := func(method, path, user, body string, want int) string {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-User", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
		}
		return string(out)
	}
	call("POST", "/notes", "alice", `{"text":"buy milk"}`, http.StatusCreated)
	call("GET", "/notes/1", "bob", "", http.StatusOK)
	call("GET", "/notes?limit=10", "bob", "", http.StatusOK)
	call("DELETE", "/notes/1", "alice", "", http.StatusNoContent)
	call("GET", "/notes/1", "carol", "", http.StatusNotFound)
	call("GET", "/healthz", "", "", http.StatusNoContent) // skipped: not audited

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("service: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("service did not stop")
	}

	type want struct{ name, principal, errorCode, id string }
	wants := []want{
		{"CreateNote", "alice", "", ""},
		{"GetNote", "bob", "", "1"},
		{"ListNotes", "bob", "", ""},
		{"DeleteNote", "alice", "", "1"},
		{"GetNote", "carol", "NotFound", "1"},
	}
	// The event history indexes asynchronously: poll.
	var events []cttypes.Event
	for {
		out, err := h.CloudTrail.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventSource, AttributeValue: aws.String("notes.example.com")}},
		})
		if err != nil {
			t.Fatalf("LookupEvents: %v", err)
		}
		if events = out.Events; len(events) >= len(wants) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("event history has %d of the service's events, want %d", len(events), len(wants))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if len(events) != len(wants) {
		t.Fatalf("%d events, want %d", len(events), len(wants))
	}
	// Newest first; the calls were made one after the other, but within a
	// second the order is not defined: match as a multiset.
	left := append([]want(nil), wants...)
	for _, ev := range events {
		var rec struct {
			EventName    string `json:"eventName"`
			ErrorCode    string `json:"errorCode"`
			UserIdentity struct {
				PrincipalID string `json:"principalId"`
			} `json:"userIdentity"`
			EventData struct {
				RequestParameters map[string]string `json:"requestParameters"`
			} `json:"eventData"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec); err != nil {
			t.Fatalf("decode %s: %v", aws.ToString(ev.CloudTrailEvent), err)
		}
		if aws.ToString(ev.EventName) != rec.EventName {
			t.Errorf("LookupEvents EventName %q, record %q", aws.ToString(ev.EventName), rec.EventName)
		}
		got := want{rec.EventName, rec.UserIdentity.PrincipalID, rec.ErrorCode, rec.EventData.RequestParameters["id"]}
		found := false
		for i, w := range left {
			if w == got {
				left = append(left[:i], left[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			t.Errorf("unexpected event %+v", got)
		}
	}
	if len(left) != 0 {
		t.Errorf("missing events %+v", left)
	}

	// LookupEvents by event name works too.
	out, err := h.CloudTrail.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateNote")}},
	})
	if err != nil || len(out.Events) != 1 {
		t.Fatalf("LookupEvents EventName=CreateNote: %v, %d events", err, len(out.Events))
	}
	// And by the caller: the service's principal ID is the user name.
	out, err = h.CloudTrail.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyUsername, AttributeValue: aws.String("alice")}},
	})
	if err != nil || len(out.Events) != 2 {
		t.Fatalf("LookupEvents Username=alice: %v, %d events, want CreateNote and DeleteNote", err, len(out.Events))
	}
	for _, ev := range out.Events {
		if aws.ToString(ev.Username) != "alice" {
			t.Errorf("%s: Username %q", aws.ToString(ev.EventName), aws.ToString(ev.Username))
		}
	}
}

func TestOptions(t *testing.T) {
	env := map[string]string{"NOTES_CHANNEL_ARN": "arn:aws:cloudtrail:us-east-1:000000000000:channel/x", "CAIRN_ENDPOINT": "http://127.0.0.1:9"}
	o, err := parseOptions([]string{"-listen", "127.0.0.1:0"}, func(k string) string { return env[k] })
	if err != nil || o.channelARN != env["NOTES_CHANNEL_ARN"] || o.endpoint != "http://127.0.0.1:9" || o.listen != "127.0.0.1:0" || o.profile != "cairn" {
		t.Fatalf("options %+v %v", o, err)
	}
	if _, err := parseOptions(nil, func(string) string { return "" }); err == nil {
		t.Fatal("no error without a channel")
	}
}
