package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal"
)

// The import endpoint is a Cairn extension: CloudTrail has no API that takes
// finished records (its Lake "StartImport" copies from S3 into an event
// data store, which is not the event history). Records from existing
// CloudTrail delivery files must nevertheless reach the journal, because
// the journal is what event history and trails read; and the running
// server holds the journal's lock, so `cairn import` cannot write it
// directly. Hence a small REST-JSON-style endpoint on the same listener,
// with the same SigV4 authentication as everything else.
const (
	// ImportPath is the route of the import endpoint (POST).
	ImportPath = apiclient.ImportPath
	// ImportService is the SigV4 signing name of the import endpoint. It is
	// its own name so that a signature made for the CloudTrail API cannot be
	// replayed here and the other way round.
	ImportService = apiclient.ServiceCairn
	// MaxImportBody bounds one import request. The CLI sends at most 4 MB.
	MaxImportBody = 5 << 20
	// importOperation is the operation name in metrics and the eventName of
	// the audit record of an import call.
	importOperation = "ImportEvents"
	// contentTypeJSON is what the REST-JSON endpoints answer with.
	contentTypeJSON = "application/json"
)

// handleImport serves POST /cairn/import.
//
// The body is JSON Lines: one complete CloudTrail record per line (blank
// lines are skipped). JSON Lines rather than one JSON document because each
// record is then found by a newline split, so one malformed record is
// rejected alone with its index instead of failing the whole request, and a
// client can stream records without building an envelope. Each record is
// validated with event.Parse and stored in its compact form; records keep
// their own eventID and eventTime (import is for history), and a record
// without eventID (eventVersion before 1.01) does not get one invented.
//
// The audit record of the call itself and the accepted records, in that
// order, are made durable by ONE journal Append before the answer is
// written: either all of them are acknowledged or none
// (ServiceUnavailableException, retry the request). The audit record is the
// import's header: it names the import (its request ID), the number of
// records that follow it and their SHA-256, which is how the event history
// tells imported records from native ones (event.ImportHeader). Only admin keys may import; a read-only key gets
// AccessDeniedException, and its refused attempt is audited.
//
// Re-importing a file appends its records again: the event history skips
// eventIDs it already holds, but trails deliver the duplicates.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := uuid.NewString()
	defer func() {
		s.metrics.latency.WithLabelValues(ImportService, importOperation).Observe(time.Since(start).Seconds())
	}()
	fail := func(err error) {
		e := awsproto.AsError(err)
		if e.Code == "InternalFailure" {
			s.log.Error("import request failed", "request_id", requestID, "err", err)
		}
		s.metrics.requests.WithLabelValues(ImportService, importOperation, e.Code).Inc()
		awsproto.WriteError(w, requestID, contentTypeJSON, e)
	}

	authd, err := s.authenticate(w, r, ImportService, MaxImportBody)
	if err != nil {
		fail(err)
		return
	}
	defer authd.release()
	body, cred, caller := authd.body, authd.cred, authd.caller
	audit := event.APICall{
		Time:               s.cfg.Now().UTC(),
		Source:             "cloudtrail.amazonaws.com",
		Name:               importOperation,
		Region:             cred.Region,
		SourceIP:           sourceIP(r),
		UserAgent:          r.UserAgent(),
		RequestID:          requestID,
		RecipientAccountID: s.cfg.AccountID,
		Identity:           caller.Identity(),
	}
	if caller.ReadOnlyKey {
		denied := awsproto.Errorf("AccessDeniedException",
			"User: %s is not authorized to perform: cloudtrail:%s because the access key is read-only", caller.ARN, importOperation)
		audit.ErrorCode, audit.ErrorMessage = recordedErrorCode(denied.Code), denied.Message
		audit.RequestParameters = importParams(countLines(body), len(body))
		if err := s.appendImport(r.Context(), nil, audit); err != nil {
			fail(err)
			return
		}
		fail(denied)
		return
	}

	entries, out := parseImport(body, audit.Time)
	audit.RequestParameters = importParams(len(entries)+len(out.Rejected), len(body))
	audit.ResponseElements = fmt.Appendf(nil, `{"accepted":%d,"rejected":%d}`, out.Accepted, len(out.Rejected))
	sum := sha256.New()
	for _, e := range entries {
		sum.Write(e)
		sum.Write([]byte{'\n'})
	}
	out.ImportID, out.SHA256 = requestID, hex.EncodeToString(sum.Sum(nil))
	audit.AdditionalEventData = event.ImportHeaderData(out.ImportID, len(entries), out.SHA256)
	if err := s.appendImport(r.Context(), entries, audit); err != nil {
		fail(err)
		return
	}
	s.metrics.requests.WithLabelValues(ImportService, importOperation, "OK").Inc()
	resp, err := json.Marshal(out)
	if err != nil {
		fail(awsproto.Internal(fmt.Errorf("encode import response: %w", err)))
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("x-amzn-RequestId", requestID)
	h.Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// appendImport makes the accepted records and the audit record of the call
// durable together in one Append. A failure is ServiceUnavailableException:
// nothing of the request was acknowledged and the client retries it whole.
func (s *Server) appendImport(ctx context.Context, entries [][]byte, audit event.APICall) error {
	rec, err := audit.Record()
	if err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		return awsproto.Internal(fmt.Errorf("build the audit record of an import: %w", err))
	}
	// The audit record goes first: it is the header that says the next
	// len(entries) journal entries are this import's (event.ImportHeader).
	// A header that lost its provenance on the way (a record shrunk to fit
	// the journal gives up members) would let the records pass for native
	// ones: then nothing is imported.
	if len(entries) > 0 {
		if p, ok := event.ImportHeader(rec); !ok || p.Records != len(entries) {
			s.metrics.audit.WithLabelValues("error").Inc()
			return awsproto.Internal(fmt.Errorf("the audit record of import %s does not carry its provenance for %d records; nothing was imported", audit.RequestID, len(entries)))
		}
	}
	all := append([][]byte{rec.Raw}, entries...)
	if _, err := s.journal.Append(ctx, all); err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		s.refusals.Error("journal refused an import; failing closed", "request_id", audit.RequestID, "records", len(entries), "err", err)
		return &awsproto.Error{
			Code:    "ServiceUnavailableException",
			Message: "Cairn could not make the imported records durable in its journal; none of them was accepted. Try the request again later.",
			Err:     err,
		}
	}
	s.metrics.audit.WithLabelValues("ok").Inc()
	return nil
}

