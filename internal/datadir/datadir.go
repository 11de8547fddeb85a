// Package datadir owns the layout of Cairn's data directory and the rule
// for its permissions: everything Cairn keeps there (the journal, the
// event history, the configuration store, access keys, digest-signing
// keys, delivered log files) is readable by the Cairn user alone, so
// directories are 0700 and files 0600 whatever the process umask.
package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Permissions of everything under the data directory.
const (
	DirPerm  os.FileMode = 0o700
	FilePerm os.FileMode = 0o600
)

// The names of the data directory's entries.
const (
	Journal     = "journal"            // the event journal (Pebble)
	State       = "state"              // trails, channels, tags (Pebble)
	History     = "history"            // the event history index (Pebble)
	Buckets     = "buckets"            // the default file object store
	LakeCache   = "lake-cache"         // local copies of event data stores' files kept in S3
	LakeResults = "lake-results"       // Lake query results (7 days)
	Credentials = "credentials"        // the first admin key, in AWS's credentials format
	Keys        = "keys.json"          // the access keys, secrets sealed with MasterKey
	KeysLock    = "keys.lock"          // serialises the key file's writers (serve, cairn keys)
	MasterKey   = "master.key"         // seals the access keys' secrets
	DigestKey   = "digest-signing.key" // seals the digest-signing keys kept in State
)

// Ensure creates dir (0700) if needed and brings everything under it to
// DirPerm/FilePerm: an existing directory made by hand, by an older Cairn
// or under a loose umask would otherwise leave audit records and keys
// readable by other local users. A directory that was open to others is
// reported with a warning naming it and its mode, because its contents may
// already have been read. Symbolic links are neither followed nor changed.
// The walk costs one lstat per file, done once at start.
func Ensure(dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, DirPerm); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		log.Warn("the data directory was accessible to other users; restricting it and everything in it to its owner",
			"path", dir, "mode", fmt.Sprintf("%#o", mode), "new_mode", fmt.Sprintf("%#o", DirPerm))
	}
	// A data dir given as a symbolic link is walked where it points (the
	// walk itself follows no links).
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	tightened := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var want os.FileMode
		switch {
		case d.IsDir():
			want = DirPerm
		case d.Type().IsRegular():
			want = FilePerm
		default:
			return nil // symlinks, sockets: chmod would follow or fail
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		if info.Mode().Perm() == want {
			return nil
		}
		if err := os.Chmod(path, want); err != nil {
			return err
		}
		tightened++
		return nil
	})
	if err != nil {
		return fmt.Errorf("restrict permissions under data dir %s: %w", dir, err)
	}
	if tightened > 0 {
		log.Info("restricted permissions under the data directory", "path", dir, "entries", tightened)
	}
	return nil
}
