package query

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/state"
)

// Query statuses (the model's QueryStatus).
const (
	StatusQueued    = "QUEUED"
	StatusRunning   = "RUNNING"
	StatusFinished  = "FINISHED"
	StatusFailed    = "FAILED"
	StatusCancelled = "CANCELLED"
	StatusTimedOut  = "TIMED_OUT"
)

// Delivery statuses (the model's DeliveryStatus) Cairn uses.
const (
	DeliveryPending          = "PENDING"
	DeliverySuccess          = "SUCCESS"
	DeliveryFailed           = "FAILED"
	DeliveryResourceNotFound = "RESOURCE_NOT_FOUND"
	DeliveryCancelled        = "CANCELLED"
)

// Defaults of Options.
const (
	DefaultMaxRunning     = 10 // Lake's limit on concurrent queries
	DefaultMaxExecuting   = 4
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultMaxResultBytes = 1 << 30
)

// statePrefix is where query records live in the state store.
const statePrefix = "query/"

// Options configure a Service.
type Options struct {
	Engine *Engine
	// State keeps the queries' records; Dir their results (one file a
	// query, removed with the record).
	State *state.Store
	Dir   string
	// Objects receives results delivered to DeliveryS3Uri; nil refuses
	// delivery.
	Objects objstore.Store
	// MaxRunning is Lake's limit on queries QUEUED or RUNNING at once
	// (MaxConcurrentQueriesException beyond); MaxExecuting how many of
	// them DuckDB runs at once, the others waiting QUEUED. Memory and
	// threads in total are MaxExecuting times the engine's Limits.
	MaxRunning   int
	MaxExecuting int
	// Retention: queries and results older are dropped (Lake: 7 days).
	Retention time.Duration
	// MaxResultBytes bounds one query's result file; a query producing
	// more FAILS.
	MaxResultBytes int64
	// Aliases are the dashboard widget queries StartQuery runs by
	// QueryAlias and DescribeQuery finds by QueryAlias and RefreshId; nil
	// knows none.
	Aliases Aliases
	Now     func() time.Time
	Logger  *slog.Logger
}

// Record is a query as kept in the state store.
type Record struct {
	ID             string    `json:"id"`
	Region         string    `json:"region"`
	AccountID      string    `json:"accountId"`
	Statement      string    `json:"statement"`
	Stores         []string  `json:"stores"` // ARNs
	Status         string    `json:"status"`
	Created        time.Time `json:"created"`
	ErrorMessage   string    `json:"errorMessage,omitempty"`
	DeliveryS3Uri  string    `json:"deliveryS3Uri,omitempty"`
	DeliveryStatus string    `json:"deliveryStatus,omitempty"`
	Columns        []string  `json:"columns,omitempty"`
	ResultsCount   int64     `json:"resultsCount"`
	EventsMatched  int64     `json:"eventsMatched"`
	EventsScanned  int64     `json:"eventsScanned"`
	BytesScanned   int64     `json:"bytesScanned"`
	ExecutionMS    int64     `json:"executionMillis"`
}

// Active reports whether the query is QUEUED or RUNNING.
func (r *Record) Active() bool { return r.Status == StatusQueued || r.Status == StatusRunning }

// Service is the query life cycle. Close stops it.
type Service struct {
	opts Options
	log  *slog.Logger
	slot chan struct{}

	mu      sync.Mutex
	active  map[string]context.CancelFunc
	closed  bool
	wg      sync.WaitGroup
	stop    chan struct{}
	records sync.Mutex // serialises read-modify-write of records
}

