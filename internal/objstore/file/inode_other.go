//go:build !unix

package file

import "io/fs"

// inode is unknown here; size and mtime alone then identify the body.
func inode(fs.FileInfo) uint64 { return 0 }
