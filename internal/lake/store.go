package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
)

// PendingDeletionPeriod is how long a deleted store stays in
// PENDING_DELETION, restorable, before Purge removes it.
const PendingDeletionPeriod = 7 * 24 * time.Hour

// DefaultSelectorName names the selector a store created without
// selectors gets, as AWS names it.
const DefaultSelectorName = "Default management events"

// DefaultSelectors is the selection of a store created without
// AdvancedEventSelectors: every management event.
func DefaultSelectors() []selector.AdvancedEventSelector {
	name := DefaultSelectorName
	return []selector.AdvancedEventSelector{{
		Name:           &name,
		FieldSelectors: []selector.FieldSelector{{Field: "eventCategory", Equals: []string{CategoryManagement}}},
	}}
}

// Store is an event data store as stored; its JSON form is the state
// store's.
type Store struct {
	ID        string
	Region    string
	AccountID string
	Name      string
	// Status is ENABLED, STOPPED_INGESTION or PENDING_DELETION once the
	// store exists (CREATED is only CreateEventDataStore's answer).
	Status                       string
	AdvancedEventSelectors       []selector.AdvancedEventSelector
	MultiRegionEnabled           bool
	OrganizationEnabled          bool
	RetentionPeriod              int
	TerminationProtectionEnabled bool
	// KmsKeyId is a full ARN, whatever form the caller used.
	KmsKeyId    string `json:",omitempty"`
	BillingMode string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// DeletedAt is when DeleteEventDataStore put the store in
	// PENDING_DELETION; StatusBeforeDelete is what RestoreEventDataStore
	// brings back.
	DeletedAt          time.Time `json:",omitzero"`
	StatusBeforeDelete string    `json:",omitempty"`
	// Federated: EnableFederation was called (and DisableFederation not
	// since); FederationRoleArn is the role it named.
	Federated         bool   `json:",omitempty"`
	FederationRoleArn string `json:",omitempty"`
}

// ARN is the store's ARN.
func (st *Store) ARN() string { return ARN(st.Region, st.AccountID, st.ID) }

// Categories are the event categories the store selects, in selector
// order.
func (st *Store) Categories() []string { return selector.Categories(st.AdvancedEventSelectors) }

// Category is the store's one category: the first selector's. For a
// store of CloudTrail events that mixes Management, Data and
// NetworkActivity, Categories has them all.
func (st *Store) Category() string {
	if c := st.Categories(); len(c) > 0 {
		return c[0]
	}
	return CategoryManagement
}

// pending reports whether the store is deleted and waiting to be purged.
func (st *Store) pending() bool { return st.Status == StatusPendingDeletion }

// ChannelIndex tells which channels send their events to which stores.
// The channel service implements it; the server wires it in, so that lake
// does not import channel. It reads r, the caller's transaction or
// snapshot, so that "no channel names this store" and the delete that
// relies on it are one atomic step.
type ChannelIndex interface {
	// ChannelsByStore maps every event data store ARN that some channel
	// names as an EVENT_DATA_STORE destination to those channels' ARNs.
	ChannelsByStore(ctx context.Context, r state.Reader) (map[string][]string, error)
}

// Service implements event data stores for one account.
type Service struct {
	store     *state.Store
	accountID string
	clock     func() time.Time
	log       *slog.Logger
	channels  ChannelIndex
	// changed is called after every committed change to a store's
	// configuration, so that ingestion reloads the specs at once.
	changed func(ctx context.Context)
	// purge is called with each store Purge is about to remove, before
	// its record goes, so that ingestion drops the store's files and
	// cursor; an error keeps the store for the next Purge.
	purge func(ctx context.Context, spec Spec) error
}

// Option tunes New.
type Option func(*Service)

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) {
		if l != nil {
			s.log = l
		}
	}
}

// WithChangeHook registers fn to be called after every committed change
// (create, update, delete, restore, start and stop ingestion, purge), so
// that ingestion takes a fresh Specs at once instead of at its next poll.
func WithChangeHook(fn func(ctx context.Context)) Option {
	return func(s *Service) { s.changed = fn }
}