// parseImport splits a JSON Lines body into records and validates each
// (event.Parse, then event.CheckImportable against now: a record the
// history and trails would silently drop is refused here instead). It
// returns the compact bytes of the good ones and the answer to send.
func parseImport(body []byte, now time.Time) ([][]byte, apiclient.ImportOutput) {
	out := apiclient.ImportOutput{Rejected: []apiclient.ImportRejection{}}
	var entries [][]byte
	index := 0
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		rec, err := event.Parse(line)
		if err == nil {
			err = event.CheckImportable(rec, now)
		}
		switch {
		case err != nil:
			out.Rejected = append(out.Rejected, apiclient.ImportRejection{Index: index, Error: err.Error()})
		case len(rec.Raw) > journal.MaxEntrySize:
			out.Rejected = append(out.Rejected, apiclient.ImportRejection{Index: index,
				Error: fmt.Sprintf("record is %d bytes, over Cairn's per-record limit of %d bytes", len(rec.Raw), journal.MaxEntrySize)})
		default:
			entries = append(entries, rec.Raw)
		}
		index++
	}
	out.Accepted = len(entries)
	return entries, out
}

// countLines counts the non-blank lines of body, the records a refused
// request carried, without parsing them.
func countLines(body []byte) int {
	n := 0
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

// importParams is the requestParameters of an import's audit record: the
// size of the request, never the records themselves, which are in the
// journal on their own.
func importParams(records, size int) json.RawMessage {
	return fmt.Appendf(nil, `{"records":%d,"bytes":%d}`, records, size)
}
