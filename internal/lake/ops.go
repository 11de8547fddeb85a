package lake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

// CreateInput is CreateEventDataStore's input; nil members take
// CloudTrail's defaults.
type CreateInput struct {
	Name                         string
	AdvancedEventSelectors       []selector.AdvancedEventSelector
	MultiRegionEnabled           *bool // default true
	OrganizationEnabled          *bool // default false
	RetentionPeriod              *int  // default by billing mode
	TerminationProtectionEnabled *bool // default true
	Tags                         []tags.Tag
	KmsKeyId                     *string
	StartIngestion               *bool   // default true
	BillingMode                  *string // default EXTENDABLE_RETENTION_PRICING
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func organizationsNotInUse() error {
	return awsproto.Errorf("OrganizationsNotInUseException",
		"This account is not a member of an organization. Cairn does not implement AWS Organizations, so organization event data stores cannot be created; set OrganizationEnabled to false.")
}

// Create makes an event data store in region. The answer's Status is
// CREATED, as AWS's is; the stored status is already the one AWS reaches
// a moment later (ENABLED, or STOPPED_INGESTION with StartIngestion
// false). The store, its tags and the quota check are one transaction.
func (s *Service) Create(ctx context.Context, region string, in CreateInput) (Store, []tags.Tag, error) {
	if err := validateName(in.Name); err != nil {
		return Store{}, nil, err
	}
	mode := BillingExtendable
	if in.BillingMode != nil {
		if err := validBillingMode(*in.BillingMode); err != nil {
			return Store{}, nil, err
		}
		mode = *in.BillingMode
	}
	retention := defaultRetention(mode)
	if in.RetentionPeriod != nil {
		retention = *in.RetentionPeriod
		if err := validateRetention(retention, mode); err != nil {
			return Store{}, nil, err
		}
	}
	sels := in.AdvancedEventSelectors
	if sels == nil {
		sels = DefaultSelectors()
	} else if err := selector.ValidateEventDataStore(sels); err != nil {
		return Store{}, nil, err
	}
	if boolOr(in.OrganizationEnabled, false) {
		return Store{}, nil, organizationsNotInUse()
	}
	tagList, err := createTags(in.Tags)
	if err != nil {
		return Store{}, nil, err
	}
	now := s.now()
	st := Store{
		ID:                           uuid.NewString(),
		Region:                       region,
		AccountID:                    s.accountID,
		Name:                         in.Name,
		Status:                       StatusEnabled,
		AdvancedEventSelectors:       sels,
		MultiRegionEnabled:           boolOr(in.MultiRegionEnabled, true),
		RetentionPeriod:              retention,
		TerminationProtectionEnabled: boolOr(in.TerminationProtectionEnabled, true),
		BillingMode:                  mode,
		CreatedAt:                    now,
		UpdatedAt:                    now,
	}
	if !boolOr(in.StartIngestion, true) {
		if c := st.Category(); !ingestionControllable(c) {
			// InvalidEventDataStoreCategoryException is not among
			// CreateEventDataStore's modeled errors.
			return Store{}, nil, invalidParameter("StartIngestion false applies only to event data stores of Management, Data, NetworkActivity or ConfigurationItem events; this store selects %s events.", c)
		}
		st.Status = StatusStoppedIngestion
	}
	if in.KmsKeyId != nil {
		if st.KmsKeyId, err = awsproto.KMSKeyARN(*in.KmsKeyId, region, s.accountID); err != nil {
			return Store{}, nil, err
		}
	}
	err = s.store.Update(ctx, func(tx *state.Tx) error {
		all, err := loadRegion(tx, region)
		if err != nil {
			return err
		}
		if err := checkNameFree(all, &st); err != nil {
			return err
		}
		if len(all) >= MaxPerRegion {
			return s.tooMany(region)
		}
		if err := put(tx, &st); err != nil {
			return err
		}
		return tags.Save(tx, st.ARN(), tagList)
	})
	if err != nil {
		return Store{}, nil, err
	}
	s.log.InfoContext(ctx, "event data store created", "event_data_store", st.ARN(), "name", st.Name, "status", st.Status)
	s.notifyChanged(ctx)
	return st, tagList, nil
}

// createTags checks CreateEventDataStore's TagsList. Too many tags is
// InvalidTagParameterException here: TagsLimitExceededException is not
// among the operation's modeled errors (it is AddTags').
func createTags(list []tags.Tag) ([]tags.Tag, error) {
	err := tags.Validate(list)
	if err == nil {
		var merged []tags.Tag
		if merged, err = tags.Merge(nil, list); err == nil {
			return merged, nil
		}
	}
	if awsproto.IsCode(err, "TagsLimitExceededException") {
		return nil, awsproto.Errorf("InvalidTagParameterException", "%s", awsproto.AsError(err).Message)
	}
	return nil, err
}

func (s *Service) tooMany(region string) error {
	return awsproto.Errorf("EventDataStoreMaxLimitExceededException",
		"Your account has reached the maximum number of event data stores in %s (%d, stores pending deletion included). Delete an event data store, or wait for one pending deletion to be removed.", region, MaxPerRegion)
}

// checkNameFree: names are unique per region. A store pending deletion
// keeps its name, since RestoreEventDataStore can bring it back.
func checkNameFree(all []Store, st *Store) error {
	for i := range all {
		if all[i].Name == st.Name && all[i].ID != st.ID {
			return awsproto.Errorf("EventDataStoreAlreadyExistsException",
				"An event data store with the name %s already exists in %s: %s.", st.Name, st.Region, all[i].ARN())
		}
	}
	return nil
}

// Get returns the store an EventDataStore argument names.
func (s *Service) Get(ctx context.Context, region, eds string) (Store, error) {
	var st Store
	err := s.store.View(ctx, func(r state.Reader) error {
		var err error
		st, err = s.resolve(r, region, eds)
		return err
	})
	return st, err
}

// UpdateInput is UpdateEventDataStore's input; nil members stay as they
// are. At least one must be set.
type UpdateInput struct {
	Name                         *string
	AdvancedEventSelectors       []selector.AdvancedEventSelector // nil: unchanged
	MultiRegionEnabled           *bool
	OrganizationEnabled          *bool
	RetentionPeriod              *int
	TerminationProtectionEnabled *bool
	KmsKeyId                     *string
	BillingMode                  *string
}

func (in *UpdateInput) empty() bool {
	return in.Name == nil && in.AdvancedEventSelectors == nil && in.MultiRegionEnabled == nil && in.OrganizationEnabled == nil &&
		in.RetentionPeriod == nil && in.TerminationProtectionEnabled == nil && in.KmsKeyId == nil && in.BillingMode == nil
}

// family is what a store holds: CloudTrail records, or one of the
// store-only categories. A store cannot change family, because its files
// have that family's schema.
func family(categories []string) string {
	for _, c := range categories {
		if !selector.IsCloudTrailCategory(c) {
			return c
		}
	}
	return "CloudTrail"
}

// Update changes a store's settings.
func (s *Service) Update(ctx context.Context, region, eds string, in UpdateInput) (Store, error) {
	if _, err := parseRef(eds); err != nil {
		return Store{}, err
	}
	if in.empty() {
		return Store{}, invalidParameter("Specify at least one setting to update: Name, AdvancedEventSelectors, MultiRegionEnabled, OrganizationEnabled, RetentionPeriod, TerminationProtectionEnabled, KmsKeyId or BillingMode.")
	}
	if in.Name != nil {
		if err := validateName(*in.Name); err != nil {
			return Store{}, err
		}
	}
	if in.BillingMode != nil {
		if err := validBillingMode(*in.BillingMode); err != nil {
			return Store{}, err
		}
	}
	if in.AdvancedEventSelectors != nil {
		if err := selector.ValidateEventDataStore(in.AdvancedEventSelectors); err != nil {
			return Store{}, err
		}
	}
	if boolOr(in.OrganizationEnabled, false) {
		return Store{}, organizationsNotInUse()
	}
	var out Store
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		st, err := s.resolve(tx, region, eds)
		if err != nil {
			return err
		}
		if st.pending() {
			return inactive(&st)
		}
		if in.Name != nil && *in.Name != st.Name {
			all, err := loadRegion(tx, st.Region)
			if err != nil {
				return err
			}
			st.Name = *in.Name
			if err := checkNameFree(all, &st); err != nil {
				return err
			}
		}
		if in.BillingMode != nil {
			if st.BillingMode == BillingExtendable && *in.BillingMode == BillingFixed {
				return invalidParameter("The billing mode of event data store %s cannot change from %s to %s. Stop ingestion on this store and create a new one with %s instead.",
					st.ARN(), BillingExtendable, BillingFixed, BillingFixed)
			}
			st.BillingMode = *in.BillingMode
		}
		if in.RetentionPeriod != nil {
			st.RetentionPeriod = *in.RetentionPeriod
		}
		if err := validateRetention(st.RetentionPeriod, st.BillingMode); err != nil {
			return err
		}
		if in.AdvancedEventSelectors != nil {
			was, now := family(st.Categories()), family(selector.Categories(in.AdvancedEventSelectors))
			if was != now {
				return awsproto.Errorf("InvalidEventSelectorsException",
					"The event data store %s holds %s events; its selectors cannot change it to hold %s events. Create a new event data store for them.", st.ARN(), was, now)
			}
			st.AdvancedEventSelectors = in.AdvancedEventSelectors
		}
		if in.KmsKeyId != nil {
			if err := s.setKMS(&st, *in.KmsKeyId); err != nil {
				return err
			}
		}
		if in.MultiRegionEnabled != nil {
			st.MultiRegionEnabled = *in.MultiRegionEnabled
		}
		if in.OrganizationEnabled != nil {
			st.OrganizationEnabled = *in.OrganizationEnabled
		}
		if in.TerminationProtectionEnabled != nil {
			st.TerminationProtectionEnabled = *in.TerminationProtectionEnabled
		}
		st.UpdatedAt = s.now()
		out = st
		return put(tx, &st)
	})
	if err != nil {
		return Store{}, err
	}
	s.log.InfoContext(ctx, "event data store updated", "event_data_store", out.ARN())
	s.notifyChanged(ctx)
	return out, nil
}

