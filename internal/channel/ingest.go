package channel

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/state"
)

// PutAuditEvents limits (cloudtrail-data model, reference §2.1 and §7).
const (
	// MaxRequestBytes is the largest PutAuditEvents body accepted.
	MaxRequestBytes = 1 << 20
	// MaxEventsPerRequest is the model's AuditEvents max.
	MaxEventsPerRequest = 100
	maxAuditEventIDLen  = 128
	minExternalIDLen    = 2
	maxExternalIDLen    = 1224
)

// Whole-request error codes of the cloudtrail-data model. On the wire they
// have no "Exception" suffix, unlike CloudTrail's control plane.
const (
	CodeChannelInsufficientPermission = "ChannelInsufficientPermission"
	CodeChannelNotFound               = "ChannelNotFound"
	CodeInvalidChannelARN             = "InvalidChannelARN"
	CodeChannelUnsupportedSchema      = "ChannelUnsupportedSchema"
	CodeDuplicatedAuditEventID        = "DuplicatedAuditEventId"
	CodeUnsupportedOperation          = "UnsupportedOperationException"
	CodeValidation                    = "ValidationException"
)

// AuditEvent is one member of PutAuditEvents' auditEvents.
type AuditEvent struct {
	// ID is the caller's own ID for the event, echoed in the result.
	ID string
	// EventData is the event as a JSON document (inside a JSON string on
	// the wire). The events of one request may share one buffer.
	EventData []byte
	// EventDataChecksum is base64(sha256(EventData)); nil when not sent.
	EventDataChecksum *string
	// compacted says that the server's decoder already compacted and
	// validated EventData (compactData): it is then the compact document,
	// with the top-level members spans, and no longer the string as sent.
	compacted bool
	spans     []event.Member
}

// wireAuditEvents is the request body. Pointers tell "absent" from empty.
type wireAuditEvents struct {
	AuditEvents *[]*struct {
		ID                *string `json:"id"`
		EventData         *string `json:"eventData"`
		EventDataChecksum *string `json:"eventDataChecksum"`
	} `json:"auditEvents"`
}

// validationError words a model-constraint violation as AWS's restJson1
// services do, so that tools matching on the text keep working.
func validationError(format string, args ...any) error {
	return awsproto.Errorf(CodeValidation, "1 validation error detected: "+format, args...)
}

// DecodeAuditEvents decodes a PutAuditEvents body and checks it against the
// model: 1 to MaxEventsPerRequest events, each with an id of 1-128
// characters of [-_A-Za-z0-9] and an eventData. Malformed JSON is
// SerializationException, a constraint violation ValidationException.
// Duplicate ids are not checked here: DuplicatedAuditEventId comes after
// the channel and the caller's permission are known.
func DecodeAuditEvents(body []byte) ([]AuditEvent, error) {
	if len(body) > MaxRequestBytes {
		return nil, RequestTooLarge(int64(len(body)))
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, awsproto.Errorf("SerializationException", "The request body must be a JSON object with an auditEvents list.")
	}
	if events, _, ok := decodeAuditEventsFast(trimmed, make([]byte, 0, len(trimmed))); ok {
		for i := range events {
			if err := validAuditEventIDAt(events[i].ID, i); err != nil {
				return nil, err
			}
		}
		return events, nil
	}
	return decodeAuditEventsJSON(trimmed)
}

// decodeAuditEvents is DecodeAuditEvents for the server: the eventData
// buffer comes from the service's pool, and the decoder compacts each
// eventData as it reads it where it can (compactData), so that building
// its record does not take a second pass over it. data and spans are the
// buffers the events refer to (nil when the fast path was not taken), to
// be given back once the events are no longer used.
func (s *Service) decodeAuditEvents(body []byte) (events []AuditEvent, data []byte, spans []event.Member, err error) {
	if len(body) > MaxRequestBytes {
		return nil, nil, nil, RequestTooLarge(int64(len(body)))
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, nil, awsproto.Errorf("SerializationException", "The request body must be a JSON object with an auditEvents list.")
	}
	d := fastDecoder{src: trimmed, data: s.buffers.get(len(trimmed)), compact: true, spans: s.spans.get()}
	events, ok := d.decode()
	if !ok {
		s.buffers.put(d.data)
		s.spans.put(d.spans)
		events, err := decodeAuditEventsJSON(trimmed)
		return events, nil, nil, err
	}
	for i := range events {
		if err := validAuditEventIDAt(events[i].ID, i); err != nil {
			s.buffers.put(d.data)
			s.spans.put(d.spans)
			return nil, nil, nil, err
		}
	}
	return events, d.data, d.spans, nil
}

