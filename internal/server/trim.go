package server

import (
	"context"
	"time"

	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/lake/ingest"
)

// trimInterval is how often the journal drops what every consumer has
// durably processed.
const trimInterval = time.Minute

// defaultJournalHoldLimit is how many journal entries a trail's delivery
// may hold back from trimming when Config.JournalHoldLimit is zero: at
// ~1.3 KB an entry (compressed several times on disk) some 13 GB of
// records, hours of a busy server's intake, days of a quiet one's.
const defaultJournalHoldLimit = 10_000_000

// trimJournal keeps the journal no longer than its slowest consumer needs.
// Every consumer (the history, each trail) owns a named cursor; an entry
// below all of them has been processed everywhere and is dropped. A consumer
// that lags holds entries back, which is the point: it catches up from the
// journal instead of losing events.
//
// Except a trail whose delivery keeps failing (a bucket that is gone, a
// store that refuses it): it would hold the journal without bound and fill
// the disk, which then stops intake for everyone. A trail's cursor holds at
// most the hold limit's worth of entries; past it the journal is trimmed
// anyway and the trail records the gap (delivery.Manager.Skipped). An
// audit trail must not stop recording because one sink is broken; the
// local history and every other trail still have the events, and the gap
// is counted, logged and shown in GetTrailStatus.
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

// heldTrail is a trail whose cursor the hold limit overrode.
type heldTrail struct {
	arn string
	pos uint64
}

func (s *Server) trimOnce(ctx context.Context) error {
	cursors := s.journal.Cursors()
	if len(cursors) == 0 {
		return nil // nobody has read anything yet
	}
	last := s.journal.LastSeq()
	limit := s.holdLimit()
	var floor uint64 // trail cursors below it do not hold the journal
	if limit > 0 && last > limit {
		floor = last - limit
	}
	low := last
	var over []heldTrail
	for name, pos := range cursors {
		if arn, isTrail := delivery.TrailOfCursor(name); isTrail && limit > 0 {
			if pos < floor {
				over = append(over, heldTrail{arn, pos})
				pos = floor
			} else if held := last - pos; held > limit/2 {
				// Once a trim interval: rate-limited by construction.
				s.log.Warn("a trail's delivery is holding journal entries; at the hold limit they are trimmed and the trail gets a gap",
					"trail", arn, "held_entries", held, "hold_limit", limit)
			}
		} else if id, isStore := ingest.StoreOfCursor(name); isStore && limit > 0 && pos < floor {
			// An event data store whose files cannot be written (its
			// object store refuses them) is held to the same limit: the
			// entries trimmed past it are counted by the ingestion
			// (cairn_lake_skipped_events_total{reason="missed"}) and
			// logged when it reads again.
			s.log.Warn("an event data store's ingestion held journal entries past the hold limit; trimming them, the store will miss them",
				"event_data_store", id, "held_entries", last-pos, "hold_limit", limit)
			pos = floor
		}
		low = min(low, pos)
	}
	first := s.journal.FirstSeq()
	if err := s.journal.Trim(ctx, low+1); err != nil {
		return err
	}
	trimmed := s.journal.FirstSeq() - 1
	for _, h := range over {
		// What this trim removed that the trail had not delivered.
		from := max(h.pos+1, first)
		if trimmed >= from {
			s.delivery.Skipped(ctx, h.arn, trimmed-from+1, trimmed)
		}
	}
	return nil
}

// holdLimit is the configured hold limit in entries; 0 means no limit.
func (s *Server) holdLimit() uint64 {
	switch l := s.cfg.JournalHoldLimit; {
	case l < 0:
		return 0
	case l == 0:
		return defaultJournalHoldLimit
	default:
		return uint64(l)
	}
}
