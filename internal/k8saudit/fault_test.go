package k8saudit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/journal/journaltest"
	"github.com/cairn-audit/cairn/internal/k8saudit"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestJournalRefusalIs503AndTheRetryRecords: while the journal cannot
// write, batches get 503 (the API server keeps them and retries) and
// nothing is recorded; the retry once the disk has room records the whole
// batch, not "duplicates" of the failed attempt.
func TestJournalRefusalIs503AndTheRetryRecords(t *testing.T) {
	disk := journaltest.NewFullDisk()
	c, err := k8saudit.New(k8saudit.Config{Token: testToken, Cluster: "minikube"})
	if err != nil {
		t.Fatal(err)
	}
	h := servertest.Start(t, servertest.Options{Configure: func(sc *server.Config) {
		sc.JournalFS = disk
		sc.Captures = []capture.Capture{c}
	}})
	url := h.URL + k8saudit.DefaultPath
	var evs []json.RawMessage
	for _, f := range loadDataset(t) {
		if f.name != "fal_01_003.json" {
			evs = append(evs, f.events...)
		}
	}
	batch := eventList(evs[:7]...)

	disk.Full.Store(true)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(batch)))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(msg), "not recorded") {
		t.Fatalf("on a full disk: %d %q (Retry-After %q), want 503", resp.StatusCode, msg, resp.Header.Get("Retry-After"))
	}
	disk.Full.Store(false)

	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := post(t, url, testToken, batch)
		if status == http.StatusOK {
			if !strings.Contains(body, `"recorded":7,"duplicates":0`) {
				t.Fatalf("the retry: %q", body)
			}
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("retry after the disk has room: %d %q", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(k8sRecords(t, h)); n != 7 {
		t.Fatalf("%d records, want 7", n)
	}

	resp, err = http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{
		`cairn_k8s_audit_events_recorded_total{cluster="minikube"} 7`,
		`cairn_k8s_audit_events_received_total{cluster="minikube"}`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Every refused attempt counts its 7 events.
	var refused int
	for _, line := range strings.Split(string(m), "\n") {
		if v, ok := strings.CutPrefix(line, `cairn_k8s_audit_events_refused_total{cluster="minikube"} `); ok {
			refused, _ = strconv.Atoi(v)
		}
	}
	if refused < 7 || refused%7 != 0 {
		t.Errorf("refused events counted %d, want a multiple of 7", refused)
	}
}
