package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/lake"
)

// Column is one column of a store's table, as DuckDB types it.
type Column struct {
	Name string
	Type string // a DuckDB type, e.g. "VARCHAR", "MAP(VARCHAR, VARCHAR)"
}

// Catalog is what the engine needs to know of the event data stores. The
// integrator backs it with the store service (internal/lake) and the
// ingestion's files (internal/lake/ingest).
type Catalog interface {
	// Lookup resolves a table reference, a store's ID or ARN, in a
	// region and account; ok is false when no store has it.
	Lookup(ctx context.Context, region, account, ref string) (spec lake.Spec, ok bool, err error)
	// Files lists the store's Parquet files on the local file system,
	// readable for the whole of a query that starts now.
	Files(ctx context.Context, id string) ([]string, error)
	// Columns is the table of a store of the category when it has no
	// file yet, so that queries over an empty store still bind.
	Columns(category string) []Column
}

// Limits bound one query.
type Limits struct {
	// Timeout ends a query (TIMED_OUT); Lake's is about an hour.
	Timeout time.Duration
	// MemoryBytes is DuckDB's memory_limit for the query's database.
	MemoryBytes int64
	// Threads is DuckDB's threads for the query's database.
	Threads int
}

// DefaultLimits are a query's bounds when Options leave them zero.
var DefaultLimits = Limits{Timeout: time.Hour, MemoryBytes: 512 << 20, Threads: 2}

// Engine checks statements and runs them on DuckDB, each query in a
// database of its own that can read only the files of the stores it
// names. It is safe for concurrent use.
type Engine struct {
	catalog Catalog
	limits  Limits
	// parser runs json_serialize_sql and json_deserialize_sql only; it is
	// locked like the query databases and can read no file.
	parserConn *duckdb.Connector
	parser     *sql.DB
	// warm holds query databases opened ahead by warmer.
	warm chan *queryDB
	stop chan struct{}
	wg   sync.WaitGroup
	// warmMu orders starting the warmer (at the first query, so that a
	// server that runs no query spends nothing on DuckDB databases, and
	// its start is not slowed by them) against Close.
	warmMu      sync.Mutex
	warmStarted bool
	closed      bool
}

// warmDatabases is how many query databases are kept opened ahead.
const warmDatabases = 2

// NewEngine opens the engine. Close releases it.
func NewEngine(ctx context.Context, catalog Catalog, limits Limits) (*Engine, error) {
	if limits.Timeout <= 0 {
		limits.Timeout = DefaultLimits.Timeout
	}
	if limits.MemoryBytes <= 0 {
		limits.MemoryBytes = DefaultLimits.MemoryBytes
	}
	if limits.Threads <= 0 {
		limits.Threads = DefaultLimits.Threads
	}
	c, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("query: open the parser database: %w", err)
	}
	db := sql.OpenDB(c)
	for _, s := range lockdown(nil, Limits{MemoryBytes: 64 << 20, Threads: 1}) {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			c.Close()
			return nil, fmt.Errorf("query: lock the parser database (%s): %w", s, err)
		}
	}
	e := &Engine{catalog: catalog, limits: limits, parserConn: c, parser: db, warm: make(chan *queryDB, warmDatabases), stop: make(chan struct{})}
	return e, nil
}

// startWarmer starts the warmer once, unless the engine is closed.
func (e *Engine) startWarmer() {
	e.warmMu.Lock()
	defer e.warmMu.Unlock()
	if e.warmStarted || e.closed {
		return
	}
	e.warmStarted = true
	e.wg.Add(1)
	go e.warmer()
}

