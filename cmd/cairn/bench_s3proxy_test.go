package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

// TestBenchS3Proxy runs `cairn bench s3proxy` against a real versitygw and
// the real cairn binary's S3 proxy in front of it: every case is
// measured on both sides, and the proxy recorded every proxied call
// (its recorded-requests counter on /metrics).
func TestBenchS3Proxy(t *testing.T) {
	up := s3test.StartWith(t, s3test.Options{KeepAlive: true})
	work := t.TempDir()
	cfgPath := filepath.Join(work, "cairn.toml")
	cfg := "[[s3_proxy]]\nlisten = \"127.0.0.1:0\"\nupstream = \"" + up.Endpoint + "\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startCairn(t, work, "--data-dir", filepath.Join(work, "data"), "--config", cfgPath)
	m := regexp.MustCompile(`s3 proxy serving"?.*? url=(\S+)`).FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("cairn did not report the s3 proxy's URL:\n%s", srv.stderr.String())
	}
	t.Setenv("AWS_ACCESS_KEY_ID", up.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", up.SecretAccessKey)
	out := runCairn(t, work, "bench", "s3proxy", "--direct", up.Endpoint, "--proxy", m[1], "--sizes", "4KB,64KB",
		"--clients", "4", "--calls", "40", "--rounds", "4", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res struct {
		Cases []bench.S3ProxyResult `json:"cases"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("bench output is not JSON: %v\n%s", err, out)
	}
	if len(res.Cases) != 4 {
		t.Fatalf("%d cases, want 4 (2 sizes × 2 operations):\n%s", len(res.Cases), out)
	}
	for _, c := range res.Cases {
		if c.Calls != 40 || c.Direct.MBPerSec <= 0 || c.Proxy.MBPerSec <= 0 || c.PercentDirect <= 0 ||
			c.Direct.Latency.Count != 40 || c.Proxy.Latency.Count != 40 {
			t.Errorf("case %+v", c)
		}
	}
	// 4 cases × (4 warm-up + 40) proxied calls.
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rm := regexp.MustCompile(`cairn_s3proxy_requests_total\{outcome="recorded",proxy="[^"]+"\} (\d+)`).FindSubmatch(body)
	if rm == nil {
		t.Fatalf("no recorded-requests counter on /metrics:\n%s", body)
	}
	if n, _ := strconv.Atoi(string(rm[1])); n != 4*(4+40) {
		t.Errorf("the proxy recorded %d calls, want %d", n, 4*(4+40))
	}

	// Bad input is refused with a clear error.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--proxy", m[1]}, "--direct and --proxy are required"},
		{[]string{"--direct", up.Endpoint, "--proxy", m[1], "--sizes", "4XB"}, `"4XB" is not a size`},
		{[]string{"--direct", up.Endpoint, "--proxy", m[1], "--ops", "DeleteObject", "--calls", "1"}, `unknown operation "DeleteObject"`},
	} {
		if out := runCairnFails(t, work, append([]string{"bench", "s3proxy"}, tc.args...)...); !strings.Contains(out, tc.want) {
			t.Errorf("cairn bench s3proxy %v: %s, want %q", tc.args, out, tc.want)
		}
	}
}
