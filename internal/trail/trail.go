// Package trail is the trail control plane: creating, changing, deleting
// and describing trails, their logging state, event selectors and Insights
// selectors, with every rule CloudTrail applies, persisted in the state
// store so that each acknowledged change survives a crash.
//
// Every method takes the caller's region, because a trail is a regional
// resource with a home region: a multi-region trail appears as a "shadow"
// in every other region, where it can be read but not changed.
package trail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
)

// BucketChecker tells whether a bucket exists; the object store satisfies
// it. A trail may only name a bucket that exists, as on AWS.
type BucketChecker interface {
	BucketExists(ctx context.Context, bucket string) (bool, error)
}

// ErrNotFound is returned by the methods other packages call (ByARN and
// the Record* delivery methods) when the trail does not exist, so that a
// delivery racing a DeleteTrail can tell "gone" from a failure.
var ErrNotFound = errors.New("trail: not found")

// Trail is a trail as stored. It is also what other packages get: delivery
// reads its destination and selectors, the API layer turns it into the wire
// shapes.
type Trail struct {
	Name       string
	HomeRegion string
	AccountID  string

	S3BucketName string
	S3KeyPrefix  string `json:",omitempty"`
	// SnsTopicName is what the caller gave (name or ARN); SnsTopicARN is
	// derived from it.
	SnsTopicName string `json:",omitempty"`
	SnsTopicARN  string `json:",omitempty"`

	IncludeGlobalServiceEvents bool
	IsMultiRegionTrail         bool
	LogFileValidationEnabled   bool
	IsOrganizationTrail        bool

	CloudWatchLogsLogGroupArn string `json:",omitempty"`
	CloudWatchLogsRoleArn     string `json:",omitempty"`
	// KmsKeyId is always a full ARN, whatever form the caller used.
	KmsKeyId string `json:",omitempty"`

	// EventSelectors and AdvancedEventSelectors are the stored selectors;
	// at most one of them is non-empty. Both empty means the default
	// selection; use Selectors for the effective ones.
	EventSelectors          []selector.EventSelector         `json:",omitempty"`
	AdvancedEventSelectors  []selector.AdvancedEventSelector `json:",omitempty"`
	HasCustomEventSelectors bool
	InsightSelectors        []selector.InsightSelector `json:",omitempty"`

	Status Status

	CreatedTime time.Time
	UpdatedTime time.Time
}

// ARN is the trail's ARN; it always names the home region.
func (t *Trail) ARN() string { return TrailARN(t.HomeRegion, t.AccountID, t.Name) }

// HasInsightSelectors reports whether Insights is enabled.
func (t *Trail) HasInsightSelectors() bool { return len(t.InsightSelectors) > 0 }

// Selectors returns the effective selectors: the advanced ones if set,
// otherwise the basic ones, otherwise the default selection.
func (t *Trail) Selectors() ([]selector.EventSelector, []selector.AdvancedEventSelector) {
	if len(t.AdvancedEventSelectors) > 0 {
		return nil, t.AdvancedEventSelectors
	}
	if len(t.EventSelectors) > 0 {
		return t.EventSelectors, nil
	}
	return selector.Default(), nil
}

// Selects reports whether the trail logs ev according to its selectors.
func (t *Trail) Selects(ev *selector.Event) bool {
	return selector.Match(t.EventSelectors, t.AdvancedEventSelectors, ev)
}

// VisibleIn reports whether the trail appears in region: in its home region
// and, for a multi-region trail, as a shadow trail everywhere else.
func (t *Trail) VisibleIn(region string) bool {
	return t.HomeRegion == region || t.IsMultiRegionTrail
}

// Status is the logging and delivery state GetTrailStatus reports. Zero
// times mean "never".
type Status struct {
	IsLogging        bool
	StartLoggingTime time.Time `json:",omitzero"`
	StopLoggingTime  time.Time `json:",omitzero"`

	LatestDeliveryTime             time.Time `json:",omitzero"`
	LatestDeliveryError            string    `json:",omitempty"`
	LatestDeliveryAttemptTime      time.Time `json:",omitzero"`
	LatestDeliveryAttemptSucceeded time.Time `json:",omitzero"`

	LatestNotificationTime             time.Time `json:",omitzero"`
	LatestNotificationError            string    `json:",omitempty"`
	LatestNotificationAttemptTime      time.Time `json:",omitzero"`
	LatestNotificationAttemptSucceeded time.Time `json:",omitzero"`

	LatestDigestDeliveryTime  time.Time `json:",omitzero"`
	LatestDigestDeliveryError string    `json:",omitempty"`

	LatestCloudWatchLogsDeliveryTime  time.Time `json:",omitzero"`
	LatestCloudWatchLogsDeliveryError string    `json:",omitempty"`
}

