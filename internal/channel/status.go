package channel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/state"
)

// IngestionStatus is what GetChannel reports about a channel's latest
// PutAuditEvents calls. Zero members are "never" and are left out on the
// wire.
type IngestionStatus struct {
	// LatestIngestionSuccessTime and LatestIngestionSuccessEventID are the
	// time and eventID of the last event made durable.
	LatestIngestionSuccessTime    time.Time `json:",omitzero"`
	LatestIngestionSuccessEventID string    `json:",omitempty"`
	// LatestIngestionErrorCode is the error code of the most recent event
	// that failed (a per-event code such as InvalidChecksum, or
	// InternalFailure when the journal refused a batch). A later success
	// does not clear it, as on AWS.
	LatestIngestionErrorCode string `json:",omitempty"`
	// LatestIngestionAttemptTime is the time of the latest PutAuditEvents
	// call that reached event validation, successful or not;
	// LatestIngestionAttemptEventID the last eventID it assigned.
	LatestIngestionAttemptTime    time.Time `json:",omitzero"`
	LatestIngestionAttemptEventID string    `json:",omitempty"`
}

// overlay returns base with every non-zero member of newer written over
// it. Every update carries the newest value of the members it sets, so an
// overlay never moves a member backwards.
func overlay(base, newer IngestionStatus) IngestionStatus {
	if !newer.LatestIngestionSuccessTime.IsZero() {
		base.LatestIngestionSuccessTime = newer.LatestIngestionSuccessTime
	}
	if newer.LatestIngestionSuccessEventID != "" {
		base.LatestIngestionSuccessEventID = newer.LatestIngestionSuccessEventID
	}
	if newer.LatestIngestionErrorCode != "" {
		base.LatestIngestionErrorCode = newer.LatestIngestionErrorCode
	}
	if !newer.LatestIngestionAttemptTime.IsZero() {
		base.LatestIngestionAttemptTime = newer.LatestIngestionAttemptTime
	}
	if newer.LatestIngestionAttemptEventID != "" {
		base.LatestIngestionAttemptEventID = newer.LatestIngestionAttemptEventID
	}
	return base
}

// Keys: "channel-ingest/<region>/<uuid>", apart from the channel itself so
// that the background flush never rewrites (and never races with changes
// to) the channel's configuration.
const statusPrefix = "channel-ingest/"

func statusKey(region, id string) string { return statusPrefix + region + "/" + id }

func loadStatus(r state.Reader, region, id string, st *IngestionStatus) (bool, error) {
	ok, err := r.Get(statusKey(region, id), st)
	if err != nil {
		return false, fmt.Errorf("channel: load ingestion status of %s/%s: %w", region, id, err)
	}
	return ok, nil
}

// statusTable holds the ingestion status changes not yet written to the
// state store. PutAuditEvents only takes its mutex for a map update, so
// ingestion never waits for a disk.
type statusTable struct {
	mu sync.Mutex
	m  map[string]*statusEntry
}

type statusEntry struct {
	st    IngestionStatus // newest known values of the members ever set here
	dirty bool
}

func newStatusTable() *statusTable { return &statusTable{m: make(map[string]*statusEntry)} }

func (t *statusTable) record(key string, upd IngestionStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e == nil {
		e = &statusEntry{}
		t.m[key] = e
	}
	e.st = overlay(e.st, upd)
	e.dirty = true
}

// merged is the persisted status with the in-memory changes over it.
func (t *statusTable) merged(key string, persisted IngestionStatus) IngestionStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[key]; e != nil {
		return overlay(persisted, e.st)
	}
	return persisted
}

func (t *statusTable) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

// takeDirty returns the changed statuses and marks them clean.
func (t *statusTable) takeDirty() map[string]IngestionStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[string]IngestionStatus
	for k, e := range t.m {
		if e.dirty {
			if out == nil {
				out = make(map[string]IngestionStatus)
			}
			out[k] = e.st
			e.dirty = false
		}
	}
	return out
}

// redirty marks keys changed again after a failed write.
func (t *statusTable) redirty(keys map[string]IngestionStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range keys {
		if e := t.m[k]; e != nil {
			e.dirty = true
		}
	}
}

// Flush writes every changed ingestion status to the state store in one
// transaction. Statuses of channels deleted meanwhile are dropped.
func (s *Service) Flush(ctx context.Context) error {
	dirty := s.status.takeDirty()
	if len(dirty) == 0 {
		return nil
	}
	var gone []string
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		gone = gone[:0]
		for key, st := range dirty {
			region, id, _ := strings.Cut(strings.TrimPrefix(key, statusPrefix), "/")
			if _, ok, err := load(tx, region, id); err != nil {
				return err
			} else if !ok {
				gone = append(gone, key)
				continue
			}
			var persisted IngestionStatus
			if _, err := loadStatus(tx, region, id, &persisted); err != nil {
				return err
			}
			if err := tx.Put(key, overlay(persisted, st)); err != nil {
				return fmt.Errorf("channel: save ingestion status %s: %w", key, err)
			}
		}
		return nil
	})
	if err != nil {
		s.status.redirty(dirty)
		return fmt.Errorf("channel: flush ingestion status of %d channels: %w", len(dirty), err)
	}
	for _, key := range gone {
		s.status.forget(key)
	}
	return nil
}

// Run writes changed ingestion statuses back every FlushInterval until ctx
// ends, then once more (with ctx's values but without its cancellation) so
// that a clean shutdown loses nothing. Call it in its own goroutine and
// wait for it before closing the state store. A crash loses at most one
// interval of status updates, never an event: events are in the journal.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.Flush(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			return nil
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				s.log.WarnContext(ctx, "channel ingestion status not saved; will retry", "err", err)
			}
		}
	}
}
