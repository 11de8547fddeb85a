// Package imports copies trail log files into event data stores: CloudTrail
// Lake's StartImport, GetImport, ListImports, ListImportFailures and
// StopImport.
//
// An import walks the CloudTrail log files under an S3 location of Cairn's
// object store (the `CloudTrail` prefixes below S3LocationUri, in key
// order), keeps the events inside its time range and the destination
// store's retention, and hands them to a Sink that writes them into the
// store. Progress is kept in the state store after every file: the last
// source key done and the running statistics. Because a file's events are
// written under names derived from the import and the file (see Sink), a
// file interrupted by a crash is written again under the same names when
// the import resumes, replacing the partial attempt: no event is imported
// twice, none is lost.
//
// Selectors do not apply to copied events, as in CloudTrail: a copy is a
// point-in-time snapshot of the trail.
package imports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/state"
)

// Import statuses (the model's ImportStatus).
const (
	StatusInitializing = "INITIALIZING"
	StatusInProgress   = "IN_PROGRESS"
	StatusFailed       = "FAILED"
	StatusStopped      = "STOPPED"
	StatusCompleted    = "COMPLETED"
)

// Failure statuses (the model's ImportFailureStatus).
const (
	FailureFailed    = "FAILED"
	FailureRetry     = "RETRY"
	FailureSucceeded = "SUCCEEDED"
)

// Stores resolves a destination: an event data store's ARN or ID to its
// Spec, with CloudTrail's errors for a bad or unknown reference.
type Stores interface {
	Resolve(ctx context.Context, region, ref string) (lake.Spec, error)
}

// Sink writes imported events into a store. name identifies one chunk of
// one source file of one import; writing the same name again replaces what
// was written under it before (the object names of the store's files are
// derived from it), which is what makes a resumed import exactly-once.
type Sink interface {
	WriteImport(ctx context.Context, store lake.Spec, name string, records [][]byte) error
}

// S3Source is the model's S3ImportSource.
type S3Source struct {
	S3LocationUri         string `json:"S3LocationUri"`
	S3BucketRegion        string `json:"S3BucketRegion"`
	S3BucketAccessRoleArn string `json:"S3BucketAccessRoleArn"`
}

// Statistics is the model's ImportStatistics.
type Statistics struct {
	PrefixesFound     int64 `json:"PrefixesFound"`
	PrefixesCompleted int64 `json:"PrefixesCompleted"`
	FilesCompleted    int64 `json:"FilesCompleted"`
	EventsCompleted   int64 `json:"EventsCompleted"`
	FailedEntries     int64 `json:"FailedEntries"`
}

// Import is one import as stored.
type Import struct {
	ID           string     `json:"id"`
	Region       string     `json:"region"`
	Destinations []string   `json:"destinations"`
	Source       S3Source   `json:"source"`
	Start        *time.Time `json:"start,omitempty"`
	End          *time.Time `json:"end,omitempty"`
	Status       string     `json:"status"`
	Created      time.Time  `json:"created"`
	Updated      time.Time  `json:"updated"`
	Stats        Statistics `json:"stats"`
	// LastKey is the last source key whose events are durable in the
	// store; the walk resumes after it.
	LastKey string `json:"lastKey,omitempty"`
	// LastPrefix is the day prefix LastKey belongs to, so that a resumed
	// walk counts prefixes completed exactly once.
	LastPrefix string `json:"lastPrefix,omitempty"`
	// Retrying: the walk re-reads only the files listed as failed.
	Retrying bool `json:"retrying,omitempty"`
}

// Failure is one entry of ListImportFailures: a source file that could not
// be imported.
type Failure struct {
	Location    string    `json:"Location"`
	Status      string    `json:"Status"`
	ErrorType   string    `json:"ErrorType"`
	Message     string    `json:"ErrorMessage"`
	LastUpdated time.Time `json:"LastUpdatedTime"`
}

// ongoing reports whether the import still has work to do.
func (im *Import) ongoing() bool {
	return im.Status == StatusInitializing || im.Status == StatusInProgress
}

// Options tune a Service.
type Options struct {
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ChunkEvents bounds the events handed to the Sink at once (memory);
	// default 20,000.
	ChunkEvents int
	// MaxFileBytes bounds one source file's stored (compressed) size;
	// default 100 MiB (CloudTrail's files are at most 50 MB).
	MaxFileBytes int64
	// ListPageSize is ListImports' and ListImportFailures' default page;
	// default 1000.
	ListPageSize int
}

// Service runs imports. Its methods are the operations; Run is the worker
// that walks the sources.
type Service struct {
	st      *state.Store
	stores  Stores
	source  objstore.Store
	sink    Sink
	account string
	opts    Options
	log     *slog.Logger

	wake chan struct{}

	mu      sync.Mutex
	cancels map[string]context.CancelFunc // imports being walked now
}

