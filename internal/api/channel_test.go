package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

// Several test files of this package may register -update; whoever runs
// first does.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func channelUpdateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const (
	channelAccount = "123456789012"
	channelRegion  = "us-east-1"
	channelEDS     = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"
)

// channelEnv is the real channel control plane: a Pebble state store, the
// channel service with a fixed clock, and a registry with the channel and
// tag operations wired as the server wires them.
type channelEnv struct {
	t     *testing.T
	now   time.Time
	store *state.Store
	svc   *channel.Service
	reg   *api.Registry

	golden bytes.Buffer
	ids    map[string]string // UUID -> placeholder, in order of appearance
}

func newChannelEnv(t *testing.T) *channelEnv {
	t.Helper()
	e := &channelEnv{t: t, now: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), ids: map[string]string{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state"), state.Options{Logger: log})
	if err != nil {
		t.Fatalf("open state store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e.store = st
	e.svc, err = channel.New(st, channelAccount, channel.Options{Now: func() time.Time { return e.now }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.reg, err = api.NewRegistry(api.ChannelOperations(e.svc), api.TagOperations(tags.NewService(st, channelAccount, map[string]tags.Resolver{tags.TypeChannel: e.svc})))
	if err != nil {
		t.Fatalf("build registry: %v", err)
	}
	return e
}

// call runs an operation through the registry with a JSON body, as the
// server does.
func (e *channelEnv) call(region, op, body string) ([]byte, *awsproto.Error) {
	e.t.Helper()
	o, ok := e.reg.Lookup(op)
	if !ok {
		e.t.Fatalf("operation %s is not registered", op)
	}
	req := &api.Request{Operation: op, Region: region, AccountID: channelAccount, RequestID: "req-1", Time: e.now}
	out, err := o.Handle(context.Background(), req, []byte(body))
	if err != nil {
		ae := awsproto.AsError(err)
		if ae.Code == "InternalFailure" {
			e.t.Fatalf("%s %s: internal failure: %v", op, body, err)
		}
		return nil, ae
	}
	b, encErr := api.Encode(out)
	if encErr != nil {
		e.t.Fatalf("%s: encode output: %v", op, encErr)
	}
	return b, nil
}

var (
	channelUUIDRE  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	channelTokenRE = regexp.MustCompile(`("NextToken": ?)"[^"]*"`)
)

// stable replaces random UUIDs and page tokens with placeholders so that
// the golden file is reproducible.
func (e *channelEnv) stable(s string) string {
	s = channelUUIDRE.ReplaceAllStringFunc(s, func(u string) string {
		if p, ok := e.ids[u]; ok {
			return p
		}
		p := fmt.Sprintf("<uuid-%d>", len(e.ids)+1)
		e.ids[u] = p
		return p
	})
	return channelTokenRE.ReplaceAllString(s, `${1}"<token>"`)
}

// step runs one call, records request and response in the golden buffer
// and returns the output (nil on error).
func (e *channelEnv) step(title, region, op, body string) ([]byte, *awsproto.Error) {
	e.t.Helper()
	out, aerr := e.call(region, op, body)
	fmt.Fprintf(&e.golden, "### %s\n%s %s %s\n", title, region, op, e.stable(body))
	if aerr != nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]string{"__type": aerr.Code, "Message": aerr.Message})
		fmt.Fprintf(&e.golden, "-> HTTP %d\n%s\n", aerr.HTTPStatus(), e.stable(b.String()))
		return nil, aerr
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(&e.golden, "-> HTTP 200\n%s\n\n", e.stable(pretty.String()))
	return out, nil
}

// ok is a step that must succeed.
func (e *channelEnv) ok(title, region, op, body string) []byte {
	e.t.Helper()
	out, aerr := e.step(title, region, op, body)
	if aerr != nil {
		e.t.Fatalf("%s: %v", title, aerr)
	}
	return out
}

// fails is a step that must fail with code.
func (e *channelEnv) fails(title, region, op, body, code string) {
	e.t.Helper()
	_, aerr := e.step(title, region, op, body)
	if aerr == nil || aerr.Code != code {
		e.t.Fatalf("%s: got %v, want %s", title, aerr, code)
	}
}

func (e *channelEnv) checkGolden(name string) {
	e.t.Helper()
	path := filepath.Join("testdata", name)
	if channelUpdateGolden() {
		if err := os.WriteFile(path, e.golden.Bytes(), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(e.golden.Bytes(), want) {
		e.t.Fatalf("%s differs (run go test ./internal/api -run %s -update and review the diff):\n%s", path, e.t.Name(), e.golden.String())
	}
}

func channelCreateBody(name string) string {
	return `{"Name":"` + name + `","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"` + channelEDS + `"}]}`
}

func channelARNOf(t *testing.T, out []byte) string {
	t.Helper()
	var v struct{ ChannelArn string }
	if err := json.Unmarshal(out, &v); err != nil || v.ChannelArn == "" {
		t.Fatalf("no ChannelArn in %s", out)
	}
	return v.ChannelArn
}

func TestChannelOperationsGolden(t *testing.T) {
	e := newChannelEnv(t)
	out := e.ok("create with tags", channelRegion, "CreateChannel",
		`{"Name":"payments","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+channelEDS+`"}],"Tags":[{"Key":"team","Value":"payments"},{"Key":"audited"}]}`)
	arn := channelARNOf(t, out)
	id := arn[strings.LastIndex(arn, "/")+1:]
	e.ok("get by ARN (no ingestion yet)", channelRegion, "GetChannel", `{"Channel":"`+arn+`"}`)

	// One accepted and one rejected event, then GetChannel shows the
	// ingestion status with epoch-second timestamps.
	j, err := journal.Open(context.Background(), t.TempDir(), journal.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	good := `{"version":"1.0","userIdentity":{"type":"CustomUser","principalId":"alice"},"eventSource":"payments.example.com","eventName":"Refund","eventTime":"2024-05-01T09:59:00Z","UID":"u1","recipientAccountId":"` + channelAccount + `"}`
	body, _ := json.Marshal(map[string]any{"auditEvents": []map[string]string{{"id": "one", "eventData": good}, {"id": "two", "eventData": "{}"}}})
	e.now = e.now.Add(90 * time.Second)
	if _, err := e.svc.PutAuditEvents(context.Background(), &channel.PutAuditEventsRequest{Region: channelRegion, ChannelARN: id, Body: body}, j); err != nil {
		t.Fatal(err)
	}
	e.ok("get by UUID after PutAuditEvents", channelRegion, "GetChannel", `{"Channel":"`+id+`"}`)

	e.now = e.now.Add(time.Minute)
	e.ok("second channel", channelRegion, "CreateChannel", channelCreateBody("orders"))
	e.ok("list", channelRegion, "ListChannels", `{}`)
	page := e.ok("list, one per page", channelRegion, "ListChannels", `{"MaxResults":1}`)
	var p struct{ NextToken string }
	_ = json.Unmarshal(page, &p)
	e.ok("list, second page", channelRegion, "ListChannels", `{"MaxResults":1,"NextToken":"`+p.NextToken+`"}`)
	e.ok("list in another region", "eu-west-1", "ListChannels", `{}`)

	e.ok("rename", channelRegion, "UpdateChannel", `{"Channel":"`+arn+`","Name":"payments-v2"}`)
	e.ok("replace destinations", channelRegion, "UpdateChannel",
		`{"Channel":"`+id+`","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+strings.Replace(channelEDS, "0b9a", "1c8b", 1)+`"}]}`)
	e.ok("update nothing", channelRegion, "UpdateChannel", `{"Channel":"`+id+`"}`)

	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"cloudtrail-data:PutAuditEvents","Resource":"` + arn + `","Condition":{"StringEquals":{"cloudtrail:ExternalId":"partner-42"}}}]}`
	pb, _ := json.Marshal(map[string]string{"ResourceArn": arn, "ResourcePolicy": policy})
	e.ok("put resource policy", channelRegion, "PutResourcePolicy", string(pb))
	e.ok("get resource policy", channelRegion, "GetResourcePolicy", `{"ResourceArn":"`+arn+`"}`)
	e.ok("delete resource policy", channelRegion, "DeleteResourcePolicy", `{"ResourceArn":"`+arn+`"}`)

	e.ok("tags given at create", channelRegion, "ListTags", `{"ResourceIdList":["`+arn+`"]}`)
	e.ok("add a tag", channelRegion, "AddTags", `{"ResourceId":"`+arn+`","TagsList":[{"Key":"env","Value":"prod"}]}`)
	e.ok("tags after AddTags", channelRegion, "ListTags", `{"ResourceIdList":["`+arn+`"]}`)

	e.ok("delete", channelRegion, "DeleteChannel", `{"Channel":"`+arn+`"}`)
	e.fails("get after delete", channelRegion, "GetChannel", `{"Channel":"`+arn+`"}`, "ChannelNotFoundException")
	e.fails("tags of a deleted channel", channelRegion, "ListTags", `{"ResourceIdList":["`+arn+`"]}`, "ResourceNotFoundException")
	e.checkGolden("channel_operations.golden")
}

func TestChannelErrorsGolden(t *testing.T) {
	e := newChannelEnv(t)
	arn := channelARNOf(t, e.ok("setup: a channel", channelRegion, "CreateChannel", channelCreateBody("existing")))
	missingID := "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"
	missingARN := "arn:aws:cloudtrail:us-east-1:" + channelAccount + ":channel/" + missingID

	// CreateChannel
	e.fails("create: Name missing", channelRegion, "CreateChannel", `{"Source":"Custom","Destinations":[]}`, "ValidationException")
	e.fails("create: Source missing", channelRegion, "CreateChannel", `{"Name":"abc","Destinations":[]}`, "ValidationException")
	e.fails("create: Destinations missing", channelRegion, "CreateChannel", `{"Name":"abc","Source":"Custom"}`, "ValidationException")
	e.fails("create: malformed JSON", channelRegion, "CreateChannel", `{"Name":`, "SerializationException")
	e.fails("create: Destinations of the wrong type", channelRegion, "CreateChannel", `{"Name":"abc","Source":"Custom","Destinations":"x"}`, "SerializationException")
	e.fails("create: name too short", channelRegion, "CreateChannel", channelCreateBody("ab"), "InvalidParameterException")
	e.fails("create: name with a space", channelRegion, "CreateChannel", channelCreateBody("a b"), "InvalidParameterException")
	e.fails("create: partner source", channelRegion, "CreateChannel",
		`{"Name":"abc","Source":"Okta","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+channelEDS+`"}]}`, "InvalidSourceException")
	e.fails("create: no destinations", channelRegion, "CreateChannel", `{"Name":"abc","Source":"Custom","Destinations":[]}`, "InvalidParameterException")
	e.fails("create: unknown destination type", channelRegion, "CreateChannel",
		`{"Name":"abc","Source":"Custom","Destinations":[{"Type":"S3","Location":"bucket"}]}`, "InvalidParameterException")
	e.fails("create: event data store of another account", channelRegion, "CreateChannel",
		`{"Name":"abc","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+strings.Replace(channelEDS, channelAccount, "210987654321", 1)+`"}]}`, "EventDataStoreARNInvalidException")
	e.fails("create: event data store by name", channelRegion, "CreateChannel",
		`{"Name":"abc","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"my-store"}]}`, "EventDataStoreARNInvalidException")
	e.fails("create: reserved tag key", channelRegion, "CreateChannel",
		`{"Name":"abc","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+channelEDS+`"}],"Tags":[{"Key":"aws:owner"}]}`, "InvalidTagParameterException")
	var many []string
	for i := range 51 {
		many = append(many, fmt.Sprintf(`{"Key":"k%d"}`, i))
	}
	e.fails("create: 51 tags", channelRegion, "CreateChannel",
		`{"Name":"abc","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+channelEDS+`"}],"Tags":[`+strings.Join(many, ",")+`]}`, "TagsLimitExceededException")
	e.fails("create: name taken", channelRegion, "CreateChannel", channelCreateBody("existing"), "ChannelAlreadyExistsException")
	for i := 1; i < channel.MaxPerRegion; i++ {
		if _, aerr := e.call(channelRegion, "CreateChannel", channelCreateBody(fmt.Sprintf("filler-%02d", i))); aerr != nil {
			t.Fatal(aerr)
		}
	}
	e.fails("create: 26th channel in the region", channelRegion, "CreateChannel", channelCreateBody("one-too-many"), "ChannelMaxLimitExceededException")

	// GetChannel, UpdateChannel, DeleteChannel
	e.fails("get: Channel missing", channelRegion, "GetChannel", `{}`, "ValidationException")
	e.fails("get: neither ARN nor UUID", channelRegion, "GetChannel", `{"Channel":"existing"}`, "ChannelARNInvalidException")
	e.fails("get: trail ARN", channelRegion, "GetChannel", `{"Channel":"arn:aws:cloudtrail:us-east-1:`+channelAccount+`:trail/t"}`, "ChannelARNInvalidException")
	e.fails("get: unknown UUID", channelRegion, "GetChannel", `{"Channel":"`+missingID+`"}`, "ChannelNotFoundException")
	e.fails("get: UUID from another region", "eu-west-1", "GetChannel", `{"Channel":"`+arn[strings.LastIndex(arn, "/")+1:]+`"}`, "ChannelNotFoundException")
	e.fails("update: Channel missing", channelRegion, "UpdateChannel", `{"Name":"x"}`, "ValidationException")
	e.fails("update: invalid ARN", channelRegion, "UpdateChannel", `{"Channel":"arn:aws:cloudtrail:us-east-1:`+channelAccount+`:channel/nope"}`, "ChannelARNInvalidException")
	e.fails("update: unknown channel", channelRegion, "UpdateChannel", `{"Channel":"`+missingARN+`","Name":"abc"}`, "ChannelNotFoundException")
	e.fails("update: name taken", channelRegion, "UpdateChannel", `{"Channel":"`+arn+`","Name":"filler-01"}`, "ChannelAlreadyExistsException")
	e.fails("update: bad name", channelRegion, "UpdateChannel", `{"Channel":"`+arn+`","Name":"a/b"}`, "InvalidParameterException")
	e.fails("update: empty destinations", channelRegion, "UpdateChannel", `{"Channel":"`+arn+`","Destinations":[]}`, "InvalidParameterException")
	e.fails("update: bad event data store", channelRegion, "UpdateChannel",
		`{"Channel":"`+arn+`","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"arn:aws:cloudtrail:us-east-1:`+channelAccount+`:channel/`+missingID+`"}]}`, "EventDataStoreARNInvalidException")
	e.fails("delete: Channel missing", channelRegion, "DeleteChannel", `{}`, "ValidationException")
	e.fails("delete: invalid", channelRegion, "DeleteChannel", `{"Channel":"x"}`, "ChannelARNInvalidException")
	e.fails("delete: unknown", channelRegion, "DeleteChannel", `{"Channel":"`+missingARN+`"}`, "ChannelNotFoundException")

	// ListChannels
	e.fails("list: bad token", channelRegion, "ListChannels", `{"NextToken":"abcdef"}`, "InvalidNextTokenException")
	e.fails("list: MaxResults 0", channelRegion, "ListChannels", `{"MaxResults":0}`, "InvalidParameterException")
	e.fails("list: MaxResults 1001", channelRegion, "ListChannels", `{"MaxResults":1001}`, "InvalidParameterException")

	// Resource policies
	policy := `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"cloudtrail-data:PutAuditEvents"}]}`
	put := func(resource, pol string) string {
		b, _ := json.Marshal(map[string]string{"ResourceArn": resource, "ResourcePolicy": pol})
		return string(b)
	}
	e.fails("put policy: ResourceArn missing", channelRegion, "PutResourcePolicy", `{"ResourcePolicy":"{}"}`, "ValidationException")
	e.fails("put policy: ResourcePolicy missing", channelRegion, "PutResourcePolicy", `{"ResourceArn":"`+arn+`"}`, "ValidationException")
	e.fails("put policy: not an ARN", channelRegion, "PutResourcePolicy", put("channel", policy), "ResourceARNNotValidException")
	e.fails("put policy: malformed channel ARN", channelRegion, "PutResourcePolicy", put("arn:aws:cloudtrail:us-east-1:"+channelAccount+":channel/x", policy), "ResourceARNNotValidException")
	e.fails("put policy: event data store", channelRegion, "PutResourcePolicy", put(channelEDS, policy), "ResourceTypeNotSupportedException")
	e.fails("put policy: unknown channel", channelRegion, "PutResourcePolicy", put(missingARN, policy), "ResourceNotFoundException")
	e.fails("put policy: not JSON", channelRegion, "PutResourcePolicy", put(arn, "allow everyone"), "ResourcePolicyNotValidException")
	e.fails("put policy: no Statement", channelRegion, "PutResourcePolicy", put(arn, `{"Version":"2012-10-17"}`), "ResourcePolicyNotValidException")
	e.fails("put policy: empty", channelRegion, "PutResourcePolicy", put(arn, ""), "ResourcePolicyNotValidException")
	e.fails("put policy: over 8192 characters", channelRegion, "PutResourcePolicy",
		put(arn, `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Sid":"`+strings.Repeat("s", 8192)+`"}]}`), "ResourcePolicyNotValidException")
	e.fails("get policy: none", channelRegion, "GetResourcePolicy", `{"ResourceArn":"`+arn+`"}`, "ResourcePolicyNotFoundException")
	e.fails("get policy: unknown channel", channelRegion, "GetResourcePolicy", `{"ResourceArn":"`+missingARN+`"}`, "ResourceNotFoundException")
	e.fails("get policy: dashboard", channelRegion, "GetResourcePolicy", `{"ResourceArn":"arn:aws:cloudtrail:us-east-1:`+channelAccount+`:dashboard/d"}`, "ResourceTypeNotSupportedException")
	e.fails("delete policy: none", channelRegion, "DeleteResourcePolicy", `{"ResourceArn":"`+arn+`"}`, "ResourcePolicyNotFoundException")
	e.fails("delete policy: not an ARN", channelRegion, "DeleteResourcePolicy", `{"ResourceArn":"a b"}`, "ResourceARNNotValidException")

	// Tags through the channel resolver
	e.fails("add tags: unknown channel", channelRegion, "AddTags", `{"ResourceId":"`+missingARN+`","TagsList":[{"Key":"k"}]}`, "ResourceNotFoundException")
	e.checkGolden("channel_errors.golden")
}

func TestChannelOperationsReadOnly(t *testing.T) {
	e := newChannelEnv(t)
	want := map[string]bool{
		"CreateChannel": false, "GetChannel": true, "ListChannels": true, "UpdateChannel": false, "DeleteChannel": false,
		"PutResourcePolicy": false, "GetResourcePolicy": true, "DeleteResourcePolicy": false,
	}
	for name, ro := range want {
		op, ok := e.reg.Lookup(name)
		if !ok || op.ReadOnly != ro {
			t.Errorf("%s: registered=%v readOnly=%v, want %v", name, ok, op.ReadOnly, ro)
		}
	}
	if got := len(api.ChannelOperations(e.svc)); got != len(want) {
		t.Errorf("ChannelOperations has %d operations, want %d", got, len(want))
	}
}
