package state

import (
	"context"
	"errors"
	"testing"
)

type item struct{ N int }

func TestUpdateViewScanAndRollback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		for i, k := range []string{"trail/b", "trail/a", "channel/x", "trail/c"} {
			if err := tx.Put(k, item{i}); err != nil {
				return err
			}
		}
		// A transaction sees its own writes.
		var got item
		if ok, err := tx.Get("trail/a", &got); !ok || err != nil || got.N != 1 {
			t.Errorf("read-your-write: %v %v %v", got, ok, err)
		}
		return tx.Delete("trail/c")
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.Update(ctx, func(tx *Tx) error {
		_ = tx.Put("trail/z", item{9})
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failed update returned %v", err)
	}
	check := func(s *Store) {
		t.Helper()
		var keys []string
		err := s.View(ctx, func(r Reader) error {
			return r.Scan("trail/", func(k string, _ []byte) error { keys = append(keys, k); return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0] != "trail/a" || keys[1] != "trail/b" {
			t.Fatalf("scan trail/ = %v, want [trail/a trail/b] (deleted and rolled-back keys absent, sorted)", keys)
		}
		var got item
		ok, err := get(readerOf(t, s), "missing", &got)
		if ok || err != nil {
			t.Fatalf("missing key: ok=%v err=%v", ok, err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
	// Everything committed survives reopening.
	s, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

func readerOf(t *testing.T, s *Store) pebbleReader {
	t.Helper()
	return s.db
}

func TestPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{"a": "b", "a\xff": "b", "trail/": "trail0"} {
		if got := string(prefixEnd([]byte(in))); got != want {
			t.Errorf("prefixEnd(%q) = %q, want %q", in, got, want)
		}
	}
	if prefixEnd([]byte("\xff\xff")) != nil {
		t.Error("prefixEnd of all 0xff must be nil (no upper bound)")
	}
}

func TestUndoRestoresEarlierValues(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx *Tx) error { return tx.Put("keep", item{1}) }); err != nil {
		t.Fatal(err)
	}
	uctx, undo := WithUndo(ctx)
	for _, step := range []func(tx *Tx) error{
		func(tx *Tx) error { return tx.Put("keep", item{2}) },
		func(tx *Tx) error { return tx.Put("new", item{3}) },
		func(tx *Tx) error { return tx.Put("keep", item{4}) }, // second change: the first earlier value wins
	} {
		if err := s.Update(uctx, step); err != nil {
			t.Fatal(err)
		}
	}
	if undo.Empty() {
		t.Fatal("undo log is empty after changes")
	}
	if err := s.Rollback(ctx, undo); err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(r Reader) error {
		var got item
		if ok, err := r.Get("keep", &got); !ok || err != nil || got.N != 1 {
			t.Errorf("keep after rollback = %v (ok=%v, err=%v), want 1", got, ok, err)
		}
		if ok, _ := r.Get("new", &got); ok {
			t.Error("a key created under the undo log survived the rollback")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
