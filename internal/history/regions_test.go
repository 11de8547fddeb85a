package history

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestRegionsListsEveryRegionWithEvents: one entry per region whatever its
// categories and number of events, anonymised names of imported data
// included, and a region leaves the list when the sweep empties it.
func TestRegionsListsEveryRegionWithEvents(t *testing.T) {
	e := newEnv(t, Options{})
	if got, err := e.h.Regions(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("empty history: %v, %v", got, err)
	}
	base := testNow.Add(-time.Hour)
	var recs [][]byte
	for i, region := range []string{"us-east-1", "sagov-westsouth-1r", "us-east-1", "eu-west-1", "cn-west-3r", "us-east-1"} {
		r := mgmt(string(rune('a'+i))+"-event", base.Add(time.Duration(i)*time.Second))
		r.Region = region
		recs = append(recs, r.json())
	}
	insight := rec{ID: "insight", Region: "ap-south-1", Time: base, EventType: "AwsCloudTrailInsight", Category: "Insight",
		Name: "DescribeInstances", Source: "ec2.amazonaws.com", User: "alice"}
	recs = append(recs, insight.json())
	old := mgmt("old", testNow.Add(-100*24*time.Hour))
	old.Region = "me-south-1"
	recs = append(recs, old.json())
	e.append(recs...)

	got, err := e.h.Regions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"ap-south-1", "cn-west-3r", "eu-west-1", "sagov-westsouth-1r", "us-east-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("Regions = %q, want %q (me-south-1's only event was past retention when indexed)", got, want)
	}
}
