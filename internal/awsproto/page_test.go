package awsproto

import (
	"encoding/base64"
	"slices"
	"testing"
)

type item struct {
	created int64
	id      string
}

func itemPos(it *item) CreationPos { return CreationPos{Created: it.created, ID: it.id} }

func validID(s string) bool { return len(s) == 1 }

// TestPageByCreation walks pages in creation order (ties by ID), resumes
// after an item deleted between pages, and refuses tokens of another
// prefix or form.
func TestPageByCreation(t *testing.T) {
	items := []item{{3, "c"}, {1, "b"}, {1, "a"}, {2, "d"}, {5, "e"}}
	var walked []string
	tok := ""
	for range 10 {
		page, next, ok := PageByCreation(slices.Clone(items), itemPos, "t1:", validID, 2, tok)
		if !ok {
			t.Fatalf("token %q refused", tok)
		}
		for _, it := range page {
			walked = append(walked, it.id)
		}
		if next == "" {
			break
		}
		tok = next
		// The item the token names is deleted before the next page.
		items = slices.DeleteFunc(items, func(it item) bool { return it.id == page[len(page)-1].id })
	}
	if got := walked; len(got) != 5 || got[0] != "a" || got[1] != "b" || got[2] != "d" || got[3] != "c" || got[4] != "e" {
		t.Errorf("walk %v, want a b d c e", walked)
	}
	for _, bad := range []string{"!!", base64.RawURLEncoding.EncodeToString([]byte("x1:1:a")), base64.RawURLEncoding.EncodeToString([]byte("t1:one:a")), base64.RawURLEncoding.EncodeToString([]byte("t1:1:ab"))} {
		if _, _, ok := PageByCreation(slices.Clone(items), itemPos, "t1:", validID, 2, bad); ok {
			t.Errorf("token %q accepted", bad)
		}
	}
}
