// Package query runs CloudTrail Lake queries: the five query operations'
// life cycle (StartQuery, DescribeQuery, GetQueryResults, CancelQuery,
// ListQueries), Lake's Trino dialect on an embedded DuckDB, and the
// sample-query library SearchSampleQueries searches.
//
// # Wiring
//
// The integrator builds, once per server:
//
//	eng, err := query.NewEngine(ctx, catalog, query.Limits{...})
//	svc, err := query.NewService(ctx, query.Options{Engine: eng, State: st, Dir: dir, Objects: objs})
//	defer svc.Close()
//	ops := api.QueryOperations(svc)
//
// catalog implements Catalog: Lookup resolves a table reference (store ID
// or ARN, in the request's region and account) to the store's lake.Spec;
// Files lists the store's local Parquet files (internal/lake/ingest's
// Files); Columns gives the table of an empty store of a category (the
// ingestion's DuckDB column list).
//
// # The sandbox
//
// A statement is parsed by DuckDB's own parser (json_serialize_sql):
// anything but one SELECT is refused, every table reference must name a
// store (by ID or ARN) or a CTE, every function must be on an allow-list
// (no table functions, nothing that reads files, settings or the
// environment). The tree is rewritten (Trino functions to DuckDB's) and
// turned back into SQL (json_deserialize_sql). Each query then runs in a
// fresh in-memory DuckDB database whose configuration is, in order:
// bounded threads and memory, allowed_paths = exactly the files of the
// stores the statement reads, enable_external_access = false,
// lock_configuration = true. Even a statement that slipped past the
// checks could read no other file, write nothing, attach nothing and
// change no setting.
package query
