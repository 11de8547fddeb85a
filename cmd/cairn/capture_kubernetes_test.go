package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/datasets"
)

// parseKubernetesConfig runs a TOML document through the same decoder and
// table dispatch as `cairn serve --config`.
func parseKubernetesConfig(t *testing.T, doc string, env map[string]string) (int, error) {
	t.Helper()
	var file map[string]any
	if _, err := toml.Decode(doc, &file); err != nil {
		t.Fatalf("TOML: %v", err)
	}
	cs, err := captures(file, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return len(cs), err
}

func TestKubernetesAuditConfig(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"K8S_TOKEN": "tok-env"}
	good := []string{
		fmt.Sprintf("[kubernetes_audit]\ntoken_file = %q\n", tokenFile),
		"[kubernetes_audit]\ntoken_env = \"K8S_TOKEN\"\ncluster = \"prod\"\nregion = \"eu-west-1\"\nevent_source = \"k8s.example.com\"\n" +
			"path = \"/hooks/k8s\"\nstages = [\"ResponseComplete\"]\nmax_body_bytes = 1048576\n",
		"[kubernetes_audit]\nallow_unauthenticated = true\n",
		fmt.Sprintf("[[kubernetes_audit]]\ncluster = \"a\"\npath = \"/a\"\ntoken_file = %q\n[[kubernetes_audit]]\ncluster = \"b\"\npath = \"/b\"\ntoken_env = \"K8S_TOKEN\"\n", tokenFile),
	}
	for _, doc := range good {
		if n, err := parseKubernetesConfig(t, doc, env); err != nil || n == 0 {
			t.Errorf("%q: %d captures, %v", doc, n, err)
		}
	}
	bad := []struct{ doc, want string }{
		{"[kubernetes_audit]\ncluster = \"x\"\n", "no token_file or token_env"},
		{"[kubernetes_audit]\ntokenfile = \"x\"\nallow_unauthenticated = true\n", `unknown key(s) tokenfile`},
		{"[kubernetes_audit]\ntoken_env = \"NOPE\"\n", "environment variable NOPE is not set"},
		{fmt.Sprintf("[kubernetes_audit]\ntoken_file = %q\n", empty), "is empty"},
		{"[kubernetes_audit]\ntoken_file = \"/nonexistent/cairn-token\"\n", "token_file: open /nonexistent/cairn-token"},
		{fmt.Sprintf("[kubernetes_audit]\ntoken_file = %q\ntoken_env = \"K8S_TOKEN\"\n", tokenFile), "both set"},
		{fmt.Sprintf("[kubernetes_audit]\ntoken_file = %q\nallow_unauthenticated = true\n", tokenFile), "contradict"},
		{"[kubernetes_audit]\nallow_unauthenticated = \"yes\"\n", "allow_unauthenticated: want true or false"},
		{"[kubernetes_audit]\nallow_unauthenticated = true\nstages = [\"Done\"]\n", `stage "Done"`},
		{"[kubernetes_audit]\nallow_unauthenticated = true\nstages = []\n", "stages is empty"},
		{"[kubernetes_audit]\nallow_unauthenticated = true\nstages = \"Panic\"\n", "stages: want an array"},
		{"[kubernetes_audit]\nallow_unauthenticated = true\nmax_body_bytes = -1\n", "max_body_bytes: want a positive integer"},
		{"[kubernetes_audit]\nallow_unauthenticated = true\npath = \"k8s\"\n", `path "k8s"`},
		{"[kubernetes_audit]\nallow_unauthenticated = true\ncluster = \"a/b\"\n", `cluster "a/b"`},
		{"[kubernetes_audit]\nallow_unauthenticated = true\nregion = 5\n", "region: want a string"},
		{"[[kubernetes_audit]]\nallow_unauthenticated = true\ncluster = \"a\"\n[[kubernetes_audit]]\nallow_unauthenticated = true\ncluster = \"b\"\n", `path "/k8s/audit" is already taken by [0]`},
		{"[[kubernetes_audit]]\nallow_unauthenticated = true\npath = \"/a\"\n[[kubernetes_audit]]\nallow_unauthenticated = true\npath = \"/b\"\n", `cluster "kubernetes" is already named by [0]`},
	}
	for _, c := range bad {
		_, err := parseKubernetesConfig(t, c.doc, env)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "kubernetes_audit") {
			t.Errorf("%q: error %v, want one about %q", c.doc, err, c.want)
		}
	}
}

// TestKubernetesAuditWebhookSurvivesKill9: `cairn serve` with a
// [kubernetes_audit] table takes the API server's post, and the event it
// acknowledged is in the event history after a kill -9 and restart.
func TestKubernetesAuditWebhookSurvivesKill9(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	tokenFile := filepath.Join(work, "k8s-token")
	if err := os.WriteFile(tokenFile, []byte("kube-apiserver-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(work, "cairn.toml")
	cfg := fmt.Sprintf("[kubernetes_audit]\ncluster = \"minikube\"\ntoken_file = %q\n", tokenFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(filepath.Join(datasets.Dir(t), "k8s-audit-falco-traces", "exec_pod.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev["stageTimestamp"] = time.Now().UTC().Format(time.RFC3339Nano) // inside the 90-day history
	body, err := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []any{ev}})
	if err != nil {
		t.Fatal(err)
	}

	srv := startCairn(t, work, "--config", cfgPath, "--data-dir", dataDir)
	postAudit := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/k8s/audit", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, msg := postAudit("not-the-token"); status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %q", status, msg)
	}
	if status, msg := postAudit("kube-apiserver-token"); status != http.StatusOK || !strings.Contains(msg, `"recorded":1`) {
		t.Fatalf("post: %d %q", status, msg)
	}
	srv.kill9(t)

	srv = startCairn(t, work, "--config", cfgPath, "--data-dir", dataDir)
	// The API server sends the batch again (it may not have seen the
	// 200 before the crash): the restarted server knows it is recorded.
	if status, msg := postAudit("kube-apiserver-token"); status != http.StatusOK || !strings.Contains(msg, `"recorded":0,"duplicates":1`) {
		t.Fatalf("retry after kill -9: %d %q, want it taken for a duplicate", status, msg)
	}
	ct := sdkClient(t, dataDir, srv.URL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := ct.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("CreatePodExec")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) == 1 {
			if u := aws.ToString(out.Events[0].Username); u != "minikube-user" {
				t.Errorf("Username %q", u)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after kill -9: %d CreatePodExec events, want 1", len(out.Events))
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.stop(t)
}
