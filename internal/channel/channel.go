// Package channel is CloudTrail Lake's channels: the named, regional
// intake points that applications send their own audit events to with the
// cloudtrail-data PutAuditEvents API.
//
// The package owns three things:
//
//   - the channel configuration (CreateChannel ... DeleteChannel and the
//     channel's resource-based policy), persisted in the state store so that
//     every acknowledged change survives a crash;
//   - PutAuditEvents itself: decoding the request, validating every event
//     the way CloudTrail does, and turning each accepted event into one
//     journal entry (see record.go for the record layout);
//   - each channel's IngestionStatus, which changes on every PutAuditEvents
//     call and is therefore kept in memory and written back in the
//     background (see status.go), never on the ingestion hot path.
//
// Every method takes the caller's region: a channel is a regional resource
// and a bare channel UUID means the channel in the caller's region.
package channel

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

// Limits from the CloudTrail model and quota table (reference §1.3, §7).
const (
	// MaxPerRegion is the channel quota ("25 integration channels").
	MaxPerRegion    = 25
	minNameLen      = 3
	maxNameLen      = 128
	maxDestinations = 200
	minLocationLen  = 3
	maxLocationLen  = 1024
	// MaxListResults bounds ListChannels' MaxResults.
	MaxListResults = 1000
)

// SourceCustom is the only channel source Cairn supports: events from the
// caller's own applications. Partner sources (and AWS's one-channel-per-
// partner-source rule) need partner onboarding Cairn does not have.
const SourceCustom = "Custom"

// Destination types of the model's DestinationType enum.
const (
	DestinationEventDataStore = "EVENT_DATA_STORE"
	DestinationAWSService     = "AWS_SERVICE"
)

// Destination is where a channel's events go; its JSON form is the wire
// shape.
type Destination struct {
	Type     string `json:"Type"`
	Location string `json:"Location"`
}

