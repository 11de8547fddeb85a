package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestCount compares Count with counts made from the records themselves:
// several event names, two regions, events on bucket edges and outside the
// range, and a range that reaches past the retention.
func TestCount(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	e := newEnv(t, Options{Retention: 2 * time.Hour})
	start, end := now.Add(-90*time.Minute), now.Add(-30*time.Minute)
	bucket := 7 * time.Minute // does not divide the range: the last bucket is short
	n := int((end.Sub(start) + bucket - 1) / bucket)
	want := make([]int, n)
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"DescribeInstances", "RunInstances", "GetObject", "a", "ab", "ConsoleLogin"}
	var recs [][]byte
	for i := range 3000 {
		r := mgmt(fmt.Sprintf("ev-%d", i), now.Add(-time.Duration(rng.IntN(int(2*time.Hour/time.Second)))*time.Second))
		switch i {
		case 0:
			r.Time = start // the first instant counts
		case 1:
			r.Time = end // end is exclusive
		case 2:
			r.Time = start.Add(-time.Second)
		}
		r.Name = names[rng.IntN(len(names))]
		if i%5 == 0 {
			r.Region = "eu-west-1"
		}
		recs = append(recs, r.json())
		if r.Region == "us-east-1" && !r.Time.Before(start) && r.Time.Before(end) {
			want[int(r.Time.Sub(start)/bucket)]++
		}
	}
	e.append(recs...)
	got, err := e.h.Count(context.Background(), "us-east-1", start, end, bucket)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Count\n got %v\nwant %v", got, want)
	}

	// Past the retention (2 h before now) nothing is counted, even before
	// the retention pass has deleted it.
	got, err = e.h.Count(context.Background(), "us-east-1", now.Add(-4*time.Hour), now.Add(-3*time.Hour), time.Hour)
	if err != nil || !slices.Equal(got, []int{0}) {
		t.Errorf("Count beyond the retention = %v, %v", got, err)
	}
	if _, err := e.h.Count(context.Background(), "us-east-1", end, start, bucket); err == nil {
		t.Error("Count with end before start: no error")
	}
	if _, err := e.h.Count(context.Background(), "us-east-1", start, end, time.Nanosecond); err == nil {
		t.Error("Count with too many buckets: no error")
	}
}
