package trail_test

import (
	"context"
	"testing"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

type allBuckets struct{}

func (allBuckets) BucketExists(context.Context, string) (bool, error) { return true, nil }

func TestChangeHookAndTopicCheck(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(ctx, t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	changes := 0
	svc := trail.New(st, allBuckets{}, "000000000000", nil,
		trail.WithChangeHook(func(context.Context) { changes++ }),
		trail.WithTopicCheck(func(name string) bool { return name == "ops" }))

	_, err = svc.Create(ctx, "us-east-1", trail.CreateInput{Name: "audit", S3BucketName: "logs", SnsTopicName: "nope"})
	if !awsproto.IsCode(err, "InsufficientSnsTopicPolicyException") {
		t.Fatalf("unknown topic: got %v, want InsufficientSnsTopicPolicyException", err)
	}
	if changes != 0 {
		t.Fatalf("a refused create called the change hook")
	}
	if _, err := svc.Create(ctx, "us-east-1", trail.CreateInput{Name: "audit", S3BucketName: "logs", SnsTopicName: "ops"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.StartLogging(ctx, "us-east-1", "audit"); err != nil {
		t.Fatal(err)
	}
	if err := svc.StartLogging(ctx, "us-east-1", "audit"); err != nil { // no change
		t.Fatal(err)
	}
	if err := svc.StopLogging(ctx, "us-east-1", "audit"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, "us-east-1", "audit"); err != nil {
		t.Fatal(err)
	}
	if changes != 4 {
		t.Fatalf("change hook called %d times, want 4 (create, start, stop, delete)", changes)
	}
}
