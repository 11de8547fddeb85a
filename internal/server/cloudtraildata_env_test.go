package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/selector"
)

const (
	dataAccount = "123456789012"
	dataRegion  = "us-east-1"
)

// dataEnv is a real Cairn (Open: state store, journal, key store, object
// store, history, channels) whose own handler is served by an httptest
// server, so the tests go through exactly the wiring `cairn serve` uses,
// while still reaching the journal and the handler directly.
type dataEnv struct {
	srv      *Server
	channels *channel.Service
	http     *httptest.Server
	URL      string
	DataDir  string

	adminID, adminSecret string
	roID, roSecret       string
	ct                   *cloudtrail.Client
	// eds is an ActivityAuditLog event data store, the destination of the
	// tests' channels; made without an API call, so the journal holds
	// only the tests' own calls.
	eds string
}

func startDataEnv(t testing.TB) *dataEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := Open(ctx, Config{Listen: "127.0.0.1:0", DataDir: dir, AccountID: dataAccount,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("open server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	e := &dataEnv{srv: srv, DataDir: dir, channels: srv.channels}
	e.http = httptest.NewServer(srv.httpSrv.Handler)
	t.Cleanup(e.http.Close)
	e.URL = e.http.URL

	keys, err := srv.keys.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Role == auth.RoleAdmin && e.adminID == "" {
			_, secret, ok, err := srv.keys.Lookup(ctx, k.AccessKeyID)
			if err != nil || !ok {
				t.Fatalf("look up admin key: %v %v", ok, err)
			}
			e.adminID, e.adminSecret = k.AccessKeyID, secret
		}
	}
	ro, secret, err := srv.keys.Create(ctx, "auditor", auth.RoleReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	e.roID, e.roSecret = ro.AccessKeyID, secret
	e.ct = cloudtrail.New(cloudtrail.Options{Region: dataRegion, BaseEndpoint: aws.String(e.URL),
		Credentials: credentials.NewStaticCredentialsProvider(e.adminID, e.adminSecret, ""), Retryer: aws.NopRetryer{}})
	st, _, err := srv.Lake().Create(ctx, dataRegion, lake.CreateInput{Name: "channel-events", AdvancedEventSelectors: []selector.AdvancedEventSelector{{
		FieldSelectors: []selector.FieldSelector{{Field: "eventCategory", Equals: []string{lake.CategoryActivityAuditLog}}},
	}}})
	if err != nil {
		t.Fatalf("create the channels' event data store: %v", err)
	}
	e.eds = st.ARN()
	return e
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createChannel makes a channel through the real SDK client.
func (e *dataEnv) createChannel(t testing.TB, name string) string {
	t.Helper()
	out, err := e.ct.CreateChannel(testCtx(t), &cloudtrail.CreateChannelInput{
		Name: aws.String(name), Source: aws.String("Custom"),
		Destinations: []cttypes.Destination{{Type: cttypes.DestinationTypeEventDataStore, Location: aws.String(e.eds)}},
	})
	if err != nil {
		t.Fatalf("CreateChannel %s: %v", name, err)
	}
	return aws.ToString(out.ChannelArn)
}

// putOpts adjust one PutAuditEvents request.
type putOpts struct {
	keyID, secret string // default: the admin key; "-" sends it unsigned
	service       string // signing name; default cloudtrail-data
	region        string
	externalID    *string
	signedAt      time.Time
}

// dataResponse is a PutAuditEvents answer as the wire carries it.
type dataResponse struct {
	Status    int
	ErrorType string // X-Amzn-ErrorType
	Body      []byte
	Out       channel.PutAuditEventsOutput
	Err       struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
}

// newPutRequest builds a PutAuditEvents request signed with the SDK's v4
// signer, as the AWS SDKs and CLI send it.
func (e *dataEnv) newPutRequest(t testing.TB, channelRef string, body []byte, o putOpts) *http.Request {
	t.Helper()
	q := url.Values{"channelArn": {channelRef}}
	if o.externalID != nil {
		q.Set("externalId", *o.externalID)
	}
	req, err := http.NewRequest(http.MethodPost, e.URL+"/PutAuditEvents?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if o.keyID == "-" {
		return req
	}
	if o.keyID == "" {
		o.keyID, o.secret = e.adminID, e.adminSecret
	}
	if o.service == "" {
		o.service = "cloudtrail-data"
	}
	if o.region == "" {
		o.region = dataRegion
	}
	if o.signedAt.IsZero() {
		o.signedAt = time.Now()
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: o.keyID, SecretAccessKey: o.secret},
		req, hex.EncodeToString(sum[:]), o.service, o.region, o.signedAt); err != nil {
		t.Fatal(err)
	}
	return req
}

func (e *dataEnv) put(t testing.TB, channelRef string, body []byte, o putOpts) *dataResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(e.newPutRequest(t, channelRef, body, o))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := &dataResponse{Status: resp.StatusCode, ErrorType: resp.Header.Get("X-Amzn-ErrorType")}
	r.Body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if err := json.Unmarshal(r.Body, &r.Out); err != nil {
			t.Fatalf("decode %s: %v", r.Body, err)
		}
	} else if err := json.Unmarshal(r.Body, &r.Err); err != nil {
		t.Fatalf("decode error %s: %v", r.Body, err)
	}
	return r
}

// wantError checks a whole-request failure: status, X-Amzn-ErrorType and
// the REST-JSON body {"__type", "message"}.
func (r *dataResponse) wantError(t testing.TB, status int, code string) {
	t.Helper()
	if r.Status != status || r.ErrorType != code || r.Err.Type != code || r.Err.Message == "" {
		t.Fatalf("got %d %q %s, want %d %s", r.Status, r.ErrorType, r.Body, status, code)
	}
}

// records returns every journal entry, parsed.
func (e *dataEnv) records(t testing.TB) []*event.Record {
	t.Helper()
	var out []*event.Record
	_, err := e.srv.journal.Read(context.Background(), 0, 100000, func(_ uint64, entry []byte) error {
		rec, err := event.Parse(entry)
		if err != nil {
			return fmt.Errorf("journal entry does not parse: %w", err)
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// auditEvent is one AuditEvent of the request body.
type auditEvent struct {
	ID                string  `json:"id"`
	EventData         string  `json:"eventData"`
	EventDataChecksum *string `json:"eventDataChecksum,omitempty"`
}

func auditBody(events ...auditEvent) []byte {
	b, _ := json.Marshal(map[string]any{"auditEvents": events})
	return b
}

// appEvent is a valid eventData with overrides (nil deletes a member).
func appEvent(overrides map[string]any) string {
	m := map[string]any{
		"version":            "1.0",
		"userIdentity":       map[string]any{"type": "CustomUser", "principalId": "alice", "details": map[string]any{"team": "payments"}},
		"eventSource":        "payments.example.com",
		"eventName":          "RefundIssued",
		"eventTime":          "2024-05-01T12:00:00Z",
		"UID":                "evt-1",
		"requestParameters":  map[string]any{"orderId": "o-1"},
		"recipientAccountId": dataAccount,
	}
	for k, v := range overrides {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func sha256b64(s string) *string {
	sum := sha256.Sum256([]byte(s))
	v := base64.StdEncoding.EncodeToString(sum[:])
	return &v
}
