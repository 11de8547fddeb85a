// Package state is Cairn's embedded store for control-plane configuration:
// trails, selectors, tags, channels. It is small, read far more often than
// written, and every change must survive kill -9 before the API call that
// made it is acknowledged, so each transaction commits with an fsync.
//
// Values are JSON so that the on-disk form stays readable with any Pebble
// tool and tolerant of added fields across versions.
package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("state: store is closed")

// Options tune Open.
type Options struct {
	// FS is the filesystem; nil means the real one. Tests inject faults here.
	FS     vfs.FS
	Logger *slog.Logger
}

// Store is the configuration store. Updates are serialised: control-plane
// writes are rare and serialising them makes read-modify-write rules (such
// as "at most five trails per region") race-free without retries.
type Store struct {
	db *pebble.DB
	mu sync.Mutex // serialises Update
}

// Open opens (creating if needed) the store in dir.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	po := &pebble.Options{FS: opts.FS}
	if opts.Logger != nil {
		po.Logger = slogLogger{opts.Logger}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// Reader is what both transactions and views can do.
type Reader interface {
	// Get decodes the value at key into v and reports whether it existed.
	Get(key string, v any) (bool, error)
	// Scan calls fn for every key with the prefix, in key order.
	Scan(prefix string, fn func(key string, value []byte) error) error
}

// Tx is a read-modify-write transaction; it sees its own writes.
type Tx struct {
	b *pebble.Batch
	// written lists the keys this transaction set or deleted, for the
	// undo log.
	written []string
}

// Undo remembers, for every key that Updates carrying it changed, the value
// the key had before the first of those changes, so that the changes can be
// reverted as one. The server uses it to keep "no change without its audit
// record": an API call's changes are committed, then its record is
// appended to the journal, and if that append fails the changes are rolled
// back before the caller is told the call failed.
type Undo struct {
	mu   sync.Mutex
	prev map[string][]byte // nil value: the key did not exist
	keys []string          // in first-change order
}

type undoKey struct{}

// WithUndo returns a context whose Updates record their changes in u.
func WithUndo(ctx context.Context) (context.Context, *Undo) {
	u := &Undo{prev: make(map[string][]byte)}
	return context.WithValue(ctx, undoKey{}, u), u
}

// Empty reports whether nothing was changed under u.
func (u *Undo) Empty() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.keys) == 0
}

// Rollback restores every key changed under u to its earlier value, in one
// durable commit. A change another caller made to the same key in between
// is overwritten too; the window is the length of one API call.
func (s *Store) Rollback(ctx context.Context, u *Undo) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.keys) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range u.keys {
		var err error
		if v := u.prev[k]; v == nil {
			err = b.Delete([]byte(k), nil)
		} else {
			err = b.Set([]byte(k), v, nil)
		}
		if err != nil {
			return fmt.Errorf("state: rollback %s: %w", k, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state: commit rollback: %w", err)
	}
	u.keys, u.prev = nil, make(map[string][]byte)
	return nil
}

// remember records the current values of keys not yet in u; called under
// s.mu, before the transaction that changes them commits.
func (u *Undo) remember(db *pebble.DB, keys []string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range keys {
		if _, seen := u.prev[k]; seen {
			continue
		}
		v, closer, err := db.Get([]byte(k))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			u.prev[k] = nil
		case err != nil:
			return fmt.Errorf("state: read %s for the undo log: %w", k, err)
		default:
			u.prev[k] = bytes.Clone(v)
			closer.Close()
		}
		u.keys = append(u.keys, k)
	}
	return nil
}

// View runs fn against a consistent snapshot.
func (s *Store) View(ctx context.Context, fn func(r Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	db := s.db
	if db == nil {
		s.mu.Unlock()
		return ErrClosed
	}
	snap := db.NewSnapshot()
	s.mu.Unlock()
	defer snap.Close()
	return fn(snapReader{snap})
}

// Update runs fn in a transaction and commits it durably when fn returns
// nil. Nothing is written when fn fails.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	b := s.db.NewIndexedBatch()
	defer b.Close()
	tx := &Tx{b: b}
	if err := fn(tx); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if u, ok := ctx.Value(undoKey{}).(*Undo); ok {
		if err := u.remember(s.db, tx.written); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state: commit: %w", err)
	}
	return nil
}

// Get decodes the value at key into v.
func (tx *Tx) Get(key string, v any) (bool, error) { return get(tx.b, key, v) }

// Scan iterates keys with the prefix, including this transaction's writes.
func (tx *Tx) Scan(prefix string, fn func(key string, value []byte) error) error {
	return scan(tx.b, prefix, fn)
}

// Put stores v as JSON at key.
func (tx *Tx) Put(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state: encode %s: %w", key, err)
	}
	if err := tx.b.Set([]byte(key), raw, nil); err != nil {
		return fmt.Errorf("state: put %s: %w", key, err)
	}
	tx.written = append(tx.written, key)
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (tx *Tx) Delete(key string) error {
	if err := tx.b.Delete([]byte(key), nil); err != nil {
		return fmt.Errorf("state: delete %s: %w", key, err)
	}
	tx.written = append(tx.written, key)
	return nil
}

type pebbleReader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

type snapReader struct{ s *pebble.Snapshot }

func (r snapReader) Get(key string, v any) (bool, error) { return get(r.s, key, v) }
func (r snapReader) Scan(prefix string, fn func(key string, value []byte) error) error {
	return scan(r.s, prefix, fn)
}

func get(r pebbleReader, key string, v any) (bool, error) {
	raw, closer, err := r.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: get %s: %w", key, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("state: decode %s: %w", key, err)
	}
	return true, nil
}

func scan(r pebbleReader, prefix string, fn func(key string, value []byte) error) error {
	lower := []byte(prefix)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return fmt.Errorf("state: scan %s: %w", prefix, err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(string(it.Key()), bytes.Clone(it.Value())); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("state: scan %s: %w", prefix, err)
	}
	return nil
}

// prefixEnd is the smallest key greater than every key with the prefix.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// slogLogger routes Pebble's own log lines into slog.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Infof(format string, args ...any) {
	s.l.Debug(fmt.Sprintf(format, args...), "component", "state")
}
func (s slogLogger) Errorf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...), "component", "state")
}
func (s slogLogger) Fatalf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...), "component", "state")
	panic(fmt.Sprintf(format, args...))
}
