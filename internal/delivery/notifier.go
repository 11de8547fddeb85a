package delivery

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/cairn-audit/cairn/internal/delivery/notify"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

// queueNotification stores the notification for a delivered plan, in the
// transaction that retires the plan, so that a notification is neither
// lost nor queued twice by one process. (A crash between the cursor commit
// and that transaction queues it again on restart: delivery of
// notifications is at least once, with a stable message ID.)
func queueNotification(tx *state.Tx, p *Plan, log *slog.Logger) error {
	prefix := stateNotifyPrefix + p.TrailARN + "/"
	var keys []string
	if err := tx.Scan(prefix, func(key string, _ []byte) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		return err
	}
	for len(keys) >= maxPendingNotifications {
		log.Warn("too many notifications pending for the trail's topic; dropping the oldest", "trail", p.TrailARN, "dropped_key", keys[0])
		if err := tx.Delete(keys[0]); err != nil {
			return err
		}
		keys = keys[1:]
	}
	return tx.Put(notifyKey(p.TrailARN, p.First), pendingNotification{
		TrailARN: p.TrailARN,
		Topic:    p.Topic,
		Bucket:   p.Bucket,
		Keys:     p.Keys(),
		ID:       uniqueString(p.TrailARN, p.First, p.Last, "notification"),
	})
}

func (m *Manager) wakeNotifier() {
	select {
	case m.notifyWake <- struct{}{}:
	default:
	}
}

// notifyLoop sends pending notifications, oldest first per trail, each
// trail backing off on its own while its webhook fails.
func (m *Manager) notifyLoop(ctx context.Context) {
	type retry struct {
		failures int
		next     time.Time
	}
	retries := map[string]*retry{}
	for ctx.Err() == nil {
		keys, list, err := m.st.notifications(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("reading pending notifications failed", "err", err)
			list = nil
		}
		progress := false
		var wakeAt time.Time
		seen := map[string]bool{}
		for i, n := range list {
			if seen[n.TrailARN] {
				continue
			}
			seen[n.TrailARN] = true
			r := retries[n.TrailARN]
			if r != nil && time.Now().Before(r.next) {
				if wakeAt.IsZero() || r.next.Before(wakeAt) {
					wakeAt = r.next
				}
				continue
			}
			err := m.sendNotification(ctx, n)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				delete(retries, n.TrailARN)
				if err := m.st.deleteKey(ctx, keys[i]); err != nil {
					m.log.Warn("removing a sent notification failed", "err", err)
				}
				progress = true
				continue
			}
			if r == nil {
				r = &retry{}
				retries[n.TrailARN] = r
			}
			r.failures++
			delay := m.backoff(r.failures)
			r.next = time.Now().Add(delay)
			if wakeAt.IsZero() || r.next.Before(wakeAt) {
				wakeAt = r.next
			}
			m.log.Warn("notification failed; retrying", "trail", n.TrailARN, "topic", n.Topic, "err", err, "attempt", r.failures, "retry_in", delay.Round(time.Millisecond))
		}
		if progress {
			continue
		}
		var timer *time.Timer
		var fire <-chan time.Time
		switch {
		case !wakeAt.IsZero():
			timer = time.NewTimer(time.Until(wakeAt))
		case err != nil:
			timer = time.NewTimer(m.opts.RetryMin)
		}
		if timer != nil {
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-m.notifyWake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// sendNotification makes one attempt and records it in the trail status.
func (m *Manager) sendNotification(ctx context.Context, n pendingNotification) error {
	var err error
	topic, ok := m.opts.Topics.Lookup(n.Topic)
	if !ok {
		err = &notify.SendError{Code: notify.CodeNotFound, Err: errors.New("topic " + n.Topic + " is not in Cairn's configuration ([[topics]])")}
	} else {
		// One message per log file, as CloudTrail's SNS notifications carry
		// one key each. After a failure the batch is retried whole; each
		// message keeps its own stable ID, so receivers drop repeats.
		for i, key := range n.Keys {
			id := n.ID
			if len(n.Keys) > 1 {
				id = n.ID + "-" + strconv.Itoa(i)
			}
			if err = m.sender.Send(ctx, topic, id, notify.Message{S3Bucket: n.Bucket, S3ObjectKey: []string{key}}); err != nil {
				break
			}
		}
	}
	code := ""
	if err != nil {
		code = "InternalError"
		var se *notify.SendError
		if errors.As(err, &se) {
			code = se.Code
		}
	}
	m.metrics.notification(n.TrailARN, code)
	if rerr := m.trails.RecordNotification(ctx, n.TrailARN, m.now(), code); rerr != nil && !errors.Is(rerr, trail.ErrNotFound) && ctx.Err() == nil {
		m.log.Warn("recording the notification status failed", "trail", n.TrailARN, "err", rerr)
	}
	return err
}
