// Package dashboards holds CloudTrail Lake dashboards: named sets of up to
// ten widgets, each a Lake query with view properties for the console,
// refreshed on demand (StartDashboardRefresh) or on a schedule that Cairn
// actually runs.
//
// A refresh starts one query per widget through the query service, after
// putting the refresh's parameter values in place of the widget query's
// `?` marks (CloudTrail's QueryParameters: `$StartTime$`, `$EndTime$`,
// `$Period$`). The refresh's record maps each widget's QueryAlias to the
// query it started, which is how DescribeQuery answers QueryAlias +
// RefreshId.
package dashboards

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

// Dashboard types and statuses (the model's DashboardType and
// DashboardStatus).
const (
	TypeCustom  = "CUSTOM"
	TypeManaged = "MANAGED"

	StatusCreated = "CREATED"
	StatusUpdated = "UPDATED"
)

// Limits from the model.
const (
	maxWidgets      = 10
	maxParameters   = 10
	maxStatementLen = 10000
	maxDashboards   = 100
)

// Widget is a widget as stored and returned (the model's Widget).
type Widget struct {
	QueryAlias      string            `json:"QueryAlias"`
	QueryStatement  string            `json:"QueryStatement"`
	QueryParameters []string          `json:"QueryParameters,omitempty"`
	ViewProperties  map[string]string `json:"ViewProperties"`
}

// RequestWidget is a widget as given to Create and Update.
type RequestWidget struct {
	QueryStatement  *string           `json:"QueryStatement"`
	QueryParameters []string          `json:"QueryParameters"`
	ViewProperties  map[string]string `json:"ViewProperties"`
}

// Frequency is RefreshScheduleFrequency.
type Frequency struct {
	Unit  string `json:"Unit"`
	Value int    `json:"Value"`
}

// Schedule is RefreshSchedule.
type Schedule struct {
	Frequency *Frequency `json:"Frequency,omitempty"`
	Status    string     `json:"Status,omitempty"`
	TimeOfDay *string    `json:"TimeOfDay,omitempty"`
}

// Dashboard is one dashboard as stored.
type Dashboard struct {
	Name                  string    `json:"name"`
	Region                string    `json:"region"`
	AccountID             string    `json:"account"`
	Type                  string    `json:"type"`
	Status                string    `json:"status"`
	Widgets               []Widget  `json:"widgets"`
	Schedule              *Schedule `json:"schedule,omitempty"`
	TerminationProtection bool      `json:"terminationProtection"`
	Created               time.Time `json:"created"`
	Updated               time.Time `json:"updated"`
	LastRefreshID         string    `json:"lastRefreshId,omitempty"`
	LastRefreshFailure    string    `json:"lastRefreshFailure,omitempty"`
	// NextRefresh is when the schedule runs next (zero: no schedule).
	NextRefresh time.Time `json:"nextRefresh,omitzero"`
}

// ARN is the dashboard's ARN.
func (d *Dashboard) ARN() string { return ARN(d.Region, d.AccountID, d.Name) }

// ARN builds a dashboard ARN.
func ARN(region, account, name string) string {
	return "arn:aws:cloudtrail:" + region + ":" + account + ":dashboard/" + name
}

// Refresh is one run of a dashboard's widget queries.
type Refresh struct {
	ID      string            `json:"id"`
	Started time.Time         `json:"started"`
	Queries map[string]string `json:"queries"` // QueryAlias → QueryId
}

// Queries starts Lake queries: the query service, seen narrowly.
type Queries interface {
	// Check validates a statement as StartQuery would (its store
	// references and SQL), without running it.
	Check(ctx context.Context, region, statement string) error
	// Start starts a query and returns its ID.
	Start(ctx context.Context, region, statement string) (string, error)
}

// Options tune a Service.
type Options struct {
	Clock  func() time.Time
	Logger *slog.Logger
}

// Service owns the dashboards.
type Service struct {
	st      *state.Store
	queries Queries
	account string
	clock   func() time.Time
	log     *slog.Logger
}

