package lake

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
)

const testAccount = "123456789012"

// fakeChannels is a channel index with fixed answers.
type fakeChannels map[string][]string

func (f fakeChannels) ChannelsByStore(context.Context, state.Reader) (map[string][]string, error) {
	return f, nil
}

type env struct {
	svc     *Service
	now     time.Time
	changes int
	purged  []Spec
	purgeOK bool
}

func newEnv(t *testing.T, chans fakeChannels) *env {
	t.Helper()
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state"), state.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{now: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), purgeOK: true}
	e.svc = New(st, testAccount, func() time.Time { return e.now },
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithChannels(chans),
		WithChangeHook(func(context.Context) { e.changes++ }),
		WithPurgeHook(func(_ context.Context, sp Spec) error {
			if !e.purgeOK {
				return errors.New("disk on fire")
			}
			e.purged = append(e.purged, sp)
			return nil
		}))
	return e
}

func sels(category string) []selector.AdvancedEventSelector {
	return []selector.AdvancedEventSelector{{FieldSelectors: []selector.FieldSelector{{Field: "eventCategory", Equals: []string{category}}}}}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if !awsproto.IsCode(err, code) {
		t.Fatalf("error %v, want %s", err, code)
	}
}

// TestSpecs checks what the engines see of each kind of store.
func TestSpecs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	mgmt, _, err := e.svc.Create(ctx, "us-east-1", CreateInput{Name: "mgmt"})
	if err != nil {
		t.Fatal(err)
	}
	off := false
	mixed, _, err := e.svc.Create(ctx, "eu-west-1", CreateInput{Name: "mixed", StartIngestion: &off, MultiRegionEnabled: &off,
		AdvancedEventSelectors: append(sels(CategoryData)[:0:0], selector.AdvancedEventSelector{FieldSelectors: []selector.FieldSelector{
			{Field: "eventCategory", Equals: []string{CategoryData}}, {Field: "resources.type", Equals: []string{"AWS::S3::Object"}}}},
			sels(CategoryManagement)[0])})
	if err != nil {
		t.Fatal(err)
	}
	audit, _, err := e.svc.Create(ctx, "us-east-1", CreateInput{Name: "audit", AdvancedEventSelectors: sels(CategoryActivityAuditLog), TerminationProtectionEnabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, "us-east-1", audit.ID); err != nil {
		t.Fatal(err)
	}
	// A channel that still names a store pending deletion (written before
	// the rule) is reported; a management store's "channels" are not.
	e.svc.channels = fakeChannels{audit.ARN(): {"arn:aws:cloudtrail:us-east-1:123456789012:channel/c1"}, mgmt.ARN(): {"ignored"}}
	specs, err := e.svc.Specs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Spec{}
	for _, sp := range specs {
		byName[map[string]string{mgmt.ARN(): "mgmt", mixed.ARN(): "mixed", audit.ARN(): "audit"}[sp.ARN]] = sp
	}
	cases := []struct {
		name                 string
		status, category     string
		categories           []string
		ingesting, queryable bool
		multiRegion          bool
		retention            int
		channels             []string
	}{
		{"mgmt", StatusEnabled, CategoryManagement, []string{CategoryManagement}, true, true, true, 366, nil},
		{"mixed", StatusStoppedIngestion, CategoryData, []string{CategoryData, CategoryManagement}, false, true, false, 366, nil},
		{"audit", StatusPendingDeletion, CategoryActivityAuditLog, []string{CategoryActivityAuditLog}, false, false, true, 366, []string{"arn:aws:cloudtrail:us-east-1:123456789012:channel/c1"}},
	}
	for _, c := range cases {
		sp, ok := byName[c.name]
		if !ok {
			t.Fatalf("no spec for %s in %+v", c.name, specs)
		}
		if sp.Status != c.status || sp.Category != c.category || !slices.Equal(sp.Categories, c.categories) || sp.Ingesting != c.ingesting ||
			sp.Queryable != c.queryable || sp.MultiRegion != c.multiRegion || sp.RetentionDays != c.retention || !slices.Equal(sp.Channels, c.channels) ||
			sp.AccountID != testAccount || sp.Created != e.now || sp.ID == "" || len(sp.Selectors) == 0 {
			t.Errorf("%s: spec %+v", c.name, sp)
		}
	}
	if e.changes != 4 {
		t.Errorf("change hook called %d times for 3 creates and a delete", e.changes)
	}
}