// Close releases the parser database.
func (e *Engine) Close() error {
	e.warmMu.Lock()
	e.closed = true
	e.warmMu.Unlock()
	close(e.stop)
	e.wg.Wait()
	for {
		select {
		case q := <-e.warm:
			q.close()
			continue
		default:
		}
		break
	}
	err := e.parser.Close()
	if cerr := e.parserConn.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockdown is the configuration of a database, in the order it must be
// applied: bounds first, then the files it may read, then no other
// access, then the lock, after which no SET can undo any of it.
func lockdown(paths []string, l Limits) []string {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = sqlString(p)
	}
	return []string{
		fmt.Sprintf("SET threads = %d", l.Threads),
		fmt.Sprintf("SET memory_limit = '%dB'", l.MemoryBytes),
		"SET TimeZone = 'UTC'",
		"SET temp_directory = ''", // no spilling: a query over its memory fails
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		fmt.Sprintf("SET allowed_paths = [%s]", strings.Join(quoted, ", ")),
		"SET enable_external_access = false",
		"SET lock_configuration = true",
	}
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// resolve finds the store a table reference names and checks that it may
// be queried.
func (e *Engine) resolve(ctx context.Context, region, account, ref string) (lake.Spec, error) {
	spec, ok, err := e.catalog.Lookup(ctx, region, account, ref)
	if err != nil {
		return lake.Spec{}, fmt.Errorf("query: look up event data store %s: %w", ref, err)
	}
	if !ok {
		if strings.HasPrefix(ref, "arn:") || storeRef.MatchString(ref) {
			return lake.Spec{}, awsproto.Errorf("EventDataStoreNotFoundException", "The specified event data store %s was not found.", ref)
		}
		return lake.Spec{}, invalid("Table %s does not exist: FROM names an event data store by its ID or ARN.", ref)
	}
	if !spec.Queryable {
		return lake.Spec{}, awsproto.Errorf("InactiveEventDataStoreException", "The event data store %s is inactive (%s) and cannot be queried.", spec.ARN, spec.Status)
	}
	return spec, nil
}

// Stats are what a run measured.
type Stats struct {
	EventsScanned int64
	BytesScanned  int64
	Elapsed       time.Duration
}

// Sink receives a query's result: the column names once, then each row
// with its values rendered as Lake renders them (nil for NULL).
type Sink interface {
	Columns(names []string) error
	Row(values []*string) error
}

// ErrTimedOut is returned by Run when the query ran over its time limit.
var ErrTimedOut = errors.New("query: time limit reached")

// Run runs a checked statement in a database of its own and streams the
// result into sink. Cancelling ctx interrupts DuckDB and frees the
// query's memory; a run over the time limit returns ErrTimedOut. A
// DuckDB error is InvalidQueryStatementException's message material and
// is returned as *awsproto.Error.
func (e *Engine) Run(ctx context.Context, q *Checked, sink Sink) (Stats, error) {
	start := time.Now()
	var st Stats
	var views []storeView
	for _, s := range q.Stores {
		files, err := e.catalog.Files(ctx, s.ID)
		if err != nil {
			return st, fmt.Errorf("query: list the files of %s: %w", s.ID, err)
		}
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				st.BytesScanned += fi.Size()
			}
		}
		views = append(views, storeView{id: s.ID, files: files, cols: e.catalog.Columns(s.Category)})
	}

	conn, closeDB, err := e.sandbox(ctx, views)
	if err != nil {
		return st, err
	}
	defer closeDB()
	for _, v := range views {
		if len(v.files) == 0 {
			continue
		}
		var n sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT sum(num_rows) FROM parquet_file_metadata(["+joinQuoted(v.files)+"])").Scan(&n); err == nil {
			st.EventsScanned += n.Int64
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, e.limits.Timeout)
	defer cancel()
	err = runInto(runCtx, conn, q.SQL, sink)
	st.Elapsed = time.Since(start)
	if err != nil {
		if errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return st, ErrTimedOut
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		return st, err
	}
	return st, nil
}

// storeView is a store as one query sees it.
type storeView struct {
	id    string
	files []string
	cols  []Column
}

// sandbox opens a query's database: the Trino macros, then the
// lockdown allowing exactly the views' files, then the views. Whatever
// runs on the returned connection can read those files and nothing else.
func (e *Engine) sandbox(ctx context.Context, views []storeView) (*sql.Conn, func(), error) {
	var paths []string
	for _, v := range views {
		paths = append(paths, v.files...)
	}
	e.startWarmer()
	var q *queryDB
	select {
	case q = <-e.warm:
	default:
		var err error
		if q, err = openQueryDB(ctx); err != nil {
			return nil, nil, err
		}
	}
	// Then the lockdown, then the views, in that order.
	setup := []string{strings.Join(lockdown(paths, e.limits), ";\n")}
	for _, v := range views {
		setup = append(setup, viewStatement(v.id, v.files, v.cols))
	}
	for _, s := range setup {
		if _, err := q.conn.ExecContext(ctx, s); err != nil {
			q.close()
			return nil, nil, fmt.Errorf("query: prepare the query database (%.60s): %w", s, err)
		}
	}
	return q.conn, q.close, nil
}

// queryDB is a fresh in-memory database with the Trino macros, not yet
// locked down: nothing runs in it before sandbox locks it.
type queryDB struct {
	c    *duckdb.Connector
	db   *sql.DB
	conn *sql.Conn
}

func (q *queryDB) close() {
	q.conn.Close()
	q.db.Close()
	q.c.Close()
}