// New returns the dashboard service.
func New(st *state.Store, queries Queries, accountID string, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{st: st, queries: queries, account: accountID, clock: opts.Clock, log: opts.Logger}
}

func (s *Service) now() time.Time { return s.clock().UTC() }

// State keys: "lakedash/<region>/<name>" holds a Dashboard,
// "lakedashrefresh/<region>/<name>/<refreshID>" a Refresh.
const (
	dashPrefix    = "lakedash/"
	refreshPrefix = "lakedashrefresh/"
)

func dashKey(region, name string) string { return dashPrefix + region + "/" + name }
func refreshKey(region, name, id string) string {
	return refreshPrefix + region + "/" + name + "/" + id
}

var (
	nameRE      = regexp.MustCompile(`^[a-zA-Z0-9_\-]{3,128}$`)
	viewKeyRE   = regexp.MustCompile(`^[a-zA-Z0-9._\-]{3,128}$`)
	viewValueRE = regexp.MustCompile(`^[a-zA-Z0-9._\- ]{1,128}$`)
	timeOfDayRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	arnRE       = regexp.MustCompile(`^arn:aws:cloudtrail:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):dashboard/([a-zA-Z0-9_\-]{3,128})$`)
)

// Parameters a widget may name.
var validParameters = []string{"$StartTime$", "$EndTime$", "$Period$"}

func invalid(format string, args ...any) error {
	return awsproto.Errorf("InvalidParameterException", format, args...)
}

func notFound(ref string) error {
	return awsproto.Errorf("ResourceNotFoundException", "The dashboard %s was not found.", ref)
}

// ref resolves a DashboardId (a name or an ARN) to region and name.
func (s *Service) ref(region, id string) (string, string, error) {
	if m := arnRE.FindStringSubmatch(id); m != nil {
		if m[2] != s.account {
			return "", "", notFound(id)
		}
		return m[1], m[3], nil
	}
	if !nameRE.MatchString(id) {
		return "", "", notFound(id)
	}
	return region, id, nil
}

// buildWidgets validates request widgets and gives each its QueryAlias.
func (s *Service) buildWidgets(ctx context.Context, region, name string, in []RequestWidget) ([]Widget, error) {
	if len(in) > maxWidgets {
		return nil, awsproto.Errorf("ServiceQuotaExceededException", "A dashboard has at most %d widgets; %d were given.", maxWidgets, len(in))
	}
	out := make([]Widget, 0, len(in))
	for i, w := range in {
		if w.QueryStatement == nil || *w.QueryStatement == "" || len(*w.QueryStatement) > maxStatementLen {
			return nil, invalid("Widget %d needs a QueryStatement of 1 to %d characters.", i+1, maxStatementLen)
		}
		if w.ViewProperties == nil {
			return nil, invalid("Widget %d needs ViewProperties.", i+1)
		}
		for k, v := range w.ViewProperties {
			if !viewKeyRE.MatchString(k) || !viewValueRE.MatchString(v) {
				return nil, invalid("Widget %d: view property %q=%q is not valid (keys of 3 to 128 of letters, digits . _ -; values of 1 to 128 of those and spaces).", i+1, k, v)
			}
		}
		if w.QueryParameters != nil && (len(w.QueryParameters) < 1 || len(w.QueryParameters) > maxParameters) {
			return nil, invalid("Widget %d: QueryParameters takes 1 to %d parameters.", i+1, maxParameters)
		}
		for _, p := range w.QueryParameters {
			if !slices.Contains(validParameters, p) {
				return nil, invalid("Widget %d: query parameter %q is not valid; the valid ones are %s.", i+1, p, strings.Join(validParameters, ", "))
			}
		}
		if n := strings.Count(*w.QueryStatement, "?"); n != len(w.QueryParameters) {
			return nil, invalid("Widget %d: the query has %d ? marks but %d QueryParameters.", i+1, n, len(w.QueryParameters))
		}
		stmt := substitute(*w.QueryStatement, w.QueryParameters, sampleValues(s.now()))
		if err := s.queries.Check(ctx, region, stmt); err != nil {
			return nil, err
		}
		out = append(out, Widget{
			QueryAlias:      fmt.Sprintf("%s-widget-%d", name, i+1),
			QueryStatement:  *w.QueryStatement,
			QueryParameters: slices.Clone(w.QueryParameters),
			ViewProperties:  w.ViewProperties,
		})
	}
	return out, nil
}

