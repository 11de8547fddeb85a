package event

import (
	"encoding/json"
	"regexp"
	"time"
)

// Imported records are stored exactly as they were imported, so nothing in
// their bytes tells them from records Cairn wrote itself. Their provenance
// lives beside them instead: each import request is recorded by one audit
// record (eventName ImportEvents) that the server appends to the journal
// directly AHEAD of the records it accepted, in the same atomic Append, so
// that the records of an import are exactly the journal entries that
// follow its header, as many as the header says. The event history keeps
// that range (see internal/history) and reports the provenance with every
// event in it. Delivered log files and digests are untouched: they carry
// the journal's bytes, header included, as an ordinary audit record.
const (
	// ImportEventSource and ImportEventName name the audit record of an
	// import request.
	ImportEventSource = "cloudtrail.amazonaws.com"
	ImportEventName   = "ImportEvents"
	// importMember is the additionalEventData member that makes an import's
	// audit record a header. Records written before provenance existed
	// (which followed their records instead of preceding them) lack it and
	// are never read as headers.
	importMember = "cairnImport"
)

// ImportProvenance says where an imported record came from: which import
// request (ImportID, the request ID of its audit record), who made it (the
// admin key and its principal), when, how many records it accepted and the
// SHA-256 (hex) of those records as stored, each followed by a newline.
type ImportProvenance struct {
	ImportID     string    `json:"importId"`
	ImportTime   time.Time `json:"importTime"`
	AccessKeyID  string    `json:"accessKeyId"`
	PrincipalARN string    `json:"principalArn,omitempty"`
	Records      int       `json:"records"`
	SHA256       string    `json:"sha256"`
}

// ImportHeaderData is the additionalEventData of an import's audit record.
func ImportHeaderData(importID string, records int, sha256Hex string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{importMember: map[string]any{"importId": importID, "records": records, "sha256": sha256Hex}})
	return b
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ImportHeader reports whether r is the header of an import, and if so the
// provenance of the records that follow it. It only looks at the record:
// callers must also make sure r is not itself inside an earlier import's
// range (an import can carry a record shaped like a header; it is data).
// Only an AwsApiCall management record can be a header, so a channel event
// (ActivityAuditLog) whose eventData imitates one is not.
func ImportHeader(r *Record) (ImportProvenance, bool) {
	if r.EventName != ImportEventName || r.EventSource != ImportEventSource || r.ErrorCode != "" ||
		r.EventType != "AwsApiCall" || r.EventCategory != "Management" {
		return ImportProvenance{}, false
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(r.Field("additionalEventData"), &data) != nil || data[importMember] == nil {
		return ImportProvenance{}, false
	}
	var h struct {
		ImportID string `json:"importId"`
		Records  *int   `json:"records"`
		SHA256   string `json:"sha256"`
	}
	if json.Unmarshal(data[importMember], &h) != nil || h.ImportID == "" || h.Records == nil || *h.Records < 0 || !sha256Hex.MatchString(h.SHA256) {
		return ImportProvenance{}, false
	}
	return ImportProvenance{ImportID: h.ImportID, ImportTime: r.EventTime, AccessKeyID: r.AccessKeyID,
		PrincipalARN: r.UserIdentityARN, Records: *h.Records, SHA256: h.SHA256}, true
}