func openQueryDB(ctx context.Context) (*queryDB, error) {
	c, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("query: open a query database: %w", err)
	}
	db := sql.OpenDB(c)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		c.Close()
		return nil, fmt.Errorf("query: connect to the query database: %w", err)
	}
	q := &queryDB{c: c, db: db, conn: conn}
	if _, err := conn.ExecContext(ctx, strings.Join(macroStatements(), ";\n")); err != nil {
		q.close()
		return nil, fmt.Errorf("query: create the Trino macros: %w", err)
	}
	return q, nil
}

// warmer keeps a few query databases opened ahead (opening DuckDB and
// creating the macros is two thirds of a query's fixed cost), until
// Close.
func (e *Engine) warmer() {
	defer e.wg.Done()
	for {
		q, err := openQueryDB(context.Background())
		if err != nil {
			select {
			case <-e.stop:
				return
			case <-time.After(time.Second):
				continue
			}
		}
		select {
		case e.warm <- q:
		case <-e.stop:
			q.close()
			return
		}
	}
}

func joinQuoted(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = sqlString(p)
	}
	return strings.Join(q, ", ")
}

// viewStatement is the view a store's table reference reads: its files,
// or an empty table of the category's columns.
func viewStatement(id string, files []string, cols []Column) string {
	if len(files) > 0 {
		return fmt.Sprintf("CREATE TEMP VIEW %s AS SELECT * FROM read_parquet([%s])", sqlIdent(viewName(id)), joinQuoted(files))
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, sqlIdent(c.Name))
	}
	if len(sel) == 0 {
		sel = []string{"CAST(NULL AS VARCHAR) AS eventid"}
	}
	return fmt.Sprintf("CREATE TEMP VIEW %s AS SELECT %s WHERE false", sqlIdent(viewName(id)), strings.Join(sel, ", "))
}

// runInto runs the statement and renders its rows into sink.
func runInto(ctx context.Context, conn *sql.Conn, stmt string, sink Sink) error {
	rows, err := conn.QueryContext(ctx, stmt)
	if err != nil {
		return engineError(err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return fmt.Errorf("query: read result columns: %w", err)
	}
	names := make([]string, len(types))
	parsed := make([]*duckType, len(types))
	for i, t := range types {
		names[i] = strings.ToLower(t.Name()) // Trino's names are lower-case
		parsed[i] = parseType(t.DatabaseTypeName())
	}
	if err := sink.Columns(names); err != nil {
		return err
	}
	vals := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := make([]*string, len(types))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("query: read a result row: %w", err)
		}
		for i, v := range vals {
			if v == nil {
				out[i] = nil
				continue
			}
			s := render(v, parsed[i])
			out[i] = &s
		}
		if err := sink.Row(out); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return engineError(err)
	}
	return nil
}

// engineError turns DuckDB's complaint about a statement (binding,
// conversion, out of memory) into the InvalidQueryStatementException
// Lake answers, keeping DuckDB's message with its LINE and caret.
func engineError(err error) error {
	var de *duckdb.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdb.ErrorTypeInterrupt:
			return err
		}
		return invalid("%s", de.Msg)
	}
	return err
}

// storeARN is the form of an event data store ARN.
var storeARN = regexp.MustCompile(`^arn:[a-z-]+:cloudtrail:[a-z0-9-]+:\d{12}:eventdatastore/[A-Za-z0-9._-]+$`)

// Store resolves an operation's EventDataStore member (an ID or ARN):
// EventDataStoreARNInvalidException for a malformed ARN,
// EventDataStoreNotFoundException for an unknown store,
// InactiveEventDataStoreException for one that cannot be queried.
func (e *Engine) Store(ctx context.Context, region, account, ref string) (lake.Spec, error) {
	if strings.HasPrefix(ref, "arn:") && !storeARN.MatchString(ref) {
		return lake.Spec{}, awsproto.Errorf("EventDataStoreARNInvalidException", "The specified event data store ARN is not valid or does not map to an event data store in your account.")
	}
	spec, ok, err := e.catalog.Lookup(ctx, region, account, ref)
	if err != nil {
		return lake.Spec{}, fmt.Errorf("query: look up event data store %s: %w", ref, err)
	}
	if !ok {
		return lake.Spec{}, awsproto.Errorf("EventDataStoreNotFoundException", "The specified event data store %s was not found.", ref)
	}
	if !spec.Queryable {
		return lake.Spec{}, awsproto.Errorf("InactiveEventDataStoreException", "The event data store %s is inactive (%s).", spec.ARN, spec.Status)
	}
	return spec, nil
}
