// Package journaltest gives tests a journal disk that fills up on demand,
// so that fail-closed behaviour is tested against the real journal and
// its real error paths rather than a stand-in.
package journaltest

import (
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// FullDisk is a filesystem for server.Config.JournalFS whose write-ahead
// log writes and syncs fail with ENOSPC while Full is set, as a full disk
// does; everything else passes through to the real disk.
type FullDisk struct {
	vfs.FS
	// Full arms the fault; clearing it gives the disk room again.
	Full atomic.Bool
}

// NewFullDisk returns a disk with room, until Full is set.
func NewFullDisk() *FullDisk {
	d := &FullDisk{}
	d.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !d.Full.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFilePreallocate:
			return syscall.ENOSPC
		}
		return nil
	}))
	return d
}
