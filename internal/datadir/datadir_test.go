package datadir

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestEnsureThroughSymlink: a data dir named through a symbolic link is
// restricted where it points, and reported.
func TestEnsureThroughSymlink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.MkdirAll(filepath.Join(real, State), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, State, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Ensure(link, slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{real: DirPerm, filepath.Join(real, State): DirPerm, filepath.Join(real, State, "f"): FilePerm} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", path, got, want)
		}
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "mode=0755") {
		t.Errorf("no warning about the loose data dir:\n%s", buf.String())
	}
}

// TestFSOnMemFS: the wrapper leaves filesystems without descriptors alone.
func TestFSOnMemFS(t *testing.T) {
	fs := FS(vfs.NewMem())
	if err := fs.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fs.Create("d/x", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := fs.Lock("d/LOCK")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
}