// Channel is a channel as stored.
type Channel struct {
	ID           string
	Region       string
	AccountID    string
	Name         string
	Source       string
	Destinations []Destination
	// ResourcePolicy is the resource-based policy document exactly as the
	// caller gave it; empty when the channel has none.
	ResourcePolicy string `json:",omitempty"`
	// ExternalIDs are the values the policy's
	// StringEquals{"cloudtrail:ExternalId": ...} conditions accept. They
	// are derived once in PutResourcePolicy so that PutAuditEvents never
	// parses a policy. Empty means no external ID is required.
	ExternalIDs []string `json:",omitempty"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ARN is the channel's ARN.
func (c *Channel) ARN() string { return ARN(c.Region, c.AccountID, c.ID) }

// SourceSelectors is GetChannel's SourceConfig: a channel of source Custom
// takes events from the caller's region only and selects exactly the
// ActivityAuditLog category, the only category PutAuditEvents produces.
func (c *Channel) SourceSelectors() (applyToAllRegions bool, selectors []selector.AdvancedEventSelector) {
	return false, []selector.AdvancedEventSelector{{
		FieldSelectors: []selector.FieldSelector{{Field: "eventCategory", Equals: []string{EventCategoryActivityAuditLog}}},
	}}
}

// deliversToService reports whether the channel is service-linked, i.e.
// an AWS service feeds it. Such channels do not take PutAuditEvents.
func (c *Channel) deliversToService() bool {
	for _, d := range c.Destinations {
		if d.Type == DestinationAWSService {
			return true
		}
	}
	return false
}

// Options tune New.
type Options struct {
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives cairn_channel_* metrics.
	Registerer prometheus.Registerer
	// FlushInterval is how often Run writes changed ingestion statuses
	// back; zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// EventDataStores checks EVENT_DATA_STORE destinations; nil checks
	// their form only.
	EventDataStores EventDataStores
	// OnChange, if set, is called after a channel is created, changed or
	// deleted and before the call returns, so that the stores' ingestion
	// knows which channels feed which store before any event of the
	// channel can reach the journal.
	OnChange func(ctx context.Context)
}

// EventDataStores is what channels need of CloudTrail Lake: whether a
// destination store exists, is active and selects ActivityAuditLog
// (EventDataStoreNotFoundException, InactiveEventDataStoreException,
// InvalidEventDataStoreCategoryException otherwise). It reads r, the
// channel's transaction, so that the check and the channel's write are one
// step. The lake service implements it; channel does not import lake.
type EventDataStores interface {
	CheckDestination(ctx context.Context, r state.Reader, arn string) error
}

// DefaultFlushInterval is how stale a persisted IngestionStatus may be
// after a crash. GetChannel always answers from memory, so callers never
// see the staleness while the process lives.
const DefaultFlushInterval = 5 * time.Second

// Service implements channels for one account.
type Service struct {
	store         *state.Store
	accountID     string
	now           func() time.Time
	log           *slog.Logger
	flushInterval time.Duration
	metrics       *metrics
	status        *statusTable
	buffers       bufferPool
	spans         spanPool
	stores        EventDataStores
	onChange      func(ctx context.Context)
}

// New creates the channel service. It fails only when the metrics cannot
// be registered (a second service on the same registry).
func New(store *state.Store, accountID string, opts Options) (*Service, error) {
	s := &Service{
		store:         store,
		accountID:     accountID,
		now:           opts.Now,
		log:           opts.Logger,
		flushInterval: opts.FlushInterval,
		metrics:       newMetrics(),
		status:        newStatusTable(),
		stores:        opts.EventDataStores,
		onChange:      opts.OnChange,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.flushInterval <= 0 {
		s.flushInterval = DefaultFlushInterval
	}
	if opts.Registerer != nil {
		if err := s.metrics.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("channel: register metrics: %w", err)
		}
	}
	return s, nil
}

// AccountID is the account that owns the channels.
func (s *Service) AccountID() string { return s.accountID }

// Keys: "channel/<region>/<uuid>". Region first, so that a region's
// channels (the unit of the quota, of name uniqueness and of ListChannels)
// are one prefix scan, in a stable order that pagination can resume from.
const channelPrefix = "channel/"

func channelKey(region, id string) string { return channelPrefix + region + "/" + id }

func loadRegion(r state.Reader, region string) ([]Channel, error) {
	var out []Channel
	err := r.Scan(channelPrefix+region+"/", func(key string, value []byte) error {
		var c Channel
		if err := json.Unmarshal(value, &c); err != nil {
			return fmt.Errorf("channel: decode %s: %w", key, err)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func load(r state.Reader, region, id string) (Channel, bool, error) {
	var c Channel
	ok, err := r.Get(channelKey(region, id), &c)
	if err != nil {
		return Channel{}, false, fmt.Errorf("channel: load %s/%s: %w", region, id, err)
	}
	return c, ok, nil
}

func put(tx *state.Tx, c *Channel) error {
	if err := tx.Put(channelKey(c.Region, c.ID), c); err != nil {
		return fmt.Errorf("channel: save %s: %w", c.ARN(), err)
	}
	return nil
}

func (s *Service) notFound(what string) error {
	return awsproto.Errorf("ChannelNotFoundException", "Channel %s not found for the account %s.", what, s.accountID)
}

// find resolves a parsed reference: a UUID is looked up in the caller's
// region, an ARN in its own region (as trails do, so that one Cairn serving
// every region answers for every ARN it owns). ok is false for a channel
// that does not exist, including ARNs of other accounts.
func (s *Service) find(r state.Reader, region string, ref ref) (Channel, bool, error) {
	if ref.isARN {
		if ref.account != s.accountID {
			return Channel{}, false, nil
		}
		region = ref.region
	}
	return load(r, region, ref.id)
}

// resolve finds the channel named by a Channel argument.
func (s *Service) resolve(r state.Reader, region, channel string) (Channel, error) {
	ref, err := parseRef(channel, channelARNInvalid)
	if err != nil {
		return Channel{}, err
	}
	c, ok, err := s.find(r, region, ref)
	if err != nil {
		return Channel{}, err
	}
	if !ok {
		return Channel{}, s.notFound(channel)
	}
	return c, nil
}

// validateName applies the model's ChannelName rule: 3-128 characters of
// ^[a-zA-Z0-9._\-]+$.
func validateName(name string) error {
	if len(name) < minNameLen || len(name) > maxNameLen {
		return awsproto.Errorf("InvalidParameterException",
			"Channel name %q is %d characters long; a channel name must be %d to %d characters.", name, len(name), minNameLen, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return awsproto.Errorf("InvalidParameterException",
				"Channel name %q is not valid: it can only contain letters, numbers, periods (.), underscores (_) and hyphens (-).", name)
		}
	}
	return nil
}

// validateDestinations checks the form of a Destinations list (an
// EVENT_DATA_STORE location is an event data store ARN of this account);
// checkStores then checks the stores themselves inside the transaction.
func (s *Service) validateDestinations(ds []Destination) error {
	if len(ds) < 1 || len(ds) > maxDestinations {
		return awsproto.Errorf("InvalidParameterException",
			"A channel needs 1 to %d destinations; %d were given.", maxDestinations, len(ds))
	}
	seen := make(map[Destination]bool, len(ds))
	for _, d := range ds {
		switch d.Type {
		case DestinationEventDataStore, DestinationAWSService:
		default:
			return awsproto.Errorf("InvalidParameterException",
				"Destination type %q is not valid; it must be %s or %s.", d.Type, DestinationEventDataStore, DestinationAWSService)
		}
		if len(d.Location) < minLocationLen || len(d.Location) > maxLocationLen || !validLocation(d.Location) {
			return awsproto.Errorf("InvalidParameterException",
				"Destination location %q is not valid: it must be %d to %d characters of letters, numbers and . _ / - : *.", d.Location, minLocationLen, maxLocationLen)
		}
		if d.Type == DestinationEventDataStore {
			if err := eventDataStoreARN(d.Location, s.accountID); err != nil {
				return err
			}
		}
		if seen[d] {
			return awsproto.Errorf("InvalidParameterException", "Destination %s %s is listed more than once.", d.Type, d.Location)
		}
		seen[d] = true
	}
	return nil
}

// checkStores verifies, reading r, that every EVENT_DATA_STORE destination
// is a store a channel can send to.
func (s *Service) checkStores(ctx context.Context, r state.Reader, ds []Destination) error {
	if s.stores == nil {
		return nil
	}
	for _, d := range ds {
		if d.Type != DestinationEventDataStore {
			continue
		}
		if err := s.stores.CheckDestination(ctx, r, d.Location); err != nil {
			return err
		}
	}
	return nil
}

// ChannelsByStore maps every event data store ARN that a channel names as
// an EVENT_DATA_STORE destination to those channels' ARNs, reading r. It
// makes Service the lake service's channel index.
func (s *Service) ChannelsByStore(_ context.Context, r state.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	err := r.Scan(channelPrefix, func(key string, value []byte) error {
		var c Channel
		if err := json.Unmarshal(value, &c); err != nil {
			return fmt.Errorf("channel: decode %s: %w", key, err)
		}
		for _, d := range c.Destinations {
			if d.Type == DestinationEventDataStore {
				out[d.Location] = append(out[d.Location], c.ARN())
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validLocation is the model's Location pattern ^[a-zA-Z0-9._/\-:*]+$.
func validLocation(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._/-:*", c) >= 0) {
			return false
		}
	}
	return true
}

// CreateInput is CreateChannel's input.
type CreateInput struct {
	Name         string
	Source       string
	Destinations []Destination
	Tags         []tags.Tag
}

// Create makes a channel in region. The channel, its tags and the quota
// check are one transaction.
func (s *Service) Create(ctx context.Context, region string, in CreateInput) (*Channel, []tags.Tag, error) {
	if err := validateName(in.Name); err != nil {
		return nil, nil, err
	}
	if in.Source != SourceCustom {
		return nil, nil, awsproto.Errorf("InvalidSourceException",
			"Source %q is not supported: Cairn's channels take events from your own applications, source %q.", in.Source, SourceCustom)
	}
	if err := s.validateDestinations(in.Destinations); err != nil {
		return nil, nil, err
	}
	if err := tags.Validate(in.Tags); err != nil {
		return nil, nil, err
	}
	tagList, err := tags.Merge(nil, in.Tags)
	if err != nil {
		return nil, nil, err
	}
	now := s.now().UTC()
	c := &Channel{
		ID:           uuid.NewString(),
		Region:       region,
		AccountID:    s.accountID,
		Name:         in.Name,
		Source:       in.Source,
		Destinations: slices.Clone(in.Destinations),
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	err = s.store.Update(ctx, func(tx *state.Tx) error {
		all, err := loadRegion(tx, region)
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.Name == c.Name {
				return awsproto.Errorf("ChannelAlreadyExistsException", "A channel named %s already exists in %s: %s.", c.Name, region, o.ARN())
			}
		}
		if len(all) >= MaxPerRegion {
			return awsproto.Errorf("ChannelMaxLimitExceededException",
				"The account %s already has %d channels in %s, the maximum.", s.accountID, MaxPerRegion, region)
		}
		if err := s.checkStores(ctx, tx, c.Destinations); err != nil {
			return err
		}
		if err := put(tx, c); err != nil {
			return err
		}
		return tags.Save(tx, c.ARN(), tagList)
	})
	if err != nil {
		return nil, nil, err
	}
	s.log.InfoContext(ctx, "channel created", "channel", c.ARN(), "name", c.Name)
	s.changed(ctx)
	return c, tagList, nil
}

// Get returns a channel and its ingestion status.
func (s *Service) Get(ctx context.Context, region, channel string) (*Channel, IngestionStatus, error) {
	var c Channel
	var persisted IngestionStatus
	err := s.store.View(ctx, func(r state.Reader) error {
		var err error
		if c, err = s.resolve(r, region, channel); err != nil {
			return err
		}
		_, err = loadStatus(r, c.Region, c.ID, &persisted)
		return err
	})
	if err != nil {
		return nil, IngestionStatus{}, err
	}
	return &c, s.status.merged(statusKey(c.Region, c.ID), persisted), nil
}

// List returns one page of the region's channels, oldest first, and the
// token for the next page ("" after the last). maxResults 0 means
// MaxListResults. Creation order is stable across renames, so a walk over
// the pages sees every channel that exists throughout it exactly once.
func (s *Service) List(ctx context.Context, region string, maxResults int, nextToken string) ([]Channel, string, error) {
	if maxResults < 0 || maxResults > MaxListResults {
		return nil, "", awsproto.Errorf("InvalidParameterException", "MaxResults must be between 1 and %d.", MaxListResults)
	}
	if maxResults == 0 {
		maxResults = MaxListResults
	}
	var all []Channel
	err := s.store.View(ctx, func(r state.Reader) error {
		var err error
		all, err = loadRegion(r, region)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	page, next, ok := awsproto.PageByCreation(all, posOf, "c1:", idRE.MatchString, maxResults, nextToken)
	if !ok {
		return nil, "", awsproto.Errorf("InvalidNextTokenException", "The NextToken is not valid.")
	}
	return page, next, nil
}

// posOf is a channel's place in ListChannels' order.
func posOf(c *Channel) awsproto.CreationPos {
	return awsproto.CreationPos{Created: c.CreatedAt.UnixNano(), ID: c.ID}
}

// UpdateInput is UpdateChannel's input; nil members stay unchanged.
type UpdateInput struct {
	Name         *string
	Destinations []Destination // nil: unchanged
}

// Update renames a channel and/or replaces its destinations.
func (s *Service) Update(ctx context.Context, region, channel string, in UpdateInput) (*Channel, error) {
	if _, err := parseRef(channel, channelARNInvalid); err != nil {
		return nil, err
	}
	if in.Name != nil {
		if err := validateName(*in.Name); err != nil {
			return nil, err
		}
	}
	if in.Destinations != nil {
		if err := s.validateDestinations(in.Destinations); err != nil {
			return nil, err
		}
	}
	var out Channel
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		c, err := s.resolve(tx, region, channel)
		if err != nil {
			return err
		}
		if in.Name != nil && *in.Name != c.Name {
			all, err := loadRegion(tx, c.Region)
			if err != nil {
				return err
			}
			for _, o := range all {
				if o.Name == *in.Name && o.ID != c.ID {
					return awsproto.Errorf("ChannelAlreadyExistsException", "A channel named %s already exists in %s: %s.", o.Name, c.Region, o.ARN())
				}
			}
			c.Name = *in.Name
		}
		if in.Destinations != nil {
			if err := s.checkStores(ctx, tx, in.Destinations); err != nil {
				return err
			}
			c.Destinations = slices.Clone(in.Destinations)
		}
		c.UpdatedAt = s.now().UTC()
		out = c
		return put(tx, &c)
	})
	if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return &out, nil
}

// Delete removes a channel with its tags, policy and ingestion status.
func (s *Service) Delete(ctx context.Context, region, channel string) error {
	var gone Channel
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		c, err := s.resolve(tx, region, channel)
		if err != nil {
			return err
		}
		gone = c
		if err := tx.Delete(channelKey(c.Region, c.ID)); err != nil {
			return fmt.Errorf("channel: delete %s: %w", c.ARN(), err)
		}
		if err := tx.Delete(statusKey(c.Region, c.ID)); err != nil {
			return fmt.Errorf("channel: delete ingestion status of %s: %w", c.ARN(), err)
		}
		return tags.Delete(tx, c.ARN())
	})
	if err != nil {
		return err
	}
	s.status.forget(statusKey(gone.Region, gone.ID))
	s.log.InfoContext(ctx, "channel deleted", "channel", gone.ARN())
	s.changed(ctx)
	return nil
}

// ResourceExists reports whether arn names an existing channel of this
// account, reading r, the transaction or snapshot of the caller. It makes
// Service the tags.Resolver for channel ARNs, so that AddTags checks
// the channel and writes its tags atomically. A malformed channel ARN is
// ChannelARNInvalidException.
func (s *Service) ResourceExists(_ context.Context, r state.Reader, arn string) (bool, error) {
	ref, ok := parseARN(arn)
	if !ok {
		return false, channelARNInvalid(arn)
	}
	_, found, err := s.find(r, ref.region, ref)
	return found, err
}

// Exists is ResourceExists in a snapshot of its own.
func (s *Service) Exists(ctx context.Context, arn string) (bool, error) {
	var found bool
	err := s.store.View(ctx, func(r state.Reader) error {
		var err error
		found, err = s.ResourceExists(ctx, r, arn)
		return err
	})
	return found, err
}

// ByARN returns the channel an ARN names; ok is false when there is none.
// Other packages (Lake, later) use it to check channels they refer to.
func (s *Service) ByARN(ctx context.Context, arn string) (c Channel, ok bool, err error) {
	ref, valid := parseARN(arn)
	if !valid {
		return Channel{}, false, nil
	}
	err = s.store.View(ctx, func(r state.Reader) error {
		c, ok, err = s.find(r, ref.region, ref)
		return err
	})
	return c, ok, err
}

// changed tells OnChange that the channels changed.
func (s *Service) changed(ctx context.Context) {
	if s.onChange != nil {
		s.onChange(ctx)
	}
}
