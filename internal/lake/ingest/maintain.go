package ingest

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"

	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore"
)

// maintain runs, for every store, retention, compaction and the deletion
// of covered files. Every step is safe to interrupt: a crash leaves either
// the old files or the old files and a new one that covers them, which
// readers prefer and the next pass cleans up.
func (in *Ingester) maintain(ctx context.Context) {
	type job struct {
		s    *store
		spec lake.Spec
	}
	in.mu.Lock()
	jobs := make([]job, 0, len(in.stores))
	for _, s := range in.stores {
		jobs = append(jobs, job{s, s.spec})
	}
	in.mu.Unlock()
	for _, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		s := j.s
		s.mu.Lock()
		if s.dropped.Load() {
			s.mu.Unlock()
			continue
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		if err := in.maintainStore(ctx, s, j.spec); err != nil && ctx.Err() == nil {
			in.log.Warn("event data store maintenance failed; will retry", "store", s.id, "err", err)
		}
		s.inflight.Done()
	}
}

func (in *Ingester) maintainStore(ctx context.Context, s *store, spec lake.Spec) error {
	if err := in.retain(ctx, s, spec); err != nil {
		return err
	}
	if err := in.compact(ctx, s, spec); err != nil {
		return err
	}
	return in.deleteCovered(ctx, s)
}

// retain drops the store's partitions whose whole day is past the
// retention period: every object under the partition's prefix.
func (in *Ingester) retain(ctx context.Context, s *store, spec lake.Spec) error {
	cutoff := in.cutoffDay(spec)
	if cutoff == "" {
		return nil
	}
	old := map[string]bool{}
	s.filesMu.Lock()
	for _, f := range s.files {
		if f.Date < cutoff {
			old[f.Date] = true
		}
	}
	s.filesMu.Unlock()
	for day := range old {
		prefix := storePrefix(s.id) + partitionKey + day + "/"
		var keys []string
		if err := in.obj.List(ctx, in.opts.Bucket, prefix, "", func(o objstore.ObjectInfo) error {
			keys = append(keys, o.Key)
			return nil
		}); err != nil {
			return fmt.Errorf("listing partition %s of %s: %w", day, s.id, err)
		}
		for _, k := range keys {
			if err := in.obj.Delete(ctx, in.opts.Bucket, k); err != nil {
				return fmt.Errorf("dropping partition %s of %s: %w", day, s.id, err)
			}
			s.filesMu.Lock()
			delete(s.files, k)
			delete(s.coveredSince, k)
			s.filesMu.Unlock()
		}
		in.m.partitionsDropped.Inc()
		in.log.Info("dropped a partition past the retention period", "store", s.id, "eventdate", day, "files", len(keys), "retention_days", spec.RetentionDays)
	}
	return nil
}

// maxMergeInputs bounds the files one merge reads at once: each open
// input holds a page of every column.
const maxMergeInputs = 8

// compact merges runs of neighbouring small files of each partition (in
// journal order, with no other file in between) into one file that covers
// them, up to TargetFileBytes. Only committed files are merged: a range
// beyond the cursor may still be rewritten by a replay.
func (in *Ingester) compact(ctx context.Context, s *store, spec lake.Spec) error {
	committed := s.committed.Load()
	s.filesMu.Lock()
	all := make([]fileRef, 0, len(s.files))
	for _, f := range s.files {
		all = append(all, f)
	}
	s.filesMu.Unlock()
	var run []fileRef
	var total int64
	var date string
	flush := func() error {
		defer func() { run, total = run[:0], 0 }()
		if len(run) < 2 {
			return nil
		}
		return in.merge(ctx, s, spec, run)
	}
	for _, f := range current(all) {
		if f.Import {
			continue // imported files are never merged
		}
		if f.Date != date {
			if err := flush(); err != nil {
				return err
			}
			date = f.Date
		}
		if f.Last > committed || f.Size >= in.opts.SmallFileBytes || total+f.Size > in.opts.TargetFileBytes || len(run) == maxMergeInputs {
			if err := flush(); err != nil {
				return err
			}
			if f.Last > committed || f.Size >= in.opts.SmallFileBytes {
				continue
			}
		}
		run = append(run, f)
		total += f.Size
	}
	return flush()
}