// checkSchedule validates a RefreshSchedule.
func checkSchedule(sc *Schedule) error {
	if sc == nil {
		return nil
	}
	switch sc.Status {
	case "", "ENABLED", "DISABLED":
	default:
		return invalid("RefreshSchedule Status %q is not valid: ENABLED or DISABLED.", sc.Status)
	}
	if sc.Frequency != nil {
		switch {
		case sc.Frequency.Unit == "HOURS" && slices.Contains([]int{1, 6, 12}, sc.Frequency.Value):
		case sc.Frequency.Unit == "DAYS" && sc.Frequency.Value == 1:
		default:
			return invalid("RefreshSchedule Frequency %d %s is not valid: HOURS takes 1, 6 or 12; DAYS takes 1.", sc.Frequency.Value, sc.Frequency.Unit)
		}
	}
	if sc.TimeOfDay != nil && !timeOfDayRE.MatchString(*sc.TimeOfDay) {
		return invalid("RefreshSchedule TimeOfDay %q is not valid: HH:MM in UTC.", *sc.TimeOfDay)
	}
	if sc.Status == "ENABLED" && sc.Frequency == nil {
		return invalid("An ENABLED RefreshSchedule needs a Frequency.")
	}
	return nil
}

// nextRun is when an enabled schedule runs next after now.
func nextRun(sc *Schedule, now time.Time) time.Time {
	if sc == nil || sc.Status != "ENABLED" || sc.Frequency == nil {
		return time.Time{}
	}
	step := time.Duration(sc.Frequency.Value) * time.Hour
	if sc.Frequency.Unit == "DAYS" {
		step = time.Duration(sc.Frequency.Value) * 24 * time.Hour
	}
	anchor := now.Truncate(24 * time.Hour)
	if sc.TimeOfDay != nil {
		t, _ := time.Parse("15:04", *sc.TimeOfDay)
		anchor = anchor.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute)
	}
	for anchor.After(now) {
		anchor = anchor.Add(-step)
	}
	for !anchor.After(now) {
		anchor = anchor.Add(step)
	}
	return anchor
}

// CreateInput is CreateDashboard's input.
type CreateInput struct {
	Name                  string
	Widgets               []RequestWidget
	Schedule              *Schedule
	TerminationProtection *bool
	Tags                  []tags.Tag
}

// Create creates a custom dashboard.
func (s *Service) Create(ctx context.Context, region string, in CreateInput) (Dashboard, []tags.Tag, error) {
	if !nameRE.MatchString(in.Name) {
		return Dashboard{}, nil, invalid("Dashboard name %q is not valid: 3 to 128 letters, digits, _ and -.", in.Name)
	}
	if err := checkSchedule(in.Schedule); err != nil {
		return Dashboard{}, nil, err
	}
	if err := tags.Validate(in.Tags); err != nil {
		return Dashboard{}, nil, err
	}
	tagList, err := tags.Merge(nil, in.Tags)
	if err != nil {
		return Dashboard{}, nil, err
	}
	widgets, err := s.buildWidgets(ctx, region, in.Name, in.Widgets)
	if err != nil {
		return Dashboard{}, nil, err
	}
	now := s.now()
	d := Dashboard{
		Name: in.Name, Region: region, AccountID: s.account, Type: TypeCustom, Status: StatusCreated,
		Widgets: widgets, Schedule: in.Schedule, Created: now, Updated: now,
		TerminationProtection: in.TerminationProtection != nil && *in.TerminationProtection,
		NextRefresh:           nextRun(in.Schedule, now),
	}
	err = s.st.Update(ctx, func(tx *state.Tx) error {
		var existing Dashboard
		ok, err := tx.Get(dashKey(region, in.Name), &existing)
		if err != nil {
			return err
		}
		if ok {
			return awsproto.Errorf("ConflictException", "A dashboard named %s already exists.", in.Name)
		}
		n := 0
		if err := tx.Scan(dashPrefix+region+"/", func(string, []byte) error { n++; return nil }); err != nil {
			return err
		}
		if n >= maxDashboards {
			return awsproto.Errorf("ServiceQuotaExceededException", "The region already has %d dashboards, the most it may have.", maxDashboards)
		}
		if err := tx.Put(dashKey(region, in.Name), &d); err != nil {
			return err
		}
		return tags.Save(tx, d.ARN(), tagList)
	})
	if err != nil {
		return Dashboard{}, nil, err
	}
	return d, tagList, nil
}

