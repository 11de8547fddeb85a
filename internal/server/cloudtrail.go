package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/state"
)

const (
	// targetPrefix starts the X-Amz-Target of every CloudTrail operation.
	// botocore sends it namespace-qualified, the Go SDK without the
	// namespace; both name the same operation.
	targetPrefix    = "CloudTrail_20131101."
	targetNamespace = "com.amazonaws.cloudtrail.v20131101."
	// maxJSON11Body bounds a control-plane request; the largest legitimate
	// one (PutEventSelectors with 500 values of 2 KB) stays well below it.
	maxJSON11Body = 4 << 20
	// serviceCloudTrail is the SigV4 signing name of the control plane.
	serviceCloudTrail = "cloudtrail"
)

// call is one request on its way through authentication, the operation and
// the audit record.
type call struct {
	req      *api.Request
	op       api.Operation
	body     []byte
	tls      *tls.ConnectionState
	host     string
	readOnly bool
	// fromConsole marks a call the web console made for a signed-in
	// user: its record says sessionCredentialFromConsole, as CloudTrail's
	// records of AWS console calls do.
	fromConsole bool
	output      any
	err         error
	startTime   time.Time

	// params is the canonical document the operation decoded from body and
	// acted on; nil when the body could not be decoded.
	params []byte
}

func (s *Server) handleJSON11(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := uuid.NewString()
	target := r.Header.Get("X-Amz-Target")
	if target == "" {
		// A presigned request carries its headers in the query string.
		target = r.URL.Query().Get("X-Amz-Target")
	}
	opName, isCloudTrail := strings.CutPrefix(strings.TrimPrefix(target, targetNamespace), targetPrefix)
	if !isCloudTrail {
		opName = "unknown"
	}
	// The label is the operation only when it is one Cairn serves: the
	// header is the caller's and comes before authentication, so any
	// other name would let anyone add series to /metrics.
	opLabel := "unknown"
	if _, known := s.registry.Lookup(opName); known {
		opLabel = opName
	}
	defer func() {
		s.metrics.latency.WithLabelValues(serviceCloudTrail, opLabel).Observe(time.Since(start).Seconds())
	}()
	fail := func(err error) {
		e := awsproto.AsError(err)
		if e.Code == "InternalFailure" {
			s.log.Error("request failed", "request_id", requestID, "operation", opName, "err", err)
		}
		s.metrics.requests.WithLabelValues(serviceCloudTrail, opLabel, e.Code).Inc()
		awsproto.WriteError(w, requestID, awsproto.ContentTypeJSON11, e)
	}

	authd, err := s.authenticate(w, r, serviceCloudTrail, maxJSON11Body)
	if err != nil {
		fail(err)
		return
	}
	defer authd.release()

	if !isCloudTrail {
		if target == "" {
			fail(awsproto.Errorf("UnknownOperationException", "Missing X-Amz-Target header."))
		} else {
			fail(awsproto.Errorf("UnknownOperationException", "Unknown operation %s", target))
		}
		return
	}
	op, found := s.registry.Lookup(opName)
	if !found {
		fail(awsproto.Errorf("UnknownOperationException", "Unknown operation %s", target))
		return
	}

	c := &call{
		req: &api.Request{
			Operation: opName,
			Region:    authd.cred.Region,
			AccountID: s.cfg.AccountID,
			Caller:    authd.caller,
			RequestID: requestID,
			SourceIP:  sourceIP(r),
			UserAgent: r.UserAgent(),
			Time:      s.cfg.Now().UTC(),
		},
		op:        op,
		body:      authd.body,
		tls:       r.TLS,
		host:      r.Host,
		readOnly:  op.ReadOnly,
		startTime: start,
	}
	if err := s.invoke(r.Context(), c); err != nil {
		fail(err)
		return
	}
	s.metrics.requests.WithLabelValues(serviceCloudTrail, opLabel, "OK").Inc()
	awsproto.WriteJSON11(w, requestID, c.output)
}

// errNotRecorded is the answer to a call whose record the journal refused.
func errNotRecorded() error {
	return awsproto.Errorf("ServiceUnavailableException", "Cairn could not record this call in its audit journal, so it was refused and its changes were undone. Try again later.")
}

// invoke is the audited call, the one path every front end (the JSON 1.1
// handler, the console) takes: the operation runs with its configuration
// changes logged, its record goes to the journal before the caller hears
// anything, and if the record cannot be written the changes are undone and
// the call is refused. An answer the audit trail does not contain is never
// given and a change it does not contain does not stay. Recording and
// undoing do not stop when the caller hangs up: an append abandoned half
// way may still be committed, and undoing a change whose record is in the
// journal would leave the trail describing a change that is gone. The
// error is the call's own (c.err) or errNotRecorded's; c.output is the
// answer otherwise.
func (s *Server) invoke(ctx context.Context, c *call) error {
	opCtx, undo := state.WithUndo(ctx)
	s.perform(opCtx, c)
	after := context.WithoutCancel(ctx)
	if err := s.audit(after, c); err != nil {
		if !undo.Empty() {
			s.rollback(after, c, undo)
		}
		return errNotRecorded()
	}
	return c.err
}