// setKMS sets a key on a store that has none. Once set the key can be
// neither removed nor changed (AWS: "After you associate an event data
// store with a KMS key, the KMS key cannot be removed or changed"); the
// same key again, in any of its forms, is no change.
func (s *Service) setKMS(st *Store, id string) error {
	if id == "" {
		if st.KmsKeyId != "" {
			return invalidParameter("The KMS key of event data store %s cannot be removed: once an event data store has a KMS key, the key can be neither removed nor changed.", st.ARN())
		}
		return awsproto.Errorf("InvalidKmsKeyIdException", "Invalid KmsKeyId: it is empty. Specify a key ID, an alias name prefixed by alias/, a key ARN or an alias ARN.")
	}
	arn, err := awsproto.KMSKeyARN(id, st.Region, st.AccountID)
	if err != nil {
		return err
	}
	if st.KmsKeyId != "" && arn != st.KmsKeyId {
		return invalidParameter("The KMS key of event data store %s is %s and cannot be changed to %s: once an event data store has a KMS key, the key can be neither removed nor changed.", st.ARN(), st.KmsKeyId, arn)
	}
	st.KmsKeyId = arn
	return nil
}

// Delete puts a store in PENDING_DELETION; Purge removes it seven days
// later unless RestoreEventDataStore brings it back.
func (s *Service) Delete(ctx context.Context, region, eds string) error {
	var gone Store
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		st, err := s.resolve(tx, region, eds)
		if err != nil {
			return err
		}
		if st.pending() {
			return inactive(&st)
		}
		if st.TerminationProtectionEnabled {
			return awsproto.Errorf("EventDataStoreTerminationProtectedException",
				"The event data store %s cannot be deleted because termination protection is enabled. Turn it off with UpdateEventDataStore --no-termination-protection-enabled first.", st.ARN())
		}
		if st.Federated {
			return awsproto.Errorf("EventDataStoreFederationEnabledException",
				"The event data store %s cannot be deleted because federation is enabled. Disable it with DisableFederation first.", st.ARN())
		}
		chans, err := s.channelsByStore(ctx, tx)
		if err != nil {
			return err
		}
		if names := chans[st.ARN()]; len(names) > 0 {
			return awsproto.Errorf("ChannelExistsForEDSException",
				"The event data store %s cannot be deleted because channel %s sends events to it. Delete the channel, or remove the store from its destinations, first.", st.ARN(), strings.Join(names, ", "))
		}
		st.StatusBeforeDelete, st.Status = st.Status, StatusPendingDeletion
		st.DeletedAt = s.now()
		st.UpdatedAt = st.DeletedAt
		gone = st
		return put(tx, &st)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "event data store pending deletion", "event_data_store", gone.ARN(), "purge_after", gone.DeletedAt.Add(PendingDeletionPeriod))
	s.notifyChanged(ctx)
	return nil
}

