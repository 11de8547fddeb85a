//go:build unix

package datadir

import (
	"fmt"
	"os"
	"syscall"
)

func fchmod(fd uintptr, perm os.FileMode) error {
	if err := syscall.Fchmod(int(fd), uint32(perm)); err != nil {
		return fmt.Errorf("restrict a new file to %#o: %w", perm, err)
	}
	return nil
}