// perform runs the operation unless the caller may not, or unless the
// journal is known to be failing and the operation would change something.
func (s *Server) perform(ctx context.Context, c *call) {
	// Decoded first so that a refused call's record still names what it
	// asked for; a body that cannot be decoded names nothing.
	in, decodeErr := c.op.Decode(c.body)
	if decodeErr == nil {
		c.params = in.Params
	}
	if c.req.Caller.ReadOnlyKey && !c.op.ReadOnly {
		c.err = awsproto.Errorf("AccessDeniedException",
			"User: %s is not authorized to perform: cloudtrail:%s because the access key is read-only", c.req.Caller.ARN, c.op.Name)
		return
	}
	if err := s.journal.Available(); err != nil && !c.op.ReadOnly {
		// Fail closed before changing anything: the record of this change
		// could not be written. A read-only call still goes ahead, since its
		// record is appended (or refused) before anyone sees its answer.
		c.err = awsproto.Errorf("ServiceUnavailableException", "Cairn's audit journal is not accepting writes, so changes are refused until it recovers. Try again later.")
		return
	}
	if decodeErr != nil {
		c.err = decodeErr
		return
	}
	c.output, c.err = c.op.Perform(ctx, c.req, in)
}

// audit appends the CloudTrail record of the call to the journal.
func (s *Server) audit(ctx context.Context, c *call) error {
	rec := event.APICall{
		Time:               c.req.Time,
		Source:             "cloudtrail.amazonaws.com",
		Name:               c.op.Name,
		Region:             c.req.Region,
		SourceIP:           c.req.SourceIP,
		UserAgent:          c.req.UserAgent,
		RequestID:          c.req.RequestID,
		EventID:            uuid.NewString(),
		RecipientAccountID: s.cfg.AccountID,
		ReadOnly:           c.readOnly,
		Identity:           c.req.Caller.Identity(),
		RequestParameters:  cloudTrailParams(c.params),
		FromConsole:        c.fromConsole,
	}
	if c.err != nil {
		e := awsproto.AsError(c.err)
		rec.ErrorCode, rec.ErrorMessage = recordedErrorCode(e.Code), e.Message
	} else if !c.readOnly {
		if out, err := api.Encode(c.output); err == nil {
			rec.ResponseElements = cloudTrailParams(out)
		}
	}
	rec.TLS = event.NewTLSDetails(c.tls, c.host)
	built, err := rec.Record()
	if err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		s.log.Error("build audit record", "request_id", c.req.RequestID, "err", err)
		return err
	}
	if _, err := s.journal.Append(ctx, [][]byte{built.Raw}); err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		s.refusals.Error("audit journal refused a record; failing closed", "request_id", c.req.RequestID, "operation", c.op.Name, "err", err)
		return err
	}
	s.metrics.audit.WithLabelValues("ok").Inc()
	return nil
}

// rollback takes back the changes of a call whose record could not be
// written, and tells delivery, which may have seen them already.
func (s *Server) rollback(ctx context.Context, c *call, undo *state.Undo) {
	if err := s.state.Rollback(ctx, undo); err != nil {
		// The store is most likely on the same failing disk. The change
		// stays and is not in the audit trail; say so loudly.
		s.log.Error("could not undo a change whose audit record was refused; the change is in effect but unrecorded",
			"request_id", c.req.RequestID, "operation", c.op.Name, "err", err)
		return
	}
	s.log.Warn("undid a change whose audit record was refused", "request_id", c.req.RequestID, "operation", c.op.Name)
	if err := s.delivery.TrailChanged(ctx); err != nil {
		s.log.Warn("delivery has not applied the undo yet; its next poll will", "err", err)
	}
}

// recordedErrorCode is the errorCode CloudTrail writes in its records, which
// for authorization failures is "AccessDenied" rather than the exception
// name the client receives.
func recordedErrorCode(code string) string {
	if code == "AccessDeniedException" {
		return "AccessDenied"
	}
	return code
}

func callerOf(k auth.Key, account string) api.Caller {
	return api.Caller{
		AccessKeyID: k.AccessKeyID,
		UserName:    k.Name,
		PrincipalID: k.PrincipalID,
		ARN:         "arn:aws:iam::" + account + ":user/" + k.Name,
		AccountID:   account,
		ReadOnlyKey: k.Role == auth.RoleReadOnly,
	}
}

func (s *Server) secretFor(ctx context.Context, accessKeyID string) (string, bool, error) {
	_, secret, ok, err := s.keys.Lookup(ctx, accessKeyID)
	return secret, ok, err
}

// sourceIP is the peer address. X-Forwarded-For is deliberately ignored: a
// client could otherwise write any address into the audit trail.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