// Restore brings back a store pending deletion, in the status it had.
func (s *Service) Restore(ctx context.Context, region, eds string) (Store, error) {
	var out Store
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		st, err := s.resolve(tx, region, eds)
		if err != nil {
			return err
		}
		if st.pending() && !s.now().Before(st.DeletedAt.Add(PendingDeletionPeriod)) {
			// Its seven days are over: it is Purge's now, and restoring
			// it could race the purge hook dropping its files.
			return notFound()
		}
		if !st.pending() {
			return awsproto.Errorf("InvalidEventDataStoreStatusException",
				"The event data store %s is %s; only an event data store in PENDING_DELETION can be restored.", st.ARN(), st.Status)
		}
		// Stores pending deletion count toward the quota, so a restore
		// never exceeds it; the check stays for stores written by an
		// older rule.
		all, err := loadRegion(tx, st.Region)
		if err != nil {
			return err
		}
		if len(all) > MaxPerRegion {
			return s.tooMany(st.Region)
		}
		st.Status = cmp.Or(st.StatusBeforeDelete, StatusEnabled)
		st.StatusBeforeDelete, st.DeletedAt = "", time.Time{}
		st.UpdatedAt = s.now()
		out = st
		return put(tx, &st)
	})
	if err != nil {
		return Store{}, err
	}
	s.log.InfoContext(ctx, "event data store restored", "event_data_store", out.ARN(), "status", out.Status)
	s.notifyChanged(ctx)
	return out, nil
}

