package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/objstore"
)

// Files returns the local paths of the store's current Parquet files:
// every file no other file covers, oldest partition first. An empty list
// (and no error) is an empty store; its schema is Columns(category).
//
// With the file object store the paths are the stored objects themselves.
// With any other store (S3) they are copies in Options.CacheDir: missing
// ones are downloaded now, and copies of files that are no longer current
// are removed once they have been unlisted for DeleteGrace, so that a
// query that listed them just before still reads them.
//
// A path stays readable at least DeleteGrace after the call that returned
// it; open files stay readable until closed in any case.
//
// The paths hold Hive-style partition directories (eventdate=YYYY-MM-DD):
// DuckDB must read them with hive_partitioning = false, or it adds an
// eventdate column that Lake's schema does not have. PartitionDay gives a
// path's day, for an engine that prunes files by eventtime itself.
func (in *Ingester) Files(ctx context.Context, id string) ([]string, error) {
	if id == "" || strings.ContainsAny(id, "/\\") || id == "." || id == ".." {
		return nil, fmt.Errorf("lake ingest: files of %q: not a store ID", id)
	}
	files, err := in.currentFiles(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("lake ingest: files of %s: %w", id, err)
	}
	out := make([]string, 0, len(files))
	if in.local != nil {
		for _, f := range files {
			p, ok := in.local.LocalPath(in.opts.Bucket, f.Key)
			if !ok {
				return nil, fmt.Errorf("lake ingest: files of %s: %s has no local path", id, f.Key)
			}
			out = append(out, p)
		}
		return out, nil
	}
	return in.cached(ctx, id, files)
}

// PartitionDay returns the UTC day (YYYY-MM-DD) whose events the file at
// path holds: every row's eventtime is within that day.
func PartitionDay(path string) (string, bool) {
	dir := filepath.Base(filepath.Dir(path))
	day, ok := strings.CutPrefix(dir, partitionKey)
	if !ok {
		return "", false
	}
	if _, err := time.Parse(dateLayout, day); err != nil {
		return "", false
	}
	return day, true
}

// currentFiles is the store's current files, from the index when this
// process ingests the store, otherwise from a listing.
func (in *Ingester) currentFiles(ctx context.Context, id string) ([]fileRef, error) {
	in.mu.Lock()
	s := in.stores[id]
	in.mu.Unlock()
	if s != nil {
		s.filesMu.Lock()
		all := valuesOf(s.files)
		s.filesMu.Unlock()
		return current(all), nil
	}
	var all []fileRef
	err := in.obj.List(ctx, in.opts.Bucket, storePrefix(id), "", func(o objstore.ObjectInfo) error {
		if f, ok := parseKey(id, o.Key); ok {
			f.Size = o.Size
			all = append(all, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return current(all), nil
}

// Dirs returns the directories every path Files returns lies under: the
// only ones the SQL engine is allowed to read (DuckDB's
// allowed_directories).
func (in *Ingester) Dirs() []string {
	if in.local != nil {
		if p, ok := in.local.LocalPath(in.opts.Bucket, strings.TrimSuffix(Prefix, "/")); ok {
			return []string{p}
		}
	}
	dir, err := filepath.Abs(in.cacheRoot())
	if err != nil {
		dir = in.cacheRoot()
	}
	return []string{dir}
}

// cacheRoot is the directory of the local copies.
func (in *Ingester) cacheRoot() string { return filepath.Join(in.opts.CacheDir, "eventdatastore") }

// cachePath is the local copy of a file: the same layout as in the bucket.
func (in *Ingester) cachePath(key string) string {
	return filepath.Join(in.opts.CacheDir, filepath.FromSlash(key))
}

// cached makes sure every file has its local copy and removes the copies
// that are no longer current.
func (in *Ingester) cached(ctx context.Context, id string, files []fileRef) ([]string, error) {
	in.cacheMu.Lock()
	defer in.cacheMu.Unlock()
	if in.listed == nil {
		in.listed = map[string]int64{}
	}
	now := in.now().UnixNano()
	want := make(map[string]bool, len(files))
	out := make([]string, 0, len(files))
	for _, f := range files {
		p := in.cachePath(f.Key)
		want[p] = true
		in.listed[p] = now
		if st, err := os.Stat(p); err == nil && st.Size() == f.Size {
			out = append(out, p)
			continue
		}
		if err := in.download(ctx, f.Key, p); err != nil {
			return nil, fmt.Errorf("lake ingest: caching %s: %w", f.Key, err)
		}
		out = append(out, p)
	}
	// Evict the store's copies no longer listed for a grace period.
	root := filepath.Join(in.opts.CacheDir, filepath.FromSlash(storePrefix(id)))
	grace := in.opts.DeleteGrace.Nanoseconds()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || want[p] {
			return nil
		}
		if seen, ok := in.listed[p]; ok && now-seen < grace {
			return nil
		}
		delete(in.listed, p)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		in.log.Warn("evicting stale cached event data store files failed", "store", id, "err", err)
	}
	return out, nil
}

// download copies an object to path through a temporary file, so that a
// reader never sees a partial copy.
func (in *Ingester) download(ctx context.Context, key, p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	rc, _, err := in.obj.Get(ctx, in.opts.Bucket, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+path.Base(key)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, rc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// dropCache removes a dropped store's local copies.
func (in *Ingester) dropCache(id string) error {
	if in.opts.CacheDir == "" {
		return nil
	}
	in.cacheMu.Lock()
	defer in.cacheMu.Unlock()
	root := filepath.Join(in.opts.CacheDir, filepath.FromSlash(storePrefix(id)))
	for p := range in.listed {
		if strings.HasPrefix(p, root+string(filepath.Separator)) {
			delete(in.listed, p)
		}
	}
	return os.RemoveAll(root)
}