// TestResolve checks the table names a query may use.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	off := false
	st, _, err := e.svc.Create(ctx, "us-east-1", CreateInput{Name: "store", TerminationProtectionEnabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{st.ID, st.ARN()} {
		sp, err := e.svc.Resolve(ctx, "us-east-1", ref)
		if err != nil || sp.ARN != st.ARN() {
			t.Errorf("Resolve(%s) = %+v, %v", ref, sp, err)
		}
	}
	// An ARN names its region; a bare ID is the caller's region's.
	if _, err := e.svc.Resolve(ctx, "eu-west-1", st.ARN()); err != nil {
		t.Errorf("Resolve of the ARN from another region: %v", err)
	}
	_, err = e.svc.Resolve(ctx, "eu-west-1", st.ID)
	wantCode(t, err, "EventDataStoreNotFoundException")
	_, err = e.svc.Resolve(ctx, "us-east-1", "store.name")
	wantCode(t, err, "EventDataStoreARNInvalidException")
	_, err = e.svc.Resolve(ctx, "us-east-1", "arn:aws:cloudtrail:us-east-1:999999999999:eventdatastore/"+st.ID)
	wantCode(t, err, "EventDataStoreARNInvalidException")
	if err := e.svc.Delete(ctx, "us-east-1", st.ARN()); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Resolve(ctx, "us-east-1", st.ID)
	wantCode(t, err, "InactiveEventDataStoreException")
}

// TestPurge checks the seven days, the hook that drops the files, and a
// hook failure keeping the store for the next pass.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	off := false
	st, _, err := e.svc.Create(ctx, "us-east-1", CreateInput{Name: "doomed", TerminationProtectionEnabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, "us-east-1", st.ID); err != nil {
		t.Fatal(err)
	}
	deleted := e.now
	if n, err := e.svc.Purge(ctx, deleted.Add(PendingDeletionPeriod-time.Second)); n != 0 || err != nil {
		t.Fatalf("Purge before seven days: %d %v", n, err)
	}
	e.purgeOK = false
	if n, err := e.svc.Purge(ctx, deleted.Add(PendingDeletionPeriod)); n != 0 || err == nil {
		t.Fatalf("Purge with a failing hook: %d %v", n, err)
	}
	if _, err := e.svc.Get(ctx, "us-east-1", st.ID); err != nil {
		t.Fatalf("the store must survive a failed purge: %v", err)
	}
	e.purgeOK = true
	before := e.changes
	if n, err := e.svc.Purge(ctx, deleted.Add(PendingDeletionPeriod)); n != 1 || err != nil {
		t.Fatalf("Purge: %d %v", n, err)
	}
	if len(e.purged) != 1 || e.purged[0].ARN != st.ARN() || e.purged[0].Status != StatusPendingDeletion {
		t.Errorf("purge hook saw %+v", e.purged)
	}
	if e.changes != before+1 {
		t.Errorf("a purge must call the change hook")
	}
	_, err = e.svc.Get(ctx, "us-east-1", st.ID)
	wantCode(t, err, "EventDataStoreNotFoundException")
	// The name is free again.
	if _, _, err := e.svc.Create(ctx, "us-east-1", CreateInput{Name: "doomed"}); err != nil {
		t.Fatalf("re-create after the purge: %v", err)
	}
}

// TestCheckDestination is the channel service's view.
func TestCheckDestination(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	off := false
	audit, _, err := e.svc.Create(ctx, "us-east-1", CreateInput{Name: "audit", AdvancedEventSelectors: sels(CategoryActivityAuditLog), TerminationProtectionEnabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	mgmt, _, err := e.svc.Create(ctx, "us-east-1", CreateInput{Name: "mgmt"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(arn string) error {
		return e.svc.store.View(ctx, func(r state.Reader) error { return e.svc.CheckDestination(ctx, r, arn) })
	}
	if err := check(audit.ARN()); err != nil {
		t.Fatalf("an ActivityAuditLog store: %v", err)
	}
	wantCode(t, check(mgmt.ARN()), "InvalidEventDataStoreCategoryException")
	wantCode(t, check(ARN("us-east-1", testAccount, "0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c")), "EventDataStoreNotFoundException")
	if err := e.svc.Delete(ctx, "us-east-1", audit.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, check(audit.ARN()), "InactiveEventDataStoreException")
}
