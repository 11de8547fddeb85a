package awsproto

import (
	"cmp"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// CreationPos is a resource's place in a list ordered by creation: the
// order of CloudTrail's List operations over resources that can be renamed
// (channels, event data stores), stable across renames, so that a walk
// over the pages sees every resource that exists throughout it once.
type CreationPos struct {
	Created int64 // creation time in Unix nanoseconds
	ID      string
}

func (p CreationPos) compare(q CreationPos) int {
	if c := cmp.Compare(p.Created, q.Created); c != 0 {
		return c
	}
	return strings.Compare(p.ID, q.ID)
}

// PageByCreation sorts items into creation order and returns the page of
// at most max items after the one nextToken names ("" for the first page),
// with the token of the next page ("" after the last). A token is the
// last item's position behind prefix (which versions its form and tells
// one operation's tokens from another's); validID checks the ID part.
// ok is false for a token that is not one of prefix's: the caller answers
// with its operation's InvalidNextToken error. The page resumes strictly
// after the last item handed out, so one deleted between pages does not
// break the walk.
func PageByCreation[T any](items []T, pos func(*T) CreationPos, prefix string, validID func(string) bool, max int, nextToken string) (page []T, next string, ok bool) {
	var after CreationPos
	if nextToken != "" {
		if after, ok = decodeCreationToken(nextToken, prefix, validID); !ok {
			return nil, "", false
		}
	}
	slices.SortFunc(items, func(a, b T) int { return pos(&a).compare(pos(&b)) })
	start := 0
	if nextToken != "" {
		start = len(items)
		for i := range items {
			if pos(&items[i]).compare(after) > 0 {
				start = i
				break
			}
		}
	}
	page = items[start:]
	if len(page) > max {
		page = page[:max]
		p := pos(&page[len(page)-1])
		next = base64.RawURLEncoding.EncodeToString([]byte(prefix + strconv.FormatInt(p.Created, 10) + ":" + p.ID))
	}
	return page, next, true
}

func decodeCreationToken(tok, prefix string, validID func(string) bool) (CreationPos, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return CreationPos{}, false
	}
	rest, ok := strings.CutPrefix(string(b), prefix)
	if !ok {
		return CreationPos{}, false
	}
	ns, id, ok := strings.Cut(rest, ":")
	created, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || !validID(id) {
		return CreationPos{}, false
	}
	return CreationPos{Created: created, ID: id}, true
}
