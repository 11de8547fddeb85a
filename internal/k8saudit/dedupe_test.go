package k8saudit

import (
	"context"
	"testing"
)

// TestDedupeWindowForgetsTheOldest: the window is bounded; an event older
// than the window is taken as new again.
func TestDedupeWindowForgetsTheOldest(t *testing.T) {
	d := newDedupe(2)
	id := func(b byte) [16]byte { return [16]byte{b} }
	ctx := context.Background()
	record := func(ids ...[16]byte) []bool {
		fresh, release, err := d.reserve(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		release(len(ids))
		return fresh
	}
	if f := record(id(1), id(2)); !f[0] || !f[1] {
		t.Fatalf("first sight: %v", f)
	}
	if f := record(id(1)); f[0] {
		t.Fatal("1 within the window taken as new")
	}
	record(id(3)) // pushes 1 out
	if f := record(id(1), id(3)); !f[0] || f[1] {
		t.Fatalf("after eviction: %v, want 1 new and 3 known", f)
	}
	// A failed append forgets its events: the retry is new.
	fresh, release, _ := d.reserve(ctx, [][16]byte{id(9)})
	release(0)
	if f := record(id(9)); !fresh[0] || !f[0] {
		t.Fatal("an event whose append failed was remembered")
	}
}
