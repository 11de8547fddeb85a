package k8saudit

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal"
)

// seedScanFactor is how many of the journal's newest entries the retry
// window is filled from, as a multiple of its size: records of other
// sources (trails, channels, proxies) lie between the cluster's.
const seedScanFactor = 2

// seedDedupe fills the retry window with the eventIDs of the records of
// the webhook's event source and account among the journal's newest
// entries, oldest first (clusters that share a source share their
// windows' room: their eventIDs never collide, being per event). Without it, a
// batch made durable just before Cairn stopped (a crash, or a restart
// before the API server saw the 200) would be recorded twice when the API
// server sends it again to the restarted server. It reads at most
// seedScanFactor times the window's size of entries, and parses only
// those that mention the event source.
func (c *Capture) seedDedupe(ctx context.Context, j *journal.Journal) (int, error) {
	if c.cfg.DedupeWindow <= 0 {
		return 0, nil
	}
	scan := uint64(seedScanFactor * c.cfg.DedupeWindow)
	after := j.FirstSeq() - 1
	if last := j.LastSeq(); last > after+scan {
		after = last - scan
	}
	source := []byte(c.mapper.source())
	seeded := 0
	_, err := j.Read(ctx, after, int(scan), func(_ uint64, e []byte) error {
		if !bytes.Contains(e, source) {
			return nil
		}
		rec, err := event.Parse(e)
		if err != nil || rec.EventSource != string(source) || rec.RecipientAccountID != c.mapper.AccountID {
			return nil
		}
		id, err := uuid.Parse(rec.EventID)
		if err != nil {
			return nil
		}
		c.seen.mu.Lock()
		c.seen.add(id)
		c.seen.mu.Unlock()
		seeded++
		return nil
	})
	if err != nil {
		return seeded, fmt.Errorf("reading the journal's newest entries for the retry window: %w", err)
	}
	return seeded, nil
}
