//go:build !unix

package auth

import (
	"errors"
	"io/fs"
	"os"
)

// Cairn's key store relies on flock(2); other platforms are not supported.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locking is only implemented on unix")
}

func fileID(fs.FileInfo) (dev, ino uint64) { return 0, 0 }

func syncDir(string) error { return nil }
