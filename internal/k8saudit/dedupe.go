package k8saudit

import (
	"context"
	"sync"
)

// dedupe remembers the eventIDs (as their 16 bytes: the window costs
// about 2 MB at its default size) of the last events made durable, so that a
// batch the API server sends again (its webhook backend retries when it did
// not see our 200 in time) does not record them twice. It is bounded by
// count, not time: the window is the last `max` recorded events. Events of
// a batch still being appended are "pending": a concurrent copy of the
// same batch waits for the first to finish rather than being acknowledged
// on the strength of an append that may yet fail.
type dedupe struct {
	mu      sync.Mutex
	max     int
	done    map[[16]byte]struct{}
	ring    [][16]byte // done's keys in the order they were added
	next    int
	pending map[[16]byte]chan struct{}
}

func newDedupe(max int) *dedupe {
	return &dedupe{max: max, done: make(map[[16]byte]struct{}, max), ring: make([][16]byte, 0, min(max, 1<<16)),
		pending: map[[16]byte]chan struct{}{}}
}

// reserve marks which ids are new (not recorded, not in this batch
// before) and makes them pending. The caller must call release with the
// returned function once the appends are done, with the number of fresh
// ids (in order) that were made durable: those are remembered, the rest
// forgotten so that a retry records them.
func (d *dedupe) reserve(ctx context.Context, ids [][16]byte) (fresh []bool, release func(durable int), err error) {
	for {
		d.mu.Lock()
		var wait []chan struct{}
		for _, id := range ids {
			if ch, ok := d.pending[id]; ok {
				wait = append(wait, ch)
			}
		}
		if len(wait) == 0 {
			break
		}
		d.mu.Unlock()
		for _, ch := range wait {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
	}
	defer d.mu.Unlock()
	ch := make(chan struct{})
	fresh = make([]bool, len(ids))
	var mine [][16]byte
	for i, id := range ids {
		if _, ok := d.done[id]; ok {
			continue
		}
		if _, ok := d.pending[id]; ok { // earlier in this batch
			continue
		}
		d.pending[id] = ch
		fresh[i] = true
		mine = append(mine, id)
	}
	return fresh, func(durable int) {
		d.mu.Lock()
		for i, id := range mine {
			delete(d.pending, id)
			if i < durable {
				d.add(id)
			}
		}
		d.mu.Unlock()
		close(ch)
	}, nil
}

// add remembers id, forgetting the oldest once the window is full.
func (d *dedupe) add(id [16]byte) {
	if d.max <= 0 {
		return
	}
	if len(d.ring) < d.max {
		d.ring = append(d.ring, id)
	} else {
		delete(d.done, d.ring[d.next])
		d.ring[d.next] = id
		d.next = (d.next + 1) % d.max
	}
	d.done[id] = struct{}{}
}
