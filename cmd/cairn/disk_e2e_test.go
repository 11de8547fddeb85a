package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/testenv"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it when the test ends. Mounting needs root (or a user
// namespace); where it is not possible the test skips, except under CI,
// where it must run.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		testenv.RequireOrSkip(t, "cannot mount a tmpfs here (root is needed): mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// healthz returns /healthz's status and body.
func healthz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHealth polls /healthz until it answers want.
func waitHealth(t *testing.T, base string, want int, what string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := healthz(t, base)
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: /healthz is %d %q", what, code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeHealthOnSmallDisk (issue 12, defect 8) runs `cairn serve` on a
// real 64 MB tmpfs: with the default 256 MiB reserve it is unhealthy from
// the start and says why; with --journal-reserve-mb 16 it is healthy,
// turns unhealthy when the disk fills and healthy again when it is freed,
// with no API call in between.
func TestServeHealthOnSmallDisk(t *testing.T) {
	disk := mountTmpfs(t, "64m")
	data := filepath.Join(disk, "data")

	srv := startCairn(t, disk, "--data-dir", data)
	body := waitHealth(t, srv.URL, http.StatusServiceUnavailable, "/healthz to report the disk below the default reserve")
	if !strings.Contains(body, "268435456-byte reserve") {
		t.Errorf("unhealthy /healthz does not say why: %q", body)
	}
	srv.stop(t)

	srv = startCairn(t, disk, "--data-dir", data, "--journal-reserve-mb", "16")
	waitHealth(t, srv.URL, http.StatusOK, "/healthz with a 16 MiB reserve")

	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, avail-8<<20), 0o600); err != nil {
		t.Fatalf("fill the tmpfs: %v", err)
	}
	body = waitHealth(t, srv.URL, http.StatusServiceUnavailable, "/healthz to notice the full disk without an API call")
	if !strings.Contains(body, "reserve") {
		t.Errorf("unhealthy /healthz does not say why: %q", body)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, srv.URL, http.StatusOK, "/healthz to recover without an API call")
	srv.stop(t)
}
