package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// fatalCommitPrefix is how pebble's DB.Apply reports a failed WAL write or
// sync through Logger.Fatalf. Only this Fatalf is one the journal recovers
// from in place: it is raised after the commit pipeline has released its
// locks, so closing and reopening the database is safe.
const fatalCommitPrefix = "pebble: fatal commit error"

// pebbleFatal is the panic value our Pebble logger raises instead of exiting
// the process. The committer goroutine recovers it; raised on any other
// goroutine it still crashes the process, as Pebble intends.
type pebbleFatal struct {
	msg string
	err error // first error argument of the Fatalf call, kept for errors.Is
}

func (f *pebbleFatal) Error() string { return f.msg }
func (f *pebbleFatal) Unwrap() error { return f.err }

// recoverable reports whether the journal can close and reopen the database
// after this fatal error.
func (f *pebbleFatal) recoverable() bool { return strings.HasPrefix(f.msg, fatalCommitPrefix) }

// pebbleLogger routes Pebble's logging to slog. Pebble's informational chatter
// (flushes, compactions, WAL creation) goes to Debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	f := &pebbleFatal{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.err = err
			break
		}
	}
	l.log.Error(f.msg, "component", "pebble", "fatal", true)
	panic(f)
}

// pebbleOptions builds the Pebble configuration. The choices follow from the
// workload: append-only, strictly increasing keys, ~1.3 KB values, every
// write synced.
func (j *Journal) pebbleOptions() *pebble.Options {
	o := &pebble.Options{
		FS:     j.fs,
		Lock:   j.lock,
		Cache:  j.cache,
		Logger: pebbleLogger{log: j.log},
		// Large memtables mean fewer WAL rotations (a rotation is the one
		// place where a disk fault crashes Pebble) and fewer, larger L0
		// files; they also cost memory twice over (one fills while one
		// flushes), which is why the default is 32 MiB, not more (see
		// defaultMemTableSize).
		MemTableSize:                j.opts.MemTableSize,
		MemTableStopWritesThreshold: 4,
		// Sequential keys make every flushed sstable disjoint from the rest,
		// so L0 sublevels stay at one and compactions are mostly moves; the
		// stop threshold only matters if compactions fall far behind.
		L0CompactionThreshold: 4,
		L0StopWritesThreshold: 32,
		// Smooth out sstable writeback so that flushes do not produce large
		// bursts of dirty pages that the WAL fsync then has to wait behind.
		BytesPerSync:       1 << 20,
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				j.metrics.backgroundErrors.Inc()
				j.log.Warn("journal storage background error (Pebble retries it)", "err", err)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				j.stalled.Store(true)
				j.log.Warn("journal write stall: appends wait for flushes/compactions", "reason", info.Reason)
			},
			WriteStallEnd: func() {
				j.stalled.Store(false)
				j.log.Info("journal write stall ended")
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				j.log.Warn("journal disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
			},
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				j.log.Error("journal data corruption detected", "path", info.Path, "err", info.Details)
			},
		},
	}
	// JSON compresses well, but Pebble's default 4 KB blocks hold only three
	// records; 32 KB blocks compress several times better and suit the
	// journal's sequential reads. MinLZ (Pebble's "fastest" profile on
	// amd64) costs less CPU than the default Snappy in flushes.
	o.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	for i := range o.Levels {
		o.Levels[i].BlockSize = 32 << 10
	}
	return o
}

// safeOpen opens the database, converting a Pebble Fatalf during recovery
// into an error instead of a crash.
func (j *Journal) safeOpen() (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db = nil
			err = panicError("opening pebble database", r)
		}
	}()
	db, err = pebble.Open(j.dir, j.pebbleOptions())
	if err != nil {
		return nil, fmt.Errorf("opening pebble database in %s: %w", j.dir, err)
	}
	return db, nil
}

// safeClose closes a database and turns a panic into an error.
func safeClose(db *pebble.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError("closing pebble database", r)
		}
	}()
	return db.Close()
}

// safeApply commits b with a WAL sync. wedged reports that Pebble panicked
// somewhere other than the recoverable post-commit Fatalf, possibly with its
// commit pipeline's mutex held: that database must never be touched for
// writing again, not even closed.
func safeApply(db *pebble.DB, b *pebble.Batch) (wedged bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			var pf *pebbleFatal
			if e, ok := r.(error); ok && errors.As(e, &pf) && pf.recoverable() {
				err = pf
				return
			}
			wedged, err = true, panicError("committing to pebble", r)
		}
	}()
	return false, db.Apply(b, pebble.Sync)
}

func panicError(what string, r any) error {
	if e, ok := r.(error); ok {
		return fmt.Errorf("%s: pebble panicked: %w", what, e)
	}
	return fmt.Errorf("%s: pebble panicked: %v", what, r)
}
