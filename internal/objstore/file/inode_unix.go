//go:build unix

package file

import (
	"io/fs"
	"syscall"
)

// inode identifies the file behind info, so a sidecar can name the body
// it belongs to; rename keeps it.
func inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
