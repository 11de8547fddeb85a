// Package ingest copies the journal's events into CloudTrail Lake event
// data stores: one Parquet dataset per store, in Cairn's object store, in
// CloudTrail Lake's SQL schema, readable by Cairn's query engine and by
// any engine that reads Parquet (docs/lake.md, "Schema and files").
//
// # API (for the server)
//
//	in, err := ingest.New(ctx, ingest.Options{Journal: j, Store: objects,
//		Specs: lakeService.Specs, CacheDir: dataDir/"lake-cache", Registerer: reg})
//	go in.Run(ctx)              // until ctx ends; start with the other consumers
//	in.Reload()                 // after any change to a store (create, update,
//	                            // start/stop ingestion, delete, restore, channels)
//	paths, err := in.Files(ctx, id) // the query engine: a store's current files
//	                            // (read_parquet(paths, hive_partitioning = false))
//	day, ok := ingest.PartitionDay(path) // the UTC day a file's events are in
//	dirs := in.Dirs()           // the query engine: DuckDB's allowed_directories
//	err = in.Drop(ctx, id)      // a store purged after its 7 days of PENDING_DELETION
//	err = in.WriteImport(ctx, spec, name, records) // StartImport's chunks (imported.go)
//	in.Close()                  // after Run returned (metrics)
//	ingest.Columns(category)    // the query engine: an empty store's schema
//	ingest.StoreOfCursor(name)  // the journal trim: is this cursor a store's?
//
// # Ingestion
//
// Every store has its own durable journal cursor, "lake-<store ID>". A
// store seen for the first time starts at the journal's end: it takes the
// events recorded from its creation on (StartImport brings in the past).
// One goroutine reads the journal once for all stores, from the lowest
// of their positions, and hands each entry to every store that has not
// passed it; an entry is parsed once and converted once per schema however
// many stores take it. A store takes an event when it is ingesting
// (Spec.Ingesting; events recorded while ingestion is stopped are passed
// over for good, as on AWS), the event's region is the store's (or the
// store is multi-region), and the store's advanced event selectors match
// it (selector.Match); an ActivityAuditLog store takes the channel events
// whose metadata.channelARN is one of Spec.Channels. Events already past
// the store's retention when they arrive are not written.
//
// # Exactly once
//
// A store's batch covers the journal range its cursor moves over. It is
// flushed (after FlushInterval, when it reaches MaxBatchRows or
// MaxBatchBytes, or when all batches together reach MaxBufferBytes) as
// one Parquet file per event day, named after the range; the cursor is committed only after every file is durably Put. A
// process that dies in between leaves files beyond the committed cursor:
// the next process deletes them before it reads the range again, and any
// rewrite of the same range lands on the same names. A failed Put is
// retried with backoff, with the same range, while the events wait in
// the journal; a store whose batch cannot be written stops reading
// (memory stays bounded) without holding the other stores back.
//
// # Files
//
// eventdatastore/<id>/eventdate=YYYY-MM-DD/<first>-<last>.parquet in the
// bucket cairn-lake (Hive-style partitions): zstd, 1 MiB pages,
// dictionaries on low-cardinality columns, a bloom filter on eventid,
// rows sorted by eventtime, row groups of 16,384 rows. Maintenance (every
// CompactInterval) drops partitions whose whole day is past the retention
// period, merges runs of small neighbouring files of a partition into
// one file named after the union of their ranges (readers ignore a file
// whose range lies inside another's in the same partition), and deletes
// the covered files once they have been covered for DeleteGrace, so that
// a query that listed them just before still reads them. Each step is
// crash-safe: a crash leaves either the old files, or the old files and a
// new one that covers them.
//
// # Lag
//
// /metrics has, per store (label store: the IDs of stores Cairn made),
// cairn_lake_store_lag_entries (journal entries not yet committed),
// cairn_lake_store_pending_seconds (age of the oldest unwritten event),
// cairn_lake_store_ingested_events_total, cairn_lake_store_files and
// cairn_lake_store_bytes, and the journal's own
// cairn_journal_cursor_lag{cursor="lake-<id>"}.
package ingest
