package server

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBudgetShares pins the body budget's rules: large bodies hold at most
// a quarter per access key and per peer address and never the last
// eighth; small bodies only meet the total; releases give every count back.
func TestBudgetShares(t *testing.T) {
	b := newBodyBudget(1<<20, prometheus.NewRegistry())
	steps := []struct {
		n       int64
		key, ip string
		want    bool
	}{
		{100_000, "k", "a", true},
		{100_000, "k", "b", true},
		{100_000, "k", "c", false}, // the key's quarter (262,144) is full
		{100_000, "j", "a", true},
		{100_000, "j", "a", false}, // address a's quarter is full
		{60_000, "k", "a", true},   // small bodies meet only the total
	}
	for i, s := range steps {
		if got := b.reserve(s.n, s.key, s.ip); got != s.want {
			t.Fatalf("step %d: reserve(%d, %s, %s) = %v, want %v", i, s.n, s.key, s.ip, got, s.want)
		}
	}
	b.release(100_000, "k", "a")
	b.release(100_000, "k", "b")
	b.release(100_000, "j", "a")
	b.release(60_000, "k", "a")
	if b.used != 0 || len(b.byKey) != 0 || len(b.byIP) != 0 {
		t.Fatalf("after every release: used %d, by key %v, by address %v", b.used, b.byKey, b.byIP)
	}
	// Large bodies never take the last eighth, even across keys.
	for i := range 14 {
		if !b.reserve(60_000, "small", "s") {
			t.Fatalf("small body %d refused", i)
		}
	}
	if b.reserve(100_000, "x", "x") {
		t.Fatal("a large body took the last eighth of the budget")
	}
}