// decodeAuditEventsJSON decodes a trimmed body with encoding/json: the
// reference semantics, and the path of every body decodeAuditEventsFast
// does not take.
func decodeAuditEventsJSON(trimmed []byte) ([]AuditEvent, error) {
	var w wireAuditEvents
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&w); err != nil {
		return nil, awsproto.Errorf("SerializationException", "The request body is not valid: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, awsproto.Errorf("SerializationException", "Unexpected data after the request body's JSON object.")
	}
	// encoding/json matches member names without regard to case and lets
	// the last duplicate win; the service matches them exactly and refuses
	// duplicates, so the events ingested (and their ids in the answer and
	// the channel's status) are the ones the body names once, exactly.
	doc, err := awsproto.CanonicalJSON11(trimmed, reflect.TypeFor[wireAuditEvents]())
	if err != nil {
		return nil, err
	}
	w = wireAuditEvents{}
	if err := json.Unmarshal(doc, &w); err != nil {
		return nil, awsproto.Errorf("SerializationException", "The request body is not valid: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if w.AuditEvents == nil {
		return nil, validationError("Value null at 'auditEvents' failed to satisfy constraint: Member must not be null")
	}
	list := *w.AuditEvents
	if len(list) < 1 {
		return nil, validationError("Value '[]' at 'auditEvents' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(list) > MaxEventsPerRequest {
		return nil, validationError("Value at 'auditEvents' failed to satisfy constraint: Member must have length less than or equal to %d (it has %d)", MaxEventsPerRequest, len(list))
	}
	out := make([]AuditEvent, len(list))
	for i, e := range list {
		at := auditEventAt(i)
		if e == nil {
			return nil, validationError("Value null at '%s' failed to satisfy constraint: Member must not be null", at)
		}
		if e.ID == nil {
			return nil, validationError("Value null at '%s.id' failed to satisfy constraint: Member must not be null", at)
		}
		if err := validAuditEventID(*e.ID, at+".id"); err != nil {
			return nil, err
		}
		if e.EventData == nil {
			return nil, validationError("Value null at '%s.eventData' failed to satisfy constraint: Member must not be null", at)
		}
		out[i] = AuditEvent{ID: *e.ID, EventData: []byte(*e.EventData), EventDataChecksum: e.EventDataChecksum}
	}
	return out, nil
}

// auditEventAt is the model path of the i-th event (from 0), for messages.
func auditEventAt(i int) string { return "auditEvents." + strconv.Itoa(i+1) + ".member" }

// RequestTooLarge is the error for a body of n bytes, over MaxRequestBytes.
// The server returns it before reading such a body whole.
func RequestTooLarge(n int64) error {
	return validationError("The request is at least %d bytes long; PutAuditEvents accepts at most %d bytes (1 MB).", n, MaxRequestBytes)
}

// validAuditEventIDAt is validAuditEventID for the i-th event (from 0),
// whose model path goes into the message only when there is one: built for
// every event, it was a hundred string allocations per request.
func validAuditEventIDAt(id string, i int) error {
	if isAuditEventID(id) {
		return nil
	}
	return validAuditEventID(id, auditEventAt(i)+".id")
}

// isAuditEventID reports whether id has the model's Uuid shape.
func isAuditEventID(id string) bool {
	if len(id) < 1 || len(id) > maxAuditEventIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validAuditEventID is the model's Uuid shape: 1-128 of ^[-_A-Za-z0-9]+$.
func validAuditEventID(id, at string) error {
	if len(id) < 1 || len(id) > maxAuditEventIDLen {
		return validationError("Value '%s' at '%s' failed to satisfy constraint: Member must have length between 1 and %d", id, at, maxAuditEventIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return validationError("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[-_A-Za-z0-9]+$", id, at)
		}
	}
	return nil
}

// validExternalID is the model's ExternalId shape: 2-1224 characters of
// ^[\w+=,.@:\/-]*$.
func validExternalID(id string) error {
	if len(id) < minExternalIDLen || len(id) > maxExternalIDLen {
		return validationError("Value at 'externalId' failed to satisfy constraint: Member must have length between %d and %d", minExternalIDLen, maxExternalIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+=,.@:/-", c) >= 0) {
			return validationError("Value at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:\\/-]*$")
		}
	}
	return nil
}

// PutAuditEventsRequest is one PutAuditEvents call.
type PutAuditEventsRequest struct {
	// Region is the SigV4 region of the call (the events' awsRegion).
	Region string
	// ChannelARN is the channelArn query parameter: an ARN or a UUID.
	ChannelARN string
	// ExternalID is the externalId query parameter; nil when absent.
	ExternalID *string
	// Body is the request body, at most MaxRequestBytes.
	Body []byte
}

// PutAuditEventsOutput is the response, in its wire shape. Both lists are
// always present, possibly empty.
type PutAuditEventsOutput struct {
	Successful []ResultEntry      `json:"successful"`
	Failed     []ResultErrorEntry `json:"failed"`
}

// ResultEntry is an accepted event: the caller's id and Cairn's eventID.
type ResultEntry struct {
	ID      string `json:"id"`
	EventID string `json:"eventID"`
}

// ResultErrorEntry is a rejected event.
type ResultErrorEntry struct {
	ID           string `json:"id"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// Appender is where accepted events go: the journal. Append must be
// durable when it returns nil.
type Appender interface {
	Append(ctx context.Context, entries [][]byte) (first uint64, err error)
}

// Batch is a validated PutAuditEvents request whose accepted events are
// ready to append. Nothing is reported successful until Commit.
type Batch struct {
	svc     *Service
	channel Channel
	entries [][]byte
	arena   []byte // the entries' storage, recycled after a successful Commit
	out     PutAuditEventsOutput
	at      time.Time
}

// Channel is the channel the events were sent to.
func (b *Batch) Channel() *Channel { return &b.channel }

// Accepted is the number of events that passed validation.
func (b *Batch) Accepted() int { return len(b.entries) }

// Rejected is the number of events in failed[].
func (b *Batch) Rejected() int { return len(b.out.Failed) }

// PrepareAuditEvents checks a PutAuditEvents call and builds the journal
// entry of every valid event. Its error is a whole-request failure, an
// *awsproto.Error with the cloudtrail-data code; in the order checked:
// ValidationException/SerializationException (the request itself),
// InvalidChannelARN, ChannelNotFound, ChannelInsufficientPermission (the
// channel's policy requires an externalId the call does not carry),
// UnsupportedOperationException (a service-linked channel, fed by an AWS
// service, not by PutAuditEvents) and DuplicatedAuditEventId.
//
// ChannelUnsupportedSchema is never returned: it is for partner channels
// whose source dictates a schema, and Cairn's channels are all Custom.
func (s *Service) PrepareAuditEvents(ctx context.Context, req *PutAuditEventsRequest) (*Batch, error) {
	at := s.now().UTC()
	if req.ChannelARN == "" {
		return nil, validationError("Value null at 'channelArn' failed to satisfy constraint: Member must not be null")
	}
	if req.ExternalID != nil {
		if err := validExternalID(*req.ExternalID); err != nil {
			return nil, err
		}
	}
	events, data, spans, err := s.decodeAuditEvents(req.Body)
	if err != nil {
		return nil, err
	}
	// The records copy everything they keep out of the events.
	defer s.buffers.put(data)
	defer s.spans.put(spans)
	ref, err := parseRef(req.ChannelARN, func(s string) error {
		return awsproto.Errorf(CodeInvalidChannelARN, "The channel ARN %s is not valid.", s)
	})
	if err != nil {
		return nil, err
	}
	if ref.isARN && ref.region != req.Region {
		// Each region's cloudtrail-data endpoint ingests into that
		// region's channels only: a channel of another region is not one
		// it can find, and its events would be filed under a region the
		// channel is not in.
		return nil, awsproto.Errorf(CodeChannelNotFound, "The channel %s was not found.", req.ChannelARN)
	}
	var c Channel
	var found bool
	err = s.store.View(ctx, func(r state.Reader) error {
		c, found, err = s.find(r, req.Region, ref)
		return err
	})
	if err != nil {
		return nil, awsproto.Internal(err)
	}
	if !found {
		return nil, awsproto.Errorf(CodeChannelNotFound, "The channel %s was not found.", req.ChannelARN)
	}
	if err := s.checkAccess(&c, req.ExternalID); err != nil {
		s.recordFailure(&c, at, err)
		return nil, err
	}
	seen := make(map[string]struct{}, len(events))
	for _, e := range events {
		if _, dup := seen[e.ID]; dup {
			err := awsproto.Errorf(CodeDuplicatedAuditEventID, "Two or more audit events have the id %s; the ids of one request must be unique.", e.ID)
			s.recordFailure(&c, at, err)
			return nil, err
		}
		seen[e.ID] = struct{}{}
	}

	b := &Batch{
		svc:     s,
		channel: c,
		entries: make([][]byte, 0, len(events)),
		out:     PutAuditEventsOutput{Successful: make([]ResultEntry, 0, len(events)), Failed: []ResultErrorEntry{}},
		at:      at,
	}
	env := Envelope{Region: req.Region, AccountID: s.accountID, ChannelARN: c.ARN(), IngestionTime: at}
	ids, err := newEventIDs(len(events))
	if err != nil {
		return nil, awsproto.Internal(err)
	}
	// The records are carved out of one arena that holds them all.
	size := 0
	for _, e := range events {
		size += maxRecordSize(len(e.EventData), &env)
	}
	rb := &recordBuilder{arena: s.buffers.get(size)}
	for i, e := range events {
		env.EventID = ids[i]
		entry, rej := rb.buildEvent(&e, &env)
		if rej != nil {
			b.out.Failed = append(b.out.Failed, ResultErrorEntry{ID: e.ID, ErrorCode: rej.Code, ErrorMessage: rej.Message})
			continue
		}
		b.entries = append(b.entries, entry)
		b.out.Successful = append(b.out.Successful, ResultEntry{ID: e.ID, EventID: env.EventID})
	}
	b.arena = rb.arena
	s.metrics.batchEvents.Observe(float64(len(events)))
	return b, nil
}

// newEventIDs returns n random (version 4) UUIDs from one read of the
// system's random source, instead of one read per event, formatted into
// one string that the IDs are slices of: one allocation, not n.
func newEventIDs(n int) ([]string, error) {
	raw := make([]byte, 16*n)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("channel: generate %d eventIDs: %w", n, err)
	}
	const idLen = 36
	text := make([]byte, 0, idLen*n)
	for i := range n {
		var u uuid.UUID
		copy(u[:], raw[16*i:])
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		text = appendUUID(text, u)
	}
	all := string(text)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = all[idLen*i : idLen*(i+1)]
	}
	return ids, nil
}

// appendUUID appends u in its canonical form, as u.String() writes it.
func appendUUID(b []byte, u uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return b
}

// checkAccess applies the channel's resource policy: when it names
// external IDs, the call must carry one of them. Principals are not
// checked (see PutResourcePolicy).
func (s *Service) checkAccess(c *Channel, externalID *string) error {
	if len(c.ExternalIDs) > 0 {
		if externalID == nil {
			return awsproto.Errorf(CodeChannelInsufficientPermission,
				"The resource policy of channel %s requires an externalId, and the request has none.", c.ARN())
		}
		if !slices.Contains(c.ExternalIDs, *externalID) {
			return awsproto.Errorf(CodeChannelInsufficientPermission,
				"The externalId of the request is not one the resource policy of channel %s accepts.", c.ARN())
		}
	}
	if c.deliversToService() {
		return awsproto.Errorf(CodeUnsupportedOperation,
			"Channel %s is fed by an AWS service (it has an %s destination); PutAuditEvents is only for channels of source %s.", c.ARN(), DestinationAWSService, SourceCustom)
	}
	return nil
}

// recordFailure notes a whole-request failure on a known channel in its
// ingestion status.
func (s *Service) recordFailure(c *Channel, at time.Time, err error) {
	s.status.record(statusKey(c.Region, c.ID), IngestionStatus{
		LatestIngestionAttemptTime: at,
		LatestIngestionErrorCode:   awsproto.AsError(err).Code,
	})
}

// Commit makes the accepted events durable with ONE Append of the batch's
// entries followed by extra (the server passes the audit record of the
// PutAuditEvents call itself, so that the call and its events are durable
// together). Only then are events reported successful. When the journal
// refuses the batch nothing is reported successful and the error is
// ServiceUnavailableException: the caller retries the whole request.
// A batch whose events all failed validation appends only extra.
func (b *Batch) Commit(ctx context.Context, j Appender, extra ...[]byte) (*PutAuditEventsOutput, error) {
	s := b.svc
	entries := b.entries
	if len(extra) > 0 {
		entries = append(slices.Clip(entries), extra...)
	}
	if len(entries) > 0 {
		if _, err := j.Append(ctx, entries); err != nil {
			s.metrics.events.WithLabelValues("journal_error").Add(float64(len(b.entries)))
			b.countFailed()
			s.status.record(statusKey(b.channel.Region, b.channel.ID), IngestionStatus{
				LatestIngestionAttemptTime: b.at,
				LatestIngestionErrorCode:   "InternalFailure",
			})
			return nil, &awsproto.Error{
				Code:    "ServiceUnavailableException",
				Message: "Cairn could not make the events durable in its journal; none of them was accepted. Try the request again later.",
				Err:     fmt.Errorf("channel: append %d events of %s: %w", len(b.entries), b.channel.ARN(), err),
			}
		}
	}
	upd := IngestionStatus{LatestIngestionAttemptTime: b.at}
	if n := len(b.out.Successful); n > 0 {
		last := b.out.Successful[n-1].EventID
		upd.LatestIngestionSuccessTime = b.at
		upd.LatestIngestionSuccessEventID = last
		upd.LatestIngestionAttemptEventID = last
	}
	if n := len(b.out.Failed); n > 0 {
		upd.LatestIngestionErrorCode = b.out.Failed[n-1].ErrorCode
	}
	s.status.record(statusKey(b.channel.Region, b.channel.ID), upd)
	s.metrics.events.WithLabelValues("accepted").Add(float64(len(b.entries)))
	b.countFailed()
	// The journal copied the entries before acknowledging them, and
	// nothing returned refers to them. (After a failed Append they are
	// left alone: the journal may have given up waiting while still
	// copying them.)
	s.buffers.put(b.arena)
	b.arena, b.entries = nil, nil
	return &b.out, nil
}

func (b *Batch) countFailed() {
	for _, f := range b.out.Failed {
		b.svc.metrics.events.WithLabelValues(f.ErrorCode).Inc()
	}
}

// PutAuditEvents is PrepareAuditEvents followed by Commit without extra
// entries.
func (s *Service) PutAuditEvents(ctx context.Context, req *PutAuditEventsRequest, j Appender) (*PutAuditEventsOutput, error) {
	b, err := s.PrepareAuditEvents(ctx, req)
	if err != nil {
		return nil, err
	}
	return b.Commit(ctx, j)
}

// AppendJSON appends o as encoding/json marshals it, byte for byte, to b.
// The response of every PutAuditEvents call is a hundred entries of
// Cairn's own ids and UUIDs; writing them directly costs a small fraction
// of reflection-driven marshaling.
func (o *PutAuditEventsOutput) AppendJSON(b []byte) []byte {
	b = append(b, `{"successful":`...)
	if o.Successful == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range o.Successful {
			e := &o.Successful[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendJSONString(b, e.ID)
			b = append(b, `,"eventID":`...)
			b = appendJSONString(b, e.EventID)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"failed":`...)
	if o.Failed == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range o.Failed {
			e := &o.Failed[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendJSONString(b, e.ID)
			b = append(b, `,"errorCode":`...)
			b = appendJSONString(b, e.ErrorCode)
			b = append(b, `,"errorMessage":`...)
			b = appendJSONString(b, e.ErrorMessage)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONString appends s as encoding/json writes a string: printable
// ASCII other than '"', '\\', '<', '>' and '&' as is, anything else
// through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