// WithPurgeHook registers fn to be called with every store Purge removes,
// before its record is deleted: ingestion drops the store's files and
// cursor there. If fn fails the store stays in PENDING_DELETION and the
// next Purge tries again, so no files outlive their store.
func WithPurgeHook(fn func(ctx context.Context, spec Spec) error) Option {
	return func(s *Service) { s.purge = fn }
}

// WithChannels gives the service the channel index: Specs fills
// Spec.Channels from it and DeleteEventDataStore refuses a store a
// channel still names (ChannelExistsForEDSException). Without it no store
// has channels.
func WithChannels(ix ChannelIndex) Option {
	return func(s *Service) { s.channels = ix }
}

// New creates the event data store service. clock is nil for time.Now.
func New(store *state.Store, accountID string, clock func() time.Time, opts ...Option) *Service {
	if clock == nil {
		clock = time.Now
	}
	s := &Service{store: store, accountID: accountID, clock: clock, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// AccountID is the account that owns the stores.
func (s *Service) AccountID() string { return s.accountID }

func (s *Service) now() time.Time { return s.clock().UTC() }

func (s *Service) notifyChanged(ctx context.Context) {
	if s.changed != nil {
		s.changed(ctx)
	}
}

// Keys: "eds/<region>/<id>". Region first: a region's stores (the unit of
// the quota, of name uniqueness and of ListEventDataStores) are one
// prefix scan.
const storePrefix = "eds/"

func storeKey(region, id string) string { return storePrefix + region + "/" + id }

func decode(key string, value []byte) (Store, error) {
	var st Store
	if err := json.Unmarshal(value, &st); err != nil {
		return Store{}, fmt.Errorf("lake: decode %s: %w", key, err)
	}
	return st, nil
}

func loadPrefix(r state.Reader, prefix string) ([]Store, error) {
	var out []Store
	err := r.Scan(prefix, func(key string, value []byte) error {
		st, err := decode(key, value)
		if err != nil {
			return err
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lake: list event data stores: %w", err)
	}
	return out, nil
}

func loadRegion(r state.Reader, region string) ([]Store, error) {
	return loadPrefix(r, storePrefix+region+"/")
}

func loadAll(r state.Reader) ([]Store, error) { return loadPrefix(r, storePrefix) }

func load(r state.Reader, region, id string) (Store, bool, error) {
	var st Store
	ok, err := r.Get(storeKey(region, id), &st)
	if err != nil {
		return Store{}, false, fmt.Errorf("lake: load event data store %s/%s: %w", region, id, err)
	}
	return st, ok, nil
}

func put(tx *state.Tx, st *Store) error {
	if err := tx.Put(storeKey(st.Region, st.ID), st); err != nil {
		return fmt.Errorf("lake: save %s: %w", st.ARN(), err)
	}
	return nil
}

// notFound is AWS's text for a store that does not exist.
func notFound() error {
	return awsproto.Errorf("EventDataStoreNotFoundException", "The event data store was not found.")
}

func inactive(st *Store) error {
	return awsproto.Errorf("InactiveEventDataStoreException",
		"The event data store %s is pending deletion (since %s); restore it with RestoreEventDataStore first.", st.ARN(), st.DeletedAt.Format(time.RFC3339))
}

// find resolves a parsed reference: an ID in the caller's region, an ARN
// in its own region. An ARN of another account is not valid here (it
// cannot map to a store of this account); a missing store is ok=false.
func (s *Service) find(r state.Reader, region string, rf ref) (Store, bool, error) {
	if rf.isARN {
		if rf.account != s.accountID {
			return Store{}, false, arnInvalid(rf.raw)
		}
		region = rf.region
	}
	return load(r, region, rf.id)
}

// resolve finds the store an EventDataStore argument names.
func (s *Service) resolve(r state.Reader, region, eds string) (Store, error) {
	rf, err := parseRef(eds)
	if err != nil {
		return Store{}, err
	}
	st, ok, err := s.find(r, region, rf)
	if err != nil {
		return Store{}, err
	}
	if !ok {
		return Store{}, notFound()
	}
	return st, nil
}

// channelsByStore asks the channel index, if there is one.
func (s *Service) channelsByStore(ctx context.Context, r state.Reader) (map[string][]string, error) {
	if s.channels == nil {
		return nil, nil
	}
	m, err := s.channels.ChannelsByStore(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("lake: list the channels of event data stores: %w", err)
	}
	return m, nil
}

// specOf is the engines' view of a store.
func specOf(st *Store, channels map[string][]string) Spec {
	sp := Spec{
		ID:            st.ID,
		ARN:           st.ARN(),
		Region:        st.Region,
		AccountID:     st.AccountID,
		Status:        st.Status,
		Category:      st.Category(),
		Categories:    st.Categories(),
		Selectors:     st.AdvancedEventSelectors,
		MultiRegion:   st.MultiRegionEnabled,
		RetentionDays: st.RetentionPeriod,
		Created:       st.CreatedAt,
		Ingesting:     st.Status == StatusEnabled || st.Status == StatusCreated,
		Queryable:     !st.pending(),
		Federated:     st.Federated,
	}
	if sp.Category == CategoryActivityAuditLog {
		sp.Channels = slices.Clone(channels[sp.ARN])
	}
	return sp
}

// Specs returns every store of the account, in every region, in key
// order, for the ingestion engine (which takes PENDING_DELETION ones as
// "keep the files, take nothing") and the query engine.
func (s *Service) Specs(ctx context.Context) ([]Spec, error) {
	var out []Spec
	err := s.store.View(ctx, func(r state.Reader) error {
		all, err := loadAll(r)
		if err != nil {
			return err
		}
		chans, err := s.channelsByStore(ctx, r)
		if err != nil {
			return err
		}
		out = make([]Spec, 0, len(all))
		for i := range all {
			out = append(out, specOf(&all[i], chans))
		}
		return nil
	})
	return out, err
}

// Resolve finds the store a query names (a table name is a store's ID or
// ARN) as seen from region, with the errors StartQuery answers:
// EventDataStoreARNInvalidException, EventDataStoreNotFoundException, and
// InactiveEventDataStoreException for a store pending deletion.
func (s *Service) Resolve(ctx context.Context, region, eds string) (Spec, error) {
	var sp Spec
	err := s.store.View(ctx, func(r state.Reader) error {
		st, err := s.resolve(r, region, eds)
		if err != nil {
			return err
		}
		if st.pending() {
			return inactive(&st)
		}
		chans, err := s.channelsByStore(ctx, r)
		if err != nil {
			return err
		}
		sp = specOf(&st, chans)
		return nil
	})
	return sp, err
}

// ResourceExists reports whether arn names an existing store of this
// account, reading r: the tagging service's resolver for
// eventdatastore ARNs, so that AddTags checks the store and writes its
// tags atomically. A store pending deletion still exists (AWS keeps its
// tags until it is gone).
func (s *Service) ResourceExists(_ context.Context, r state.Reader, arn string) (bool, error) {
	rf, ok := parseARN(arn)
	if !ok {
		return false, arnInvalid(arn)
	}
	if rf.account != s.accountID {
		return false, nil
	}
	_, found, err := load(r, rf.region, rf.id)
	return found, err
}

// CheckDestination checks, reading r, that arn names a store a channel can
// send events to: one that exists (EventDataStoreNotFoundException), is
// not pending deletion (InactiveEventDataStoreException) and selects
// ActivityAuditLog events (InvalidEventDataStoreCategoryException). It
// makes Service the channel service's EventDataStores.
func (s *Service) CheckDestination(_ context.Context, r state.Reader, arn string) error {
	rf, ok := parseARN(arn)
	if !ok {
		return arnInvalid(arn)
	}
	if rf.account != s.accountID {
		return arnInvalid(arn)
	}
	st, found, err := load(r, rf.region, rf.id)
	if err != nil {
		return err
	}
	if !found {
		return notFound()
	}
	if st.pending() {
		return inactive(&st)
	}
	if c := st.Category(); c != CategoryActivityAuditLog {
		return awsproto.Errorf("InvalidEventDataStoreCategoryException",
			"The event data store %s selects %s events; a channel's destination must be an event data store that selects eventCategory ActivityAuditLog.", arn, c)
	}
	return nil
}
