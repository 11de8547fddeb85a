package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/event"
)

// The cloudtrail-data service: one REST-JSON operation, PutAuditEvents,
// signed for "cloudtrail-data" (reference §2.1).
const (
	serviceCloudTrailData = "cloudtrail-data"
	opPutAuditEvents      = "PutAuditEvents"
	// contentTypeRESTJSON frames cloudtrail-data responses and errors
	// ({"__type", "message"} plus X-Amzn-ErrorType).
	contentTypeRESTJSON = "application/json"
	// channelResourceType is the resources[].type of a channel.
	channelResourceType = "AWS::CloudTrail::Channel"
)

// putAuditEventsHandler returns the handler of POST /PutAuditEvents for the
// channels of svc. It is a closure rather than a Server field so that the
// cloudtrail-data service carries no state of its own: the channel
// service holds the channels, the journal the events.
//
// What one request does, in order:
//
//  1. Refuses a body over 1 MB, and every signature fault the headers
//     show, before reading the body; reserves the body from the shared
//     budget and reads it within the deadline (intake.go).
//  2. Verifies SigV4 for signing name "cloudtrail-data" (a signature made
//     for the control plane cannot be replayed here) over the exact body;
//     presigned URLs with UNSIGNED-PAYLOAD are refused, because the events
//     are the payload.
//  3. Refuses read-only keys (AccessDeniedException) and, while the journal
//     is failing, everything (ServiceUnavailableException): fail closed.
//  4. Validates the request and every event (channel.PrepareAuditEvents).
//  5. Appends the accepted events AND the record of this call (a
//     CloudTrail data event, eventCategory Data, as AWS records
//     PutAuditEvents) in ONE journal Append, durable before the answer.
//     If the Append fails, nothing is reported successful.
//
// Every authenticated call is recorded, refusals included, as the control
// plane does: an answer the journal does not hold is never given.
func (s *Server) putAuditEventsHandler(svc *channel.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.servePutAuditEvents(w, r, svc) }
}

func (s *Server) servePutAuditEvents(w http.ResponseWriter, r *http.Request, svc *channel.Service) {
	start := time.Now()
	requestID := uuid.NewString()
	defer func() {
		s.metrics.latency.WithLabelValues(serviceCloudTrailData, opPutAuditEvents).Observe(time.Since(start).Seconds())
	}()
	fail := func(err error) {
		e := awsproto.AsError(err)
		if e.HTTPStatus() >= 500 && e.Code != "ThrottlingException" { // a full body budget is not a fault
			s.refusals.Error("PutAuditEvents failed", "request_id", requestID, "code", e.Code, "err", err)
		}
		s.metrics.requests.WithLabelValues(serviceCloudTrailData, opPutAuditEvents, e.Code).Inc()
		awsproto.WriteError(w, requestID, contentTypeRESTJSON, e)
	}

	// What the headers can refuse is refused before the body is read
	// (intake.go).
	pending, err := s.preVerify(w, r, serviceCloudTrailData, channel.MaxRequestBytes, channel.RequestTooLarge)
	if err != nil {
		fail(err)
		return
	}
	release, err := s.admitBody(w, r, channel.MaxRequestBytes, pending.AccessKeyID())
	if err != nil {
		fail(err)
		return
	}
	defer release()
	body, err := readBody(w, r, svc)
	defer svc.ReleaseRequestBuffer(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(channel.RequestTooLarge(tooBig.Limit + 1))
			return
		}
		fail(bodyReadError(err, channel.MaxRequestBytes))
		return
	}
	liftBodyDeadline(w)

	cred, err := pending.Verify(body)
	if err != nil {
		fail(err)
		return
	}
	if cred.UnsignedPayload {
		fail(awsproto.Errorf("InvalidSignatureException", "PutAuditEvents requires a signed payload: the events are the payload, so UNSIGNED-PAYLOAD is not accepted."))
		return
	}
	key, _, ok, err := s.keys.Lookup(r.Context(), cred.AccessKeyID)
	if err != nil {
		fail(awsproto.Internal(fmt.Errorf("look up access key: %w", err)))
		return
	}
	if !ok { // deleted between verification and now
		fail(awsproto.Errorf("UnrecognizedClientException", "The security token included in the request is invalid."))
		return
	}

	q := r.URL.Query()
	dc := &dataCall{
		req: &api.Request{
			Operation: opPutAuditEvents,
			Region:    cred.Region,
			AccountID: s.cfg.AccountID,
			Caller:    callerOf(key, s.cfg.AccountID),
			RequestID: requestID,
			SourceIP:  sourceIP(r),
			UserAgent: r.UserAgent(),
			Time:      s.cfg.Now().UTC(),
		},
		channelRef: q.Get("channelArn"),
		tls:        r.TLS,
		host:       r.Host,
	}

	var batch *channel.Batch
	switch {
	case dc.req.Caller.ReadOnlyKey:
		err = awsproto.Errorf("AccessDeniedException",
			"User: %s is not authorized to perform: cloudtrail-data:PutAuditEvents because the access key is read-only", dc.req.Caller.ARN)
	case s.journal.Available() != nil:
		err = awsproto.Errorf("ServiceUnavailableException", "Cairn's journal is not accepting writes, so events are refused until it recovers. Try again later.")
	default:
		preq := &channel.PutAuditEventsRequest{Region: cred.Region, ChannelARN: dc.channelRef, Body: body}
		if q.Has("externalId") {
			ext := q.Get("externalId")
			preq.ExternalID = &ext
		}
		batch, err = svc.PrepareAuditEvents(r.Context(), preq)
	}

	if err != nil {
		// The refusal is recorded before it is sent.
		dc.err = err
		rec, berr := s.dataEventRecord(dc)
		if berr == nil {
			_, berr = s.journal.Append(r.Context(), [][]byte{rec})
		}
		if berr != nil {
			s.metrics.audit.WithLabelValues("error").Inc()
			s.refusals.Error("could not record a refused PutAuditEvents call; failing closed", "request_id", requestID, "err", berr)
			fail(awsproto.Errorf("ServiceUnavailableException", "Cairn could not record this call in its audit journal, so it was refused. Try again later."))
			return
		}
		s.metrics.audit.WithLabelValues("ok").Inc()
		fail(err)
		return
	}

	dc.channelARN = batch.Channel().ARN()
	dc.accepted, dc.rejected = batch.Accepted(), batch.Rejected()
	rec, err := s.dataEventRecord(dc)
	if err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		fail(awsproto.Internal(err))
		return
	}
	out, err := batch.Commit(r.Context(), s.journal, rec)
	if err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		fail(err)
		return
	}
	s.metrics.audit.WithLabelValues("ok").Inc()
	s.metrics.requests.WithLabelValues(serviceCloudTrailData, opPutAuditEvents, "OK").Inc()
	// The body buffer is free again: the answer is written in it.
	writeRESTJSON(w, requestID, out.AppendJSON(body[:0]))
}

