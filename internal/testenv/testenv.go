// Package testenv is the one rule for tests that need something a
// developer's machine may lack (the AWS CLI, Chromium, the shared data
// sets, a server route): under CI such a test fails, because a check
// that skips there proves nothing; elsewhere it is skipped.
//
// CI means the CI variable is set to anything non-empty: every CI system
// Cairn is run on sets CI=true, and a person reproducing CI by hand may
// type CI=1. Every test asks CI() or calls RequireOrSkip instead of
// reading the variable itself, so no two tests can disagree on it.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// CI reports whether the tests run under CI (CI set, non-empty).
func CI() bool { return os.Getenv("CI") != "" }

// RequireOrSkip ends the test because something it needs is missing:
// reason says what and how to get it. Under CI the test fails; otherwise
// it is skipped.
func RequireOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("required under CI (CI=%q): %s", os.Getenv("CI"), reason)
	}
	t.Skip(reason)
}