// New returns the import service. source is the object store imports read
// from (Cairn's own: the file store or the S3-compatible server trails
// deliver to).
func New(st *state.Store, stores Stores, source objstore.Store, sink Sink, accountID string, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ChunkEvents <= 0 {
		opts.ChunkEvents = 20000
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 100 << 20
	}
	if opts.ListPageSize <= 0 {
		opts.ListPageSize = 1000
	}
	return &Service{
		st: st, stores: stores, source: source, sink: sink, account: accountID, opts: opts,
		log: opts.Logger, wake: make(chan struct{}, 1), cancels: map[string]context.CancelFunc{},
	}
}

func (s *Service) now() time.Time { return s.opts.Clock().UTC() }

// State keys: "lakeimport/<id>" holds an Import,
// "lakeimportfail/<id>/<location>" a Failure.
const (
	importPrefix  = "lakeimport/"
	failurePrefix = "lakeimportfail/"
)

func importKey(id string) string            { return importPrefix + id }
func failureKey(id, location string) string { return failurePrefix + id + "/" + location }

func notFound(id string) error {
	return awsproto.Errorf("ImportNotFoundException", "The import %s was not found.", id)
}

func invalidParam(format string, args ...any) error {
	return awsproto.Errorf("InvalidParameterException", format, args...)
}

// StartInput is StartImport's input: a new import (Destinations and
// Source) or the retry of one (ImportID).
type StartInput struct {
	Destinations []string
	Source       *S3Source
	Start, End   *time.Time
	ImportID     string
}

