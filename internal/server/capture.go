package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cairn-audit/cairn/internal/capture"
)

// startCaptures starts every configured capture; a capture that cannot
// start stops the server from starting, because running without it would
// leave the calls it should record unrecorded.
func (s *Server) startCaptures(ctx context.Context, mux *http.ServeMux) error {
	env := capture.Env{
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