// StatusTimeFormat is how GetTrailStatus writes its string-typed times
// (TimeLoggingStarted, LatestDeliveryAttemptTime...): ISO 8601 in UTC to
// the second, e.g. "2024-05-01T10:00:00Z".
const StatusTimeFormat = "2006-01-02T15:04:05Z"

// FormatStatusTime formats t for the string-typed status fields; the zero
// time is "", which is what CloudTrail returns for "never".
func FormatStatusTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(StatusTimeFormat)
}

// Service implements the trail operations.
type Service struct {
	store     *state.Store
	buckets   BucketChecker
	accountID string
	clock     func() time.Time
	pageSize  int
	log       *slog.Logger
	// changed is called after a change that affects delivery has been
	// committed; nil means nobody listens.
	changed func(ctx context.Context)
	// topicExists says whether a notification topic is configured; nil
	// accepts any well-formed topic.
	topicExists func(nameOrARN string) bool
}

// Option tunes New.
type Option func(*Service)

// WithListPageSize sets how many trails one ListTrails page holds.
func WithListPageSize(n int) Option {
	return func(s *Service) {
		if n > 0 {
			s.pageSize = n
		}
	}
}

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) {
		if l != nil {
			s.log = l
		}
	}
}

// WithChangeHook registers fn to be called after every committed change
// that affects what a trail delivers (create, update, delete, start and
// stop logging, selectors), so that delivery applies it at once instead of
// at its next poll: a stop followed quickly by a start must not lose the
// events in between.
func WithChangeHook(fn func(ctx context.Context)) Option {
	return func(s *Service) { s.changed = fn }
}

// WithTopicCheck makes CreateTrail and UpdateTrail refuse SnsTopicName
// values that name no configured notification topic, as CloudTrail refuses
// topics it cannot publish to.
func WithTopicCheck(exists func(nameOrARN string) bool) Option {
	return func(s *Service) { s.topicExists = exists }
}

// notifyChanged tells the change hook, if any.
func (s *Service) notifyChanged(ctx context.Context) {
	if s.changed != nil {
		s.changed(ctx)
	}
}

// DefaultListPageSize is the ListTrails page size unless WithListPageSize
// says otherwise.
const DefaultListPageSize = 50