// Get returns a dashboard.
func (s *Service) Get(ctx context.Context, region, id string) (Dashboard, error) {
	r, name, err := s.ref(region, id)
	if err != nil {
		return Dashboard{}, err
	}
	var d Dashboard
	err = s.st.View(ctx, func(rd state.Reader) error {
		ok, err := rd.Get(dashKey(r, name), &d)
		if err == nil && !ok {
			err = notFound(id)
		}
		return err
	})
	return d, err
}

// UpdateInput is UpdateDashboard's input; nil members are unchanged.
// Widgets, when given, replace the whole list.
type UpdateInput struct {
	Widgets               []RequestWidget
	Schedule              *Schedule
	TerminationProtection *bool
}

// Update changes a dashboard.
func (s *Service) Update(ctx context.Context, region, id string, in UpdateInput) (Dashboard, error) {
	r, name, err := s.ref(region, id)
	if err != nil {
		return Dashboard{}, err
	}
	if err := checkSchedule(in.Schedule); err != nil {
		return Dashboard{}, err
	}
	var widgets []Widget
	if in.Widgets != nil {
		if widgets, err = s.buildWidgets(ctx, r, name, in.Widgets); err != nil {
			return Dashboard{}, err
		}
	}
	var out Dashboard
	err = s.st.Update(ctx, func(tx *state.Tx) error {
		var d Dashboard
		ok, err := tx.Get(dashKey(r, name), &d)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(id)
		}
		now := s.now()
		if in.Widgets != nil {
			d.Widgets = widgets
		}
		if in.Schedule != nil {
			d.Schedule = in.Schedule
			d.NextRefresh = nextRun(in.Schedule, now)
		}
		if in.TerminationProtection != nil {
			d.TerminationProtection = *in.TerminationProtection
		}
		d.Status, d.Updated = StatusUpdated, now
		out = d
		return tx.Put(dashKey(r, name), &d)
	})
	return out, err
}

// Delete deletes a dashboard, its refreshes and its tags.
func (s *Service) Delete(ctx context.Context, region, id string) error {
	r, name, err := s.ref(region, id)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *state.Tx) error {
		var d Dashboard
		ok, err := tx.Get(dashKey(r, name), &d)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(id)
		}
		if d.TerminationProtection {
			return awsproto.Errorf("ConflictException", "The dashboard %s has termination protection enabled; disable it before deleting the dashboard.", name)
		}
		var refreshes []string
		if err := tx.Scan(refreshPrefix+r+"/"+name+"/", func(k string, _ []byte) error { refreshes = append(refreshes, k); return nil }); err != nil {
			return err
		}
		for _, k := range refreshes {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		if err := tags.Delete(tx, d.ARN()); err != nil {
			return err
		}
		return tx.Delete(dashKey(r, name))
	})
}