// NewService opens the query service: queries a crash left QUEUED or
// RUNNING are FAILED, queries past retention are dropped.
func NewService(ctx context.Context, opts Options) (*Service, error) {
	if opts.Engine == nil || opts.State == nil || opts.Dir == "" {
		return nil, errors.New("query: NewService needs an engine, a state store and a results directory")
	}
	if opts.MaxRunning <= 0 {
		opts.MaxRunning = DefaultMaxRunning
	}
	if opts.MaxExecuting <= 0 {
		opts.MaxExecuting = DefaultMaxExecuting
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MaxResultBytes <= 0 {
		opts.MaxResultBytes = DefaultMaxResultBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("query: create results directory: %w", err)
	}
	s := &Service{
		opts:   opts,
		log:    opts.Logger,
		slot:   make(chan struct{}, opts.MaxExecuting),
		active: map[string]context.CancelFunc{},
		stop:   make(chan struct{}),
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	if err := s.expire(ctx); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

// Close interrupts running queries and waits for them. Their records
// stay RUNNING, as a crash would leave them: the next NewService records
// them FAILED.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, cancel := range s.active {
		cancel()
	}
	close(s.stop)
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Service) recover(ctx context.Context) error {
	var stale []Record
	err := s.opts.State.View(ctx, func(r state.Reader) error {
		return r.Scan(statePrefix, func(_ string, v []byte) error {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("query: decode a stored query: %w", err)
			}
			if rec.Active() {
				stale = append(stale, rec)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, rec := range stale {
		rec.Status = StatusFailed
		rec.ErrorMessage = "The query was interrupted: Cairn stopped while it ran. Run it again."
		if rec.DeliveryStatus == DeliveryPending {
			rec.DeliveryStatus = DeliveryFailed
		}
		_ = os.Remove(s.resultPath(rec.ID))
		if err := s.put(ctx, &rec); err != nil {
			return err
		}
	}
	return nil
}

// expire drops queries older than the retention, with their results.
func (s *Service) expire(ctx context.Context) error {
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	var old []string
	err := s.opts.State.View(ctx, func(r state.Reader) error {
		return r.Scan(statePrefix, func(k string, v []byte) error {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("query: decode a stored query: %w", err)
			}
			if rec.Created.Before(cutoff) && !rec.Active() {
				old = append(old, rec.ID)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, id := range old {
		if err := s.opts.State.Update(ctx, func(tx *state.Tx) error { return tx.Delete(statePrefix + id) }); err != nil {
			return err
		}
		if err := os.Remove(s.resultPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("query: remove expired results: %w", err)
		}
	}
	return nil
}

func (s *Service) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.expire(context.Background()); err != nil {
				s.log.Warn("query: dropping expired queries failed", "err", err)
			}
		}
	}
}

func (s *Service) resultPath(id string) string { return filepath.Join(s.opts.Dir, id+".jsonl") }

func (s *Service) put(ctx context.Context, rec *Record) error {
	return s.opts.State.Update(ctx, func(tx *state.Tx) error { return tx.Put(statePrefix+rec.ID, rec) })
}

// Get returns a query's record; QueryIdNotFoundException when there is
// none in the region and account.
func (s *Service) Get(ctx context.Context, region, account, id string) (*Record, error) {
	var rec Record
	var found bool
	err := s.opts.State.View(ctx, func(r state.Reader) error {
		var err error
		found, err = r.Get(statePrefix+id, &rec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("query: read query %s: %w", id, err)
	}
	if !found || rec.Region != region || rec.AccountID != account {
		return nil, awsproto.Errorf("QueryIdNotFoundException", "The query ID %s does not exist or is not valid.", id)
	}
	return &rec, nil
}

// update applies fn to the stored record of id.
func (s *Service) update(id string, fn func(*Record)) (*Record, error) {
	s.records.Lock()
	defer s.records.Unlock()
	ctx := context.Background()
	var rec Record
	err := s.opts.State.Update(ctx, func(tx *state.Tx) error {
		found, err := tx.Get(statePrefix+id, &rec)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("query: record %s vanished", id)
		}
		fn(&rec)
		return tx.Put(statePrefix+id, &rec)
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// StartInput is what StartQuery was given.
type StartInput struct {
	Region, AccountID string
	Statement         string
	Alias             string
	Parameters        []string
	DeliveryS3Uri     string
}

// Start checks the statement and starts it; the query runs in the
// background.
func (s *Service) Start(ctx context.Context, in StartInput) (*Record, error) {
	stmt := in.Statement
	if in.Alias != "" {
		if s.opts.Aliases == nil {
			return nil, awsproto.Errorf("InvalidParameterException", "QueryAlias %s is not a query Cairn knows.", in.Alias)
		}
		var err error
		if stmt, err = s.opts.Aliases.Statement(ctx, in.Region, in.Alias, in.Parameters); err != nil {
			return nil, err
		}
	}
	var bucket, prefix string
	if in.DeliveryS3Uri != "" {
		var err error
		if bucket, prefix, err = parseS3URI(in.DeliveryS3Uri); err != nil {
			return nil, err
		}
		if s.opts.Objects == nil {
			return nil, awsproto.Errorf("S3BucketDoesNotExistException", "S3 bucket %s does not exist.", bucket)
		}
		ok, err := s.opts.Objects.BucketExists(ctx, bucket)
		if err != nil {
			return nil, fmt.Errorf("query: check delivery bucket %s: %w", bucket, err)
		}
		if !ok {
			return nil, awsproto.Errorf("S3BucketDoesNotExistException", "S3 bucket %s does not exist.", bucket)
		}
	}
	checked, err := s.opts.Engine.Check(ctx, in.Region, in.AccountID, stmt)
	if err != nil {
		return nil, err
	}
	if len(checked.Stores) == 0 {
		return nil, invalid("The query must read an event data store: FROM names one by its ID or ARN.")
	}
	rec := &Record{
		ID:            newID(),
		Region:        in.Region,
		AccountID:     in.AccountID,
		Statement:     stmt,
		Status:        StatusQueued,
		Created:       s.opts.Now().UTC(),
		DeliveryS3Uri: in.DeliveryS3Uri,
	}
	for _, st := range checked.Stores {
		rec.Stores = append(rec.Stores, st.ARN)
	}
	if in.DeliveryS3Uri != "" {
		rec.DeliveryStatus = DeliveryPending
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("query: service is closed")
	}
	if len(s.active) >= s.opts.MaxRunning {
		s.mu.Unlock()
		return nil, awsproto.Errorf("MaxConcurrentQueriesException", "You are already running the maximum number of concurrent queries. The maximum number of concurrent queries is %d. Wait a minute for some queries to finish, and then run the query again.", s.opts.MaxRunning)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.active[rec.ID] = cancel
	s.wg.Add(1)
	s.mu.Unlock()

	if err := s.put(ctx, rec); err != nil {
		s.mu.Lock()
		delete(s.active, rec.ID)
		s.mu.Unlock()
		cancel()
		s.wg.Done()
		return nil, err
	}
	go s.run(runCtx, cancel, rec.ID, checked, bucket, prefix)
	return rec, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Aliases resolves dashboard widget queries (internal/lake/dashboards).
type Aliases interface {
	// Statement is the widget's statement with the parameters' values in
	// place of its ? marks.
	Statement(ctx context.Context, region, alias string, params []string) (string, error)
	// QueryFor is the query a dashboard refresh started for the widget.
	QueryFor(ctx context.Context, region, alias, refreshID string) (string, error)
}

// QueryForAlias is the ID of the query a dashboard refresh started for a
// widget: DescribeQuery by QueryAlias and RefreshId.
func (s *Service) QueryForAlias(ctx context.Context, region, alias, refreshID string) (string, error) {
	if s.opts.Aliases == nil {
		return "", awsproto.Errorf("QueryIdNotFoundException", "No query of widget %s in refresh %s was found.", alias, refreshID)
	}
	return s.opts.Aliases.QueryFor(ctx, region, alias, refreshID)
}

// MapAliases are fixed alias statements whose ? marks take the parameters
// as SQL string literals; they are never part of a refresh.
type MapAliases map[string]string

// Statement implements Aliases.
func (m MapAliases) Statement(_ context.Context, _, alias string, params []string) (string, error) {
	tmpl, ok := m[alias]
	if !ok {
		return "", awsproto.Errorf("InvalidParameterException", "QueryAlias %s is not a query Cairn knows.", alias)
	}
	return bindParameters(tmpl, params)
}

// QueryFor implements Aliases.
func (m MapAliases) QueryFor(_ context.Context, _, alias, refreshID string) (string, error) {
	return "", awsproto.Errorf("QueryIdNotFoundException", "No query of widget %s in refresh %s was found.", alias, refreshID)
}

// bindParameters fills the "?" of a dashboard query.
func bindParameters(tmpl string, params []string) (string, error) {
	var b strings.Builder
	n := 0
	for _, r := range tmpl {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		if n >= len(params) {
			return "", awsproto.Errorf("InvalidParameterException", "The query needs more QueryParameters than the %d given.", len(params))
		}
		b.WriteString(sqlString(params[n]))
		n++
	}
	if n != len(params) {
		return "", awsproto.Errorf("InvalidParameterException", "The query takes %d QueryParameters, not %d.", n, len(params))
	}
	return b.String(), nil
}

// parseS3URI splits s3://bucket[/prefix].
func parseS3URI(uri string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok || rest == "" {
		return "", "", awsproto.Errorf("InvalidS3PrefixException", "DeliveryS3Uri %s is not of the form s3://bucket[/prefix].", uri)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if objstore.ValidBucketName(bucket) != nil {
		return "", "", awsproto.Errorf("InvalidS3BucketNameException", "Bucket name %s is not valid.", bucket)
	}
	return bucket, strings.Trim(prefix, "/"), nil
}

// run executes one query and records how it ended.
func (s *Service) run(ctx context.Context, cancel context.CancelFunc, id string, q *Checked, bucket, prefix string) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.active, id)
		s.mu.Unlock()
		cancel()
	}()
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return // cancelled while queued: CancelQuery recorded it
	}
	defer func() { <-s.slot }()
	if _, err := s.update(id, func(r *Record) {
		if r.Status == StatusQueued {
			r.Status = StatusRunning
		}
	}); err != nil {
		s.log.Error("query: record RUNNING", "query", id, "err", err)
		return
	}

	w, err := newResultWriter(s.resultPath(id), s.opts.MaxResultBytes)
	if err != nil {
		s.finish(id, StatusFailed, err.Error(), nil, Stats{})
		return
	}
	st, runErr := s.opts.Engine.Run(ctx, q, w)
	closeErr := w.close()
	if runErr == nil {
		runErr = closeErr
	}
	status, msg := StatusFinished, ""
	switch {
	case runErr == nil:
	case errors.Is(runErr, ErrTimedOut):
		status, msg = StatusTimedOut, "The query ran over its time limit and was stopped."
	case ctx.Err() != nil:
		// Cancelled: CancelQuery recorded it (or Close, leaving it to be
		// FAILED at the next start); its partial results go.
		_ = os.Remove(s.resultPath(id))
		return
	default:
		status = StatusFailed
		if ae := awsproto.AsError(runErr); ae != nil && ae.Code != "InternalFailure" {
			msg = ae.Message
		} else {
			msg = runErr.Error()
			s.log.Error("query: run failed", "query", id, "err", runErr)
		}
		_ = os.Remove(s.resultPath(id))
	}
	rec := s.finish(id, status, msg, w, st)
	if rec != nil && rec.DeliveryS3Uri != "" {
		s.deliver(rec, bucket, prefix)
	}
}

// finish records a query's end unless CancelQuery got there first.
func (s *Service) finish(id, status, msg string, w *resultWriter, st Stats) *Record {
	rec, err := s.update(id, func(r *Record) {
		if !r.Active() {
			return
		}
		r.Status = status
		r.ErrorMessage = msg
		r.EventsScanned = st.EventsScanned
		r.BytesScanned = st.BytesScanned
		r.ExecutionMS = st.Elapsed.Milliseconds()
		if w != nil && status != StatusFailed {
			r.Columns = w.columns
			r.ResultsCount = w.rows
			r.EventsMatched = w.rows
		}
		if status != StatusFinished && r.DeliveryStatus == DeliveryPending {
			r.DeliveryStatus = DeliveryFailed
		}
	})
	if err != nil {
		s.log.Error("query: record the end of a query", "query", id, "err", err)
		return nil
	}
	if rec.Status != status {
		return nil
	}
	return rec
}

// deliver writes a finished query's results to its bucket as gzip CSV.
func (s *Service) deliver(rec *Record, bucket, prefix string) {
	key := rec.ID + "/result_1.csv.gz"
	if prefix != "" {
		key = prefix + "/" + key
	}
	status := DeliverySuccess
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.writeCSV(rec, pw)) }()
	err := s.opts.Objects.Put(context.Background(), bucket, key, pr, -1, objstore.PutOptions{ContentType: "text/csv", ContentEncoding: "gzip"})
	pr.CloseWithError(err)
	if err != nil {
		status = DeliveryFailed
		if errors.Is(err, objstore.ErrNoSuchBucket) {
			status = DeliveryResourceNotFound
		}
		s.log.Warn("query: delivering results failed", "query", rec.ID, "bucket", bucket, "err", err)
	}
	if _, err := s.update(rec.ID, func(r *Record) { r.DeliveryStatus = status }); err != nil {
		s.log.Error("query: record delivery status", "query", rec.ID, "err", err)
	}
}

func (s *Service) writeCSV(rec *Record, w io.Writer) error {
	zw := gzip.NewWriter(w)
	cw := csv.NewWriter(zw)
	if err := cw.Write(rec.Columns); err != nil {
		return err
	}
	f, err := os.Open(s.resultPath(rec.ID))
	if err != nil {
		return fmt.Errorf("query: open results: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var row []*string
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return fmt.Errorf("query: read results: %w", err)
		}
		out := make([]string, len(row))
		for i, v := range row {
			if v != nil {
				out[i] = *v
			}
		}
		if err := cw.Write(out); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("query: read results: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return zw.Close()
}

// Cancel stops a QUEUED or RUNNING query; InactiveQueryException for one
// that has ended.
func (s *Service) Cancel(ctx context.Context, region, account, id string) (*Record, error) {
	if _, err := s.Get(ctx, region, account, id); err != nil {
		return nil, err
	}
	var inactive string
	rec, err := s.update(id, func(r *Record) {
		if !r.Active() {
			inactive = r.Status
			return
		}
		r.Status = StatusCancelled
		if r.DeliveryStatus == DeliveryPending {
			r.DeliveryStatus = DeliveryCancelled
		}
	})
	if err != nil {
		return nil, err
	}
	if inactive != "" {
		return nil, awsproto.Errorf("InactiveQueryException", "The query %s is %s and cannot be cancelled.", id, inactive)
	}
	s.mu.Lock()
	if cancel, ok := s.active[id]; ok {
		cancel()
	}
	s.mu.Unlock()
	return rec, nil
}

// Page is one page of results.
type Page struct {
	Rows      [][]Cell
	NextToken string
}

// Cell is one value of a row: its column and value (nil for NULL).
type Cell struct {
	Column string
	Value  *string
}

// Results reads a page of a query's results. Rows are served once the
// query FINISHED (or TIMED_OUT: what it produced until then).
func (s *Service) Results(ctx context.Context, rec *Record, token string, max int) (*Page, error) {
	if rec.Status != StatusFinished && rec.Status != StatusTimedOut {
		return &Page{}, nil
	}
	var line, off int64
	if token != "" {
		var err error
		if line, off, err = decodeToken(rec.ID, token); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(s.resultPath(rec.ID))
	if errors.Is(err, os.ErrNotExist) {
		return &Page{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("query: open results of %s: %w", rec.ID, err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("query: seek results: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	page := &Page{}
	for len(page.Rows) < max {
		b, err := br.ReadBytes('\n')
		if err == io.EOF && len(b) == 0 {
			return page, nil
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("query: read results: %w", err)
		}
		off += int64(len(b))
		line++
		var vals []*string
		if err := json.Unmarshal(b, &vals); err != nil {
			return nil, fmt.Errorf("query: decode results of %s: %w", rec.ID, err)
		}
		row := make([]Cell, len(vals))
		for i, v := range vals {
			col := ""
			if i < len(rec.Columns) {
				col = rec.Columns[i]
			}
			row[i] = Cell{Column: col, Value: v}
		}
		page.Rows = append(page.Rows, row)
	}
	if _, err := br.Peek(1); err == nil {
		page.NextToken = encodeToken(rec.ID, line, off)
	}
	return page, nil
}

func encodeToken(id string, line, off int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id + ":" + strconv.FormatInt(line, 10) + ":" + strconv.FormatInt(off, 10)))
}

func decodeToken(id, token string) (line, off int64, err error) {
	bad := awsproto.Errorf("InvalidNextTokenException", "A token that is not valid, or a token that was previously used in a request with different parameters.")
	raw, derr := base64.RawURLEncoding.DecodeString(token)
	if derr != nil {
		return 0, 0, bad
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 3 || parts[0] != id {
		return 0, 0, bad
	}
	line, err1 := strconv.ParseInt(parts[1], 10, 64)
	off, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || line < 0 || off < 0 {
		return 0, 0, bad
	}
	return line, off, nil
}

// ListFilter narrows List.
type ListFilter struct {
	StoreARN   string
	Start, End time.Time // zero: unbounded
	Status     string
}

// List returns the queries of a store from the retention window, newest
// first.
func (s *Service) List(ctx context.Context, region, account string, f ListFilter) ([]Record, error) {
	cutoff := s.opts.Now().Add(-s.opts.Retention)
	var out []Record
	err := s.opts.State.View(ctx, func(r state.Reader) error {
		return r.Scan(statePrefix, func(_ string, v []byte) error {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("query: decode a stored query: %w", err)
			}
			if rec.Region != region || rec.AccountID != account || rec.Created.Before(cutoff) {
				return nil
			}
			if !contains(rec.Stores, f.StoreARN) {
				return nil
			}
			if !f.Start.IsZero() && rec.Created.Before(f.Start) || !f.End.IsZero() && rec.Created.After(f.End) {
				return nil
			}
			if f.Status != "" && rec.Status != f.Status {
				return nil
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Engine returns the service's engine (for ListQueries' store lookup).
func (s *Service) Engine() *Engine { return s.opts.Engine }

// resultWriter is the Sink writing a query's rows to its result file, one
// JSON array of strings (null for NULL) a line, within a byte bound.
type resultWriter struct {
	f       *os.File
	w       *bufio.Writer
	max     int64
	written int64
	rows    int64
	columns []string
}

func newResultWriter(path string, max int64) (*resultWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("query: create result file: %w", err)
	}
	return &resultWriter{f: f, w: bufio.NewWriterSize(f, 256<<10), max: max}, nil
}

func (w *resultWriter) Columns(names []string) error {
	w.columns = append([]string(nil), names...)
	return nil
}

func (w *resultWriter) Row(values []*string) error {
	b, err := json.Marshal(values)
	if err != nil {
		return fmt.Errorf("query: encode a result row: %w", err)
	}
	w.written += int64(len(b)) + 1
	if w.written > w.max {
		return invalid("The query's results exceed %d bytes; narrow it (WHERE, LIMIT).", w.max)
	}
	w.rows++
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("query: write results: %w", err)
	}
	return w.w.WriteByte('\n')
}

// close flushes and syncs the file: a query is recorded FINISHED only
// with its results on disk.
func (w *resultWriter) close() error {
	err := w.w.Flush()
	if serr := w.f.Sync(); err == nil {
		err = serr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("query: write results: %w", err)
	}
	return nil
}
