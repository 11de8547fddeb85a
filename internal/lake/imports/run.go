package imports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/state"
)

func decode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("imports: decode stored import: %w", err)
	}
	return nil
}

// Run walks ongoing imports, one at a time and oldest first, until ctx
// ends. Imports left ongoing by a crash resume where their last durable
// file left them.
func (s *Service) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		im, ok, err := s.next(ctx)
		if err != nil {
			s.log.Error("lake import: read the ongoing imports", "err", err)
		}
		if ok {
			if err := s.walk(ctx, im); err != nil && ctx.Err() == nil && !errors.Is(err, errStopped) {
				s.log.Error("lake import failed", "import", im.ID, "err", err)
				s.finish(ctx, im.ID, StatusFailed)
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		}
	}
	return nil
}

// next returns the oldest ongoing import.
func (s *Service) next(ctx context.Context) (Import, bool, error) {
	var best Import
	found := false
	err := s.st.View(ctx, func(r state.Reader) error {
		return r.Scan(importPrefix, func(_ string, v []byte) error {
			var im Import
			if err := decode(v, &im); err != nil {
				return err
			}
			if im.ongoing() && (!found || im.Created.Before(best.Created)) {
				best, found = im, true
			}
			return nil
		})
	})
	return best, found, err
}

// walk runs one import to its end, stop or failure.
func (s *Service) walk(ctx context.Context, im Import) error {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancels[im.ID] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.cancels, im.ID)
		s.mu.Unlock()
		cancel()
	}()

	loc, err := parseLocation(im.Source.S3LocationUri)
	if err != nil {
		return err
	}
	if im.Status == StatusInitializing {
		found, err := s.countPrefixes(ctx, loc, im)
		if err != nil {
			return err
		}
		if err := s.update(ctx, im.ID, func(cur *Import) {
			cur.Stats.PrefixesFound = found
			cur.Status = StatusInProgress
		}); err != nil {
			return err
		}
		im.Status = StatusInProgress
	}
	// A retry re-reads the files listed as failed and goes on after the
	// last file done; a resumed walk just goes on.
	var retry map[string]bool
	if im.Retrying {
		if retry, err = s.failedLocations(ctx, im.ID); err != nil {
			return err
		}
	}
	startAfter := im.LastKey
	if len(retry) > 0 {
		startAfter = ""
	}
	lastPrefix := im.LastPrefix
	err = s.source.List(ctx, loc.bucket, loc.prefix, startAfter, func(o objstore.ObjectInfo) error {
		f, ok := parseLogKey(o.Key)
		if !ok || !f.mayHold(im.Start, im.End) {
			return nil
		}
		beyond := f.key > im.LastKey
		if !beyond && !retry[f.key] {
			return nil
		}
		if err := s.stillOngoing(ctx, im.ID); err != nil {
			return err
		}
		// A prefix is complete once the walk has moved past it.
		prefixDone := false
		if beyond {
			prefixDone = lastPrefix != "" && f.dayPrefix != lastPrefix
			lastPrefix = f.dayPrefix
		}
		events, ferr := s.importFile(ctx, im, f)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.recordFile(ctx, im.ID, f, events, ferr, prefixDone, beyond)
	})
	if err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		return fmt.Errorf("walk s3://%s/%s: %w", loc.bucket, loc.prefix, err)
	}
	// The last prefix is complete too; one update with the final status,
	// so that a crash cannot count it twice.
	err = s.update(ctx, im.ID, func(cur *Import) {
		if !cur.ongoing() {
			return
		}
		cur.Stats.PrefixesCompleted = cur.Stats.PrefixesFound
		cur.Status = StatusCompleted
		if cur.Stats.FailedEntries > 0 {
			cur.Status = StatusFailed
		}
		cur.Retrying = false
	})
	return err
}

