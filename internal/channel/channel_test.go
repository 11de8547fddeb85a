package channel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
)

var testNow = time.Date(2024, 5, 1, 12, 30, 45, 0, time.UTC)

func testEDS(region string) string {
	return "arn:aws:cloudtrail:" + region + ":" + testAccount + ":eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"
}

// openStore opens a real state store in a temporary directory.
func openStore(t testing.TB, dir string) *state.Store {
	t.Helper()
	st, err := state.Open(context.Background(), dir, state.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open state: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newService(t testing.TB, st *state.Store) *Service {
	t.Helper()
	svc, err := New(st, testAccount, Options{Now: func() time.Time { return testNow }, Logger: quietLogger(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	return svc
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if !awsproto.IsCode(err, code) {
		t.Fatalf("got error %v, want %s", err, code)
	}
}

func mustCreate(t testing.TB, svc *Service, name string) *Channel {
	t.Helper()
	c, _, err := svc.Create(ctxT(t), testRegion, CreateInput{
		Name: name, Source: SourceCustom,
		Destinations: []Destination{{Type: DestinationEventDataStore, Location: testEDS(testRegion)}},
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return c
}

func strp(s string) *string { return &s }

func TestChannelLifecycle(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	ctx := ctxT(t)

	c, tagList, err := svc.Create(ctx, testRegion, CreateInput{
		Name: "app-events", Source: SourceCustom,
		Destinations: []Destination{{Type: DestinationEventDataStore, Location: testEDS(testRegion)}},
		Tags:         []tags.Tag{{Key: "team", Value: strp("sec")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !idRE.MatchString(c.ID) || c.ARN() != "arn:aws:cloudtrail:us-east-1:"+testAccount+":channel/"+c.ID {
		t.Fatalf("bad id/arn %s %s", c.ID, c.ARN())
	}
	if len(tagList) != 1 || tagList[0].Key != "team" {
		t.Fatalf("tags %v", tagList)
	}
	// Tags are stored under the channel's ARN for ListTags.
	err = svc.store.View(ctx, func(r state.Reader) error {
		got, err := tags.Load(r, c.ARN())
		if err != nil || len(got) != 1 {
			return fmt.Errorf("stored tags %v %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{c.ARN(), c.ID} {
		got, st, err := svc.Get(ctx, testRegion, ref)
		if err != nil {
			t.Fatalf("get %s: %v", ref, err)
		}
		if got.Name != "app-events" || got.Source != SourceCustom || len(got.Destinations) != 1 {
			t.Fatalf("get %s: %+v", ref, got)
		}
		if st != (IngestionStatus{}) {
			t.Fatalf("fresh channel has status %+v", st)
		}
	}
	// An ARN names its own region; a UUID means the caller's region.
	if _, _, err := svc.Get(ctx, "eu-west-1", c.ARN()); err != nil {
		t.Fatalf("get by ARN from another region: %v", err)
	}
	_, _, err = svc.Get(ctx, "eu-west-1", c.ID)
	wantCode(t, err, "ChannelNotFoundException")

	up, err := svc.Update(ctx, testRegion, c.ID, UpdateInput{Name: strp("renamed")})
	if err != nil || up.Name != "renamed" || len(up.Destinations) != 1 {
		t.Fatalf("rename: %+v %v", up, err)
	}
	two := []Destination{
		{Type: DestinationEventDataStore, Location: testEDS(testRegion)},
		{Type: DestinationEventDataStore, Location: strings.Replace(testEDS(testRegion), "0b9a", "1b9a", 1)},
	}
	up, err = svc.Update(ctx, testRegion, c.ARN(), UpdateInput{Destinations: two})
	if err != nil || up.Name != "renamed" || len(up.Destinations) != 2 {
		t.Fatalf("update destinations: %+v %v", up, err)
	}

	if err := svc.Delete(ctx, testRegion, c.ARN()); err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.Get(ctx, testRegion, c.ID)
	wantCode(t, err, "ChannelNotFoundException")
	wantCode(t, svc.Delete(ctx, testRegion, c.ID), "ChannelNotFoundException")
	err = svc.store.View(ctx, func(r state.Reader) error {
		got, err := tags.Load(r, c.ARN())
		if err != nil || len(got) != 0 {
			return fmt.Errorf("tags outlived the channel: %v %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateValidation(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	eds := []Destination{{Type: DestinationEventDataStore, Location: testEDS(testRegion)}}
	manyTags := make([]tags.Tag, 51)
	for i := range manyTags {
		manyTags[i] = tags.Tag{Key: fmt.Sprintf("k%d", i)}
	}
	tooManyDest := make([]Destination, 201)
	for i := range tooManyDest {
		tooManyDest[i] = Destination{Type: DestinationAWSService, Location: fmt.Sprintf("svc%d", i)}
	}
	cases := []struct {
		name string
		in   CreateInput
		code string
	}{
		{"short name", CreateInput{Name: "ab", Source: SourceCustom, Destinations: eds}, "InvalidParameterException"},
		{"long name", CreateInput{Name: strings.Repeat("a", 129), Source: SourceCustom, Destinations: eds}, "InvalidParameterException"},
		{"bad char", CreateInput{Name: "a b c", Source: SourceCustom, Destinations: eds}, "InvalidParameterException"},
		{"partner source", CreateInput{Name: "abc", Source: "Okta", Destinations: eds}, "InvalidSourceException"},
		{"no source", CreateInput{Name: "abc", Destinations: eds}, "InvalidSourceException"},
		{"no destinations", CreateInput{Name: "abc", Source: SourceCustom}, "InvalidParameterException"},
		{"201 destinations", CreateInput{Name: "abc", Source: SourceCustom, Destinations: tooManyDest}, "InvalidParameterException"},
		{"bad type", CreateInput{Name: "abc", Source: SourceCustom, Destinations: []Destination{{Type: "S3", Location: "bucket"}}}, "InvalidParameterException"},
		{"bad location", CreateInput{Name: "abc", Source: SourceCustom, Destinations: []Destination{{Type: DestinationAWSService, Location: "a b"}}}, "InvalidParameterException"},
		{"duplicate destination", CreateInput{Name: "abc", Source: SourceCustom, Destinations: append(eds, eds...)}, "InvalidParameterException"},
		{"eds other account", CreateInput{Name: "abc", Source: SourceCustom, Destinations: []Destination{{Type: DestinationEventDataStore, Location: strings.Replace(testEDS(testRegion), testAccount, "999999999999", 1)}}}, "EventDataStoreARNInvalidException"},
		{"eds not an arn", CreateInput{Name: "abc", Source: SourceCustom, Destinations: []Destination{{Type: DestinationEventDataStore, Location: "my-store"}}}, "EventDataStoreARNInvalidException"},
		{"eds trail arn", CreateInput{Name: "abc", Source: SourceCustom, Destinations: []Destination{{Type: DestinationEventDataStore, Location: "arn:aws:cloudtrail:us-east-1:" + testAccount + ":trail/t1"}}}, "EventDataStoreARNInvalidException"},
		{"51 tags", CreateInput{Name: "abc", Source: SourceCustom, Destinations: eds, Tags: manyTags}, "TagsLimitExceededException"},
		{"bad tag", CreateInput{Name: "abc", Source: SourceCustom, Destinations: eds, Tags: []tags.Tag{{Key: "aws:x"}}}, "InvalidTagParameterException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := svc.Create(ctxT(t), testRegion, tc.in)
			wantCode(t, err, tc.code)
		})
	}
}

func TestNameUniqueAndQuota(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	ctx := ctxT(t)
	first := mustCreate(t, svc, "dup")
	_, _, err := svc.Create(ctx, testRegion, CreateInput{Name: "dup", Source: SourceCustom, Destinations: first.Destinations})
	wantCode(t, err, "ChannelAlreadyExistsException")
	// Names are unique per region.
	if _, _, err := svc.Create(ctx, "eu-west-1", CreateInput{Name: "dup", Source: SourceCustom, Destinations: first.Destinations}); err != nil {
		t.Fatalf("same name in another region: %v", err)
	}
	for i := 1; i < MaxPerRegion; i++ {
		mustCreate(t, svc, fmt.Sprintf("ch-%02d", i))
	}
	_, _, err = svc.Create(ctx, testRegion, CreateInput{Name: "one-too-many", Source: SourceCustom, Destinations: first.Destinations})
	wantCode(t, err, "ChannelMaxLimitExceededException")

	other := mustCreateIn(t, svc, "eu-west-1", "other")
	_, err = svc.Update(ctx, testRegion, first.ID, UpdateInput{Name: strp("ch-01")})
	wantCode(t, err, "ChannelAlreadyExistsException")
	// Renaming to its own name, or to a name used in another region, is fine.
	if _, err := svc.Update(ctx, testRegion, first.ID, UpdateInput{Name: strp("dup")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Update(ctx, testRegion, first.ID, UpdateInput{Name: strp(other.Name)}); err != nil {
		t.Fatal(err)
	}
}

func mustCreateIn(t testing.TB, svc *Service, region, name string) *Channel {
	t.Helper()
	c, _, err := svc.Create(ctxT(t), region, CreateInput{
		Name: name, Source: SourceCustom,
		Destinations: []Destination{{Type: DestinationEventDataStore, Location: testEDS(region)}},
	})
	if err != nil {
		t.Fatalf("create %s in %s: %v", name, region, err)
	}
	return c
}

func TestRefErrors(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	ctx := ctxT(t)
	c := mustCreate(t, svc, "refs")
	for _, bad := range []string{"", "abc", "ABCDEFAB-1234-1234-1234-123456789012", "arn:aws:cloudtrail:us-east-1:" + testAccount + ":trail/x",
		"arn:aws:cloudtrail:us-east-1:" + testAccount + ":channel/nope", "arn:aws:s3:::bucket"} {
		_, _, err := svc.Get(ctx, testRegion, bad)
		wantCode(t, err, "ChannelARNInvalidException")
		_, err = svc.Update(ctx, testRegion, bad, UpdateInput{})
		wantCode(t, err, "ChannelARNInvalidException")
		wantCode(t, svc.Delete(ctx, testRegion, bad), "ChannelARNInvalidException")
	}
	for _, missing := range []string{
		"0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c",
		strings.Replace(c.ARN(), testAccount, "999999999999", 1),
	} {
		_, _, err := svc.Get(ctx, testRegion, missing)
		wantCode(t, err, "ChannelNotFoundException")
		_, err = svc.Update(ctx, testRegion, missing, UpdateInput{Name: strp("xyz")})
		wantCode(t, err, "ChannelNotFoundException")
	}
	_, err := svc.Update(ctx, testRegion, c.ID, UpdateInput{Destinations: []Destination{}})
	wantCode(t, err, "InvalidParameterException")
	_, err = svc.Update(ctx, testRegion, c.ID, UpdateInput{Name: strp("x")})
	wantCode(t, err, "InvalidParameterException")

	ok, err := svc.Exists(ctx, c.ARN())
	if err != nil || !ok {
		t.Fatalf("Exists(%s) = %v, %v", c.ARN(), ok, err)
	}
	ok, err = svc.Exists(ctx, strings.Replace(c.ARN(), c.ID, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c", 1))
	if err != nil || ok {
		t.Fatalf("Exists(missing) = %v, %v", ok, err)
	}
	_, err = svc.Exists(ctx, "arn:aws:cloudtrail:us-east-1:"+testAccount+":channel/bad")
	wantCode(t, err, "ChannelARNInvalidException")
}

func TestListPagination(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	ctx := ctxT(t)
	want := map[string]bool{}
	for i := range 7 {
		want[mustCreate(t, svc, fmt.Sprintf("list-%d", i)).ID] = true
	}
	mustCreateIn(t, svc, "eu-west-1", "elsewhere")

	all, next, err := svc.List(ctx, testRegion, 0, "")
	if err != nil || next != "" || len(all) != 7 {
		t.Fatalf("list all: %d %q %v", len(all), next, err)
	}
	got := map[string]bool{}
	tok := ""
	pages := 0
	for {
		page, next, err := svc.List(ctx, testRegion, 3, tok)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range page {
			if got[c.ID] {
				t.Fatalf("%s listed twice", c.ID)
			}
			got[c.ID] = true
		}
		if next == "" {
			break
		}
		if len(next) < 4 {
			t.Fatalf("token %q shorter than the model's minimum", next)
		}
		tok = next
	}
	if pages != 3 || len(got) != 7 {
		t.Fatalf("pages=%d got=%d", pages, len(got))
	}
	for id := range want {
		if !got[id] {
			t.Fatalf("%s missing", id)
		}
	}
	_, _, err = svc.List(ctx, testRegion, 0, "not-a-token")
	wantCode(t, err, "InvalidNextTokenException")
	_, _, err = svc.List(ctx, testRegion, 1001, "")
	wantCode(t, err, "InvalidParameterException")
}

func TestResourcePolicy(t *testing.T) {
	svc := newService(t, openStore(t, t.TempDir()))
	ctx := ctxT(t)
	c := mustCreate(t, svc, "policy")
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"p","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"cloudtrail-data:PutAuditEvents","Resource":"` + c.ARN() + `","Condition":{"StringEquals":{"cloudtrail:ExternalId":["ext-1","ext-0"]}}}]}`

	_, err := svc.GetResourcePolicy(ctx, c.ARN())
	wantCode(t, err, "ResourcePolicyNotFoundException")
	wantCode(t, svc.DeleteResourcePolicy(ctx, c.ARN()), "ResourcePolicyNotFoundException")

	got, err := svc.PutResourcePolicy(ctx, c.ARN(), policy)
	if err != nil || got != policy {
		t.Fatalf("put: %q %v", got, err)
	}
	got, err = svc.GetResourcePolicy(ctx, c.ARN())
	if err != nil || got != policy {
		t.Fatalf("get: %q %v", got, err)
	}
	stored, _, _ := svc.Get(ctx, testRegion, c.ID)
	if strings.Join(stored.ExternalIDs, ",") != "ext-0,ext-1" {
		t.Fatalf("external ids %v", stored.ExternalIDs)
	}
	if err := svc.DeleteResourcePolicy(ctx, c.ARN()); err != nil {
		t.Fatal(err)
	}
	stored, _, _ = svc.Get(ctx, testRegion, c.ID)
	if stored.ResourcePolicy != "" || stored.ExternalIDs != nil {
		t.Fatalf("policy survived delete: %+v", stored)
	}

	for _, tc := range []struct{ arn, code string }{
		{"x", "ResourceARNNotValidException"},
		{"not-an-arn", "ResourceARNNotValidException"},
		{"arn:aws:cloudtrail:us-east-1:" + testAccount + ":channel/bad", "ResourceARNNotValidException"},
		{"arn:aws:cloudtrail:us-east-1:" + testAccount + ":eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c", "ResourceTypeNotSupportedException"},
		{"arn:aws:cloudtrail:us-east-1:" + testAccount + ":dashboard/d1", "ResourceTypeNotSupportedException"},
		{"arn:aws:s3:::bucket", "ResourceTypeNotSupportedException"},
		{strings.Replace(c.ARN(), c.ID, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c", 1), "ResourceNotFoundException"},
	} {
		_, err := svc.PutResourcePolicy(ctx, tc.arn, policy)
		wantCode(t, err, tc.code)
		_, err = svc.GetResourcePolicy(ctx, tc.arn)
		wantCode(t, err, tc.code)
		wantCode(t, svc.DeleteResourcePolicy(ctx, tc.arn), tc.code)
	}
}

func TestParsePolicy(t *testing.T) {
	stmt := func(extra string) string {
		return `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"cloudtrail-data:PutAuditEvents"` + extra + `}]}`
	}
	good := []struct {
		policy string
		ids    string
	}{
		{stmt(``), ""},
		{stmt(`,"Condition":{"StringEquals":{"cloudtrail:ExternalId":"abc"}}`), "abc"},
		{stmt(`,"Condition":{"StringEquals":{"CloudTrail:externalid":["b","a","b"]}}`), "a,b"},
		{stmt(`,"Condition":{"StringLike":{"cloudtrail:ExternalId":"x*"}}`), ""},
		{`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"StringEquals":{"cloudtrail:ExternalId":"one"}}}}`, "one"},
		{`{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"StringEquals":{"cloudtrail:ExternalId":"deny"}}}]}`, ""},
	}
	for _, tc := range good {
		ids, err := ParsePolicy(tc.policy)
		if err != nil || strings.Join(ids, ",") != tc.ids {
			t.Errorf("ParsePolicy(%s) = %v, %v; want %q", tc.policy, ids, err, tc.ids)
		}
	}
	bad := []string{
		"", "[]", "null", "{", `{"Version":"2012-10-17"}`, `{"Statement":[]}`, `{"Statement":"x"}`,
		`{"Statement":[null]}`, `{"Statement":[{"Principal":"*","Action":"*"}]}`,
		`{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*"}]}`,
		stmt(`,"Condition":"x"`),
		stmt(`,"Condition":{"StringEquals":{"cloudtrail:ExternalId":5}}`),
		stmt(`,"Condition":{"StringEquals":{"cloudtrail:ExternalId":[]}}`),
		`{"Statement":[]} {}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Sid":"` + strings.Repeat("x", MaxPolicyLen) + `"}]}`,
	}
	for _, p := range bad {
		_, err := ParsePolicy(p)
		if !awsproto.IsCode(err, "ResourcePolicyNotValidException") {
			t.Errorf("ParsePolicy(%.80s) = %v, want ResourcePolicyNotValidException", p, err)
		}
	}
}
