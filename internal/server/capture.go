package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/journal"
)

// A Capture brings in audit events that do not come through Cairn's own
// API: an audit proxy standing in front of another service, or a webhook
// that receives another system's audit log. Captures are built from the
// configuration by their own packages and handed to the server, which
// starts them once the journal is open and stops them before it closes,
// so a capture never runs without a place to make its events durable.
type Capture interface {
	// Name identifies the capture in logs, e.g. "s3 proxy 127.0.0.1:9000".
	Name() string
	// Start binds whatever the capture listens on, mounts any routes it
	// serves on Cairn's own listener, and returns once it is ready; it
	// serves until Close.
	Start(ctx context.Context, env CaptureEnv) error
	// Close stops taking requests and waits for those in flight, whose
	// events are then durable or refused.
	Close() error
}

// CaptureEnv is what the server lends its captures.
type CaptureEnv struct {
	// Journal is where events go: Append makes them durable, Available
	// says whether it accepts writes (fail-closed captures refuse calls
	// when it does not).
	Journal *journal.Journal
	// Keys are Cairn's own access keys, for captures that authenticate
	// their senders with them.
	Keys      *auth.Store
	AccountID string
	Logger    *slog.Logger
	// Registerer takes the capture's metrics; they appear on /metrics.
	Registerer prometheus.Registerer
	// Mux is the router of Cairn's own listener; webhooks add their routes
	// here (Go 1.22 patterns, e.g. "POST /k8s/audit").
	Mux *http.ServeMux
	// TLS says whether Cairn's listener serves HTTPS, for captures that
	// record tlsDetails or set Secure cookies.
	TLS bool
	Now func() time.Time
}

// startCaptures starts every configured capture; a capture that cannot
// start stops the server from starting, because running without it would
// leave the calls it should record unrecorded.
func (s *Server) startCaptures(ctx context.Context, mux *http.ServeMux) error {
	env := CaptureEnv{
		Journal:    s.journal,
		Keys:       s.keys,
		AccountID:  s.cfg.AccountID,
		Logger:     s.log,
		Registerer: s.promReg,
		Mux:        mux,
		TLS:        s.cfg.TLSCert != "",
		Now:        s.cfg.Now,
	}
	for _, c := range s.cfg.Captures {
		if err := c.Start(ctx, env); err != nil {
			return fmt.Errorf("start %s: %w", c.Name(), err)
		}
		s.started = append(s.started, c)
		s.log.Info("capture started", "capture", c.Name())
	}
	return nil
}

// closeCaptures stops the captures in reverse order of starting.
func (s *Server) closeCaptures() error {
	var errs []error
	for i := len(s.started) - 1; i >= 0; i-- {
		if err := s.started[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.started[i].Name(), err))
		}
	}
	s.started = nil
	return errors.Join(errs...)
}
