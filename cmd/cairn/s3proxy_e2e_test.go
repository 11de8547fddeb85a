package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/testenv"
)

// TestS3ProxyEndToEnd runs the real cairn binary with an [[s3_proxy]] in
// front of a versitygw child process, drives it with the real AWS CLI and
// finds the bucket-level calls with `aws cloudtrail lookup-events`.
func TestS3ProxyEndToEnd(t *testing.T) {
	bin, err := exec.LookPath("aws")
	if err != nil {
		testenv.RequireOrSkip(t, "no aws CLI on PATH: %v", err)
	}
	up := s3test.Start(t)
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	cfgPath := filepath.Join(work, "cairn.toml")
	cfg := `
[[s3_proxy]]
listen = "127.0.0.1:0"
upstream = "` + up.Endpoint + `"
region = "us-east-1"
failure_policy = "closed"
trusted_proxies = ["10.0.0.0/8"]

[[s3_proxy.identity]]
access_key_id = "` + up.AccessKeyID + `"
user_name = "alice"
arn = "arn:aws:iam::000000000000:user/alice"
account_id = "000000000000"
principal_id = "AIDAEXAMPLEALICE01"
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startCairn(t, work, "--data-dir", dataDir, "--config", cfgPath)
	m := regexp.MustCompile(`s3 proxy serving"?.*? url=(\S+)`).FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("cairn did not report the s3 proxy's URL:\n%s", srv.stderr.String())
	}
	proxyURL := m[1]

	home := t.TempDir()
	s3cfg := filepath.Join(home, "config")
	if err := os.WriteFile(s3cfg, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := append(cleanAWSEnv(os.Environ()), "HOME="+home, "AWS_CONFIG_FILE="+s3cfg, "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1")
	s3env := append(slices.Clip(base), "AWS_ACCESS_KEY_ID="+up.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+up.SecretAccessKey,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"), "AWS_ENDPOINT_URL_S3="+proxyURL)
	ctEnv := append(slices.Clip(base), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dataDir, "credentials"), "AWS_PROFILE=cairn",
		"AWS_ENDPOINT_URL="+srv.URL)
	run := func(env []string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	file := filepath.Join(work, "report.csv")
	if err := os.WriteFile(file, []byte(strings.Repeat("a,b,c\n", 50000)), 0o600); err != nil {
		t.Fatal(err)
	}
	run(s3env, "s3api", "create-bucket", "--bucket", "e2e")
	run(s3env, "s3api", "put-bucket-policy", "--bucket", "e2e", "--policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::e2e/*"}]}`)
	run(s3env, "s3", "cp", file, "s3://e2e/reports/report.csv")
	run(s3env, "s3", "cp", "s3://e2e/reports/report.csv", filepath.Join(work, "back.csv"))
	back, err := os.ReadFile(filepath.Join(work, "back.csv"))
	if err != nil || len(back) != 300000 {
		t.Fatalf("aws s3 cp back through the proxy: %d bytes, %v", len(back), err)
	}
	if out := run(s3env, "s3api", "list-objects-v2", "--bucket", "e2e"); !strings.Contains(out, "reports/report.csv") {
		t.Fatalf("list-objects-v2 through the proxy:\n%s", out)
	}
	run(s3env, "s3api", "get-bucket-acl", "--bucket", "e2e")
	run(s3env, "s3api", "delete-objects", "--bucket", "e2e", "--delete", `{"Objects":[{"Key":"reports/report.csv"}]}`)
	run(s3env, "s3api", "list-buckets")

	want := []string{"CreateBucket", "PutBucketPolicy", "GetBucketAcl", "ListBuckets"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := run(ctEnv, "cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventSource,AttributeValue=s3.amazonaws.com")
		var res struct {
			Events []struct {
				EventName       string
				Username        string
				CloudTrailEvent string
			}
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("lookup-events output: %v\n%s", err, out)
		}
		found := map[string]string{}
		for _, e := range res.Events {
			found[e.EventName] = e.CloudTrailEvent
			if e.Username != "alice" {
				t.Errorf("%s in the history with user %q, want alice", e.EventName, e.Username)
			}
		}
		missing := []string{}
		for _, n := range want {
			if _, ok := found[n]; !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			for _, data := range []string{"PutObject", "GetObject", "ListObjects", "DeleteObjects"} {
				if _, ok := found[data]; ok {
					t.Errorf("the event history holds the data event %s", data)
				}
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(found["PutBucketPolicy"]), &rec); err != nil {
				t.Fatal(err)
			}
			if rec["eventSource"] != "s3.amazonaws.com" || rec["sourceIPAddress"] != "127.0.0.1" ||
				!strings.HasPrefix(rec["userAgent"].(string), "[aws-cli/1.45") {
				t.Errorf("PutBucketPolicy record: %s", found["PutBucketPolicy"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup-events lacks %v after 30s:\n%s", missing, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	srv.stop(t)
}

// TestS3ProxyConfig checks the [[s3_proxy]] table: a full declaration is
// accepted, and each mistake is refused with an error that names it.
func TestS3ProxyConfig(t *testing.T) {
	decode := func(s string) map[string]any {
		t.Helper()
		var m map[string]any
		if _, err := toml.Decode(s, &m); err != nil {
			t.Fatalf("toml: %v", err)
		}
		return m
	}
	ok := decode(`