// List returns the region's dashboards in name order, a page at a time.
func (s *Service) List(ctx context.Context, region, namePrefix, typ string, maxResults int, nextToken string) ([]Dashboard, string, error) {
	if maxResults == 0 {
		maxResults = 1000
	}
	if maxResults < 1 || maxResults > 1000 {
		return nil, "", invalid("MaxResults %d is not valid: 1 to 1000.", maxResults)
	}
	var out []Dashboard
	next := ""
	err := s.st.View(ctx, func(r state.Reader) error {
		return r.Scan(dashPrefix+region+"/", func(_ string, v []byte) error {
			var d Dashboard
			if err := decode(v, &d); err != nil {
				return err
			}
			if !strings.HasPrefix(d.Name, namePrefix) || (typ != "" && d.Type != typ) || (nextToken != "" && d.Name <= nextToken) {
				return nil
			}
			if len(out) == maxResults {
				next = out[len(out)-1].Name
				return errStopScan
			}
			out = append(out, d)
			return nil
		})
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, next, err
}

var errStopScan = errors.New("stop scan")

// StartRefresh runs every widget's query now and returns the refresh ID.
// values gives the parameters' values; missing ones default to the last
// day ($StartTime$ a day before now, $EndTime$ now, $Period$ "1h").
func (s *Service) StartRefresh(ctx context.Context, region, id string, values map[string]string) (string, error) {
	for k := range values {
		if !slices.Contains(validParameters, k) {
			return "", invalid("Query parameter %q is not valid; the valid ones are %s.", k, strings.Join(validParameters, ", "))
		}
	}
	d, err := s.Get(ctx, region, id)
	if err != nil {
		return "", err
	}
	return s.refresh(ctx, d, values)
}

func (s *Service) refresh(ctx context.Context, d Dashboard, values map[string]string) (string, error) {
	now := s.now()
	vals := sampleValues(now)
	for k, v := range values {
		vals[k] = v
	}
	refreshID, err := newRefreshID()
	if err != nil {
		return "", err
	}
	rf := Refresh{ID: refreshID, Started: now, Queries: map[string]string{}}
	var failure string
	for _, w := range d.Widgets {
		qid, err := s.queries.Start(ctx, d.Region, substitute(w.QueryStatement, w.QueryParameters, vals))
		if err != nil {
			failure = fmt.Sprintf("widget %s: %v", w.QueryAlias, err)
			break
		}
		rf.Queries[w.QueryAlias] = qid
	}
	err = s.st.Update(ctx, func(tx *state.Tx) error {
		var cur Dashboard
		ok, err := tx.Get(dashKey(d.Region, d.Name), &cur)
		if err != nil || !ok {
			return err
		}
		cur.LastRefreshID, cur.LastRefreshFailure = refreshID, failure
		if err := tx.Put(dashKey(d.Region, d.Name), &cur); err != nil {
			return err
		}
		return tx.Put(refreshKey(d.Region, d.Name, refreshID), &rf)
	})
	if err != nil {
		return "", err
	}
	return refreshID, nil
}

// QueryFor returns the query a refresh started for a widget alias: what
// DescribeQuery with QueryAlias and RefreshId names.
func (s *Service) QueryFor(ctx context.Context, region, alias, refreshID string) (string, error) {
	var qid string
	err := s.st.View(ctx, func(r state.Reader) error {
		return r.Scan(refreshPrefix+region+"/", func(k string, v []byte) error {
			if !strings.HasSuffix(k, "/"+refreshID) {
				return nil
			}
			var rf Refresh
			if err := decode(v, &rf); err != nil {
				return err
			}
			if id, ok := rf.Queries[alias]; ok {
				qid = id
			}
			return nil
		})
	})
	if err == nil && qid == "" {
		err = awsproto.Errorf("QueryIdNotFoundException", "No query of widget %s in refresh %s was found.", alias, refreshID)
	}
	return qid, err
}

// Statement returns the statement of the widget with the alias, with
// values in place of its parameters: StartQuery with QueryAlias and
// QueryParameters.
func (s *Service) Statement(ctx context.Context, region, alias string, values []string) (string, error) {
	var found *Widget
	err := s.st.View(ctx, func(r state.Reader) error {
		return r.Scan(dashPrefix+region+"/", func(_ string, v []byte) error {
			var d Dashboard
			if err := decode(v, &d); err != nil {
				return err
			}
			for i := range d.Widgets {
				if d.Widgets[i].QueryAlias == alias {
					found = &d.Widgets[i]
				}
			}
			return nil
		})
	})
	if err != nil {
		return "", err
	}
	if found == nil {
		return "", invalid("No dashboard widget has the QueryAlias %s.", alias)
	}
	if len(values) != len(found.QueryParameters) {
		return "", invalid("The widget %s takes %d QueryParameters; %d were given.", alias, len(found.QueryParameters), len(values))
	}
	vals := map[string]string{}
	for i, p := range found.QueryParameters {
		vals[p] = values[i]
	}
	return substitute(found.QueryStatement, found.QueryParameters, vals), nil
}

// RunSchedules refreshes dashboards whose schedule is due, checking once a
// minute, until ctx ends.
func (s *Service) RunSchedules(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		s.runDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) runDue(ctx context.Context) {
	now := s.now()
	var due []Dashboard
	err := s.st.View(ctx, func(r state.Reader) error {
		return r.Scan(dashPrefix, func(_ string, v []byte) error {
			var d Dashboard
			if err := decode(v, &d); err != nil {
				return err
			}
			if !d.NextRefresh.IsZero() && !d.NextRefresh.After(now) {
				due = append(due, d)
			}
			return nil
		})
	})
	if err != nil {
		s.log.Error("dashboards: read schedules", "err", err)
		return
	}
	for _, d := range due {
		// Move the schedule on first, so a failing refresh is not retried
		// every minute.
		err := s.st.Update(ctx, func(tx *state.Tx) error {
			var cur Dashboard
			ok, err := tx.Get(dashKey(d.Region, d.Name), &cur)
			if err != nil || !ok {
				return err
			}
			cur.NextRefresh = nextRun(cur.Schedule, now)
			return tx.Put(dashKey(d.Region, d.Name), &cur)
		})
		if err != nil {
			s.log.Error("dashboards: advance schedule", "dashboard", d.Name, "err", err)
			continue
		}
		if _, err := s.refresh(ctx, d, nil); err != nil {
			s.log.Error("dashboards: scheduled refresh", "dashboard", d.Name, "err", err)
		}
	}
}

// sampleValues are the parameters' default values at now.
func sampleValues(now time.Time) map[string]string {
	const layout = "2006-01-02 15:04:05"
	return map[string]string{
		"$StartTime$": now.Add(-24 * time.Hour).Format(layout),
		"$EndTime$":   now.Format(layout),
		"$Period$":    "1h",
	}
}

// substitute puts the parameters' values in place of the statement's ?
// marks, in order. Values are quoted as SQL string content (a ' doubles),
// so a value cannot end its literal; the widget's own quotes around '?'
// stay as they are, as CloudTrail asks.
func substitute(stmt string, params []string, vals map[string]string) string {
	var b strings.Builder
	i := 0
	for _, r := range stmt {
		if r == '?' && i < len(params) {
			b.WriteString(strings.ReplaceAll(vals[params[i]], "'", "''"))
			i++
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// newRefreshID is a random ID of 10 to 20 digits, the model's form.
func newRefreshID() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(9e15))
	if err != nil {
		return "", fmt.Errorf("dashboards: refresh id: %w", err)
	}
	return fmt.Sprintf("%016d", n.Int64()+1e15), nil
}

func decode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("dashboards: decode stored dashboard: %w", err)
	}
	return nil
}

// ResourceExists reports whether a dashboard ARN names a dashboard, for
// the tagging service (AddTags, ListTags and RemoveTags on dashboards).
func (s *Service) ResourceExists(_ context.Context, r state.Reader, arn string) (bool, error) {
	m := arnRE.FindStringSubmatch(arn)
	if m == nil || m[2] != s.account {
		return false, nil
	}
	var d Dashboard
	return r.Get(dashKey(m[1], m[3]), &d)
}
