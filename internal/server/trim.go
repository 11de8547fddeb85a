package server

import (
	"context"
	"time"
)

// trimInterval is how often the journal drops what every consumer has
// durably processed.
const trimInterval = time.Minute

// trimJournal keeps the journal no longer than its slowest consumer needs.
// Every consumer (the history, each trail) owns a named cursor; an entry
// below all of them has been processed everywhere and is dropped. A consumer
// that lags holds entries back, which is the point: it catches up from the
// journal instead of losing events.
func (s *Server) trimJournal(ctx context.Context) {
	t := time.NewTicker(trimInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.trimOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("journal trim failed; will retry", "err", err)
		}
	}
}

func (s *Server) trimOnce(ctx context.Context) error {
	cursors := s.journal.Cursors()
	if len(cursors) == 0 {
		return nil // nobody has read anything yet
	}
	low := s.journal.LastSeq()
	for _, pos := range cursors {
		low = min(low, pos)
	}
	return s.journal.Trim(ctx, low+1)
}
