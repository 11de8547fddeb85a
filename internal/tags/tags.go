// Package tags stores the tags of CloudTrail resources (trails, channels,
// event data stores, dashboards) in the state store, keyed by resource ARN,
// and enforces CloudTrail's tag rules.
//
// It lives apart from any one resource so that each resource package can
// write a new resource's tags, and drop a deleted resource's tags, in the
// same transaction as the resource itself: tags never outlive their
// resource and never appear before it.
package tags

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
)

// Limits from the CloudTrail model and quota page.
const (
	// MaxPerResource is the documented limit; the model's list maximum
	// (200) is only the request size.
	MaxPerResource = 50
	MaxKeyLen      = 128
	MaxValueLen    = 256
	// MaxPerRequest is the model's bound on a TagsList (RemoveTags is
	// held to it; adding is held to MaxPerResource, which is smaller).
	MaxPerRequest = 200
)

// Tag is one tag in its wire shape. Value is optional on the wire; a nil
// Value stays absent in responses.
type Tag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

// keyPrefix is where tags live in the state store: "tags/<arn>".
const keyPrefix = "tags/"

// Key is the state-store key of a resource's tags.
func Key(arn string) string { return keyPrefix + arn }

// tagRE is the character set AWS accepts in tag keys and values: letters,
// digits, white space and _ . : / = + - @ (the IAM/Resource Groups rule).
var tagRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// Validate checks a list of tags to add (CreateTrail, CreateChannel,
// AddTags): no more than a resource may have, then key and value syntax,
// the aws: prefix reserved for AWS, and duplicate keys. The count comes
// first, so that a request with 100,000 tags costs nothing beyond its
// decoding. The per-resource total after adding is Merge's check, once
// the existing tags are known.
func Validate(list []Tag) error {
	if len(list) > MaxPerResource {
		return limitExceeded(len(list))
	}
	return validateSyntax(list)
}

// ValidateRemoval checks RemoveTags' list: the model's bound on a
// TagsList, then the same syntax rules as Validate.
func ValidateRemoval(list []Tag) error {
	if len(list) > MaxPerRequest {
		return awsproto.Errorf("ValidationException",
			"1 validation error detected: Value at 'tagsList' failed to satisfy constraint: Member must have length less than or equal to %d", MaxPerRequest)
	}
	return validateSyntax(list)
}

func limitExceeded(n int) error {
	return awsproto.Errorf("TagsLimitExceededException", "The number of tags on the resource would be %d; the limit is %d tags per resource.", n, MaxPerResource)
}

func validateSyntax(list []Tag) error {
	seen := make(map[string]bool, len(list))
	for _, t := range list {
		if t.Key == "" || utf8.RuneCountInString(t.Key) > MaxKeyLen {
			return awsproto.Errorf("InvalidTagParameterException", "Tag key %q is invalid: a tag key must be 1 to %d characters long.", t.Key, MaxKeyLen)
		}
		if !tagRE.MatchString(t.Key) {
			return awsproto.Errorf("InvalidTagParameterException", "Tag key %q contains characters that are not allowed. Tag keys may contain letters, digits, spaces and _ . : / = + - @.", t.Key)
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return awsproto.Errorf("InvalidTagParameterException", "Tag key %q is invalid: the aws: prefix is reserved for AWS use.", t.Key)
		}
		if t.Value != nil {
			if utf8.RuneCountInString(*t.Value) > MaxValueLen {
				return awsproto.Errorf("InvalidTagParameterException", "The value of tag %q is invalid: a tag value can be at most %d characters long.", t.Key, MaxValueLen)
			}
			if !tagRE.MatchString(*t.Value) {
				return awsproto.Errorf("InvalidTagParameterException", "The value of tag %q contains characters that are not allowed. Tag values may contain letters, digits, spaces and _ . : / = + - @.", t.Key)
			}
		}
		if seen[t.Key] {
			return awsproto.Errorf("InvalidTagParameterException", "Tag key %q is specified more than once.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// Merge adds tags to existing ones, replacing the value of keys already
// present and keeping first-added order. More than MaxPerResource tags in
// the result is a TagsLimitExceededException. It is linear in its input
// (an index by key, not a scan per tag), and it counts the result before
// building it.
func Merge(existing, add []Tag) ([]Tag, error) {
	index := make(map[string]int, len(existing)+len(add))
	for i, t := range existing {
		index[t.Key] = i
	}
	n := len(existing)
	for _, t := range add {
		if _, ok := index[t.Key]; !ok {
			index[t.Key] = n
			n++
		}
	}
	if n > MaxPerResource {
		return nil, limitExceeded(n)
	}
	out := make([]Tag, n)
	copy(out, existing)
	for _, t := range add {
		out[index[t.Key]] = t
	}
	return out, nil
}

// Remove drops the tags with the given keys. A tag given with a value is
// only removed when the stored value is the same, so a stale RemoveTags
// does not delete a tag someone has since changed.
func Remove(existing, rm []Tag) []Tag {
	byKey := make(map[string]Tag, len(rm))
	for _, r := range rm {
		byKey[r.Key] = r
	}
	out := make([]Tag, 0, len(existing))
	for _, t := range existing {
		if r, ok := byKey[t.Key]; ok && (r.Value == nil || t.Value != nil && *r.Value == *t.Value) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Load reads a resource's tags; a resource without tags has an empty,
// non-nil list, which is what ListTags returns for it.
func Load(r state.Reader, arn string) ([]Tag, error) {
	var list []Tag
	if _, err := r.Get(Key(arn), &list); err != nil {
		return nil, fmt.Errorf("tags: load tags of %s: %w", arn, err)
	}
	if list == nil {
		list = []Tag{}
	}
	return list, nil
}

// Save replaces a resource's tags; an empty list removes the key.
func Save(tx *state.Tx, arn string, list []Tag) error {
	if len(list) == 0 {
		return Delete(tx, arn)
	}
	if err := tx.Put(Key(arn), list); err != nil {
		return fmt.Errorf("tags: save tags of %s: %w", arn, err)
	}
	return nil
}

// Delete removes all tags of a resource; resource packages call it in the
// transaction that deletes the resource.
func Delete(tx *state.Tx, arn string) error {
	if err := tx.Delete(Key(arn)); err != nil {
		return fmt.Errorf("tags: delete tags of %s: %w", arn, err)
	}
	return nil
}
