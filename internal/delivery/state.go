package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/state"
)

// Delivery keeps three kinds of durable state besides the journal cursor,
// all in the state store (the configuration store the trails live in):
//
//	delivery/trail/<trail ARN>               -> trailState: logging windows and the pending plan
//	delivery/notify/<trail ARN>/<first seq>  -> pendingNotification, until the webhook took it
//
// The journal cursor "trail/<trail ARN>" is the position up to which every
// selected event is in a delivered file.
const (
	stateTrailPrefix  = "delivery/trail/"
	stateNotifyPrefix = "delivery/notify/"
	cursorPrefix      = "trail/"
)

// CursorName is the journal cursor of a trail's delivery.
func CursorName(trailARN string) string { return cursorPrefix + trailARN }

// TrailOfCursor is CursorName's inverse: the trail ARN whose delivery
// owns the journal cursor name, and whether it is a trail's at all.
func TrailOfCursor(name string) (string, bool) { return strings.CutPrefix(name, cursorPrefix) }

// Window is a stretch of the journal during which a trail was logging,
// in sequence numbers: From and To inclusive; To is 0 while the trail is
// still logging. StartLogging opens a window after the journal's last
// entry at that moment, StopLogging closes it at the last entry at that
// moment, so events that arrive while a trail is stopped are never
// delivered and those acknowledged before StopLogging still are.
type Window struct {
	From uint64
	To   uint64 `json:",omitempty"`
}

func (w Window) open() bool { return w.To == 0 }

// trailState is the durable delivery state of one trail.
type trailState struct {
	Windows []Window `json:",omitempty"`
	// Session is the trail's StartLoggingTime when its last window was
	// opened: a different StartLoggingTime means the trail was stopped
	// and started again, even if nobody saw it stopped.
	Session time.Time `json:",omitzero"`
	// Plan is the batch being delivered, written before its first object
	// and removed after the cursor passed it.
	Plan *Plan `json:",omitempty"`
}

// openWindow returns the index of the open window, or -1.
func (st *trailState) openWindow() int {
	if n := len(st.Windows); n > 0 && st.Windows[n-1].open() {
		return n - 1
	}
	return -1
}

// next returns the first window with entries after pos.
func (st *trailState) next(pos uint64) (Window, bool) {
	for _, w := range st.Windows {
		if w.open() || w.To > pos {
			return w, true
		}
	}
	return Window{}, false
}

// pending reports whether windows hold entries after pos that the trail
// has not looked at yet, up to last (the journal's last entry).
func (st *trailState) pending(pos, last uint64) uint64 {
	var n uint64
	for _, w := range st.Windows {
		hi := w.To
		if w.open() {
			hi = last
		}
		lo := max(w.From, pos+1)
		if hi >= lo {
			n += hi - lo + 1
		}
	}
	return n
}

// prune drops windows the cursor has passed.
func (st *trailState) prune(pos uint64) {
	out := st.Windows[:0]
	for _, w := range st.Windows {
		if w.open() || w.To > pos {
			out = append(out, w)
		}
	}
	st.Windows = out
}

// Plan is a batch committed to before any of its files is written: which
// journal range it covers, how its events were selected, where its files
// go and what they are called. After a crash the same plan is carried out
// again, producing the same objects under the same keys, so a replay
// overwrites instead of duplicating.
type Plan struct {
	TrailARN string
	Account  string
	// First and Last bound the journal range; First is always the cursor
	// position plus one.
	First, Last uint64
	// At is the delivery time in the files' names and date folders.
	At        time.Time
	Selection Selection
	Bucket    string
	Prefix    string `json:",omitempty"`
	KmsKeyID  string `json:",omitempty"`
	// Topic is the trail's SnsTopicName when the plan was made.
	Topic string `json:",omitempty"`
	// MaxFileBytes and FullRegion make a replay compress exactly as the
	// first attempt did (see batch.finish), so a rewritten file is
	// byte-identical to the one it overwrites.
	MaxFileBytes int64
	FullRegion   string `json:",omitempty"`
	// Regions are the regions with a file in this batch, sorted.
	Regions []string
	// Records is how many records the files hold together.
	Records int
}

