package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/smithy-go"
)

// listTrailsIn calls ListTrails signed for region with the admin key cairn
// wrote, and returns the error code ("" for success).
func listTrailsIn(t *testing.T, dataDir, url, region string) string {
	t.Helper()
	ct := sdkClient(t, dataDir, url)
	_, err := ct.ListTrails(context.Background(), &cloudtrail.ListTrailsInput{}, func(o *cloudtrail.Options) { o.Region = region })
	if err == nil {
		return ""
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("ListTrails in %s: %v", region, err)
	}
	return apiErr.ErrorCode()
}

// TestServeRegionsFlag: --regions declares private regions with the same
// precedence as every flag (command line, CAIRN_REGIONS, the config file's
// regions, as a string or a TOML array); AWS's regions stay accepted and
// anything else is refused; a name that cannot be a region stops serve.
func TestServeRegionsFlag(t *testing.T) {
	work := t.TempDir()
	cfg := filepath.Join(work, "cairn.toml")
	if err := os.WriteFile(cfg, []byte(`regions = ["yy-file-1", "yy-file-2"]`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("file", func(t *testing.T) {
		dataDir := filepath.Join(work, "file-data")
		srv := startCairn(t, work, "--data-dir", dataDir, "--config", cfg)
		for region, want := range map[string]string{"yy-file-1": "", "yy-file-2": "", "us-gov-west-1": "", "xx-env-1": "InvalidSignatureException", "zz-fake-9": "InvalidSignatureException"} {
			if got := listTrailsIn(t, dataDir, srv.URL, region); got != want {
				t.Errorf("signed for %s: %q, want %q", region, got, want)
			}
		}
		srv.stop(t)
	})

	t.Run("environment beats file, command line beats both", func(t *testing.T) {
		t.Setenv("CAIRN_REGIONS", "xx-env-1")
		dataDir := filepath.Join(work, "env-data")
		srv := startCairn(t, work, "--data-dir", dataDir, "--config", cfg)
		for region, want := range map[string]string{"xx-env-1": "", "yy-file-1": "InvalidSignatureException"} {
			if got := listTrailsIn(t, dataDir, srv.URL, region); got != want {
				t.Errorf("env: signed for %s: %q, want %q", region, got, want)
			}
		}
		srv.stop(t)
		srv = startCairn(t, work, "--data-dir", dataDir, "--config", cfg, "--regions", "zz-cli-1")
		for region, want := range map[string]string{"zz-cli-1": "", "xx-env-1": "InvalidSignatureException", "yy-file-1": "InvalidSignatureException"} {
			if got := listTrailsIn(t, dataDir, srv.URL, region); got != want {
				t.Errorf("command line: signed for %s: %q, want %q", region, got, want)
			}
		}
		srv.stop(t)
	})

	t.Run("bad names", func(t *testing.T) {
		for _, bad := range []string{"onprem", "xx-private-1,../x", "XX-PRIVATE-1"} {
			out := runCairnFails(t, work, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(work, "bad-data"), "--regions", bad)
			if !strings.Contains(out, "--regions") || !strings.Contains(out, "not a valid region name") {
				t.Errorf("--regions %q: %s", bad, out)
			}
		}
	})
}

// TestApplySettingsTOMLArray: a TOML array in the config file is the
// flag's comma-separated list.
func TestApplySettingsTOMLArray(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(`regions = ["a-b-1", "c-d-2"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	regions := fs.String("regions", "", "")
	if _, err := applySettings(fs, p, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if *regions != "a-b-1,c-d-2" {
		t.Fatalf("regions = %q", *regions)
	}
}
