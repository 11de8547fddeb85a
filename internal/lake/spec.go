// Package lake owns CloudTrail Lake's event data stores: their
// configuration (names, statuses, retention and billing modes, termination
// protection, advanced event selectors with the EDS-only fields), the
// CloudTrail rules and errors of the eight event data store operations,
// and the list of stores the ingestion and query engines serve.
//
// The store's files (Parquet, written by internal/lake/ingest) and its
// queries (internal/query) live in their own packages; this package is
// the source of truth they read through Spec.
package lake

import (
	"time"

	"github.com/cairn-audit/cairn/internal/selector"
)

// Event categories an event data store can select (spec §6.2). A store
// selecting ActivityAuditLog holds PutAuditEvents events only (the
// integration schema); the others hold CloudTrail records.
const (
	CategoryManagement        = "Management"
	CategoryData              = "Data"
	CategoryNetworkActivity   = "NetworkActivity"
	CategoryInsight           = "Insight"
	CategoryConfigurationItem = "ConfigurationItem"
	CategoryEvidence          = "Evidence"
	CategoryActivityAuditLog  = "ActivityAuditLog"
)

// Statuses of an event data store (the model's EventDataStoreStatus).
const (
	StatusCreated           = "CREATED"
	StatusEnabled           = "ENABLED"
	StatusPendingDeletion   = "PENDING_DELETION"
	StatusStartingIngestion = "STARTING_INGESTION"
	StatusStoppingIngestion = "STOPPING_INGESTION"
	StatusStoppedIngestion  = "STOPPED_INGESTION"
)

// Spec is what the ingestion and query engines need to know of one event
// data store. It is a value: engines take a fresh list whenever the
// configuration changes and never reach into the store service.
type Spec struct {
	// ID is the store's ID, the last part of its ARN and its table name in
	// queries.
	ID  string
	ARN string
	// Region is the store's home region; AccountID its owner.
	Region    string
	AccountID string
	// Status is one of the Status constants.
	Status string
	// Category is the store's one selected event category (the
	// eventCategory Equals value of its selectors; Management when the
	// store was created without selectors).
	Category string
	// Categories are all the categories the store selects, in selector
	// order: one, except for a store of CloudTrail events, which may mix
	// Management, Data and NetworkActivity (Category is then the first).
	Categories []string
	// Selectors are the store's advanced event selectors as stored;
	// selector.Match with no basic selectors evaluates them.
	Selectors []selector.AdvancedEventSelector
	// MultiRegion: the store takes events of every region; otherwise only
	// events whose awsRegion is Region.
	MultiRegion bool
	// RetentionDays: events whose eventTime is older are dropped.
	RetentionDays int
	// Created is when the store was created: a store takes the events
	// recorded from then on (journal entries older than its creation are
	// not copied in; StartImport brings in the past).
	Created time.Time
	// Ingesting reports whether new events are taken now (ENABLED, or
	// CREATED with StartIngestion); false for STOPPED_INGESTION and
	// PENDING_DELETION.
	Ingesting bool
	// Queryable reports whether queries may read the store (every status
	// but PENDING_DELETION).
	Queryable bool
	// Channels are, for an ActivityAuditLog store, the ARNs of the
	// channels whose destinations name it: their PutAuditEvents events
	// (metadata.channelARN) are the store's events.
	Channels []string
	// Federated: EnableFederation is on, so ingestion publishes the
	// store's table definition for other engines next to its files.
	Federated bool
}