// New creates the trail service for one account. clock is nil for
// time.Now; tests pass a fixed clock so that responses are reproducible.
func New(store *state.Store, buckets BucketChecker, accountID string, clock func() time.Time, opts ...Option) *Service {
	if clock == nil {
		clock = time.Now
	}
	s := &Service{store: store, buckets: buckets, accountID: accountID, clock: clock, pageSize: DefaultListPageSize, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// AccountID is the account the service's trails belong to.
func (s *Service) AccountID() string { return s.accountID }

func (s *Service) now() time.Time { return s.clock().UTC() }

// Keys: "trail/<home-region>/<name>". Region-first order makes ListTrails
// pages come out grouped by region and lets a region's trails be scanned
// by prefix.
const trailPrefix = "trail/"

func trailKey(region, name string) string { return trailPrefix + region + "/" + name }

// loadAll reads every trail of the account, in key order.
func loadAll(r state.Reader) ([]Trail, error) {
	var out []Trail
	err := r.Scan(trailPrefix, func(key string, value []byte) error {
		var t Trail
		if err := json.Unmarshal(value, &t); err != nil {
			return fmt.Errorf("trail: decode %s: %w", key, err)
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trail: list trails: %w", err)
	}
	return out, nil
}

func load(r state.Reader, region, name string) (Trail, bool, error) {
	var t Trail
	ok, err := r.Get(trailKey(region, name), &t)
	if err != nil {
		return Trail{}, false, fmt.Errorf("trail: load %s/%s: %w", region, name, err)
	}
	return t, ok, nil
}

func put(tx *state.Tx, t *Trail) error {
	if err := tx.Put(trailKey(t.HomeRegion, t.Name), t); err != nil {
		return fmt.Errorf("trail: save %s: %w", t.ARN(), err)
	}
	return nil
}

func (s *Service) notFound(what string) error {
	return awsproto.Errorf("TrailNotFoundException", "Unknown trail: %s for the user: %s", what, s.accountID)
}

// find resolves a parsed reference as seen from region: a name is the trail
// of that name visible in the region (its own or a shadow); an ARN is the
// trail with that home region and name, wherever the caller is.
func (s *Service) find(r state.Reader, region string, ref ref) (Trail, bool, error) {
	if ref.isARN {
		if ref.account != s.accountID {
			return Trail{}, false, nil
		}
		return load(r, ref.region, ref.name)
	}
	t, ok, err := load(r, region, ref.name)
	if err != nil || ok {
		return t, ok, err
	}
	all, err := loadAll(r)
	if err != nil {
		return Trail{}, false, err
	}
	for _, t := range all {
		if t.Name == ref.name && t.IsMultiRegionTrail {
			return t, true, nil
		}
	}
	return Trail{}, false, nil
}

// resolve finds a trail for a read; a missing trail is TrailNotFoundException.
func (s *Service) resolve(r state.Reader, region, nameOrARN string) (Trail, error) {
	ref, err := parseRef(nameOrARN)
	if err != nil {
		return Trail{}, err
	}
	t, ok, err := s.find(r, region, ref)
	if err != nil {
		return Trail{}, err
	}
	if !ok {
		return Trail{}, s.notFound(nameOrARN)
	}
	return t, nil
}

// resolveHome finds a trail for a change, which CloudTrail only allows in
// the trail's home region (InvalidHomeRegionException elsewhere, shadow
// trails included).
func (s *Service) resolveHome(r state.Reader, region, nameOrARN string) (Trail, error) {
	t, err := s.resolve(r, region, nameOrARN)
	if err != nil {
		return Trail{}, err
	}
	if t.HomeRegion != region {
		return Trail{}, awsproto.Errorf("InvalidHomeRegionException",
			"The trail %s can only be changed in its home region, %s; this request was made in %s.", t.ARN(), t.HomeRegion, region)
	}
	return t, nil
}

// countIn is how many trails count against region's limit: its own trails
// plus the shadows of multi-region trails from other home regions.
func countIn(all []Trail, region string) int {
	n := 0
	for i := range all {
		if all[i].VisibleIn(region) {
			n++
		}
	}
	return n
}

func (s *Service) tooMany(region string) error {
	return awsproto.Errorf("MaximumNumberOfTrailsExceededException",
		"User: %s already has %d trails in %s.", s.accountID, MaxTrailsPerRegion, region)
}

// checkRoom verifies that adding t (new, or becoming multi-region) keeps
// every region it appears in within the limit. others excludes t itself.
func (s *Service) checkRoom(others []Trail, t *Trail) error {
	if countIn(others, t.HomeRegion) >= MaxTrailsPerRegion {
		return s.tooMany(t.HomeRegion)
	}
	if !t.IsMultiRegionTrail {
		return nil
	}
	// A multi-region trail appears in every region; only regions that
	// already hold trails can be full.
	seen := map[string]bool{t.HomeRegion: true}
	for i := range others {
		r := others[i].HomeRegion
		if seen[r] {
			continue
		}
		seen[r] = true
		if countIn(others, r) >= MaxTrailsPerRegion {
			return s.tooMany(r)
		}
	}
	return nil
}

// checkNameFree verifies no other trail with t's name is visible wherever t
// will be visible: names are unique per region, shadows included.
func (s *Service) checkNameFree(others []Trail, t *Trail) error {
	for i := range others {
		o := &others[i]
		if o.Name != t.Name {
			continue
		}
		if o.VisibleIn(t.HomeRegion) || t.VisibleIn(o.HomeRegion) {
			return awsproto.Errorf("TrailAlreadyExistsException", "Trail %s already exists for customer: %s", t.Name, s.accountID)
		}
	}
	return nil
}

func without(all []Trail, t *Trail) []Trail {
	out := make([]Trail, 0, len(all))
	for _, o := range all {
		if o.HomeRegion == t.HomeRegion && o.Name == t.Name {
			continue
		}
		out = append(out, o)
	}
	return out
}

// bucketMustExist checks the destination bucket with the object store.
func (s *Service) bucketMustExist(ctx context.Context, bucket string) error {
	if s.buckets == nil {
		return awsproto.Internal(errors.New("trail: no bucket checker configured"))
	}
	ok, err := s.buckets.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("trail: check that bucket %s exists: %w", bucket, err)
	}
	if !ok {
		return awsproto.Errorf("S3BucketDoesNotExistException", "S3 bucket %s does not exist!", bucket)
	}
	return nil
}

func organizationsNotInUse() error {
	return awsproto.Errorf("OrganizationsNotInUseException",
		"This account is not a member of an organization. Cairn does not implement AWS Organizations, so organization trails cannot be created; set IsOrganizationTrail to false.")
}
