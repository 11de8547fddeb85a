package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/console"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/trail"
)

// mountConsole serves the web console on Cairn's own listener, at / and
// under /console/.
func (s *Server) mountConsole(mux *http.ServeMux) error {
	c, err := console.New(console.Options{
		Backend:   consoleBackend{s},
		AccountID: s.cfg.AccountID,
		Secure:    s.cfg.TLSCert != "",
		Logger:    s.log.With("component", "console"),
		Now:       s.cfg.Now,
		Version:   s.cfg.Version,
		// The regions Cairn serves, and those with events (imported ones).
		Regions:      s.regions.consoleRegions(),
		EventRegions: s.history.Regions,
	})
	if err != nil {
		return err
	}
	c.Mount(mux)
	return nil
}

// consoleBackend gives the console the server's stores, and the same
// operation, audit and rollback path as the API.
type consoleBackend struct{ s *Server }

func (b consoleBackend) Authenticate(ctx context.Context, accessKeyID, secret string) (api.Caller, bool, error) {
	if accessKeyID == "" || len(accessKeyID) > 128 {
		return api.Caller{}, false, nil
	}
	key, want, ok, err := b.s.keys.Lookup(ctx, accessKeyID)
	if err != nil {
		return api.Caller{}, false, fmt.Errorf("look up access key: %w", err)
	}
	if !ok {
		// Compare anyway, so that an unknown key takes as long as a wrong
		// secret and timing does not tell which keys exist.
		want = "0000000000000000000000000000000000000000"
	}
	match := subtle.ConstantTimeCompare([]byte(secret), []byte(want)) == 1
	if !ok || !match {
		return api.Caller{}, false, nil
	}
	return callerOf(key, b.s.cfg.AccountID), true, nil
}

func (b consoleBackend) Caller(ctx context.Context, accessKeyID string) (api.Caller, bool, error) {
	key, _, ok, err := b.s.keys.Lookup(ctx, accessKeyID)
	if err != nil {
		return api.Caller{}, false, fmt.Errorf("look up access key: %w", err)
	}
	if !ok {
		return api.Caller{}, false, nil
	}
	return callerOf(key, b.s.cfg.AccountID), true, nil
}

func (b consoleBackend) newCall(c console.Call) (*call, error) {
	op, found := b.s.registry.Lookup(c.Operation)
	if !found {
		return nil, awsproto.Errorf("UnknownOperationException", "Unknown operation %s", c.Operation)
	}
	return &call{
		req: &api.Request{
			Operation: c.Operation,
			Region:    c.Region,
			AccountID: b.s.cfg.AccountID,
			Caller:    c.Caller,
			RequestID: uuid.NewString(),
			SourceIP:  c.Meta.SourceIP,
			UserAgent: c.Meta.UserAgent,
			Time:      b.s.cfg.Now().UTC(),
		},
		op:          op,
		body:        c.Body,
		tls:         c.Meta.TLS,
		host:        c.Meta.Host,
		readOnly:    op.ReadOnly,
		fromConsole: true,
	}, nil
}

// Call runs a console change through the server's audited call (invoke),
// exactly as the JSON 1.1 handler does; its record is marked as made from
// the console.
func (b consoleBackend) Call(ctx context.Context, cc console.Call) ([]byte, error) {
	if err := b.s.regions.refuseConsole(cc.Region); err != nil {
		return nil, err
	}
	c, err := b.newCall(cc)
	if err != nil {
		return nil, err
	}
	if err := b.s.invoke(ctx, c); err != nil {
		return nil, err
	}
	out, err := api.Encode(c.output)
	if err != nil {
		return nil, awsproto.Internal(fmt.Errorf("encode %s output: %w", c.op.Name, err))
	}
	return out, nil
}

// Read runs a read-only operation for a console page without a record:
// pages read on every view, and live mode every two seconds, which would
// bury the history in the console's own reads.
func (b consoleBackend) Read(ctx context.Context, cc console.Call) ([]byte, error) {
	c, err := b.newCall(cc)
	if err != nil {
		return nil, err
	}
	if !c.op.ReadOnly {
		return nil, fmt.Errorf("console read of %s: the operation changes state", c.op.Name)
	}
	out, err := c.op.Handle(ctx, c.req, c.body)
	if err != nil {
		return nil, err
	}
	return api.Encode(out)
}

