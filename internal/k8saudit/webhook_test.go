package k8saudit_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/datasets"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/k8saudit"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

const testToken = "s3cr3t-webhook-token"

// start runs a real Cairn server with the webhook mounted.
func start(t testing.TB, cfg k8saudit.Config) (*servertest.Harness, *k8saudit.Capture) {
	t.Helper()
	if cfg.Token == "" && !cfg.AllowUnauthenticated {
		cfg.Token = testToken
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "minikube"
	}
	c, err := k8saudit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := servertest.Start(t, servertest.Options{Configure: func(sc *server.Config) { sc.Captures = []capture.Capture{c} }})
	return h, c
}

// post sends body to the webhook and returns the status and response body.
func post(t testing.TB, url, token string, body []byte, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// eventList wraps events the way the API server's webhook backend sends them.
func eventList(items ...json.RawMessage) []byte {
	b, err := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
		"metadata": map[string]any{}, "items": items})
	if err != nil {
		panic(err)
	}
	return b
}

// datasetFile is one file of the Falco traces: its events (one JSON object
// per file, or JSON lines) as they are.
type datasetFile struct {
	name   string
	events []json.RawMessage
}

func loadDataset(t testing.TB) []datasetFile {
	t.Helper()
	dir := filepath.Join(datasets.Dir(t), "k8s-audit-falco-traces")
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var out []datasetFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := datasetFile{name: filepath.Base(p)}
		dec := json.NewDecoder(bytes.NewReader(b))
		for {
			var v json.RawMessage
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			f.events = append(f.events, v)
		}
		out = append(out, f)
	}
	return out
}

// k8sRecords are the journal's records from the webhook.
func k8sRecords(t testing.TB, h *servertest.Harness) []*event.Record {
	t.Helper()
	return k8sRecordsFrom(t, h, 0)
}

