package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
	"github.com/cairn-audit/cairn/internal/trail"
)

func createTrail(e *trailEnv, region, name string, multi bool) {
	e.t.Helper()
	e.ok(region, "CreateTrail", fmt.Sprintf(`{"Name":%q,"S3BucketName":"cairn-logs","IsMultiRegionTrail":%v}`, name, multi))
}

// TestTrailLimit checks the five-trails-per-region rule, which counts the
// shadows of multi-region trails from other regions.
func TestTrailLimit(t *testing.T) {
	t.Run("five per region", func(t *testing.T) {
		e := newTrailEnv(t)
		for i := range 5 {
			createTrail(e, east, fmt.Sprintf("trail%d", i), false)
		}
		err := e.fail(east, "CreateTrail", `{"Name":"trail5","S3BucketName":"cairn-logs"}`, "MaximumNumberOfTrailsExceededException")
		if want := "User: 123456789012 already has 5 trails in us-east-1."; err.Message != want || err.HTTPStatus() != 403 {
			t.Errorf("got %d %q, want 403 %q", err.HTTPStatus(), err.Message, want)
		}
		// Other regions are unaffected, and deleting makes room.
		createTrail(e, west, "trail5", false)
		e.ok(east, "DeleteTrail", `{"Name":"trail0"}`)
		createTrail(e, east, "trail6", false)
	})
	t.Run("shadows count", func(t *testing.T) {
		e := newTrailEnv(t)
		for i := range 4 {
			createTrail(e, east, fmt.Sprintf("trail%d", i), false)
		}
		createTrail(e, west, "global", true)
		e.fail(east, "CreateTrail", `{"Name":"trail4","S3BucketName":"cairn-logs"}`, "MaximumNumberOfTrailsExceededException")
		createTrail(e, west, "west1", false)
	})
	t.Run("multi-region trail needs room everywhere", func(t *testing.T) {
		e := newTrailEnv(t)
		for i := range 5 {
			createTrail(e, east, fmt.Sprintf("trail%d", i), false)
		}
		err := e.fail(west, "CreateTrail", `{"Name":"global","S3BucketName":"cairn-logs","IsMultiRegionTrail":true}`, "MaximumNumberOfTrailsExceededException")
		if !strings.Contains(err.Message, "in us-east-1") {
			t.Errorf("message %q should name the full region", err.Message)
		}
		createTrail(e, west, "local", false)
		e.fail(west, "UpdateTrail", `{"Name":"local","IsMultiRegionTrail":true}`, "MaximumNumberOfTrailsExceededException")
		// Turning a multi-region trail back into a single-region one never
		// needs room.
		e.ok(east, "UpdateTrail", `{"Name":"trail0","IsMultiRegionTrail":true}`)
		e.ok(east, "UpdateTrail", `{"Name":"trail0","IsMultiRegionTrail":false}`)
	})
	t.Run("names are unique wherever a trail is visible", func(t *testing.T) {
		e := newTrailEnv(t)
		createTrail(e, east, "shared", false)
		createTrail(e, west, "shared", false) // single-region trails in different regions may share a name
		e.fail(euWest, "CreateTrail", `{"Name":"shared","S3BucketName":"cairn-logs","IsMultiRegionTrail":true}`, "TrailAlreadyExistsException")
		e.fail(east, "UpdateTrail", `{"Name":"shared","IsMultiRegionTrail":true}`, "TrailAlreadyExistsException")
		createTrail(e, euWest, "global", true)
		e.fail(east, "CreateTrail", `{"Name":"global","S3BucketName":"cairn-logs"}`, "TrailAlreadyExistsException")
	})
}

