package testenv_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/testenv"
)

// TestRequireOrSkip runs a test that needs something missing in a child
// `go test` process with CI unset, "true" and "1": it is skipped only
// when CI is unset.
func TestRequireOrSkip(t *testing.T) {
	if os.Getenv("CAIRN_TESTENV_CHILD") != "" {
		testenv.RequireOrSkip(t, "nothing here: %s", "on purpose")
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range []string{"", "true", "1"} {
		cmd := exec.Command(exe, "-test.run", "^TestRequireOrSkip$", "-test.v")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CI=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "CAIRN_TESTENV_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		skipped := strings.Contains(string(out), "--- SKIP") && err == nil
		failed := strings.Contains(string(out), "--- FAIL") && err != nil
		if ci == "" && !skipped || ci != "" && (!failed || !strings.Contains(string(out), "required under CI")) {
			t.Errorf("CI=%q: want %s, got err=%v:\n%s", ci, map[bool]string{true: "a skip", false: "a failure"}[ci == ""], err, out)
		}
	}
}
