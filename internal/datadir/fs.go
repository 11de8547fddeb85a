package datadir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS wraps the filesystem Pebble stores a database on so that the files
// and directories it creates get FilePerm and DirPerm: Pebble creates
// files with 0666 and directories with 0755 less the umask, and keeps
// creating them for its whole life (WAL segments, sstables, MANIFEST,
// OPTIONS), so tightening once at start is not enough. Files are changed
// through their descriptor right after creation, before Pebble writes to
// them. A base filesystem without descriptors (an in-memory one) is left
// as it is.
func FS(base vfs.FS) vfs.FS {
	if base == nil {
		base = vfs.Default
	}
	return privateFS{base}
}

type privateFS struct{ vfs.FS }

func (p privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return restrict(p.FS.Create(name, category))
}

func (p privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return restrict(p.FS.OpenReadWrite(name, category, opts...))
}

func (p privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return restrict(p.FS.ReuseForWrite(oldname, newname, category))
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return p.FS.MkdirAll(dir, DirPerm)
}

// Lock creates the database's LOCK file; a base filesystem that is not the
// real disk has no such file there, which is not an error.
func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err != nil {
		return c, err
	}
	if err := os.Chmod(name, FilePerm); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = c.Close()
		return nil, fmt.Errorf("restrict %s to %#o: %w", name, FilePerm, err)
	}
	return c, nil
}

// Unwrap returns the base filesystem, as pebble's wrappers do.
func (p privateFS) Unwrap() vfs.FS { return p.FS }

// restrict sets FilePerm on a file just opened for writing.
func restrict(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	if fd := f.Fd(); fd != vfs.InvalidFd {
		if err := fchmod(fd, FilePerm); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return f, nil
}