// TestListTrailsPagination walks ListTrails with a small page size.
func TestListTrailsPagination(t *testing.T) {
	e := newTrailEnv(t, trail.WithListPageSize(2))
	var want []string
	for _, region := range []string{"ap-south-1", east, west} {
		for _, name := range []string{"alpha", "beta", "gamma"} {
			createTrail(e, region, name, false)
			want = append(want, trail.TrailARN(region, testAccount, name))
		}
	}
	type page struct {
		Trails []struct {
			TrailARN, Name, HomeRegion string
		}
		NextToken *string
	}
	var got []string
	token := ""
	pages := 0
	for {
		body := `{}`
		if token != "" {
			body = `{"NextToken":"` + token + `"}`
		}
		p := decode[page](t, e.ok(euWest, "ListTrails", body))
		pages++
		for _, tr := range p.Trails {
			got = append(got, tr.TrailARN)
			if !strings.HasSuffix(tr.TrailARN, ":"+tr.HomeRegion+":"+testAccount+":trail/"+tr.Name) && !strings.Contains(tr.TrailARN, tr.HomeRegion) {
				t.Errorf("inconsistent entry %+v", tr)
			}
		}
		if p.NextToken == nil {
			break
		}
		if len(p.Trails) != 2 {
			t.Errorf("page %d has %d trails before the end", pages, len(p.Trails))
		}
		token = *p.NextToken
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("listed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if pages != 5 {
		t.Errorf("%d pages, want 5", pages)
	}
}

// TestTrailPersistence checks that everything a client set survives a
// restart of the store.
func TestTrailPersistence(t *testing.T) {
	e := newTrailEnv(t)
	e.ok(east, "CreateTrail", `{"Name":"main","S3BucketName":"cairn-logs","S3KeyPrefix":"p","SnsTopicName":"t","KmsKeyId":"alias/k","EnableLogFileValidation":true,"TagsList":[{"Key":"a","Value":"1"}]}`)
	createTrail(e, west, "global", true)
	e.ok(east, "StartLogging", `{"Name":"main"}`)
	e.ok(east, "PutEventSelectors", `{"TrailName":"main","AdvancedEventSelectors":[{"Name":"m","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]}`)
	e.ok(east, "PutInsightSelectors", `{"TrailName":"main","InsightSelectors":[{"InsightType":"ApiErrorRateInsight"}]}`)
	e.ok(east, "AddTags", `{"ResourceId":"`+mainARN+`","TagsList":[{"Key":"b","Value":"2"}]}`)
	if err := e.svc.RecordDelivery(context.Background(), mainARN, e.now, ""); err != nil {
		t.Fatal(err)
	}
	observe := func() string {
		var b strings.Builder
		for _, c := range []struct{ op, body string }{
			{"DescribeTrails", `{}`},
			{"ListTrails", `{}`},
			{"GetTrailStatus", `{"Name":"main"}`},
			{"GetEventSelectors", `{"TrailName":"main"}`},
			{"GetEventSelectors", `{"TrailName":"global"}`},
			{"GetInsightSelectors", `{"TrailName":"main"}`},
			{"ListTags", `{"ResourceIdList":["` + mainARN + `"]}`},
		} {
			b.Write(e.ok(east, c.op, c.body))
			b.WriteByte('\n')
		}
		return b.String()
	}
	before := observe()
	e.reopen()
	if after := observe(); after != before {
		t.Errorf("state changed across reopen:\nbefore\n%s\nafter\n%s", before, after)
	}
	logging, err := e.svc.Logging(context.Background())
	if err != nil || len(logging) != 1 || logging[0].ARN() != mainARN {
		t.Errorf("Logging after reopen = %v, %v; want only main", logging, err)
	}
}

// TestTrailOperationFlags checks the read-only flags the server relies on
// to let read-only keys through and to audit calls.
func TestTrailOperationFlags(t *testing.T) {
	e := newTrailEnv(t)
	want := map[string]bool{
		"CreateTrail": false, "UpdateTrail": false, "DeleteTrail": false,
		"GetTrail": true, "DescribeTrails": true, "ListTrails": true, "GetTrailStatus": true,
		"StartLogging": false, "StopLogging": false,
		"PutEventSelectors": false, "GetEventSelectors": true,
		"PutInsightSelectors": false, "GetInsightSelectors": true,
		"AddTags": false, "RemoveTags": false, "ListTags": true,
	}
	names := e.reg.Names()
	if len(names) != len(want) {
		t.Errorf("registered %v, want %d operations", names, len(want))
	}
	for name, ro := range want {
		op, ok := e.reg.Lookup(name)
		if !ok {
			t.Errorf("%s is not registered", name)
			continue
		}
		if op.ReadOnly != ro {
			t.Errorf("%s ReadOnly = %v, want %v", name, op.ReadOnly, ro)
		}
	}
}

// fakeChannels stands in for the channel package in the tag tests: a
// resolver reading the store in the tag transaction.
type fakeChannels struct{ prefix string }

func (f fakeChannels) ResourceExists(ctx context.Context, r state.Reader, arn string) (bool, error) {
	var v string
	return r.Get(f.prefix+arn, &v)
}

// TestTagRules covers tag limits, overwrites, value-matched removal and
// resolvers for resource types other than trails.
func TestTagRules(t *testing.T) {
	e := newTrailEnv(t)
	const chanARN = "arn:aws:cloudtrail:us-east-1:123456789012:channel/01234567-89ab-cdef-0123-456789abcdef"
	const edsARN = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds-1"
	eds := map[string]bool{edsARN: true}
	e.resolvers = map[string]tags.Resolver{
		tags.TypeChannel: fakeChannels{prefix: "test-channel/"},
		tags.TypeEventDataStore: tags.StandaloneResolver(func(ctx context.Context, arn string) (bool, error) {
			// Reads its own view, like channel.Service.Exists: this must
			// not run inside the tag transaction.
			return eds[arn], e.store.View(ctx, func(state.Reader) error { return nil })
		}),
	}
	e.reopen()
	createTrail(e, east, "main", false)

	// 50 tags is the limit; overwriting keys does not add to the count.
	e.ok(east, "AddTags", `{"ResourceId":"`+mainARN+`","TagsList":`+tagsJSON(50, "k%d")+`}`)
	e.ok(east, "AddTags", `{"ResourceId":"`+mainARN+`","TagsList":[{"Key":"k0","Value":"new"}]}`)
	e.fail(east, "AddTags", `{"ResourceId":"`+mainARN+`","TagsList":[{"Key":"k50"}]}`, "TagsLimitExceededException")
	type listed struct {
		ResourceTagList []struct {
			ResourceId string
			TagsList   []struct{ Key, Value string }
		}
	}
	l := decode[listed](t, e.ok(east, "ListTags", `{"ResourceIdList":["`+mainARN+`"]}`))
	if tl := l.ResourceTagList[0].TagsList; len(tl) != 50 || tl[0].Key != "k0" || tl[0].Value != "new" {
		t.Errorf("after overwrite: %d tags, first %+v", len(tl), tl[0])
	}
	// RemoveTags with a value only removes a tag holding that value.
	e.ok(east, "RemoveTags", `{"ResourceId":"`+mainARN+`","TagsList":[{"Key":"k0","Value":"old"},{"Key":"k1","Value":"v"},{"Key":"k2"},{"Key":"absent"}]}`)
	l = decode[listed](t, e.ok(east, "ListTags", `{"ResourceIdList":["`+mainARN+`"]}`))
	if tl := l.ResourceTagList[0].TagsList; len(tl) != 48 || tl[0].Key != "k0" {
		t.Errorf("after remove: %d tags, first %+v", len(tl), tl[0])
	}

	// A channel that does not exist yet, then does.
	e.fail(east, "AddTags", `{"ResourceId":"`+chanARN+`","TagsList":[{"Key":"k"}]}`, "ResourceNotFoundException")
	if err := e.store.Update(context.Background(), func(tx *state.Tx) error { return tx.Put("test-channel/"+chanARN, "x") }); err != nil {
		t.Fatal(err)
	}
	e.ok(east, "AddTags", `{"ResourceId":"`+chanARN+`","TagsList":[{"Key":"k","Value":"c"}]}`)
	// A standalone resolver works for every tag operation.
	e.ok(east, "AddTags", `{"ResourceId":"`+edsARN+`","TagsList":[{"Key":"k","Value":"e"}]}`)
	e.ok(east, "RemoveTags", `{"ResourceId":"`+edsARN+`","TagsList":[{"Key":"nothing"}]}`)
	e.fail(east, "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/other","TagsList":[{"Key":"k"}]}`, "ResourceNotFoundException")
	l = decode[listed](t, e.ok(east, "ListTags", `{"ResourceIdList":["`+chanARN+`","`+edsARN+`"]}`))
	if len(l.ResourceTagList) != 2 || l.ResourceTagList[0].TagsList[0].Value != "c" || l.ResourceTagList[1].TagsList[0].Value != "e" {
		t.Errorf("ListTags of a channel and an event data store = %+v", l)
	}

	// Deleting a trail deletes its tags: a new trail of the same name
	// starts without any.
	e.ok(east, "DeleteTrail", `{"Name":"main"}`)
	createTrail(e, east, "main", false)
	l = decode[listed](t, e.ok(east, "ListTags", `{"ResourceIdList":["`+mainARN+`"]}`))
	if n := len(l.ResourceTagList[0].TagsList); n != 0 {
		t.Errorf("recreated trail has %d tags", n)
	}
}

// TestTrailStateForDelivery checks what the delivery package reads: the
// logging trails, lookup by ARN, and selector evaluation on the stored
// trail.
func TestTrailStateForDelivery(t *testing.T) {
	e := newTrailEnv(t)
	ctx := context.Background()
	createTrail(e, east, "main", false)
	createTrail(e, west, "global", true)
	e.ok(west, "StartLogging", `{"Name":"global"}`)
	logging, err := e.svc.Logging(ctx)
	if err != nil || len(logging) != 1 || logging[0].Name != "global" || !logging[0].IsMultiRegionTrail {
		t.Fatalf("Logging = %+v, %v", logging, err)
	}
	tr, err := e.svc.ByARN(ctx, mainARN)
	if err != nil || tr.Name != "main" || tr.Status.IsLogging {
		t.Fatalf("ByARN = %+v, %v", tr, err)
	}
	if _, err := e.svc.ByARN(ctx, "arn:aws:cloudtrail:us-east-1:123456789012:trail/none"); err == nil {
		t.Error("ByARN of a missing trail succeeded")
	}
	if !tr.VisibleIn(east) || tr.VisibleIn(west) || !logging[0].VisibleIn(euWest) {
		t.Error("VisibleIn disagrees with the trails' regions")
	}
}
