//go:build !unix

package datadir

import "os"

// fchmod is a no-op where Unix permission bits do not apply.
func fchmod(uintptr, os.FileMode) error { return nil }
