package dashboards

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

const (
	account = "123456789012"
	region  = "us-east-1"
)

// fakeQueries records started statements and refuses any naming "bad".
type fakeQueries struct {
	mu      sync.Mutex
	started []string
}

func (f *fakeQueries) Check(_ context.Context, _, stmt string) error {
	if strings.Contains(stmt, "bad") {
		return awsproto.Errorf("InvalidQueryStatementException", "bad statement")
	}
	return nil
}

func (f *fakeQueries) Start(ctx context.Context, r, stmt string) (string, error) {
	if err := f.Check(ctx, r, stmt); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, stmt)
	return fmt.Sprintf("q-%d", len(f.started)), nil
}

type fixture struct {
	svc *Service
	q   *fakeQueries
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{q: &fakeQueries{}, now: time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)}
	f.svc = New(st, f.q, account, Options{Clock: func() time.Time { return f.now }})
	return f
}

func ptr[T any](v T) *T { return &v }

func widget(stmt string, params ...string) RequestWidget {
	return RequestWidget{QueryStatement: ptr(stmt), QueryParameters: params, ViewProperties: map[string]string{"View": "Table"}}
}

func code(err error) string {
	var ae *awsproto.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return fmt.Sprint(err)
}

func TestDashboardLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d, tagList, err := f.svc.Create(ctx, region, CreateInput{
		Name: "security",
		Widgets: []RequestWidget{
			widget("SELECT eventname, count(*) FROM eds WHERE eventtime > '?' AND eventtime < '?' GROUP BY 1", "$StartTime$", "$EndTime$"),
			widget("SELECT count(*) FROM eds"),
		},
		TerminationProtection: ptr(true),
		Tags:                  []tags.Tag{{Key: "team", Value: ptr("sec")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.ARN() != "arn:aws:cloudtrail:us-east-1:123456789012:dashboard/security" || d.Type != TypeCustom || len(tagList) != 1 {
		t.Fatalf("created %+v %v", d, tagList)
	}
	if d.Widgets[0].QueryAlias != "security-widget-1" || d.Widgets[1].QueryAlias != "security-widget-2" {
		t.Errorf("aliases %q %q", d.Widgets[0].QueryAlias, d.Widgets[1].QueryAlias)
	}
	if _, _, err := f.svc.Create(ctx, region, CreateInput{Name: "security"}); code(err) != "ConflictException" {
		t.Errorf("duplicate name: %v", err)
	}

	byARN, err := f.svc.Get(ctx, "eu-west-1", d.ARN())
	if err != nil || byARN.Name != "security" {
		t.Fatalf("get by ARN: %v %+v", err, byARN)
	}

	// A refresh starts each widget's query with the values in place.
	rid, err := f.svc.StartRefresh(ctx, region, "security", map[string]string{"$StartTime$": "2024-04-01 00:00:00", "$EndTime$": "2024-05-01 00:00:00"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rid) < 10 || len(rid) > 20 || strings.Trim(rid, "0123456789") != "" {
		t.Errorf("RefreshId %q is not 10 to 20 digits", rid)
	}
	want := "SELECT eventname, count(*) FROM eds WHERE eventtime > '2024-04-01 00:00:00' AND eventtime < '2024-05-01 00:00:00' GROUP BY 1"
	if len(f.q.started) != 2 || f.q.started[0] != want {
		t.Fatalf("started %q", f.q.started)
	}
	qid, err := f.svc.QueryFor(ctx, region, "security-widget-2", rid)
	if err != nil || qid != "q-2" {
		t.Errorf("QueryFor widget 2: %q %v", qid, err)
	}
	if _, err := f.svc.QueryFor(ctx, region, "security-widget-2", "1234567890"); code(err) != "QueryIdNotFoundException" {
		t.Errorf("unknown refresh: %v", err)
	}
	got, _ := f.svc.Get(ctx, region, "security")
	if got.LastRefreshID != rid || got.LastRefreshFailure != "" {
		t.Errorf("last refresh %q %q", got.LastRefreshID, got.LastRefreshFailure)
	}
	stmt, err := f.svc.Statement(ctx, region, "security-widget-1", []string{"a'b", "c"})
	if err != nil || !strings.Contains(stmt, "eventtime > 'a''b' AND eventtime < 'c'") {
		t.Errorf("alias statement %q %v: a quote in a value must not end the literal", stmt, err)
	}

	// Termination protection, then update and delete.
	if err := f.svc.Delete(ctx, region, "security"); code(err) != "ConflictException" {
		t.Errorf("delete a protected dashboard: %v", err)
	}
	up, err := f.svc.Update(ctx, region, "security", UpdateInput{TerminationProtection: ptr(false), Widgets: []RequestWidget{widget("SELECT 1 FROM eds")}})
	if err != nil || len(up.Widgets) != 1 || up.Status != StatusUpdated || up.TerminationProtection {
		t.Fatalf("update: %v %+v", err, up)
	}
	if err := f.svc.Delete(ctx, region, "security"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, region, "security"); code(err) != "ResourceNotFoundException" {
		t.Errorf("get after delete: %v", err)
	}
}

func TestDashboardValidation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	many := make([]RequestWidget, 11)
	for i := range many {
		many[i] = widget("SELECT 1 FROM eds")
	}
	cases := []struct {
		name string
		in   CreateInput
		code string
		msg  string // a part of the message naming the rule broken
	}{
		{"short name", CreateInput{Name: "ab"}, "InvalidParameterException", "name"},
		{"bad name", CreateInput{Name: "a b c"}, "InvalidParameterException", "name"},
		{"eleven widgets", CreateInput{Name: "many", Widgets: many}, "ServiceQuotaExceededException", "at most 10 widgets"},
		{"bad parameter", CreateInput{Name: "param1", Widgets: []RequestWidget{widget("SELECT '?' FROM eds", "$Now$")}}, "InvalidParameterException", "$Now$"},
		{"marks and parameters differ", CreateInput{Name: "param2", Widgets: []RequestWidget{widget("SELECT '?', '?' FROM eds", "$StartTime$")}}, "InvalidParameterException", "2 ? marks"},
		{"no view properties", CreateInput{Name: "param3", Widgets: []RequestWidget{{QueryStatement: ptr("SELECT 1 FROM eds")}}}, "InvalidParameterException", "ViewProperties"},
		{"bad view property", CreateInput{Name: "param4", Widgets: []RequestWidget{{QueryStatement: ptr("SELECT 1 FROM eds"), ViewProperties: map[string]string{"View": "<script>"}}}}, "InvalidParameterException", "view property"},
		{"bad statement", CreateInput{Name: "param5", Widgets: []RequestWidget{widget("SELECT bad FROM eds")}}, "InvalidQueryStatementException", "bad statement"},
		{"bad frequency", CreateInput{Name: "param6", Schedule: &Schedule{Status: "ENABLED", Frequency: &Frequency{Unit: "HOURS", Value: 5}}}, "InvalidParameterException", "Frequency"},
		{"bad time of day", CreateInput{Name: "param7", Schedule: &Schedule{Status: "ENABLED", Frequency: &Frequency{Unit: "DAYS", Value: 1}, TimeOfDay: ptr("25:00")}}, "InvalidParameterException", "TimeOfDay"},
		{"enabled without frequency", CreateInput{Name: "param8", Schedule: &Schedule{Status: "ENABLED"}}, "InvalidParameterException", "needs a Frequency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := f.svc.Create(ctx, region, c.in)
			if code(err) != c.code || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %v, want %s about %q", err, c.code, c.msg)
			}
		})
	}
	if _, err := f.svc.StartRefresh(ctx, region, "nope", nil); code(err) != "ResourceNotFoundException" {
		t.Errorf("refresh of a missing dashboard: %v", err)
	}
}

func TestScheduledRefreshRuns(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, _, err := f.svc.Create(ctx, region, CreateInput{
		Name:     "hourly",
		Widgets:  []RequestWidget{widget("SELECT count(*) FROM eds")},
		Schedule: &Schedule{Status: "ENABLED", Frequency: &Frequency{Unit: "HOURS", Value: 6}, TimeOfDay: ptr("02:00")},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f.svc.Get(ctx, region, "hourly")
	if want := time.Date(2024, 5, 1, 14, 0, 0, 0, time.UTC); !d.NextRefresh.Equal(want) {
		t.Fatalf("next refresh %v, want %v (every 6 h from 02:00)", d.NextRefresh, want)
	}
	f.svc.runDue(ctx)
	if len(f.q.started) != 0 {
		t.Fatalf("refreshed before it was due")
	}
	f.now = time.Date(2024, 5, 1, 14, 0, 30, 0, time.UTC)
	f.svc.runDue(ctx)
	f.svc.runDue(ctx)
	if len(f.q.started) != 1 {
		t.Fatalf("due schedule ran %d times, want once", len(f.q.started))
	}
	d, _ = f.svc.Get(ctx, region, "hourly")
	if d.LastRefreshID == "" || !d.NextRefresh.Equal(time.Date(2024, 5, 1, 20, 0, 0, 0, time.UTC)) {
		t.Errorf("after the run: last %q next %v", d.LastRefreshID, d.NextRefresh)
	}
}

func TestListDashboards(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, n := range []string{"alpha", "beta", "alpine", "gamma"} {
		if _, _, err := f.svc.Create(ctx, region, CreateInput{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	page, next, err := f.svc.List(ctx, region, "al", "", 1, "")
	if err != nil || len(page) != 1 || page[0].Name != "alpha" || next != "alpha" {
		t.Fatalf("first page %v %q %v", page, next, err)
	}
	page, next, err = f.svc.List(ctx, region, "al", "", 1, next)
	if err != nil || len(page) != 1 || page[0].Name != "alpine" || next != "" {
		t.Fatalf("second page %v %q %v", page, next, err)
	}
	all, _, _ := f.svc.List(ctx, region, "", TypeCustom, 0, "")
	if len(all) != 4 {
		t.Errorf("all custom: %d", len(all))
	}
	if none, _, _ := f.svc.List(ctx, region, "", TypeManaged, 0, ""); len(none) != 0 {
		t.Errorf("managed: %d", len(none))
	}
}
