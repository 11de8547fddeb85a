// Package datasets finds the shared real-world data sets (real CloudTrail
// logs, Kubernetes audit events) that tests use as fixtures. They live in
// shared/datasets next to the repository and are read in place, never
// copied into it.
package datasets

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-audit/cairn/internal/testenv"
)

// Find walks up from the working directory to the first folder that holds
// shared/datasets. CAIRN_DATASETS, when set, names the folder instead (a
// path that is not a folder hides the data sets, to check that the tests
// needing them fail under CI).
func Find() (string, bool) {
	if dir := os.Getenv("CAIRN_DATASETS"); dir != "" {
		st, err := os.Stat(dir)
		return dir, err == nil && st.IsDir()
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		cand := filepath.Join(dir, "shared", "datasets")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Dir is the datasets folder for a test. Under CI (CI set) a missing
// folder fails the test, because a check that silently skips there proves
// nothing; on a developer's machine without it the test is skipped.
func Dir(t testing.TB) string {
	t.Helper()
	dir, ok := Find()
	if !ok {
		testenv.RequireOrSkip(t, "shared/datasets not found above the working directory")
	}
	return dir
}