// ingestionControllable reports whether Start/StopEventDataStoreIngestion
// apply to a category: only to stores AWS feeds from its own events.
func ingestionControllable(category string) bool {
	switch category {
	case CategoryManagement, CategoryData, CategoryNetworkActivity, CategoryConfigurationItem:
		return true
	}
	return false
}

func categoryNoIngestionControl(st *Store) error {
	return awsproto.Errorf("InvalidEventDataStoreCategoryException",
		"Ingestion of event data store %s (eventCategory %s) cannot be started or stopped: only event data stores of Management, Data, NetworkActivity or ConfigurationItem events can.", st.ARN(), st.Category())
}

// StartIngestion resumes ingestion of a STOPPED_INGESTION store.
func (s *Service) StartIngestion(ctx context.Context, region, eds string) error {
	return s.setIngestion(ctx, region, eds, StatusStoppedIngestion, StatusEnabled)
}

// StopIngestion stops ingestion of an ENABLED store; its events stay
// queryable.
func (s *Service) StopIngestion(ctx context.Context, region, eds string) error {
	return s.setIngestion(ctx, region, eds, StatusEnabled, StatusStoppedIngestion)
}

func (s *Service) setIngestion(ctx context.Context, region, eds, from, to string) error {
	var changed Store
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		st, err := s.resolve(tx, region, eds)
		if err != nil {
			return err
		}
		if !ingestionControllable(st.Category()) {
			return categoryNoIngestionControl(&st)
		}
		if st.Status != from {
			return awsproto.Errorf("InvalidEventDataStoreStatusException",
				"The event data store %s is %s; ingestion can only change to %s from %s.", st.ARN(), st.Status, to, from)
		}
		st.Status = to
		st.UpdatedAt = s.now()
		changed = st
		return put(tx, &st)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "event data store ingestion changed", "event_data_store", changed.ARN(), "status", changed.Status)
	s.notifyChanged(ctx)
	return nil
}

