package tags

import (
	"context"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
)

func v(s string) *string { return &s }

func TestMergeAndRemove(t *testing.T) {
	existing := []Tag{{Key: "a", Value: v("1")}, {Key: "b"}}
	merged, err := Merge(existing, []Tag{{Key: "b", Value: v("2")}, {Key: "c", Value: v("3")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(merged) != 3 || merged[1].Key != "b" || *merged[1].Value != "2" || merged[2].Key != "c" {
		t.Errorf("Merge = %+v", merged)
	}
	if existing[1].Value != nil {
		t.Error("Merge changed its input")
	}
	left := Remove(merged, []Tag{{Key: "a", Value: v("other")}, {Key: "b", Value: v("2")}, {Key: "c"}})
	if len(left) != 1 || left[0].Key != "a" {
		t.Errorf("Remove = %+v", left)
	}

	var many []Tag
	for i := range MaxPerResource {
		many = append(many, Tag{Key: strings.Repeat("k", i+1)})
	}
	if _, err := Merge(many, []Tag{{Key: "k", Value: v("same key, no growth")}}); err != nil {
		t.Errorf("overwriting at the limit: %v", err)
	}
	if _, err := Merge(many, []Tag{{Key: "new"}}); !awsproto.IsCode(err, "TagsLimitExceededException") {
		t.Errorf("51st tag: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		tags []Tag
		ok   bool
	}{
		{[]Tag{{Key: "Name", Value: v("web server 1")}, {Key: "cost-center:team/a=b+c@d_e.f"}}, true},
		{[]Tag{{Key: "k", Value: v("")}}, true},
		{[]Tag{{Key: "ключ", Value: v("значение")}}, true},
		{[]Tag{{Key: strings.Repeat("k", 128), Value: v(strings.Repeat("v", 256))}}, true},
		{[]Tag{{Key: ""}}, false},
		{[]Tag{{Key: strings.Repeat("k", 129)}}, false},
		{[]Tag{{Key: "k", Value: v(strings.Repeat("v", 257))}}, false},
		{[]Tag{{Key: "aws:cloudformation:stack"}}, false},
		{[]Tag{{Key: "k", Value: v("a;b")}}, false},
		{[]Tag{{Key: "k"}, {Key: "k"}}, false},
	} {
		err := Validate(c.tags)
		if c.ok != (err == nil) {
			t.Errorf("Validate(%+v) = %v", c.tags, err)
		}
		if err != nil && !awsproto.IsCode(err, "InvalidTagParameterException") {
			t.Errorf("Validate(%+v) code: %v", c.tags, err)
		}
	}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"
	list := []Tag{{Key: "a", Value: v("1")}, {Key: "b"}}
	if err := st.Update(ctx, func(tx *state.Tx) error { return Save(tx, arn, list) }); err != nil {
		t.Fatal(err)
	}
	var got []Tag
	load := func() {
		t.Helper()
		if err := st.View(ctx, func(r state.Reader) error {
			var err error
			got, err = Load(r, arn)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	load()
	if len(got) != 2 || *got[0].Value != "1" || got[1].Value != nil {
		t.Errorf("Load = %+v", got)
	}
	if err := st.Update(ctx, func(tx *state.Tx) error { return Save(tx, arn, nil) }); err != nil {
		t.Fatal(err)
	}
	load()
	if got == nil || len(got) != 0 {
		t.Errorf("after saving no tags: %#v, want an empty list", got)
	}
}

// The per-resource limit is checked before anything else, so that a
// request with 100,000 tags is refused without validating (or merging)
// them one by one.
func TestValidateRefusesMoreThanALimitFirst(t *testing.T) {
	many := make([]Tag, 100_000)
	for i := range many {
		many[i] = Tag{Key: "same"} // duplicates too: the count decides first
	}
	if err := Validate(many); !awsproto.IsCode(err, "TagsLimitExceededException") {
		t.Errorf("Validate(100,000 tags) = %v, want TagsLimitExceededException", err)
	}
	if err := Validate(many[:MaxPerResource+1]); !awsproto.IsCode(err, "TagsLimitExceededException") {
		t.Errorf("Validate(51 tags) = %v, want TagsLimitExceededException", err)
	}
	if err := ValidateRemoval(many[:MaxPerRequest+1]); !awsproto.IsCode(err, "ValidationException") {
		t.Errorf("ValidateRemoval(201 tags) = %v, want ValidationException", err)
	}
}

// BenchmarkMerge is the performance target for Merge: linear in the
// tags, not quadratic.
func BenchmarkMerge(b *testing.B) {
	existing := make([]Tag, MaxPerResource/2)
	add := make([]Tag, MaxPerResource/2)
	for i := range existing {
		existing[i] = Tag{Key: "e" + strings.Repeat("x", i)}
		add[i] = Tag{Key: "a" + strings.Repeat("x", i)}
	}
	for b.Loop() {
		if _, err := Merge(existing, add); err != nil {
			b.Fatal(err)
		}
	}
}
