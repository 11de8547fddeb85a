package channel

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/golden"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/state"
)

func openJournal(t testing.TB) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), t.TempDir(), journal.Options{Logger: quietLogger(), MinFreeBytes: -1})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// eventData builds a valid eventData document, with overrides applied:
// a nil value deletes the member.
func eventData(overrides map[string]any) string {
	m := map[string]any{
		"version":            "1.0",
		"userIdentity":       map[string]any{"type": "CustomUser", "principalId": "alice", "details": map[string]any{"team": "payments"}},
		"userAgent":          "payments-api/2.3",
		"eventSource":        "payments.example.com",
		"eventName":          "RefundIssued",
		"eventTime":          "2024-05-01T12:00:00Z",
		"UID":                "evt-0001",
		"requestParameters":  map[string]any{"orderId": "o-1", "amount": 12.5},
		"responseElements":   map[string]any{"refundId": "r-9"},
		"sourceIPAddress":    "192.0.2.10",
		"recipientAccountId": testAccount,
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

type wireEvent struct {
	ID                string  `json:"id"`
	EventData         string  `json:"eventData"`
	EventDataChecksum *string `json:"eventDataChecksum,omitempty"`
}

func body(events ...wireEvent) []byte {
	b, _ := json.Marshal(map[string]any{"auditEvents": events})
	return b
}

func checksum(s string) *string {
	sum := sha256.Sum256([]byte(s))
	c := base64.StdEncoding.EncodeToString(sum[:])
	return &c
}

func readAll(t testing.TB, j *journal.Journal) [][]byte {
	t.Helper()
	var out [][]byte
	_, err := j.Read(context.Background(), 0, 1000, func(_ uint64, e []byte) error {
		out = append(out, append([]byte(nil), e...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPutAuditEventsGoodBatch(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	j := openJournal(t)
	c := mustCreate(t, svc, "good")
	var evs []wireEvent
	for i := range 3 {
		d := eventData(map[string]any{"UID": fmt.Sprintf("u%d", i)})
		evs = append(evs, wireEvent{ID: fmt.Sprintf("e-%d", i), EventData: d, EventDataChecksum: checksum(d)})
	}
	out, err := svc.PutAuditEvents(ctxT(t), &PutAuditEventsRequest{Region: testRegion, ChannelARN: c.ARN(), Body: body(evs...)}, j)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 3 || len(out.Failed) != 0 {
		t.Fatalf("out %+v", out)
	}
	entries := readAll(t, j)
	if len(entries) != 3 {
		t.Fatalf("journal has %d entries", len(entries))
	}
	for i, e := range entries {
		rec, err := event.Parse(e)
		if err != nil {
			t.Fatalf("entry %d does not parse: %v", i, err)
		}
		if rec.EventID != out.Successful[i].EventID || out.Successful[i].ID != evs[i].ID {
			t.Fatalf("entry %d: eventID %s, result %+v", i, rec.EventID, out.Successful[i])
		}
		if rec.EventName != "RefundIssued" || rec.EventSource != "payments.example.com" || rec.AWSRegion != testRegion ||
			rec.EventCategory != "ActivityAuditLog" || rec.EventType != "ActivityLog" || rec.RecipientAccountID != testAccount ||
			!rec.EventTime.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("entry %d view: %+v", i, rec)
		}
		var meta struct{ IngestionTime, ChannelARN string }
		if err := json.Unmarshal(rec.Field("metadata"), &meta); err != nil || meta.ChannelARN != c.ARN() || meta.IngestionTime != "2024-05-01T12:30:45Z" {
			t.Fatalf("metadata %s", rec.Field("metadata"))
		}
		// eventData is exactly what was sent (compact JSON of it).
		if string(rec.Field("eventData")) != evs[i].EventData {
			t.Fatalf("eventData %s, sent %s", rec.Field("eventData"), evs[i].EventData)
		}
	}

	_, st, err := svc.Get(ctxT(t), testRegion, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := out.Successful[2].EventID
	if st.LatestIngestionSuccessEventID != last || st.LatestIngestionAttemptEventID != last ||
		!st.LatestIngestionSuccessTime.Equal(testNow) || !st.LatestIngestionAttemptTime.Equal(testNow) || st.LatestIngestionErrorCode != "" {
		t.Fatalf("status %+v", st)
	}
}

func TestPutAuditEventsPerEventFailures(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	j := openJournal(t)
	c := mustCreate(t, svc, "mixed")
	good := eventData(nil)
	big := map[string]any{"blob": strings.Repeat("x", maxParametersBytes)}
	cases := []struct {
		id, data string
		sum      *string
		code     string
	}{
		{"ok-1", good, nil, ""},
		{"bad-checksum", good, checksum("something else"), CodeInvalidChecksum},
		{"not-base64", good, strp("%%%"), CodeInvalidChecksum},
		{"not-json", "{oops", nil, CodeInvalidData},
		{"array", "[1,2]", nil, CodeInvalidData},
		{"null", "null", nil, CodeInvalidData},
		{"no-version", eventData(map[string]any{"version": nil}), nil, CodeFieldNotFound},
		{"no-identity", eventData(map[string]any{"userIdentity": nil}), nil, CodeFieldNotFound},
		{"no-principal", eventData(map[string]any{"userIdentity": map[string]any{"type": "X"}}), nil, CodeFieldNotFound},
		{"no-source", eventData(map[string]any{"eventSource": nil}), nil, CodeFieldNotFound},
		{"no-name", eventData(map[string]any{"eventName": nil}), nil, CodeFieldNotFound},
		{"empty-name", eventData(map[string]any{"eventName": ""}), nil, CodeFieldNotFound},
		{"no-time", eventData(map[string]any{"eventTime": nil}), nil, CodeFieldNotFound},
		{"no-uid", eventData(map[string]any{"UID": nil}), nil, CodeFieldNotFound},
		{"no-recipient", eventData(map[string]any{"recipientAccountId": nil}), nil, CodeFieldNotFound},
		{"long-version", eventData(map[string]any{"version": strings.Repeat("v", 257)}), nil, CodeFieldTooLong},
		{"long-type", eventData(map[string]any{"userIdentity": map[string]any{"type": strings.Repeat("t", 129), "principalId": "p"}}), nil, CodeFieldTooLong},
		{"long-name", eventData(map[string]any{"eventName": strings.Repeat("n", 1025)}), nil, CodeFieldTooLong},
		{"long-error-code", eventData(map[string]any{"errorCode": strings.Repeat("e", 257)}), nil, CodeFieldTooLong},
		{"long-params", eventData(map[string]any{"requestParameters": big}), nil, CodeFieldTooLong},
		{"long-response", eventData(map[string]any{"responseElements": big}), nil, CodeFieldTooLong},
		{"long-additional", eventData(map[string]any{"additionalEventData": map[string]any{"b": strings.Repeat("x", maxAdditionalBytes)}}), nil, CodeFieldTooLong},
		{"name-not-string", eventData(map[string]any{"eventName": 5}), nil, CodeInvalidData},
		{"params-not-object", eventData(map[string]any{"requestParameters": "x"}), nil, CodeInvalidData},
		{"details-not-object", eventData(map[string]any{"userIdentity": map[string]any{"type": "X", "principalId": "p", "details": 1}}), nil, CodeInvalidData},
		{"bad-time", eventData(map[string]any{"eventTime": "yesterday"}), nil, CodeInvalidData},
		{"bad-ip", eventData(map[string]any{"sourceIPAddress": "example.com"}), nil, CodeInvalidData},
		{"other-account", eventData(map[string]any{"recipientAccountId": "999999999999"}), nil, CodeInvalidRecipient},
		{"ok-2", eventData(map[string]any{"eventTime": "2024-05-01T12:00:00.123", "sourceIPAddress": "2001:db8::1"}), nil, ""},
	}
	var evs []wireEvent
	for _, tc := range cases {
		evs = append(evs, wireEvent{ID: tc.id, EventData: tc.data, EventDataChecksum: tc.sum})
	}
	out, err := svc.PutAuditEvents(ctxT(t), &PutAuditEventsRequest{Region: testRegion, ChannelARN: c.ID, Body: body(evs...)}, j)
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]ResultErrorEntry{}
	for _, f := range out.Failed {
		failed[f.ID] = f
		if f.ErrorMessage == "" || len(f.ErrorMessage) > maxFailedMessageLen {
			t.Errorf("%s: message %q", f.ID, f.ErrorMessage)
		}
	}
	for _, tc := range cases {
		f, isFailed := failed[tc.id]
		switch {
		case tc.code == "" && isFailed:
			t.Errorf("%s failed: %+v", tc.id, f)
		case tc.code != "" && !isFailed:
			t.Errorf("%s was accepted, want %s", tc.id, tc.code)
		case tc.code != "" && f.ErrorCode != tc.code:
			t.Errorf("%s: %s (%s), want %s", tc.id, f.ErrorCode, f.ErrorMessage, tc.code)
		}
	}
	if len(out.Successful) != 2 || out.Successful[0].ID != "ok-1" || out.Successful[1].ID != "ok-2" {
		t.Fatalf("successful %+v", out.Successful)
	}
	entries := readAll(t, j)
	if len(entries) != 2 {
		t.Fatalf("journal has %d entries, want the 2 good ones", len(entries))
	}
	rec, _ := event.Parse(entries[1])
	if got := rec.EventTime.Format(time.RFC3339); got != "2024-05-01T12:00:00Z" {
		t.Fatalf("normalized eventTime %s", got)
	}
	_, st, _ := svc.Get(ctxT(t), testRegion, c.ID)
	if st.LatestIngestionErrorCode != CodeInvalidRecipient || st.LatestIngestionSuccessEventID != out.Successful[1].EventID {
		t.Fatalf("status %+v", st)
	}
}

func TestPutAuditEventsRequestErrors(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	j := openJournal(t)
	c := mustCreate(t, svc, "requests")
	ok := wireEvent{ID: "a", EventData: eventData(nil)}
	hundredOne := make([]wireEvent, 101)
	for i := range hundredOne {
		hundredOne[i] = wireEvent{ID: fmt.Sprintf("e%d", i), EventData: ok.EventData}
	}
	huge := body(wireEvent{ID: "a", EventData: strings.Repeat(" ", MaxRequestBytes)})
	missing := "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"
	cases := []struct {
		name string
		req  PutAuditEventsRequest
		code string
	}{
		{"no channel", PutAuditEventsRequest{Body: body(ok)}, CodeValidation},
		{"empty list", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: []byte(`{"auditEvents":[]}`)}, CodeValidation},
		{"no list", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: []byte(`{}`)}, CodeValidation},
		{"101 events", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: body(hundredOne...)}, CodeValidation},
		{"over 1 MB", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: huge}, CodeValidation},
		{"bad id", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: body(wireEvent{ID: "a b", EventData: ok.EventData})}, CodeValidation},
		{"empty id", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: body(wireEvent{ID: "", EventData: ok.EventData})}, CodeValidation},
		{"long id", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: body(wireEvent{ID: strings.Repeat("a", 129), EventData: ok.EventData})}, CodeValidation},
		{"no eventData", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: []byte(`{"auditEvents":[{"id":"a"}]}`)}, CodeValidation},
		{"null event", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: []byte(`{"auditEvents":[null]}`)}, CodeValidation},
		{"bad external id", PutAuditEventsRequest{ChannelARN: c.ARN(), ExternalID: strp("x"), Body: body(ok)}, CodeValidation},
		{"not json", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: []byte(`{"auditEvents":`)}, "SerializationException"},
		{"not an object", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: []byte(`[]`)}, "SerializationException"},
		{"wrong type", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: []byte(`{"auditEvents":[{"id":1,"eventData":"{}"}]}`)}, "SerializationException"},
		{"invalid arn", PutAuditEventsRequest{ChannelARN: "arn:aws:cloudtrail:us-east-1:" + testAccount + ":channel/x", Body: body(ok)}, CodeInvalidChannelARN},
		{"not arn nor uuid", PutAuditEventsRequest{ChannelARN: "my-channel", Body: body(ok)}, CodeInvalidChannelARN},
		{"unknown uuid", PutAuditEventsRequest{ChannelARN: missing, Body: body(ok)}, CodeChannelNotFound},
		{"unknown arn", PutAuditEventsRequest{ChannelARN: ARN(testRegion, testAccount, missing), Body: body(ok)}, CodeChannelNotFound},
		{"other account", PutAuditEventsRequest{ChannelARN: ARN(testRegion, "999999999999", c.ID), Body: body(ok)}, CodeChannelNotFound},
		{"uuid in another region", PutAuditEventsRequest{Region: "eu-west-1", ChannelARN: c.ID, Body: body(ok)}, CodeChannelNotFound},
		{"arn of another region", PutAuditEventsRequest{Region: "eu-west-1", ChannelARN: c.ARN(), Body: body(ok)}, CodeChannelNotFound},
		{"duplicate ids", PutAuditEventsRequest{ChannelARN: c.ARN(), Body: body(ok, wireEvent{ID: "b", EventData: "{}"}, ok)}, CodeDuplicatedAuditEventID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Region == "" {
				tc.req.Region = testRegion
			}
			out, err := svc.PutAuditEvents(ctxT(t), &tc.req, j)
			wantCode(t, err, tc.code)
			if out != nil {
				t.Fatalf("output with error: %+v", out)
			}
		})
	}
	if n := len(readAll(t, j)); n != 0 {
		t.Fatalf("failed requests wrote %d entries", n)
	}
	_, st, _ := svc.Get(ctxT(t), testRegion, c.ID)
	if st.LatestIngestionErrorCode != CodeDuplicatedAuditEventID {
		t.Fatalf("status %+v", st)
	}
}