func (s *Server) appendConsoleRecord(ctx context.Context, rec event.APICall) error {
	rec.EventID = uuid.NewString()
	if rec.RequestID == "" {
		rec.RequestID = uuid.NewString()
	}
	rec.RecipientAccountID = s.cfg.AccountID
	built, err := rec.Record()
	if err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		s.log.Error("build console audit record", "event_name", rec.Name, "err", err)
		return err
	}
	if _, err := s.journal.Append(ctx, [][]byte{built.Raw}); err != nil {
		s.metrics.audit.WithLabelValues("error").Inc()
		s.refusals.Error("audit journal refused a console record; failing closed", "event_name", rec.Name, "err", err)
		return fmt.Errorf("append the %s record: %w", rec.Name, err)
	}
	s.metrics.audit.WithLabelValues("ok").Inc()
	return nil
}

func (b consoleBackend) Record(ctx context.Context, rec event.APICall) error {
	rec.Region = b.s.regions.served(rec.Region)
	return b.s.appendConsoleRecord(ctx, rec)
}

func (b consoleBackend) Count(ctx context.Context, region string, start, end time.Time, bucket time.Duration) ([]int, error) {
	return b.s.history.Count(ctx, region, start, end, bucket)
}

func (b consoleBackend) Lookup(ctx context.Context, q history.Query) (history.Page, error) {
	return b.s.history.Lookup(ctx, q)
}

func (b consoleBackend) Trails(ctx context.Context) ([]trail.Trail, error) {
	return b.s.trails.All(ctx)
}

func (b consoleBackend) Buckets(ctx context.Context) ([]string, error) {
	infos, err := b.s.store.ListBuckets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.Name
	}
	return names, nil
}

// CreateBucket makes a bucket for the wizard and records it as S3 records
// CreateBucket. The object store cannot delete buckets, so a change cannot
// be undone as trail changes are: instead nothing is created while the
// journal is known to refuse writes, and a bucket whose record is refused
// all the same is logged loudly.
func (b consoleBackend) CreateBucket(ctx context.Context, c api.Caller, m console.Meta, region, name string) error {
	s := b.s
	if err := s.journal.Available(); err != nil {
		return awsproto.Errorf("ServiceUnavailableException", "Cairn's audit journal is not accepting writes, so changes are refused until it recovers. Try again later.")
	}
	rec := event.APICall{
		Time: s.cfg.Now().UTC(), Source: "s3.amazonaws.com", Name: "CreateBucket", Region: s.regions.served(region),
		SourceIP: m.SourceIP, UserAgent: m.UserAgent, Identity: c.Identity(), FromConsole: true,
	}
	// json.Marshal, not %q: Go's quoting of a control character or of
	// invalid UTF-8 is not JSON, and a record that does not build is not
	// written, which would leave a refused attempt out of the trail.
	rp, err := json.Marshal(map[string]string{"bucketName": name, "Host": m.Host})
	if err != nil {
		return awsproto.Internal(fmt.Errorf("encode CreateBucket parameters: %w", err))
	}
	rec.RequestParameters = rp
	if c.ReadOnlyKey {
		rec.ErrorCode, rec.ErrorMessage = "AccessDenied", "the access key is read-only"
		if err := s.appendConsoleRecord(ctx, rec); err != nil {
			return awsproto.Errorf("ServiceUnavailableException", "Cairn could not record this change in its audit journal, so it was refused. Try again later.")
		}
		return awsproto.Errorf("AccessDeniedException", "User: %s is not authorized to perform: s3:CreateBucket because the access key is read-only", c.ARN)
	}
	err = s.store.CreateBucket(ctx, name)
	if err != nil {
		code := "InternalError"
		switch {
		case errors.Is(err, objstore.ErrBucketExists):
			code = "BucketAlreadyOwnedByYou"
		case errors.Is(err, objstore.ErrInvalidBucketName):
			code = "InvalidBucketName"
		}
		rec.ErrorCode, rec.ErrorMessage = code, err.Error()
	}
	if rerr := s.appendConsoleRecord(ctx, rec); rerr != nil {
		// The bucket stays (the store has no delete); say so.
		s.log.Error("created a bucket whose audit record was refused", "bucket", name, "err", rerr)
		return awsproto.Errorf("ServiceUnavailableException", "Cairn could not record this change in its audit journal. Try again later.")
	}
	if err != nil {
		switch {
		case errors.Is(err, objstore.ErrBucketExists):
			return awsproto.Errorf("BucketAlreadyExists", "A bucket named %s already exists; choose it under “Use an existing bucket”.", name)
		case errors.Is(err, objstore.ErrInvalidBucketName):
			return awsproto.Errorf("InvalidBucketName", "%s is not a valid bucket name: %v", name, err)
		}
		return awsproto.Internal(fmt.Errorf("create bucket %s: %w", name, err))
	}
	return nil
}

func (b consoleBackend) Journal() console.JournalState {
	return console.JournalState{LastSeq: b.s.journal.LastSeq(), Cursors: b.s.journal.Cursors()}
}
