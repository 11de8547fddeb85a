//go:build unix

package auth

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// tryLock takes a non-blocking flock. flock locks belong to the open file
// description, so two Stores in one process exclude each other as two
// processes do.
func tryLock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, syscall.EINTR):
			continue
		default:
			return false, err
		}
	}
}

func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		// The field widths differ between platforms, hence the conversions.
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