func TestPutAuditEventsExternalID(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	j := openJournal(t)
	ctx := ctxT(t)
	c := mustCreate(t, svc, "external")
	b := body(wireEvent{ID: "a", EventData: eventData(nil)})
	put := func(ext *string) error {
		_, err := svc.PutAuditEvents(ctx, &PutAuditEventsRequest{Region: testRegion, ChannelARN: c.ARN(), ExternalID: ext, Body: b}, j)
		return err
	}
	if err := put(nil); err != nil {
		t.Fatalf("no policy, no externalId: %v", err)
	}
	if err := put(strp("anything")); err != nil {
		t.Fatalf("no policy, any externalId: %v", err)
	}
	policy := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"` + testAccount + `"},"Action":"cloudtrail-data:PutAuditEvents","Condition":{"StringEquals":{"cloudtrail:ExternalId":"partner-42"}}}]}`
	if _, err := svc.PutResourcePolicy(ctx, c.ARN(), policy); err != nil {
		t.Fatal(err)
	}
	wantCode(t, put(nil), CodeChannelInsufficientPermission)
	wantCode(t, put(strp("partner-43")), CodeChannelInsufficientPermission)
	if err := put(strp("partner-42")); err != nil {
		t.Fatalf("matching externalId: %v", err)
	}
	if err := svc.DeleteResourcePolicy(ctx, c.ARN()); err != nil {
		t.Fatal(err)
	}
	if err := put(nil); err != nil {
		t.Fatalf("policy deleted: %v", err)
	}
}

func TestPutAuditEventsServiceLinkedChannel(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	c, _, err := svc.Create(ctxT(t), testRegion, CreateInput{Name: "svc-linked", Source: SourceCustom,
		Destinations: []Destination{{Type: DestinationAWSService, Location: "config.amazonaws.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.PutAuditEvents(ctxT(t), &PutAuditEventsRequest{Region: testRegion, ChannelARN: c.ARN(), Body: body(wireEvent{ID: "a", EventData: eventData(nil)})}, openJournal(t))
	wantCode(t, err, CodeUnsupportedOperation)
}

// failingJournal is an Appender whose disk is gone.
type failingJournal struct{ calls int }

func (f *failingJournal) Append(context.Context, [][]byte) (uint64, error) {
	f.calls++
	return 0, fmt.Errorf("journal append: %w", journal.ErrUnavailable)
}

func TestPutAuditEventsJournalFailure(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	c := mustCreate(t, svc, "fails")
	fj := &failingJournal{}
	out, err := svc.PutAuditEvents(ctxT(t), &PutAuditEventsRequest{Region: testRegion, ChannelARN: c.ARN(),
		Body: body(wireEvent{ID: "a", EventData: eventData(nil)}, wireEvent{ID: "b", EventData: "{"})}, fj)
	if out != nil || fj.calls != 1 {
		t.Fatalf("out=%+v calls=%d", out, fj.calls)
	}
	wantCode(t, err, "ServiceUnavailableException")
	if e := awsproto.AsError(err); e.HTTPStatus() != 503 || !errors.Is(err, journal.ErrUnavailable) {
		t.Fatalf("status %d, cause %v", e.HTTPStatus(), err)
	}
	_, st, _ := svc.Get(ctxT(t), testRegion, c.ID)
	if st.LatestIngestionErrorCode != "InternalFailure" || st.LatestIngestionSuccessEventID != "" {
		t.Fatalf("status %+v", st)
	}
}

// TestCommitAppendsExtraInOneCall checks the audit record of the call goes
// into the same Append as the events, after them.
func TestCommitAppendsExtraInOneCall(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	j := openJournal(t)
	c := mustCreate(t, svc, "extra")
	b, err := svc.PrepareAuditEvents(ctxT(t), &PutAuditEventsRequest{Region: testRegion, ChannelARN: c.ARN(),
		Body: body(wireEvent{ID: "a", EventData: eventData(nil)}, wireEvent{ID: "b", EventData: "bad"})})
	if err != nil {
		t.Fatal(err)
	}
	if b.Accepted() != 1 || b.Rejected() != 1 || b.Channel().ID != c.ID {
		t.Fatalf("batch %d/%d", b.Accepted(), b.Rejected())
	}
	audit := []byte(`{"eventTime":"2024-05-01T12:30:45Z","eventName":"PutAuditEvents"}`)
	if _, err := b.Commit(ctxT(t), j, audit); err != nil {
		t.Fatal(err)
	}
	if first, err := j.Append(ctxT(t), [][]byte{[]byte("x")}); err != nil || first != 3 {
		t.Fatalf("the batch was not one append of 2 entries: next seq %d, %v", first, err)
	}
	entries := readAll(t, j)
	if string(entries[1]) != string(audit) {
		t.Fatalf("extra entry %s", entries[1])
	}
}

func TestIngestionStatusPersists(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	svc := newService(t, st)
	j := openJournal(t)
	c := mustCreate(t, svc, "persist")
	out, err := svc.PutAuditEvents(ctxT(t), &PutAuditEventsRequest{Region: testRegion, ChannelARN: c.ARN(),
		Body: body(wireEvent{ID: "a", EventData: eventData(nil)}, wireEvent{ID: "b", EventData: "{}"})}, j)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is persisted until a flush: a second service on the same
	// store sees no status.
	fresh := newService(t, st)
	if _, s, _ := fresh.Get(ctxT(t), testRegion, c.ID); s != (IngestionStatus{}) {
		t.Fatalf("status persisted on the hot path: %+v", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	cancel() // Run flushes once more on the way out.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, s, err := fresh.Get(ctxT(t), testRegion, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := IngestionStatus{
		LatestIngestionSuccessTime: testNow, LatestIngestionSuccessEventID: out.Successful[0].EventID,
		LatestIngestionErrorCode: CodeFieldNotFound, LatestIngestionAttemptTime: testNow, LatestIngestionAttemptEventID: out.Successful[0].EventID,
	}
	if s != want {
		t.Fatalf("persisted %+v, want %+v", s, want)
	}
	// A later partial update (an error only) keeps the persisted members.
	fresh.status.record(statusKey(testRegion, c.ID), IngestionStatus{LatestIngestionErrorCode: CodeInvalidData})
	if err := fresh.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_, s, _ = newService(t, st).Get(ctxT(t), testRegion, c.ID)
	want.LatestIngestionErrorCode = CodeInvalidData
	if s != want {
		t.Fatalf("after partial flush %+v", s)
	}
	// Deleting the channel drops the status; a flush racing the delete does
	// not bring it back.
	fresh.status.record(statusKey(testRegion, c.ID), IngestionStatus{LatestIngestionErrorCode: CodeInvalidData})
	if err := svc.Delete(ctxT(t), testRegion, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var left IngestionStatus
	var ok bool
	if err := st.View(ctxT(t), func(r state.Reader) error {
		var err error
		ok, err = loadStatus(r, testRegion, c.ID, &left)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatalf("status outlived its channel: %+v", left)
	}
}

func TestRecordGolden(t *testing.T) {
	data := `{
  "version": "1.0",
  "userIdentity": {"type": "CustomUser", "principalId": "alice@example.com", "details": {"team": "payments", "mfa": true}},
  "userAgent": "payments-api/2.3",
  "eventSource": "payments.example.com",
  "eventName": "RefundIssued",
  "eventTime": "2024-05-01T12:00:00",
  "UID": "evt-0001",
  "requestParameters": {"orderId": "o-1", "amount": 12.50, "note": "caf\u00e9 <ok>"},
  "responseElements": null,
  "errorCode": "Denied",
  "errorMessage": "limit exceeded",
  "sourceIPAddress": "192.0.2.10",
  "recipientAccountId": "123456789012",
  "additionalEventData": {"ticket": "SUP-1"},
  "customField": [1, 2, 3]
}`
	env := &Envelope{EventID: "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", Region: "us-east-1", AccountID: testAccount,
		ChannelARN: ARN("us-east-1", testAccount, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"), IngestionTime: testNow}
	rec, rej := BuildRecord([]byte(data), checksum(data), env)
	if rej != nil {
		t.Fatal(rej)
	}
	golden.Check(t, filepath.Join("testdata", "record.golden"), append(rec, '\n'))
}

func TestMaxRecordBytesIsJournalLimit(t *testing.T) {
	if MaxRecordBytes != journal.MaxEntrySize {
		t.Fatalf("MaxRecordBytes %d != journal.MaxEntrySize %d", MaxRecordBytes, journal.MaxEntrySize)
	}
}

func TestOversizedRecordFailsAlone(t *testing.T) {
	// Each lifted object is under its own limit, but eventData plus the
	// lifted copies outgrow a journal entry.
	params := map[string]any{"p": strings.Repeat("x", maxParametersBytes-100)}
	d := eventData(map[string]any{"requestParameters": params, "responseElements": params, "padding": strings.Repeat("y", 700<<10)})
	env := &Envelope{EventID: "e", Region: testRegion, AccountID: testAccount, ChannelARN: "c", IngestionTime: testNow}
	_, rej := BuildRecord([]byte(d), nil, env)
	if rej == nil || rej.Code != CodeFieldTooLong {
		t.Fatalf("got %v, want FieldTooLong", rej)
	}
}

func TestParseEventTime(t *testing.T) {
	for in, want := range map[string]string{
		"2024-05-01T12:00:00":           "2024-05-01T12:00:00Z",
		"2024-05-01T12:00:00Z":          "2024-05-01T12:00:00Z",
		"2024-05-01T12:00:00.999Z":      "2024-05-01T12:00:00Z",
		"2024-05-01T14:00:00+02:00":     "2024-05-01T12:00:00Z",
		"2024-05-01T12:00:00.123456789": "2024-05-01T12:00:00Z",
	} {
		got, ok := ParseEventTime(in)
		if !ok || event.FormatTime(got) != want {
			t.Errorf("ParseEventTime(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "2024-05-01", "2024-05-01 12:00:00", "1714564800", "2024-13-01T00:00:00Z"} {
		if _, ok := ParseEventTime(in); ok {
			t.Errorf("ParseEventTime(%q) accepted", in)
		}
	}
}

func TestNewEventIDs(t *testing.T) {
	ids, err := newEventIDs(100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != id || !idRE.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %s: %v", id, err)
		}
		seen[id] = true
	}
}