// readBody reads the request body, of at most channel.MaxRequestBytes, into
// a buffer of the channel service's pool when its length is known (as it
// is from every SDK): exactly one buffer of the right size instead of
// io.ReadAll's growing copies, and no fresh one per request. The caller
// gives the buffer back with svc.ReleaseRequestBuffer (nil is fine).
func readBody(w http.ResponseWriter, r *http.Request, svc *channel.Service) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, channel.MaxRequestBytes)
	if n := r.ContentLength; n >= 0 && n <= channel.MaxRequestBytes {
		body := svc.RequestBuffer(int(n))
		if _, err := io.ReadFull(rd, body); err != nil {
			return body, err
		}
		return body, nil
	}
	return io.ReadAll(rd)
}

// writeRESTJSON sends a successful REST-JSON response.
func writeRESTJSON(w http.ResponseWriter, requestID string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentTypeRESTJSON)
	h.Set("x-amzn-RequestId", requestID)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// dataCall is one PutAuditEvents call on its way to its record.
type dataCall struct {
	req        *api.Request
	channelRef string // channelArn as sent
	channelARN string // the resolved channel's ARN, "" when not resolved
	eventID    string // the record's eventID; "" means a new random one
	accepted   int
	rejected   int
	err        error
	tls        *tls.ConnectionState
	host       string
}

// dataEventRecord builds the record of a PutAuditEvents call, as CloudTrail
// records it: a data event (eventCategory Data, managementEvent false,
// eventSource cloudtrail-data.amazonaws.com) on the channel resource. The
// request parameters are the channel only: the events are recorded on
// their own, and the externalId is a shared secret of sorts. Outcome
// counts go to additionalEventData.
func (s *Server) dataEventRecord(dc *dataCall) ([]byte, error) {
	params, err := event.MarshalNoEscape(map[string]string{"channelArn": dc.channelRef})
	if err != nil {
		return nil, fmt.Errorf("build the record of PutAuditEvents %s: %w", dc.req.RequestID, err)
	}
	rec := event.APICall{
		Time:               dc.req.Time,
		Source:             serviceCloudTrailData + ".amazonaws.com",
		Name:               opPutAuditEvents,
		Region:             dc.req.Region,
		SourceIP:           dc.req.SourceIP,
		UserAgent:          dc.req.UserAgent,
		RequestID:          dc.req.RequestID,
		EventID:            dc.eventID,
		RecipientAccountID: s.cfg.AccountID,
		Identity:           dc.req.Caller.Identity(),
		RequestParameters:  params,
		TLS:                event.NewTLSDetails(dc.tls, dc.host),
		DataEvent:          true,
	}
	if dc.err != nil {
		e := awsproto.AsError(dc.err)
		rec.ErrorCode, rec.ErrorMessage = recordedErrorCode(e.Code), e.Message
	} else {
		rec.AdditionalEventData = fmt.Appendf(nil, `{"auditEventsAccepted":%d,"auditEventsFailed":%d}`, dc.accepted, dc.rejected)
	}
	if dc.channelARN != "" {
		rec.Resources = []event.Resource{{AccountID: s.cfg.AccountID, Type: channelResourceType, ARN: dc.channelARN}}
	}
	built, err := rec.Record()
	if err != nil {
		return nil, fmt.Errorf("build the record of PutAuditEvents %s: %w", dc.req.RequestID, err)
	}
	return built.Raw, nil
}
