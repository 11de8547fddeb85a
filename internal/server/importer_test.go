package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/datasets"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/event"
)

// importHarness is a real Server (stores under a temp dir) whose import
// handler is served on its own route, so these tests do not depend on how
// routes() is assembled.
type importHarness struct {
	srv                 *Server
	url                 string
	adminID, adminKey   string
	readerID, readerKey string
}

func startImport(t *testing.T) *importHarness {
	t.Helper()
	ctx := context.Background()
	srv, err := Open(ctx, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("open server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ImportPath, srv.handleImport)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	h := &importHarness{srv: srv, url: hs.URL}
	keys, err := srv.Keys().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Role == auth.RoleAdmin {
			_, secret, _, err := srv.Keys().Lookup(ctx, k.AccessKeyID)
			if err != nil {
				t.Fatal(err)
			}
			h.adminID, h.adminKey = k.AccessKeyID, secret
		}
	}
	ro, secret, err := srv.Keys().Create(ctx, "auditor", auth.RoleReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	h.readerID, h.readerKey = ro.AccessKeyID, secret
	return h
}

// post signs body with the real SDK signer for service and sends it.
func (h *importHarness) post(t *testing.T, keyID, secret, service string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+ImportPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// journalEntries returns every entry in the journal.
func (h *importHarness) journalEntries(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	_, err := h.srv.Journal().Read(context.Background(), 0, 1<<20, func(_ uint64, e []byte) error {
		out = append(out, append([]byte(nil), e...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func datasetFiles(t *testing.T) []string {
	t.Helper()
	root := datasets.Dir(t)
	var files []string
	for _, set := range []string{"stratus-red-team-detonation-logs", "flaws2-cloud"} {
		err := filepath.WalkDir(filepath.Join(root, set), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".json.gz")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(files)
	if len(files) != 35+8 {
		t.Fatalf("found %d dataset files, want 43 (35 Stratus + 8 flaws2)", len(files))
	}
	return files
}

func TestImportEveryDatasetFile(t *testing.T) {
	h := startImport(t)
	total := 0
	var want [][]byte
	for _, f := range datasetFiles(t) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		n := 0
		err = event.ReadRecords(fh, func(raw []byte) error {
			rec, err := event.Parse(raw)
			if err != nil {
				return err
			}
			want = append(want, rec.Raw)
			body.Write(rec.Raw)
			body.WriteByte('\n')
			n++
			return nil
		})
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		status, resp := h.post(t, h.adminID, h.adminKey, ImportService, body.Bytes())
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", f, status, resp)
		}
		var out apiclient.ImportOutput
		if err := json.Unmarshal(resp, &out); err != nil {
			t.Fatalf("%s: decode %s: %v", f, resp, err)
		}
		if out.Accepted != n || len(out.Rejected) != 0 {
			t.Fatalf("%s: accepted %d rejected %v, want %d accepted", f, out.Accepted, out.Rejected, n)
		}
		total += n
	}
	if total != 310+37 {
		t.Fatalf("imported %d records, want 347 (310 Stratus + 37 flaws2)", total)
	}
	// Each request appended its own audit record followed by its records.
	var got [][]byte
	audits := 0
	for _, e := range h.journalEntries(t) {
		rec, err := event.Parse(e)
		if err != nil {
			t.Fatalf("journal entry does not parse: %v", err)
		}
		if rec.EventName == importOperation && rec.EventSource == "cloudtrail.amazonaws.com" && rec.RecipientAccountID == "000000000000" {
			audits++
			continue
		}
		got = append(got, e)
	}
	if audits != 43 {
		t.Errorf("%d audit records, want one per request (43)", audits)
	}
	if len(got) != len(want) {
		t.Fatalf("journal holds %d imported records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d changed on import:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestImportRejectsBadRecordsByIndex(t *testing.T) {
	h := startImport(t)
	lines := []string{
		`{"eventVersion":"1.0","eventTime":"2014-03-06T21:22:54Z","eventName":"ListUsers","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1"}`,
		`not json`,
		``, // blank lines do not count
		`{"eventTime":"2024-01-01T00:00:00Z"}`,
		"  {\"eventID\":\"e-1\", \"eventTime\":\"2024-01-01T00:00:00Z\",\n", // split across lines: both halves bad
		`"eventName":"X"}`,
		`{"eventID":"e-2","eventTime":"2024-01-01T00:00:00Z","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","awsRegion":"us-east-1"}`,
	}
	status, resp := h.post(t, h.adminID, h.adminKey, ImportService, []byte(strings.Join(lines, "\n")))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, resp)
	}
	var out apiclient.ImportOutput
	if err := json.Unmarshal(resp, &out); err != nil {
		t.Fatal(err)
	}
	if out.Accepted != 2 {
		t.Errorf("accepted %d, want 2", out.Accepted)
	}
	var idx []int
	for _, r := range out.Rejected {
		idx = append(idx, r.Index)
		if !strings.Contains(r.Error, "invalid CloudTrail record") {
			t.Errorf("rejection %d: %q does not say why", r.Index, r.Error)
		}
	}
	if want := []int{1, 2, 3, 4}; !slices.Equal(idx, want) {
		t.Errorf("rejected indexes %v, want %v (%s)", idx, want, resp)
	}
	entries := h.journalEntries(t)
	if len(entries) != 3 {
		t.Fatalf("journal has %d entries, want 1 audit + 2 records", len(entries))
	}
	// The pre-1.01 record keeps having no eventID.
	if bytes.Contains(entries[1], []byte("eventID")) {
		t.Errorf("an eventID was invented: %s", entries[1])
	}
	var audit map[string]any
	if err := json.Unmarshal(entries[0], &audit); err != nil {
		t.Fatal(err)
	}
	if rp, _ := json.Marshal(audit["requestParameters"]); string(rp) != `{"bytes":`+strconv.Itoa(len(strings.Join(lines, "\n")))+`,"records":6}` {
		t.Errorf("audit requestParameters %s", rp)
	}
	if re, _ := json.Marshal(audit["responseElements"]); string(re) != `{"accepted":2,"rejected":4}` {
		t.Errorf("audit responseElements %s", re)
	}
}

func TestImportRefusesReadOnlyKeyAndOtherServices(t *testing.T) {
	h := startImport(t)
	rec := []byte(`{"eventID":"e-1","eventTime":"2024-01-01T00:00:00Z","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","awsRegion":"us-east-1"}` + "\n")

	status, resp := h.post(t, h.readerID, h.readerKey, ImportService, rec)
	if status != http.StatusForbidden || !strings.Contains(string(resp), `"__type":"AccessDeniedException"`) {
		t.Fatalf("read-only key: status %d %s, want 403 AccessDeniedException", status, resp)
	}
	entries := h.journalEntries(t)
	if len(entries) != 1 {
		t.Fatalf("journal has %d entries after a refused import, want only its audit record", len(entries))
	}
	r, err := event.Parse(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != "AccessDenied" || r.EventName != importOperation || r.AccessKeyID != h.readerID {
		t.Errorf("audit of the refused import: %s", entries[0])
	}

	status, resp = h.post(t, h.adminID, h.adminKey, "cloudtrail", rec)
	if status != http.StatusForbidden || !strings.Contains(string(resp), "InvalidSignatureException") {
		t.Errorf("signed for cloudtrail: status %d %s, want 403 InvalidSignatureException", status, resp)
	}
	status, resp = h.post(t, h.adminID, "wrong-secret", ImportService, rec)
	if status != http.StatusForbidden {
		t.Errorf("bad secret: status %d %s, want 403", status, resp)
	}
	big := bytes.Repeat([]byte(" "), MaxImportBody+1)
	status, resp = h.post(t, h.adminID, h.adminKey, ImportService, big)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d %s, want 413", status, resp)
	}
	if n := len(h.journalEntries(t)); n != 1 {
		t.Errorf("journal has %d entries, want 1: unauthenticated requests append nothing", n)
	}
}

func TestImportOversizedRecord(t *testing.T) {
	h := startImport(t)
	huge := `{"eventID":"big","eventTime":"2024-01-01T00:00:00Z","eventName":"PutBucketPolicy","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","requestParameters":{"policy":"` +
		strings.Repeat("x", 1<<20) + `"}}`
	ok := `{"eventID":"small","eventTime":"2024-01-01T00:00:00Z","eventName":"GetBucketPolicy","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1"}`
	status, resp := h.post(t, h.adminID, h.adminKey, ImportService, []byte(huge+"\n"+ok+"\n"))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, resp)
	}
	var out apiclient.ImportOutput
	if err := json.Unmarshal(resp, &out); err != nil {
		t.Fatal(err)
	}
	if out.Accepted != 1 || len(out.Rejected) != 1 || out.Rejected[0].Index != 0 || !strings.Contains(out.Rejected[0].Error, "per-record limit") {
		t.Errorf("got %s, want the 1 MiB record rejected alone", resp)
	}
}