// List returns one page of the region's stores, oldest first, and the
// token of the next page ("" after the last). maxResults 0 means
// MaxListResults. Stores pending deletion are listed too.
func (s *Service) List(ctx context.Context, region string, maxResults int, nextToken string) ([]Store, string, error) {
	if maxResults < 0 || maxResults > MaxListResults {
		return nil, "", awsproto.Errorf("InvalidMaxResultsException", "MaxResults must be between 1 and %d; it was %d.", MaxListResults, maxResults)
	}
	if maxResults == 0 {
		maxResults = MaxListResults
	}
	var all []Store
	err := s.store.View(ctx, func(r state.Reader) error {
		var err error
		all, err = loadRegion(r, region)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	page, next, ok := awsproto.PageByCreation(all, posOf, "e1:", idRE.MatchString, maxResults, nextToken)
	if !ok {
		return nil, "", awsproto.Errorf("InvalidNextTokenException", "The NextToken is not valid: pass the NextToken of the previous ListEventDataStores answer unchanged.")
	}
	return page, next, nil
}

// posOf is a store's place in ListEventDataStores' order.
func posOf(st *Store) awsproto.CreationPos {
	return awsproto.CreationPos{Created: st.CreatedAt.UnixNano(), ID: st.ID}
}

// Purge removes the stores whose seven days in PENDING_DELETION are over
// at now, with their tags, after the purge hook has dropped their files.
// It returns how many it removed. The server calls it periodically; a
// store whose hook fails stays for the next call.
func (s *Service) Purge(ctx context.Context, now time.Time) (int, error) {
	var due []Store
	err := s.store.View(ctx, func(r state.Reader) error {
		all, err := loadAll(r)
		if err != nil {
			return err
		}
		for i := range all {
			if all[i].pending() && !now.Before(all[i].DeletedAt.Add(PendingDeletionPeriod)) {
				due = append(due, all[i])
			}
		}
		return nil
	})
	if err != nil || len(due) == 0 {
		return 0, err
	}
	removed := 0
	var errs []error
	for i := range due {
		st := &due[i]
		if s.purge != nil {
			if err := s.purge(ctx, specOf(st, nil)); err != nil {
				errs = append(errs, fmt.Errorf("lake: drop the files of %s: %w", st.ARN(), err))
				continue
			}
		}
		err := s.store.Update(ctx, func(tx *state.Tx) error {
			cur, ok, err := load(tx, st.Region, st.ID)
			if err != nil || !ok || !cur.pending() || !cur.DeletedAt.Equal(st.DeletedAt) {
				return err // restored (or gone) in between: keep it
			}
			if err := tx.Delete(storeKey(st.Region, st.ID)); err != nil {
				return fmt.Errorf("lake: delete %s: %w", st.ARN(), err)
			}
			return tags.Delete(tx, st.ARN())
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
		s.log.InfoContext(ctx, "event data store removed after its pending deletion", "event_data_store", st.ARN(), "deleted_at", st.DeletedAt)
	}
	if removed > 0 {
		s.notifyChanged(ctx)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("lake: purge: %w", errors.Join(errs...))
	}
	return removed, nil
}
