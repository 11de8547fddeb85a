package server_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// looseModes lists what under dir is not 0700 (directories) or 0600
// (files).
func looseModes(t *testing.T, dir string) []string {
	t.Helper()
	var loose []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else if !d.Type().IsRegular() {
			return nil
		}
		if info.Mode().Perm() != want {
			loose = append(loose, fmt.Sprintf("%s %#o", path, info.Mode().Perm()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return loose
}

// TestDataDirPermissions (issue 12, defect 11): under a 022 umask, a data
// directory left 0755 with 0644 files (as an older Cairn or an operator's
// mkdir leaves it) is restricted at start, everything Cairn creates while
// running (Pebble's new WAL, sstables, MANIFEST; the file store's log
// files) is 0700/0600 too, and the loose directory is reported.
func TestDataDirPermissions(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })

	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A first run fills the directory; then everything is loosened.
	h := servertest.Start(t, servertest.Options{DataDir: dir})
	h.CreateBucket(t, "perm-logs")
	ctx := servertest.Context(t)
	if _, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("perm"), S3BucketName: aws.String("perm-logs")}); err != nil {
		t.Fatal(err)
	}
	h.Stop()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Chmod(path, 0o755)
		case d.Type().IsRegular():
			return os.Chmod(path, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal", "operator-notes"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	h = servertest.Start(t, servertest.Options{DataDir: dir, Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}})
	if loose := looseModes(t, dir); len(loose) > 0 {
		t.Errorf("after start, not 0700/0600:\n%s", strings.Join(loose, "\n"))
	}
	// Writes after start: new Pebble files, a new bucket, the audit records.
	h.CreateBucket(t, "perm-more")
	for i := range 20 {
		if _, err := h.CloudTrail.UpdateTrail(ctx, &cloudtrail.UpdateTrailInput{Name: aws.String("perm"), S3KeyPrefix: aws.String(fmt.Sprintf("p%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	h.Stop()
	if loose := looseModes(t, dir); len(loose) > 0 {
		t.Errorf("after running, not 0700/0600:\n%s", strings.Join(loose, "\n"))
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "path="+dir) || !strings.Contains(out, "mode=0755") {
		t.Errorf("no warning naming %s and its mode 0755 in the log:\n%s", dir, out)
	}
}