[[s3_proxy]]
listen = "127.0.0.1:9100"
upstream = "http://127.0.0.1:7070"
region = "eu-west-1"
account_id = "123456789012"
failure_policy = "open"
trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]
virtual_host_domain = "s3.local"
[[s3_proxy.identity]]
access_key_id = "AKIAEXAMPLE"
user_name = "alice"
arn = "arn:aws:iam::123456789012:user/alice"
account_id = "123456789012"
[[s3_proxy]]
upstream = "https://minio.internal:9000"
`)
	caps, err := captures(ok, os.LookupEnv)
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if len(caps) != 2 || caps[0].Name() != "s3 proxy 127.0.0.1:9100 -> 127.0.0.1:7070" || caps[1].Name() != "s3 proxy 127.0.0.1:9000 -> minio.internal:9000" {
		names := []string{}
		for _, c := range caps {
			names = append(names, c.Name())
		}
		t.Fatalf("captures %v", names)
	}
	for _, tc := range []struct{ conf, want string }{
		{"[[s3_proxy]]\nupstream = \"http://h\"\nlisten_addr = \"x\"\n", "unknown key(s) listen_addr"},
		{"[[s3_proxy]]\nlisten = \"127.0.0.1:1\"\n", "upstream is required"},
		{"[[s3_proxy]]\nupstream = \"ftp://h\"\n", "want http://host[:port]"},
		{"[[s3_proxy]]\nupstream = \"http://h/prefix\"\n", "must not have a path"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\nfailure_policy = \"maybe\"\n", `failure_policy "maybe"`},
		{"[[s3_proxy]]\nupstream = \"http://h\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n", "trusted_proxies: \"10.0.0.0/33\""},
		{"[[s3_proxy]]\nupstream = \"http://h\"\ntrusted_proxies = \"10.0.0.0/8\"\n", "trusted_proxies: want an array of strings"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\nregion = 5\n", "region: want a string"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\naccount_id = \"12\"\n", `account_id "12"`},
		{"[[s3_proxy]]\nupstream = \"http://h\"\n[[s3_proxy.identity]]\nuser_name = \"a\"\n", "identity[0]: access_key_id is required"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\n[[s3_proxy.identity]]\naccess_key_id = \"A\"\nsecret = \"s\"\n", "identity[0]: unknown key(s) secret"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\n[[s3_proxy.identity]]\naccess_key_id = \"A\"\n[[s3_proxy.identity]]\naccess_key_id = \"A\"\n", "mapped twice"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\n[[s3_proxy]]\nupstream = \"http://i\"\n", "listen 127.0.0.1:9000 is already taken by s3_proxy[0]"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\ntls_cert = \"c.pem\"\n", "tls_cert and tls_key go together"},
		{"[[s3_proxy]]\nupstream = \"http://h\"\nlisten = \"nonsense\"\n", `listen "nonsense"`},
	} {
		_, err := captures(decode(tc.conf), os.LookupEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "s3_proxy: ") {
			t.Errorf("config %q: err %v, want one saying %q", tc.conf, err, tc.want)
		}
	}
}