// countPrefixes counts the day prefixes holding log files of the range.
func (s *Service) countPrefixes(ctx context.Context, loc location, im Import) (int64, error) {
	var n int64
	last := ""
	err := s.source.List(ctx, loc.bucket, loc.prefix, "", func(o objstore.ObjectInfo) error {
		f, ok := parseLogKey(o.Key)
		if !ok || !f.mayHold(im.Start, im.End) {
			return nil
		}
		if f.dayPrefix != last {
			n++
			last = f.dayPrefix
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list s3://%s/%s: %w", loc.bucket, loc.prefix, err)
	}
	return n, nil
}

// stillOngoing stops the walk when the import was stopped (by StopImport,
// possibly on another connection that could not reach the cancel func).
func (s *Service) stillOngoing(ctx context.Context, id string) error {
	im, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if !im.ongoing() {
		return errStopped
	}
	return nil
}

// fileError is why one source file could not be imported; it becomes a
// ListImportFailures entry and the import goes on.
type fileError struct {
	typ, msg string
}

func (e *fileError) Error() string { return e.typ + ": " + e.msg }

// importFile copies one log file's events of the range into the
// destination. It returns the number of events written.
func (s *Service) importFile(ctx context.Context, im Import, f logFile) (int64, error) {
	spec, err := s.stores.Resolve(ctx, im.Region, im.Destinations[0])
	if err != nil {
		return 0, &fileError{typ: "EventDataStoreNotFound", msg: err.Error()}
	}
	if err := checkDestination(spec); err != nil {
		return 0, &fileError{typ: "InactiveEventDataStore", msg: err.Error()}
	}
	loc, _ := parseLocation(im.Source.S3LocationUri)
	body, _, err := s.source.Get(ctx, loc.bucket, f.key)
	if err != nil {
		return 0, &fileError{typ: "S3ObjectNotReadable", msg: err.Error()}
	}
	defer body.Close()
	limited := &capped{r: body, left: s.opts.MaxFileBytes}
	rd := event.NewReader(limited)
	cutoff := time.Time{}
	if spec.RetentionDays > 0 {
		cutoff = s.now().AddDate(0, 0, -spec.RetentionDays)
	}
	sum := sha256.Sum256([]byte(f.key))
	base := im.ID + "-" + hex.EncodeToString(sum[:12])
	var (
		chunk      [][]byte
		chunkBytes int
		chunkNo    int
		written    int64
	)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		name := fmt.Sprintf("%s-%04d", base, chunkNo)
		if err := s.sink.WriteImport(ctx, spec, name, chunk); err != nil {
			return fmt.Errorf("write %d events of %s: %w", len(chunk), f.key, err)
		}
		written += int64(len(chunk))
		chunk, chunkBytes, chunkNo = chunk[:0:0], 0, chunkNo+1
		return nil
	}
	for {
		raw, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if limited.over {
				return 0, &fileError{typ: "FileTooLarge", msg: fmt.Sprintf("%s is larger than %d bytes", f.key, s.opts.MaxFileBytes)}
			}
			return 0, &fileError{typ: "InvalidLogFile", msg: fmt.Sprintf("%s is not a readable CloudTrail log file: %v", f.key, err)}
		}
		rec, err := event.Parse(raw)
		if err != nil {
			return 0, &fileError{typ: "InvalidEvent", msg: fmt.Sprintf("%s holds a record that is not a CloudTrail event: %v", f.key, err)}
		}
		t := rec.EventTime
		if (im.Start != nil && t.Before(*im.Start)) || (im.End != nil && t.After(*im.End)) || t.Before(cutoff) {
			continue
		}
		chunk = append(chunk, rec.Raw)
		chunkBytes += len(rec.Raw)
		if len(chunk) >= s.opts.ChunkEvents || chunkBytes >= maxChunkBytes {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return written, nil
}

// recordFile makes one file's outcome durable: the walk's position and
// statistics, and a failure entry (or its success after a retry).
func (s *Service) recordFile(ctx context.Context, id string, f logFile, events int64, ferr error, prefixDone, advance bool) error {
	var fe *fileError
	if ferr != nil && !errors.As(ferr, &fe) {
		// The sink or the store failed, not the file: stop here without
		// moving past the file, so that a retry or restart redoes it.
		return ferr
	}
	now := s.now()
	return s.st.Update(ctx, func(tx *state.Tx) error {
		im, err := loadImport(tx, id)
		if err != nil {
			return err
		}
		if advance {
			im.LastKey = f.key
			im.LastPrefix = f.dayPrefix
			if prefixDone {
				im.Stats.PrefixesCompleted++
			}
		}
		fk := failureKey(id, f.key)
		var prev Failure
		hadFailure, err := tx.Get(fk, &prev)
		if err != nil {
			return err
		}
		switch {
		case fe != nil:
			if !hadFailure {
				im.Stats.FailedEntries++
			}
			if err := tx.Put(fk, &Failure{Location: f.key, Status: FailureFailed, ErrorType: fe.typ, Message: fe.msg, LastUpdated: now}); err != nil {
				return err
			}
		default:
			im.Stats.FilesCompleted++
			im.Stats.EventsCompleted += events
			if hadFailure {
				im.Stats.FailedEntries--
				if err := tx.Put(fk, &Failure{Location: f.key, Status: FailureSucceeded, LastUpdated: now}); err != nil {
					return err
				}
			}
		}
		im.Updated = now
		return tx.Put(importKey(id), &im)
	})
}

// failedLocations lists the files a retry must read again, and marks them
// RETRY.
func (s *Service) failedLocations(ctx context.Context, id string) (map[string]bool, error) {
	out := map[string]bool{}
	now := s.now()
	err := s.st.Update(ctx, func(tx *state.Tx) error {
		var fs []Failure
		err := tx.Scan(failurePrefix+id+"/", func(_ string, v []byte) error {
			var f Failure
			if err := decode(v, &f); err != nil {
				return err
			}
			if f.Status != FailureSucceeded {
				fs = append(fs, f)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, f := range fs {
			out[f.Location] = true
			f.Status, f.LastUpdated = FailureRetry, now
			if err := tx.Put(failureKey(id, f.Location), &f); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// update changes a stored import.
func (s *Service) update(ctx context.Context, id string, fn func(*Import)) error {
	return s.st.Update(ctx, func(tx *state.Tx) error {
		im, err := loadImport(tx, id)
		if err != nil {
			return err
		}
		fn(&im)
		im.Updated = s.now()
		return tx.Put(importKey(id), &im)
	})
}

// finish sets an import's final status unless it was stopped meanwhile.
func (s *Service) finish(ctx context.Context, id, status string) {
	err := s.update(ctx, id, func(im *Import) {
		if im.ongoing() {
			im.Status = status
			im.Retrying = false
		}
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error("lake import: record the final status", "import", id, "status", status, "err", err)
	}
}

// maxChunkBytes bounds the records held for one Sink call, whatever their
// count.
const maxChunkBytes = 64 << 20

// capped reads at most left bytes of a source file and then fails: no
// CloudTrail log file is larger than 50 MB, and a larger object is not
// read to its end. (Decompressed, memory stays bounded because records
// are streamed one at a time and handed on in bounded chunks.)
type capped struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, errors.New("file too large")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