// Key is the object key of the plan's file for region.
func (p *Plan) Key(region string) string {
	return LogFileKey(p.Prefix, p.Account, region, p.At, uniqueString(p.TrailARN, p.First, p.Last, region))
}

// Keys are the plan's object keys, in region order.
func (p *Plan) Keys() []string {
	out := make([]string, len(p.Regions))
	for i, r := range p.Regions {
		out[i] = p.Key(r)
	}
	return out
}

// pendingNotification is a delivered batch whose notification the webhook
// has not accepted yet.
type pendingNotification struct {
	TrailARN string
	Topic    string
	Bucket   string
	Keys     []string
	// ID is the message ID, stable across retries and restarts.
	ID string
}

func trailStateKey(arn string) string { return stateTrailPrefix + arn }

func notifyKey(arn string, first uint64) string {
	return fmt.Sprintf("%s%s/%020d", stateNotifyPrefix, arn, first)
}

// stateStore is the delivery view of the state store.
type stateStore struct{ s *state.Store }

func (s stateStore) load(ctx context.Context, arn string) (trailState, error) {
	var st trailState
	err := s.s.View(ctx, func(r state.Reader) error {
		_, err := r.Get(trailStateKey(arn), &st)
		return err
	})
	if err != nil {
		return trailState{}, fmt.Errorf("delivery: load state of %s: %w", arn, err)
	}
	if st.Plan != nil {
		st.Plan.Selection.prepare()
	}
	return st, nil
}

// loadAll returns every trail's delivery state, by trail ARN.
func (s stateStore) loadAll(ctx context.Context) (map[string]trailState, error) {
	out := map[string]trailState{}
	err := s.s.View(ctx, func(r state.Reader) error {
		return r.Scan(stateTrailPrefix, func(key string, value []byte) error {
			var st trailState
			if err := json.Unmarshal(value, &st); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			out[strings.TrimPrefix(key, stateTrailPrefix)] = st
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: load states: %w", err)
	}
	return out, nil
}

// update changes one trail's state in a transaction; fn sees the current
// state, so the manager (windows) and the deliverer (plan) never overwrite
// each other's changes.
func (s stateStore) update(ctx context.Context, arn string, fn func(st *trailState, tx *state.Tx) error) error {
	err := s.s.Update(ctx, func(tx *state.Tx) error {
		var st trailState
		if _, err := tx.Get(trailStateKey(arn), &st); err != nil {
			return err
		}
		if err := fn(&st, tx); err != nil {
			return err
		}
		return tx.Put(trailStateKey(arn), &st)
	})
	if err != nil {
		return fmt.Errorf("delivery: save state of %s: %w", arn, err)
	}
	return nil
}

// remove deletes everything delivery keeps about a trail.
func (s stateStore) remove(ctx context.Context, arn string) error {
	err := s.s.Update(ctx, func(tx *state.Tx) error {
		var keys []string
		if err := tx.Scan(stateNotifyPrefix+arn+"/", func(key string, _ []byte) error {
			keys = append(keys, key)
			return nil
		}); err != nil {
			return err
		}
		keys = append(keys, trailStateKey(arn))
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delivery: remove state of %s: %w", arn, err)
	}
	return nil
}

// notifications returns the pending notifications in key order (by trail,
// then by journal position), with their keys.
func (s stateStore) notifications(ctx context.Context) ([]string, []pendingNotification, error) {
	var keys []string
	var out []pendingNotification
	err := s.s.View(ctx, func(r state.Reader) error {
		return r.Scan(stateNotifyPrefix, func(key string, value []byte) error {
			var n pendingNotification
			if err := json.Unmarshal(value, &n); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			keys = append(keys, key)
			out = append(out, n)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: load pending notifications: %w", err)
	}
	return keys, out, nil
}

func (s stateStore) deleteKey(ctx context.Context, key string) error {
	if err := s.s.Update(ctx, func(tx *state.Tx) error { return tx.Delete(key) }); err != nil {
		return fmt.Errorf("delivery: delete %s: %w", key, err)
	}
	return nil
}
