package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// wireEvent is LookupEvents' Event as the server writes it, with Cairn's
// CairnProvenance extension.
type wireEvent struct {
	EventID         string                     `json:"EventId"`
	EventName       string                     `json:"EventName"`
	CloudTrailEvent string                     `json:"CloudTrailEvent"`
	Provenance      map[string]json.RawMessage `json:"CairnProvenance"`
}

func lookupRaw(t *testing.T, h *servertest.Harness, body string) []wireEvent {
	t.Helper()
	status, typ, raw := rawCall(t, h, h.AdminKeyID, h.AdminSecret, "LookupEvents", body, time.Now(), nil)
	if status != 200 {
		t.Fatalf("LookupEvents %s: %d %s %s", body, status, typ, raw)
	}
	var out struct{ Events []wireEvent }
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out.Events
}

// Imported records are stored and returned byte for byte as imported, but
// LookupEvents names their import (which import, which key, when, how many
// records and their SHA-256); native events, the import's own audit record
// included, keep AWS's exact shape. A record that imitates an import's
// header is data, not a header: it does not make the native events after
// it look imported. Provenance survives a restart and a rebuild of the
// history from the journal.
func TestImportedEventsCarryProvenance(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	if _, err := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	imported := []string{
		`{"eventVersion":"1.08","eventID":"imp-1","eventTime":"` + at + `","eventName":"CreateUser","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1","eventType":"AwsApiCall","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAEXAMPLE"}}`,
		`{"eventVersion":"1.08","eventID":"imp-2","eventTime":"` + at + `","eventName":"DeleteUser","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1","eventType":"AwsApiCall"}`,
		// Shaped exactly like an import's header, claiming the next 5 entries.
		`{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAFORGED"},"eventTime":"` + at + `","eventSource":"cloudtrail.amazonaws.com","eventName":"ImportEvents","awsRegion":"us-east-1","additionalEventData":{"cairnImport":{"importId":"forged","records":5,"sha256":"` + strings.Repeat("0", 64) + `"}},"eventID":"imp-3","eventType":"AwsApiCall","managementEvent":true,"eventCategory":"Management"}`,
	}
	out, err := importClient(h).Import(ctx, []byte(strings.Join(imported, "\n")+"\n"))
	if err != nil || out.Accepted != 3 {
		t.Fatalf("import: %+v, %v", out, err)
	}
	want := sha256.Sum256([]byte(strings.Join(imported, "\n") + "\n"))
	if out.SHA256 != hex.EncodeToString(want[:]) || out.ImportID == "" {
		t.Fatalf("import answer: id %q sha256 %s, want the SHA-256 of the imported lines %x", out.ImportID, out.SHA256, want)
	}
	// Native calls after the import, within the forged header's "5".
	for range 3 {
		if _, err := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}

	check := func(stage string) {
		t.Helper()
		if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{"imp-1", "imp-2", "imp-3"} {
			evs := lookupRaw(t, h, `{"LookupAttributes":[{"AttributeKey":"EventId","AttributeValue":"`+id+`"}]}`)
			if len(evs) != 1 {
				t.Fatalf("%s: %s: %d events", stage, id, len(evs))
			}
			e := evs[0]
			if e.CloudTrailEvent != imported[i] {
				t.Errorf("%s: %s: CloudTrailEvent changed:\n got %s\nwant %s", stage, id, e.CloudTrailEvent, imported[i])
			}
			var p struct {
				Source, ImportId, AccessKeyId, Sha256 string
				Records                               int
				ImportTime                            float64
			}
			raw, _ := json.Marshal(e.Provenance)
			if err := json.Unmarshal(raw, &p); err != nil || p.Source != "import" || p.ImportId != out.ImportID ||
				p.AccessKeyId != h.AdminKeyID || p.Records != 3 || p.Sha256 != out.SHA256 || time.Since(time.Unix(int64(p.ImportTime), 0)) > time.Hour {
				t.Errorf("%s: %s: CairnProvenance %s", stage, id, raw)
			}
		}
		native := lookupRaw(t, h, `{"LookupAttributes":[{"AttributeKey":"EventSource","AttributeValue":"cloudtrail.amazonaws.com"}],"MaxResults":50}`)
		var headers, calls int
		for _, e := range native {
			if e.EventID == "imp-3" {
				continue
			}
			if e.Provenance != nil {
				t.Errorf("%s: native event %s %s carries provenance: %v", stage, e.EventName, e.EventID, e.Provenance)
			}
			switch e.EventName {
			case "DescribeTrails":
				calls++
			case "ImportEvents":
				headers++
				var rec struct {
					AdditionalEventData struct {
						CairnImport struct {
							ImportID string `json:"importId"`
							Records  int    `json:"records"`
							SHA256   string `json:"sha256"`
						} `json:"cairnImport"`
					} `json:"additionalEventData"`
				}
				_ = json.Unmarshal([]byte(e.CloudTrailEvent), &rec)
				if c := rec.AdditionalEventData.CairnImport; c.ImportID != out.ImportID || c.Records != 3 || c.SHA256 != out.SHA256 {
					t.Errorf("%s: the import's audit record does not name it: %s", stage, e.CloudTrailEvent)
				}
			}
		}
		if calls != 4 || headers != 1 {
			t.Errorf("%s: %d DescribeTrails and %d ImportEvents events, want 4 and 1", stage, calls, headers)
		}
	}
	check("live")

	dir := h.DataDir
	h.Stop()
	h = servertest.Start(t, servertest.Options{DataDir: dir})
	check("after a restart")

	h.Stop()
	if err := os.RemoveAll(filepath.Join(dir, "history")); err != nil {
		t.Fatal(err)
	}
	h = servertest.Start(t, servertest.Options{DataDir: dir})
	if first := h.Server.Journal().FirstSeq(); first > 1 {
		t.Fatalf("the journal was trimmed to %d; the rebuild cannot be checked", first)
	}
	check("after rebuilding the history from the journal")
}
