// Package journal is Cairn's durable, ordered log of every accepted event:
// the spine that intake writes to and every sink (history index, trails,
// event data stores) reads from through its own named cursor.
//
// # Guarantees
//
//   - Append returns only after its entries are on disk (the WAL is
//     fsynced). Entries get dense sequence numbers starting at 1 that are
//     never reused, also across restarts and Trim.
//   - No acknowledged entry is lost, kill -9 included. An Append that
//     returned an error acknowledged nothing; its entries may still turn up
//     after a crash (the process died between the sync and the reply), so
//     writers that retry must tolerate duplicates (events carry their own
//     IDs).
//   - Readers (LastSeq, Read, Get, Wait) only see the durable frontier: the
//     highest sequence number such that it and everything before it were
//     acknowledged. A reader never sees an entry that a later crash or fault
//     could take back, so a consumer can never skip past a sequence number
//     that later changes meaning.
//   - Concurrent appenders share fsyncs (group commit): a single committer
//     goroutine gathers every pending Append, cursor commit and Trim into one
//     Pebble batch and commits it with one sync.
//   - A consumer's cursor is its own: slow or failing consumers never block
//     intake; they lag, and the lag is exported as
//     cairn_journal_cursor_lag{cursor="..."}.
//
// # Failure behaviour (fail closed, recover in place)
//
// Pebble treats any WAL write or sync error as fatal (DB.Apply calls
// Logger.Fatalf, the LogWriter keeps the error forever, and a later write
// panics while holding the commit pipeline's mutex). The journal therefore
// never issues a second commit to a database whose commit failed: the
// committer is the only goroutine that writes, it converts Pebble's Fatalf
// into an error, fails every request of the batch with ErrUnavailable and
// from then on refuses writes fast. Reads keep working from the old
// database. Every Options.RetryInterval it probes the filesystem (create,
// write, fsync, remove a small file); once that works it closes the
// database, reopens it, deletes whatever lies beyond the durable frontier
// (the unacknowledged tail of the failed batch, which may or may not have
// reached the disk) with a synced write, and accepts appends again, all
// without restarting the process.
//
// Appends are also refused (cursor commits and Trim are not) while the
// filesystem has less free space than Options.MinFreeBytes, so that Pebble's
// background flushes and MANIFEST writes, whose I/O errors Pebble turns into
// a process exit, never meet a full disk in the first place. The free space
// is checked when the journal opens, before appends (cached for 10 ms) and
// every Options.SpaceProbeInterval on its own, so Available reports a disk
// that filled up or was freed even while no write arrives.
//
// Known limit: Pebble turns I/O errors outside the commit path into a
// process crash: in WAL rotation (once per MemTableSize bytes) and in
// MANIFEST writes after flushes and compactions, including the flush that
// follows a reopen. That is safe (nothing acknowledged is lost and a restart
// recovers), but it is a restart, not an in-place recovery. The free-space
// reserve keeps the most common cause, a full disk, away from those paths,
// and the filesystem probe keeps a reopen from starting on a disk that
// still fails.
package journal