// k8sRecordsFrom is k8sRecords after journal sequence number after.
func k8sRecordsFrom(t testing.TB, h *servertest.Harness, after uint64) []*event.Record {
	t.Helper()
	var out []*event.Record
	_, err := h.Server.Journal().Read(context.Background(), after, 1<<20, func(_ uint64, entry []byte) error {
		rec, err := event.Parse(entry)
		if err != nil {
			return err
		}
		if rec.EventSource == k8saudit.DefaultEventSource {
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// datasetNames is the eventName expected for each (verb, resource,
// subresource) in the Falco traces, written out by hand.
var datasetNames = map[string]string{
	"create namespaces":          "CreateNamespace",
	"delete namespaces":          "DeleteNamespace",
	"create clusterrolebindings": "CreateClusterRoleBinding",
	"delete clusterrolebindings": "DeleteClusterRoleBinding",
	"create clusterroles":        "CreateClusterRole",
	"delete clusterroles":        "DeleteClusterRole",
	"patch clusterroles":         "PatchClusterRole",
	"create pods/attach":         "CreatePodAttach",
	"create pods/exec":           "CreatePodExec",
	"create pods":                "CreatePod",
	"get pods":                   "GetPod",
	"create configmaps":          "CreateConfigMap",
	"delete configmaps":          "DeleteConfigMap",
	"create deployments":         "CreateDeployment",
	"delete deployments":         "DeleteDeployment",
	"create secrets":             "CreateSecret",
	"delete secrets":             "DeleteSecret",
	"create services":            "CreateService",
	"delete services":            "DeleteService",
	"create serviceaccounts":     "CreateServiceAccount",
	"delete serviceaccounts":     "DeleteServiceAccount",
}

// auditEvent is the part of an audit event the test compares records with.
type auditEvent struct {
	AuditID   string `json:"auditID"`
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	SourceIPs []string
	User      struct {
		Username string `json:"username"`
		UID      string `json:"uid"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// TestDatasetEventsBecomeRecords posts every file of the Falco traces to
// the webhook of a real server: each Kubernetes audit event becomes exactly
// one record with the mapped fields, and the malformed one is refused with
// a 400 that says which event and what is wrong.
func TestDatasetEventsBecomeRecords(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	url := h.URL + k8saudit.DefaultPath
	files := loadDataset(t)

	var want []auditEvent
	var malformed int
	for _, f := range files {
		status, body := post(t, url, testToken, eventList(f.events...))
		if f.name == "fal_01_003.json" {
			malformed++
			if status != http.StatusBadRequest || !strings.Contains(body, "items[0]: kind: want a string, got a JSON number") {
				t.Errorf("%s: got %d %q, want 400 naming items[0] and its kind", f.name, status, body)
			}
			continue
		}
		if status != http.StatusOK {
			t.Fatalf("%s: got %d %q", f.name, status, body)
		}
		var res k8saudit.Result
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatalf("%s: %v in %q", f.name, err, body)
		}
		if res.Received != len(f.events) || res.Recorded != len(f.events) || res.Duplicates != 0 || res.Skipped != 0 {
			t.Errorf("%s: %+v, want all %d events recorded", f.name, res, len(f.events))
		}
		for _, raw := range f.events {
			var ev auditEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			want = append(want, ev)
		}
	}
	if malformed != 1 || len(want) != 51 {
		t.Fatalf("the dataset has %d malformed files and %d events, want 1 and 51", malformed, len(want))
	}

	recs := k8sRecords(t, h)
	if len(recs) != len(want) {
		t.Fatalf("%d records for %d events", len(recs), len(want))
	}
	ids := map[string]bool{}
	for i, rec := range recs { // the journal keeps the order of the posts
		ev := want[i]
		key := ev.Verb + " " + ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			key += "/" + ev.ObjectRef.Subresource
		}
		var raw struct {
			RequestID         string `json:"requestID"`
			ErrorCode         string `json:"errorCode"`
			UserIdentity      struct{ Type, PrincipalID, UserName string }
			RequestParameters struct {
				Namespace, Name, Resource string
			} `json:"requestParameters"`
			AdditionalEventData struct {
				SourceIPs []string `json:"sourceIPs"`
				Cluster   string   `json:"cluster"`
			} `json:"additionalEventData"`
		}
		if err := json.Unmarshal(rec.Raw, &raw); err != nil {
			t.Fatal(err)
		}
		wantType := "Unknown"
		if strings.HasPrefix(ev.User.Username, "system:serviceaccount:") {
			wantType = "WebIdentityUser"
		}
		wantReadOnly := ev.Verb == "get"
		checks := []struct {
			field     string
			got, want any
		}{
			{"eventName", rec.EventName, datasetNames[key]},
			{"requestID", raw.RequestID, ev.AuditID},
			{"eventTime", rec.EventTime, ev.StageTimestamp.UTC().Truncate(time.Second)},
			{"Username", rec.Username, ev.User.Username},
			{"userIdentity.type", raw.UserIdentity.Type, wantType},
			{"userIdentity.principalId", raw.UserIdentity.PrincipalID, ev.User.UID},
			{"sourceIPAddress", rec.SourceIPAddress, ev.SourceIPs[len(ev.SourceIPs)-1]},
			{"sourceIPs", fmt.Sprint(raw.AdditionalEventData.SourceIPs), fmt.Sprint(ev.SourceIPs)},
			{"userAgent", rec.UserAgent, ev.UserAgent},
			{"readOnly", rec.ReadOnly.String(), fmt.Sprint(wantReadOnly)},
			{"errorCode", raw.ErrorCode, ""},
			{"requestParameters.resource", raw.RequestParameters.Resource, ev.ObjectRef.Resource},
			{"requestParameters.namespace", raw.RequestParameters.Namespace, ev.ObjectRef.Namespace},
			{"requestParameters.name", raw.RequestParameters.Name, ev.ObjectRef.Name},
			{"managementEvent", rec.ManagementEvent.String(), "true"},
			{"recipientAccountId", rec.RecipientAccountID, "000000000000"},
			{"cluster", raw.AdditionalEventData.Cluster, "minikube"},
			{"resources", len(rec.RecordResources), 1},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("event %d (%s, auditID %s): %s = %v, want %v", i, key, ev.AuditID, c.field, c.got, c.want)
			}
		}
		if len(rec.RecordResources) == 1 {
			r := rec.RecordResources[0]
			if !strings.HasPrefix(r.Type, "Kubernetes::") || !strings.HasPrefix(r.ARN, "arn:cairn:kubernetes:us-east-1:000000000000:cluster/minikube/") {
				t.Errorf("event %d: resource %+v", i, r)
			}
		}
		if ids[rec.EventID] {
			t.Errorf("event %d: eventID %s used twice", i, rec.EventID)
		}
		ids[rec.EventID] = true
	}

	// The event history (90 days, by eventTime) shows them: one of the
	// dataset's pod creations, re-timed to now, is found by Username.
	var rs map[string]any
	for _, f := range files {
		if f.name == "create_nginx_pod_privileged.json" {
			if err := json.Unmarshal(f.events[0], &rs); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := time.Now().UTC()
	rs["stageTimestamp"] = now.Format(time.RFC3339Nano)
	rs["auditID"] = "5b0e3c1a-7f0e-4d8e-9b5a-3c2d1e0f9a8b"
	b, _ := json.Marshal(rs)
	if status, body := post(t, url, testToken, eventList(b)); status != http.StatusOK {
		t.Fatalf("%d %q", status, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := h.CloudTrail.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyUsername,
				AttributeValue: aws.String("system:serviceaccount:kube-system:replicaset-controller")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) == 1 {
			e := out.Events[0]
			if aws.ToString(e.EventName) != "CreatePod" || aws.ToString(e.EventSource) != "kubernetes.io" ||
				len(e.Resources) != 1 || aws.ToString(e.Resources[0].ResourceType) != "Kubernetes::Core::Pod" {
				t.Errorf("LookupEvents: %s %s %+v", aws.ToString(e.EventName), aws.ToString(e.EventSource), e.Resources)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LookupEvents by Username: %d events, want 1", len(out.Events))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRefusedBatchRecordsNothing: one bad event refuses the whole batch.
func TestRefusedBatchRecordsNothing(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	url := h.URL + k8saudit.DefaultPath
	files := loadDataset(t)
	var good []json.RawMessage
	for _, f := range files {
		if f.name != "fal_01_003.json" {
			good = append(good, f.events...)
		}
	}
	bad := json.RawMessage(`{"kind":"Event","auditID":"0e1d9a5c-1111-4a5b-9c3d-2f6e7a8b9c0d","stage":"ResponseComplete","requestURI":"/api/v1/pods","user":{"username":"alice"},"stageTimestamp":"2024-01-02T03:04:05.000000Z"}`)
	items := append(append([]json.RawMessage{}, good[:5]...), bad)
	items = append(items, good[5:10]...)
	status, body := post(t, url, testToken, eventList(items...))
	if status != http.StatusBadRequest || !strings.Contains(body, `items[5] (auditID "0e1d9a5c-1111-4a5b-9c3d-2f6e7a8b9c0d"): missing verb`) ||
		!strings.Contains(body, "nothing recorded") {
		t.Fatalf("got %d %q", status, body)
	}
	if n := len(k8sRecords(t, h)); n != 0 {
		t.Fatalf("a refused batch left %d records", n)
	}
	// The same batch without the bad event goes through whole.
	status, body = post(t, url, testToken, eventList(append(append([]json.RawMessage{}, good[:5]...), good[5:10]...)...))
	if status != http.StatusOK {
		t.Fatalf("got %d %q", status, body)
	}
	if n := len(k8sRecords(t, h)); n != 10 {
		t.Fatalf("%d records, want 10", n)
	}
}

// TestRetriedBatchIsRecordedOnce: the API server sends a batch again when
// it missed the answer; the copy (also with different whitespace, also
// concurrently) records nothing more.
func TestRetriedBatchIsRecordedOnce(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	url := h.URL + k8saudit.DefaultPath
	var evs []json.RawMessage
	for _, f := range loadDataset(t) {
		if f.name != "fal_01_003.json" {
			evs = append(evs, f.events...)
		}
	}
	batch := eventList(evs[:20]...)
	var wg sync.WaitGroup
	results := make([]k8saudit.Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := post(t, url, testToken, batch)
			if status != http.StatusOK {
				t.Errorf("got %d %q", status, body)
				return
			}
			_ = json.Unmarshal([]byte(body), &results[i])
		}()
	}
	wg.Wait()
	recorded, dups := 0, 0
	for _, r := range results {
		recorded += r.Recorded
		dups += r.Duplicates
	}
	if recorded != 20 || dups != 60 {
		t.Fatalf("4 concurrent copies: recorded %d duplicates %d, want 20 and 60 (%+v)", recorded, dups, results)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, batch, "", "  "); err != nil {
		t.Fatal(err)
	}
	status, body := post(t, url, testToken, indented.Bytes())
	if status != http.StatusOK || !strings.Contains(body, `"recorded":0,"duplicates":20`) {
		t.Fatalf("re-indented retry: %d %q", status, body)
	}
	// A duplicate inside one batch is recorded once as well.
	status, body = post(t, url, testToken, eventList(evs[20], evs[20]))
	if status != http.StatusOK || !strings.Contains(body, `"recorded":1,"duplicates":1`) {
		t.Fatalf("duplicate within a batch: %d %q", status, body)
	}
	if n := len(k8sRecords(t, h)); n != 21 {
		t.Fatalf("%d records, want 21", n)
	}
}

// TestRetryAfterRestartIsRecordedOnce: a batch made durable just before
// the server stopped, sent again by the API server to the restarted
// server (which never got to answer 200), is not recorded twice: the
// retry window is filled from the journal at start. Other clusters'
// events of the same IDs would not be taken for retries.
func TestRetryAfterRestartIsRecordedOnce(t *testing.T) {
	dir := t.TempDir()
	var evs []json.RawMessage
	for _, f := range loadDataset(t) {
		if f.name != "fal_01_003.json" {
			evs = append(evs, f.events...)
		}
	}
	open := func() *servertest.Harness {
		c, err := k8saudit.New(k8saudit.Config{Token: testToken, Cluster: "minikube"})
		if err != nil {
			t.Fatal(err)
		}
		return servertest.Start(t, servertest.Options{DataDir: dir, Configure: func(sc *server.Config) { sc.Captures = []capture.Capture{c} }})
	}
	h := open()
	if status, body := post(t, h.URL+k8saudit.DefaultPath, testToken, eventList(evs[:10]...)); status != http.StatusOK || !strings.Contains(body, `"recorded":10,"duplicates":0`) {
		t.Fatalf("first post: %d %q", status, body)
	}
	h.Stop()

	h = open()
	status, body := post(t, h.URL+k8saudit.DefaultPath, testToken, eventList(evs[5:15]...))
	if status != http.StatusOK || !strings.Contains(body, `"recorded":5,"duplicates":5`) {
		t.Fatalf("retry after the restart: %d %q, want 5 recorded (the new ones) and 5 duplicates", status, body)
	}
	if n := len(k8sRecords(t, h)); n != 15 {
		t.Fatalf("%d records, want 15", n)
	}
}

func TestAuthentication(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	url := h.URL + k8saudit.DefaultPath
	body := eventList()
	for _, tok := range []string{"", "wrong", testToken + "x", testToken[:5]} {
		if status, msg := post(t, url, tok, body); status != http.StatusUnauthorized || !strings.Contains(msg, "bearer token") {
			t.Errorf("token %q: %d %q", tok, status, msg)
		}
	}
	if status, msg := post(t, url, testToken, body); status != http.StatusOK {
		t.Errorf("right token: %d %q", status, msg)
	}
	if status, _ := post(t, url, "", body, "Authorization", "Basic "+testToken); status != http.StatusUnauthorized {
		t.Errorf("basic auth: %d", status)
	}

	h2, _ := start(t, k8saudit.Config{AllowUnauthenticated: true, Path: "/audit/open"})
	if status, msg := post(t, h2.URL+"/audit/open", "", body); status != http.StatusOK {
		t.Errorf("allow_unauthenticated: %d %q", status, msg)
	}
}

func TestBodyLimitsAndGzip(t *testing.T) {
	h, _ := start(t, k8saudit.Config{MaxBodyBytes: 4096})
	url := h.URL + k8saudit.DefaultPath
	var evs []json.RawMessage
	for _, f := range loadDataset(t) {
		if f.name == "create_secret.json" || f.name == "delete_secret.json" {
			evs = append(evs, f.events...)
		}
	}
	batch := eventList(evs...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(batch)
	_ = zw.Close()
	if status, msg := post(t, url, testToken, gz.Bytes(), "Content-Encoding", "gzip"); status != http.StatusOK || !strings.Contains(msg, `"recorded":2`) {
		t.Fatalf("gzip: %d %q", status, msg)
	}
	big := eventList(evs[0], evs[0], evs[0], evs[0], evs[0], evs[0], evs[0], evs[0])
	if status, msg := post(t, url, testToken, big); status != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "over 4096 bytes") {
		t.Errorf("too big: %d %q", status, msg)
	}
	// A gzip bomb is cut at the limit after decompression too.
	gz.Reset()
	zw = gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	_ = zw.Close()
	if status, msg := post(t, url, testToken, gz.Bytes(), "Content-Encoding", "gzip"); status != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip bomb: %d %q", status, msg)
	}
	if status, msg := post(t, url, testToken, batch, "Content-Encoding", "br"); status != http.StatusUnsupportedMediaType {
		t.Errorf("brotli: %d %q", status, msg)
	}
	if status, msg := post(t, url, testToken, []byte("not json")); status != http.StatusBadRequest || !strings.Contains(msg, "not a JSON object") {
		t.Errorf("not json: %d %q", status, msg)
	}
	if n := len(k8sRecords(t, h)); n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
}

// TestStagesFilter: events of stages not configured are acknowledged but
// not recorded.
func TestStagesFilter(t *testing.T) {
	h, _ := start(t, k8saudit.Config{Stages: []string{k8saudit.StageResponseComplete}})
	url := h.URL + k8saudit.DefaultPath
	var evs []json.RawMessage
	for _, f := range loadDataset(t) {
		if f.name == "exec_pod.json" || f.name == "create_secret.json" {
			evs = append(evs, f.events...)
		}
	}
	status, body := post(t, url, testToken, eventList(evs...))
	if status != http.StatusOK || !strings.Contains(body, `"received":2,"recorded":1,"duplicates":0,"skipped":1`) {
		t.Fatalf("%d %q", status, body)
	}
	if recs := k8sRecords(t, h); len(recs) != 1 || recs[0].EventName != "CreateSecret" {
		t.Fatalf("records %v", recs)
	}
}

// TestClosedWebhookRefusesWith503: once the capture is closed (the server
// is stopping), posts get 503 so the API server keeps and resends them.
func TestClosedWebhookRefusesWith503(t *testing.T) {
	h, c := start(t, k8saudit.Config{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	status, body := post(t, h.URL+k8saudit.DefaultPath, testToken, eventList())
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Fatalf("after Close: %d %q", status, body)
	}
}

// TestJSONPatchRequestObject: kubectl patch --type=json logs the patch, a
// JSON array, as requestObject. The batch is recorded (not refused, which
// would make the API server drop all of it), the patch kept for other
// resources and replaced by "<redacted>" on Secrets.
func TestJSONPatchRequestObject(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	ev := func(id, resource, patch string) json.RawMessage {
		return json.RawMessage(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"` + id +
			`","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/` + resource + `/web","verb":"patch",` +
			`"user":{"username":"alice"},"sourceIPs":["10.0.0.7"],"objectRef":{"resource":"` + resource +
			`","namespace":"default","name":"web","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},` +
			`"requestObject":` + patch + `,"stageTimestamp":"2026-01-02T03:04:05.000000Z"}`)
	}
	status, body := post(t, h.URL+k8saudit.DefaultPath, testToken, eventList(
		ev("6f0e4c1a-0000-4000-8000-000000000001", "configmaps", `[{"op":"replace","path":"/data/mode","value":"fast"}]`),
		ev("6f0e4c1a-0000-4000-8000-000000000002", "secrets", `[{"op":"replace","path":"/data/password","value":"aHVudGVyMg=="}]`),
	))
	if status != http.StatusOK {
		t.Fatalf("a batch with JSON patches: %d %s", status, body)
	}
	recs := k8sRecords(t, h)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, rec := range recs {
		var r struct {
			P struct {
				Resource      string          `json:"resource"`
				RequestObject json.RawMessage `json:"requestObject"`
			} `json:"requestParameters"`
		}
		if err := json.Unmarshal(rec.Raw, &r); err != nil {
			t.Fatal(err)
		}
		p := r.P
		switch p.Resource {
		case "configmaps":
			if !strings.Contains(string(p.RequestObject), `"value":"fast"`) {
				t.Errorf("configmap patch not kept: %s", p.RequestObject)
			}
		case "secrets":
			if string(p.RequestObject) != `"<redacted>"` || strings.Contains(string(rec.Raw), "aHVudGVyMg") {
				t.Errorf("secret patch not redacted: %s", rec.Raw)
			}
		default:
			t.Errorf("unexpected record %s", rec.Raw)
		}
	}
}

// TestSecretWebhookPatchAnnotationRedacted: a mutating admission webhook's
// patch, which the API server logs as an audit annotation, carries the
// values it wrote into a Secret; the record keeps the annotation's key
// but not its value.
func TestSecretWebhookPatchAnnotationRedacted(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	const leak = "c3VwZXItc2VjcmV0LXZhbHVl"
	patch := `{"configuration":"inject","webhook":"inject.example.com","patch":[{"op":"add","path":"/data/token","value":"` + leak + `"}],"patchType":"JSONPatch"}`
	ann, _ := json.Marshal(map[string]string{
		"authorization.k8s.io/decision":                  "allow",
		"patch.webhook.admission.k8s.io/round_0_index_0": patch,
	})
	ev := json.RawMessage(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"6f0e4c1a-0000-4000-8000-000000000003",` +
		`"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets","verb":"create","user":{"username":"alice"},` +
		`"objectRef":{"resource":"secrets","namespace":"default","name":"db","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},` +
		`"annotations":` + string(ann) + `,"stageTimestamp":"2026-01-02T03:04:05.000000Z"}`)
	if status, body := post(t, h.URL+k8saudit.DefaultPath, testToken, eventList(ev)); status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	recs := k8sRecords(t, h)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	raw := string(recs[0].Raw)
	if strings.Contains(raw, leak) {
		t.Fatalf("the webhook's patch of a Secret reached the record: %s", raw)
	}
	if !strings.Contains(raw, `"patch.webhook.admission.k8s.io/round_0_index_0":"<redacted>"`) || !strings.Contains(raw, `"authorization.k8s.io/decision":"allow"`) {
		t.Fatalf("annotations not kept as expected: %s", raw)
	}
}

// TestTokenRequestTokenRedacted: a create on serviceaccounts/token answers
// a TokenRequest whose status.token is a working bearer token; a policy
// logging creates at RequestResponse must not put it in the record.
func TestTokenRequestTokenRedacted(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpib3QifQ.c2lnbmF0dXJl"
	ev := json.RawMessage(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"6f0e4c1a-0000-4000-8000-000000000004",` +
		`"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/serviceaccounts/bot/token","verb":"create","user":{"username":"alice"},` +
		`"objectRef":{"resource":"serviceaccounts","namespace":"default","name":"bot","apiVersion":"v1","subresource":"token"},"responseStatus":{"metadata":{},"code":201},` +
		`"requestObject":{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"audiences":null,"expirationSeconds":3600},"status":{"token":"","expirationTimestamp":null}},` +
		`"responseObject":{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"name":"bot","namespace":"default"},"spec":{"audiences":["https://kubernetes.default.svc"],"expirationSeconds":3600},"status":{"token":"` + token + `","expirationTimestamp":"2026-01-02T04:04:05Z"}},` +
		`"stageTimestamp":"2026-01-02T03:04:05.000000Z"}`)
	if status, body := post(t, h.URL+k8saudit.DefaultPath, testToken, eventList(ev)); status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	recs := k8sRecords(t, h)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	raw := string(recs[0].Raw)
	if strings.Contains(raw, token) || strings.Contains(raw, "c2lnbmF0dXJl") {
		t.Fatalf("a service account token reached the record: %s", raw)
	}
	if !strings.Contains(raw, `"token":"<redacted>"`) || !strings.Contains(raw, `"expirationSeconds":3600`) {
		t.Fatalf("the TokenRequest was not kept apart from its token: %s", raw)
	}
}

// TestBatchOverOneJournalAppend: a batch whose records are more than the
// journal takes in one append (32 MiB) is recorded whole, not refused with
// a 400 the API server would drop it on.
func TestBatchOverOneJournalAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("posts a 38 MB batch")
	}
	h, _ := start(t, k8saudit.Config{MaxBodyBytes: 64 << 20})
	blob := strings.Repeat("x", 95<<10)
	const n = 400
	items := make([]json.RawMessage, n)
	for i := range items {
		items[i] = json.RawMessage(fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"6f0e4c1a-0000-4000-8000-%012d",`+
			`"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps","verb":"create","user":{"username":"alice"},`+
			`"objectRef":{"resource":"configmaps","namespace":"default","name":"c%d","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},`+
			`"requestObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c%d"},"data":{"blob":"%s"}},"stageTimestamp":"2026-01-02T03:04:05.000000Z"}`, i, i, i, blob))
	}
	body := eventList(items...)
	if len(body) <= 32<<20 {
		t.Fatalf("the batch is only %d bytes", len(body))
	}
	status, resp := post(t, h.URL+k8saudit.DefaultPath, testToken, body)
	if status != http.StatusOK || !strings.Contains(resp, fmt.Sprintf(`"recorded":%d`, n)) {
		t.Fatalf("%d %.300s", status, resp)
	}
	if got := len(k8sRecords(t, h)); got != n {
		t.Fatalf("%d records, want %d", got, n)
	}
	// Sent again, it is all duplicates: nothing more is appended. (Counted
	// from the journal's head, not from its start, which the server may
	// have trimmed by now: a slow run outlasts the minute between trims.)
	head := h.Server.Journal().LastSeq()
	status, resp = post(t, h.URL+k8saudit.DefaultPath, testToken, body)
	if status != http.StatusOK || !strings.Contains(resp, fmt.Sprintf(`"duplicates":%d`, n)) {
		t.Fatalf("the retry: %d %.300s", status, resp)
	}
	if got := len(k8sRecordsFrom(t, h, head)); got != 0 {
		t.Fatalf("the retry appended %d records, want none", got)
	}
}

// TestSourceIPNotFromForwardedFor: the API server lists X-Forwarded-For
// addresses, which any client writes, before its own peer; the record's
// sourceIPAddress is the peer, not the address the client chose.
func TestSourceIPNotFromForwardedFor(t *testing.T) {
	h, _ := start(t, k8saudit.Config{})
	ev := json.RawMessage(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"6f0e4c1a-0000-4000-8000-000000000005",` +
		`"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"mallory"},` +
		`"sourceIPs":["203.0.113.66","198.51.100.23"],"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},` +
		`"responseStatus":{"metadata":{},"code":200},"stageTimestamp":"2026-01-02T03:04:05.000000Z"}`)
	if status, body := post(t, h.URL+k8saudit.DefaultPath, testToken, eventList(ev)); status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	recs := k8sRecords(t, h)
	if len(recs) != 1 || recs[0].SourceIPAddress != "198.51.100.23" {
		t.Fatalf("want one record from 198.51.100.23 (the API server's peer), got %v", recs)
	}
	if !strings.Contains(string(recs[0].Raw), `"sourceIPs":["203.0.113.66","198.51.100.23"]`) {
		t.Fatalf("all source IPs not kept: %s", recs[0].Raw)
	}
}