// Start begins a new import or retries a stopped or failed one.
func (s *Service) Start(ctx context.Context, region string, in StartInput) (Import, error) {
	if in.ImportID != "" {
		if in.Destinations != nil || in.Source != nil {
			return Import{}, invalidParam("Give either ImportId, to retry an import, or Destinations and ImportSource, to start one; not both.")
		}
		return s.retry(ctx, in.ImportID)
	}
	if len(in.Destinations) != 1 {
		return Import{}, invalidParam("A new import needs exactly one destination event data store; %d were given.", len(in.Destinations))
	}
	if in.Source == nil || in.Source.S3LocationUri == "" || in.Source.S3BucketRegion == "" || in.Source.S3BucketAccessRoleArn == "" {
		return Import{}, invalidParam("A new import needs ImportSource.S3 with S3LocationUri, S3BucketRegion and S3BucketAccessRoleArn.")
	}
	if in.Start != nil && in.End != nil && in.Start.After(*in.End) {
		return Import{}, invalidParam("StartEventTime %s is after EndEventTime %s.", in.Start.UTC().Format(time.RFC3339), in.End.UTC().Format(time.RFC3339))
	}
	loc, err := parseLocation(in.Source.S3LocationUri)
	if err != nil {
		return Import{}, err
	}
	if err := checkRoleARN(in.Source.S3BucketAccessRoleArn); err != nil {
		return Import{}, err
	}
	spec, err := s.stores.Resolve(ctx, region, in.Destinations[0])
	if err != nil {
		return Import{}, err
	}
	if err := checkDestination(spec); err != nil {
		return Import{}, err
	}
	ok, err := s.source.BucketExists(ctx, loc.bucket)
	if err != nil {
		return Import{}, fmt.Errorf("start import: check bucket %s: %w", loc.bucket, err)
	}
	if !ok {
		return Import{}, awsproto.Errorf("InvalidImportSourceException", "The S3 bucket %s in S3LocationUri does not exist.", loc.bucket)
	}
	now := s.now()
	im := Import{
		ID: uuid.NewString(), Region: region, Destinations: []string{spec.ARN}, Source: *in.Source,
		Start: utcPtr(in.Start), End: utcPtr(in.End), Status: StatusInitializing, Created: now, Updated: now,
	}
	err = s.st.Update(ctx, func(tx *state.Tx) error {
		if err := checkNoOngoing(tx); err != nil {
			return err
		}
		return tx.Put(importKey(im.ID), &im)
	})
	if err != nil {
		return Import{}, err
	}
	s.kick()
	return im, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// checkDestination refuses stores that cannot take copied trail events.
func checkDestination(spec lake.Spec) error {
	if spec.Status == lake.StatusPendingDeletion {
		return awsproto.Errorf("InactiveEventDataStoreException", "The event data store %s is pending deletion.", spec.ARN)
	}
	switch spec.Category {
	case lake.CategoryManagement, lake.CategoryData, lake.CategoryNetworkActivity:
	default:
		return awsproto.Errorf("InvalidEventDataStoreCategoryException",
			"Trail events can only be copied into an event data store of CloudTrail events; %s holds %s events.", spec.ARN, spec.Category)
	}
	switch spec.Status {
	case lake.StatusEnabled, lake.StatusStoppedIngestion, lake.StatusCreated:
	default:
		return awsproto.Errorf("InvalidEventDataStoreStatusException", "The event data store %s is %s; try again when it is ENABLED.", spec.ARN, spec.Status)
	}
	return nil
}

// checkNoOngoing enforces one import in progress per account.
func checkNoOngoing(r state.Reader) error {
	return r.Scan(importPrefix, func(_ string, v []byte) error {
		var other Import
		if err := decode(v, &other); err != nil {
			return err
		}
		if other.ongoing() {
			return awsproto.Errorf("AccountHasOngoingImportException",
				"The account already has an ongoing import (%s); wait for it to finish or stop it.", other.ID)
		}
		return nil
	})
}

// retry resumes a stopped import where it stopped, or reruns a failed
// one's failed files.
func (s *Service) retry(ctx context.Context, id string) (Import, error) {
	var out Import
	err := s.st.Update(ctx, func(tx *state.Tx) error {
		im, err := loadImport(tx, id)
		if err != nil {
			return err
		}
		switch im.Status {
		case StatusStopped:
			im.Retrying = false
		case StatusFailed:
			im.Retrying = true
		default:
			return invalidParam("The import %s is %s; only a STOPPED or FAILED import can be retried.", id, im.Status)
		}
		if err := checkNoOngoing(tx); err != nil {
			return err
		}
		im.Status = StatusInProgress
		im.Updated = s.now()
		out = im
		return tx.Put(importKey(id), &im)
	})
	if err != nil {
		return Import{}, err
	}
	s.kick()
	return out, nil
}

// loadImport reads a stored import; ImportNotFoundException when there is
// none.
func loadImport(r state.Reader, id string) (Import, error) {
	var im Import
	ok, err := r.Get(importKey(id), &im)
	if err == nil && !ok {
		err = notFound(id)
	}
	return im, err
}

// Get returns one import.
func (s *Service) Get(ctx context.Context, id string) (Import, error) {
	var im Import
	err := s.st.View(ctx, func(r state.Reader) error {
		var err error
		im, err = loadImport(r, id)
		return err
	})
	return im, err
}

// Stop stops an ongoing import; what it already copied stays.
func (s *Service) Stop(ctx context.Context, id string) (Import, error) {
	var out Import
	err := s.st.Update(ctx, func(tx *state.Tx) error {
		im, err := loadImport(tx, id)
		if err != nil {
			return err
		}
		if im.ongoing() {
			im.Status = StatusStopped
			im.Updated = s.now()
			if err := tx.Put(importKey(id), &im); err != nil {
				return err
			}
		}
		out = im
		return nil
	})
	if err != nil {
		return Import{}, err
	}
	s.mu.Lock()
	if cancel := s.cancels[id]; cancel != nil {
		cancel()
	}
	s.mu.Unlock()
	return out, nil
}

// ListInput filters ListImports.
type ListInput struct {
	Destination string // a store ARN; empty: all
	Status      string // empty: all
	MaxResults  int    // 0: the default page
	NextToken   string
}

// List returns imports, newest first, a page at a time. The token is the
// last ID returned.
func (s *Service) List(ctx context.Context, in ListInput) ([]Import, string, error) {
	if in.Status != "" && !slices.Contains([]string{StatusInitializing, StatusInProgress, StatusFailed, StatusStopped, StatusCompleted}, in.Status) {
		return nil, "", invalidParam("ImportStatus %q is not valid.", in.Status)
	}
	if in.Destination != "" && !strings.HasPrefix(in.Destination, "arn:") {
		return nil, "", awsproto.Errorf("EventDataStoreARNInvalidException", "The event data store ARN %s is not valid.", in.Destination)
	}
	max := in.MaxResults
	if max <= 0 {
		max = s.opts.ListPageSize
	}
	var all []Import
	err := s.st.View(ctx, func(r state.Reader) error {
		return r.Scan(importPrefix, func(_ string, v []byte) error {
			var im Import
			if err := decode(v, &im); err != nil {
				return err
			}
			if (in.Status == "" || im.Status == in.Status) && (in.Destination == "" || slices.Contains(im.Destinations, in.Destination)) {
				all = append(all, im)
			}
			return nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(all, func(a, b Import) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return page(all, in.NextToken, max, func(im Import) string { return im.ID })
}

// ListFailures returns an import's failed files, a page at a time.
func (s *Service) ListFailures(ctx context.Context, id string, maxResults int, nextToken string) ([]Failure, string, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, "", err
	}
	if maxResults <= 0 {
		maxResults = s.opts.ListPageSize
	}
	var all []Failure
	err := s.st.View(ctx, func(r state.Reader) error {
		return r.Scan(failurePrefix+id+"/", func(_ string, v []byte) error {
			var f Failure
			if err := decode(v, &f); err != nil {
				return err
			}
			all = append(all, f)
			return nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	return page(all, nextToken, maxResults, func(f Failure) string { return f.Location })
}

// page cuts one page out of items after the item whose key is token.
func page[T any](items []T, token string, max int, key func(T) string) ([]T, string, error) {
	start := 0
	if token != "" {
		i := slices.IndexFunc(items, func(it T) bool { return key(it) == token })
		if i < 0 {
			return nil, "", awsproto.Errorf("InvalidNextTokenException", "The NextToken is not valid.")
		}
		start = i + 1
	}
	end := min(start+max, len(items))
	next := ""
	if end < len(items) {
		next = key(items[end-1])
	}
	return items[start:end], next, nil
}

// kick wakes the worker.
func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

var errStopped = errors.New("import stopped")
