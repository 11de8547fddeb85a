package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/auth"
)

func runKeysT(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runKeys(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

var createdRE = regexp.MustCompile(`(?m)^Access key ID:\s+(CKIA[A-Z2-7]{16})\nSecret access key:\s+([A-Za-z0-9]{40})$`)

func TestKeysCreateListDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, _, err := runKeysT(t, "create", "--name", "alice", "--role", "read-only", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	m := createdRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no key in output:\n%s", out)
	}
	id, secret := m[1], m[2]
	if !strings.Contains(out, "aws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\n") {
		t.Fatalf("no credentials snippet:\n%s", out)
	}

	// The key is real: the store returns the same secret.
	store, err := auth.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	k, got, ok, err := store.Lookup(context.Background(), id)
	if err != nil || !ok || got != secret || k.Role != auth.RoleReadOnly || k.Name != "alice" {
		t.Fatalf("lookup: %+v ok=%v err=%v", k, ok, err)
	}

	out, _, err = runKeysT(t, "list", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ACCESS KEY ID") || !strings.Contains(out, id) || !strings.Contains(out, "read-only") || strings.Contains(out, secret) {
		t.Fatalf("list output:\n%s", out)
	}

	// Flags may follow the positional argument.
	if out, _, err = runKeysT(t, "delete", id, "--data-dir", dir); err != nil || !strings.Contains(out, id) {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if _, _, err = runKeysT(t, "delete", "--data-dir", dir, id); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if out, _, _ = runKeysT(t, "list", "--data-dir", dir); !strings.Contains(out, "No access keys.") {
		t.Fatalf("list after delete:\n%s", out)
	}
}

func TestKeysDataDirFromEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envdata")
	t.Setenv("CAIRN_DATA_DIR", dir)
	if _, _, err := runKeysT(t, "create", "--name", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, auth.KeysFile)); err != nil {
		t.Fatalf("key not stored under CAIRN_DATA_DIR: %v", err)
	}
	out, _, err := runKeysT(t, "list")
	if err != nil || !strings.Contains(out, "bob") || !strings.Contains(out, "read-only") {
		t.Fatalf("list: %v\n%s", err, out)
	}
}

func TestKeysUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "missing subcommand"},
		{[]string{"rotate"}, "unknown subcommand"},
		{[]string{"create", "--data-dir", dir}, "--name is required"},
		{[]string{"create", "--data-dir", dir, "--name", "x", "--role", "root"}, "invalid role"},
		{[]string{"create", "--data-dir", dir, "--name", "bad name"}, "invalid key name"},
		{[]string{"delete", "--data-dir", dir}, "exactly one ACCESS_KEY_ID"},
		{[]string{"list", "--data-dir", filepath.Join(dir, "missing")}, "data directory"},
		{[]string{"list", "--bogus"}, "flag provided but not defined"},
	} {
		_, _, err := runKeysT(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
	if _, stderr, err := runKeysT(t, "create", "-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "cairn keys create") {
		t.Errorf("help: %v\n%s", err, stderr)
	}
}
