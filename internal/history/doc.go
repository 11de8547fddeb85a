// Package history is CloudTrail's event history: the index behind
// LookupEvents and its retention.
//
// # Data flow
//
// History is one consumer of the journal. Its goroutine tails the journal
// from its own position (Read, then Wait when caught up; no polling), parses
// each entry with event.Parse (the next batch is read and parsed while the
// current one is written), decides whether it belongs in the event history
// (see classify) and writes the record and its index entries into its own
// Pebble database (conventionally <data-dir>/history): the records in
// compressed blocks keyed by journal sequence number (records.go), the
// index as short keys (keys.go). The record is copied, so the history
// never reads the journal for a lookup and does not care when the journal
// trims what it has indexed.
//
// # Exactly once
//
// The index entries of a batch of journal entries and the new cursor
// position are written in one Pebble batch, so the database always holds the
// index of exactly the entries up to its cursor: after a crash the consumer
// resumes from the recovered cursor and never indexes an entry twice or
// skips one. Batches are committed without fsync (the journal, not this
// database, is the durable copy): a crash may take back the last batches,
// cursor included, and they are indexed again from the journal. For that the
// journal must still hold them, so the position is mirrored to the journal
// cursor named "history" only once it is durable here (a synced WAL write
// every Options.MirrorInterval and on Close). The journal must not be
// trimmed above that cursor; the history does not rely on anything else.
// As a second line of defence, an event whose eventID is already in its
// region's history is not indexed again (the journal may hold an event twice
// when a client retried an append whose acknowledgement was lost).
//
// # What is indexed
//
// Management events and Insights events, as in CloudTrail; data and network
// activity events only with Options.IncludeDataEvents (a Cairn extension).
// Each event lives in the partition of its region (awsRegion): a lookup sees
// only the events of the region it was sent to, as on AWS.
//
// # Lookups
//
// Every index is ordered newest first (see keys.go), so a lookup is one or
// a few bounded range scans whose cost depends on the page size, not on the
// number of stored events. Several lookup attributes are AND-ed (CloudTrail
// accepts only one and ignores the rest; Cairn documents the deviation).
// NextTokens are authenticated and bound to their query (see token.go).
//
// # Retention
//
// Events older than Options.Retention (default 90 days, by eventTime) are
// never returned, are not indexed when they arrive already expired, and are
// deleted by a background sweep.
package history