// merge writes the rows of files (neighbours in one partition) into one
// file named after the union of their ranges, in event time order, then
// marks the inputs covered.
func (in *Ingester) merge(ctx context.Context, s *store, spec lake.Spec, files []fileRef) error {
	first, last := files[0].First, files[len(files)-1].Last
	key := fileKey(s.id, files[0].Date, first, last)
	tmp, err := os.CreateTemp(in.tempDir(), compactTemp)
	if err != nil {
		return fmt.Errorf("compacting %s: %w", key, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var inputs []io.ReaderAt
	var sizes []int64
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, f := range files {
		r, size, c, err := in.openObject(ctx, f.Key)
		if err != nil {
			return fmt.Errorf("compacting %s: %w", key, err)
		}
		if c != nil {
			closers = append(closers, c)
		}
		inputs = append(inputs, r)
		sizes = append(sizes, size)
	}
	switch kindOf(spec.Category) {
	case kindAudit:
		err = mergeFiles[AuditRow](tmp, inputs, sizes, first, last)
	default:
		err = mergeFiles[Row](tmp, inputs, sizes, first, last)
	}
	if err != nil {
		return fmt.Errorf("compacting %s: %w", key, err)
	}
	size, err := tmp.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("compacting %s: %w", key, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("compacting %s: %w", key, err)
	}
	if err := in.obj.Put(ctx, in.opts.Bucket, key, tmp, size, objstore.PutOptions{ContentType: "application/vnd.apache.parquet"}); err != nil {
		return fmt.Errorf("compacting: writing %s: %w", key, err)
	}
	now := in.now()
	s.filesMu.Lock()
	s.files[key] = fileRef{Key: key, Date: files[0].Date, First: first, Last: last, Size: size}
	for _, f := range files {
		s.coveredSince[f.Key] = now
	}
	s.filesMu.Unlock()
	in.m.compactions.Inc()
	in.m.bytesWritten.Add(float64(size))
	in.log.Debug("compacted event data store files", "store", s.id, "key", key, "inputs", len(files), "bytes", size)
	return nil
}

// compactTemp names compaction's temporary output files.
const compactTemp = "lake-compact-*.parquet"

// tempDir is where compaction builds its output: the cache directory when
// there is one (New removes what a killed process left there), else the
// system's.
func (in *Ingester) tempDir() string {
	if in.opts.CacheDir != "" {
		if err := os.MkdirAll(in.opts.CacheDir, 0o700); err == nil {
			return in.opts.CacheDir
		}
	}
	return ""
}

// removeStaleTemps removes compaction outputs a killed process left in
// the cache directory, which belongs to one Ingester.
func (in *Ingester) removeStaleTemps() {
	if in.opts.CacheDir == "" {
		return
	}
	stale, _ := filepath.Glob(filepath.Join(in.opts.CacheDir, compactTemp))
	for _, p := range stale {
		_ = os.Remove(p)
	}
}

// openObject opens a stored file for random access: in place when the
// object store keeps local files, otherwise read into memory (compaction
// only reads small files).
func (in *Ingester) openObject(ctx context.Context, key string) (io.ReaderAt, int64, io.Closer, error) {
	if in.local != nil {
		if p, ok := in.local.LocalPath(in.opts.Bucket, key); ok {
			f, err := os.Open(p)
			if err != nil {
				return nil, 0, nil, err
			}
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, nil, err
			}
			return f, st.Size(), f, nil
		}
	}
	rc, _, err := in.obj.Get(ctx, in.opts.Bucket, key)
	if err != nil {
		return nil, 0, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, 0, nil, err
	}
	return bytes.NewReader(b), int64(len(b)), nil, nil
}

// mergeFiles merges sorted Lake files into one sorted file (a k-way merge
// on event time; ties keep the inputs' order, which is journal order).
func mergeFiles[T rowTime](w io.Writer, inputs []io.ReaderAt, sizes []int64, first, last uint64) error {
	h := &mergeHeap[T]{}
	for i, r := range inputs {
		f, err := parquet.OpenFile(r, sizes[i])
		if err != nil {
			return fmt.Errorf("opening input %d: %w", i, err)
		}
		c := &mergeCursor[T]{r: parquet.NewGenericReader[T](f), buf: make([]T, 0, 128), order: i}
		if err := c.fill(); err != nil {
			return err
		}
		if c.ok() {
			h.cs = append(h.cs, c)
		} else {
			c.r.Close()
		}
	}
	heap.Init(h)
	pw := parquet.NewGenericWriter[T](w, writerOptions(first, last)...)
	out := make([]T, 0, 256)
	for h.Len() > 0 {
		c := h.cs[0]
		out = append(out, c.buf[c.i])
		c.i++
		if len(out) == cap(out) {
			if _, err := pw.Write(out); err != nil {
				return fmt.Errorf("writing merged rows: %w", err)
			}
			clear(out)
			out = out[:0]
		}
		if c.i == len(c.buf) {
			if err := c.fill(); err != nil {
				return err
			}
		}
		if c.ok() {
			heap.Fix(h, 0)
		} else {
			c.r.Close()
			heap.Pop(h)
		}
	}
	if len(out) > 0 {
		if _, err := pw.Write(out); err != nil {
			return fmt.Errorf("writing merged rows: %w", err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("closing merged file: %w", err)
	}
	return nil
}

type mergeCursor[T rowTime] struct {
	r     *parquet.GenericReader[T]
	buf   []T
	i     int
	order int
	eof   bool
}

func (c *mergeCursor[T]) ok() bool { return c.i < len(c.buf) }

func (c *mergeCursor[T]) fill() error {
	c.buf = c.buf[:cap(c.buf)]
	clear(c.buf)
	c.i = 0
	if c.eof {
		c.buf = c.buf[:0]
		return nil
	}
	n, err := c.r.Read(c.buf)
	c.buf = c.buf[:n]
	if errors.Is(err, io.EOF) {
		c.eof = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading input %d: %w", c.order, err)
	}
	return nil
}

type mergeHeap[T rowTime] struct{ cs []*mergeCursor[T] }

func (h *mergeHeap[T]) Len() int { return len(h.cs) }
func (h *mergeHeap[T]) Less(i, j int) bool {
	a, b := h.cs[i], h.cs[j]
	if c := timeOf(&a.buf[a.i]).Compare(timeOf(&b.buf[b.i])); c != 0 {
		return c < 0
	}
	return a.order < b.order
}
func (h *mergeHeap[T]) Swap(i, j int) { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *mergeHeap[T]) Push(x any)    { h.cs = append(h.cs, x.(*mergeCursor[T])) }
func (h *mergeHeap[T]) Pop() any {
	x := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return x
}

// deleteCovered deletes the files a merged file has covered for longer
// than DeleteGrace.
func (in *Ingester) deleteCovered(ctx context.Context, s *store) error {
	now := in.now()
	var due []string
	s.filesMu.Lock()
	cov := covered(valuesOf(s.files))
	isCovered := make(map[string]bool, len(cov))
	for _, f := range cov {
		isCovered[f.Key] = true
		if _, ok := s.coveredSince[f.Key]; !ok {
			s.coveredSince[f.Key] = now
		}
	}
	for k, since := range s.coveredSince {
		if !isCovered[k] {
			delete(s.coveredSince, k)
			continue
		}
		if now.Sub(since) >= in.opts.DeleteGrace {
			due = append(due, k)
		}
	}
	s.filesMu.Unlock()
	for _, k := range due {
		if err := in.obj.Delete(ctx, in.opts.Bucket, k); err != nil {
			return fmt.Errorf("deleting covered file %s: %w", k, err)
		}
		s.filesMu.Lock()
		delete(s.files, k)
		delete(s.coveredSince, k)
		s.filesMu.Unlock()
	}
	return nil
}

func valuesOf(m map[string]fileRef) []fileRef {
	out := make([]fileRef, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
