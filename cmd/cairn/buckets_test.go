package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

// buckets runs `cairn buckets args...` in-process.
func buckets(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut strings.Builder
	err = runBuckets(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustBuckets(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := buckets(t, args...)
	if err != nil {
		t.Fatalf("cairn buckets %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// clearBucketsEnv makes the test independent of the caller's CAIRN_*
// settings.
func clearBucketsEnv(t *testing.T) {
	for _, k := range []string{"CAIRN_STORE", "CAIRN_DATA_DIR", "CAIRN_S3_ACCESS_KEY_ID", "CAIRN_S3_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
		os.Unsetenv(k) // Setenv restores it afterwards
	}
}

func TestBucketsCreateAndList(t *testing.T) {
	clearBucketsEnv(t)
	dataDir := t.TempDir()

	out := mustBuckets(t, "list", "--data-dir", dataDir)
	if !strings.Contains(out, "No buckets") {
		t.Errorf("list of a new data dir = %q", out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "buckets")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("list created the store directory: %v", err)
	}

	// Flags before or after the name.
	mustBuckets(t, "create", "--data-dir", dataDir, "trail-logs")
	out = mustBuckets(t, "create", "other.bucket", "--data-dir", dataDir)
	if !strings.Contains(out, "other.bucket") {
		t.Errorf("create output = %q", out)
	}
	if info, err := os.Stat(filepath.Join(dataDir, "buckets", "trail-logs")); err != nil || !info.IsDir() {
		t.Fatalf("bucket directory not made under <data-dir>/buckets: %v", err)
	}
	out = mustBuckets(t, "list", "--data-dir", dataDir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "other.bucket ") || !strings.HasPrefix(lines[2], "trail-logs ") {
		t.Errorf("list =\n%s\nwant a header and both buckets by name", out)
	}

	_, _, err := buckets(t, "create", "trail-logs", "--data-dir", dataDir)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating a bucket twice: %v, want 'already exists'", err)
	}
}

func TestBucketsRejects(t *testing.T) {
	clearBucketsEnv(t)
	dataDir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing subcommand"},
		{[]string{"delete", "x"}, "unknown subcommand"},
		{[]string{"create", "--data-dir", dataDir}, "missing bucket name"},
		{[]string{"create", "a-bucket", "extra", "--data-dir", dataDir}, "unexpected arguments: extra"},
		{[]string{"create", "Bad_Name", "--data-dir", dataDir}, "invalid bucket name"},
		{[]string{"list", "extra", "--data-dir", dataDir}, "unexpected arguments"},
		{[]string{"list", "--store", "ftp://host"}, "unknown scheme"},
		{[]string{"create", "a-bucket", "--nope"}, "flag provided but not defined"},
	} {
		_, _, err := buckets(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cairn buckets %q = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "buckets", "Bad_Name")); err == nil {
		t.Errorf("an invalid bucket was created")
	}
	if _, _, err := buckets(t, "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h = %v, want flag.ErrHelp", err)
	}
	if _, _, err := buckets(t, "create", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("create -h = %v, want flag.ErrHelp", err)
	}
}

func TestBucketsEnvironment(t *testing.T) {
	clearBucketsEnv(t)
	envData, flagData, storeDir := t.TempDir(), t.TempDir(), t.TempDir()

	t.Setenv("CAIRN_DATA_DIR", envData)
	mustBuckets(t, "create", "from-env-data-dir")
	if _, err := os.Stat(filepath.Join(envData, "buckets", "from-env-data-dir")); err != nil {
		t.Errorf("CAIRN_DATA_DIR not used: %v", err)
	}
	mustBuckets(t, "create", "flag-wins", "--data-dir", flagData)
	if _, err := os.Stat(filepath.Join(flagData, "buckets", "flag-wins")); err != nil {
		t.Errorf("--data-dir did not win over CAIRN_DATA_DIR: %v", err)
	}

	t.Setenv("CAIRN_STORE", "file://"+storeDir)
	mustBuckets(t, "create", "from-env-store")
	if _, err := os.Stat(filepath.Join(storeDir, "from-env-store")); err != nil {
		t.Errorf("CAIRN_STORE not used: %v", err)
	}
	other := t.TempDir()
	mustBuckets(t, "create", "store-flag-wins", "--store", "file://"+other)
	if _, err := os.Stat(filepath.Join(other, "store-flag-wins")); err != nil {
		t.Errorf("--store did not win over CAIRN_STORE: %v", err)
	}
}

func TestBucketsDefaultDataDir(t *testing.T) {
	clearBucketsEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	mustBuckets(t, "create", "default-place")
	if _, err := os.Stat(filepath.Join(dir, "cairn-data", "buckets", "default-place")); err != nil {
		t.Errorf("default store is not ./cairn-data/buckets: %v", err)
	}
}

func TestBucketsS3Store(t *testing.T) {
	clearBucketsEnv(t)
	srv := s3test.Start(t)
	t.Setenv("CAIRN_S3_ACCESS_KEY_ID", srv.AccessKeyID)
	t.Setenv("CAIRN_S3_SECRET_ACCESS_KEY", srv.SecretAccessKey)
	mustBuckets(t, "create", "s3-bucket", "--store", srv.StoreURL())
	out, errOut, err := buckets(t, "list", "--store", srv.StoreURL())
	if err != nil || !strings.Contains(out, "s3-bucket") {
		t.Fatalf("list = %q, %v\n%s", out, err, errOut)
	}
	if strings.Contains(out+errOut, srv.SecretAccessKey) {
		t.Errorf("the secret key was printed")
	}
	_, _, err = buckets(t, "create", "s3-bucket", "--store", srv.StoreURL())
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating an S3 bucket twice: %v", err)
	}

	t.Setenv("CAIRN_S3_SECRET_ACCESS_KEY", "wrong")
	_, _, err = buckets(t, "list", "--store", srv.StoreURL())
	if err == nil {
		t.Errorf("list with a wrong secret succeeded")
	}
}
