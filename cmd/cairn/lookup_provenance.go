package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

// Cairn's LookupEvents adds a CairnProvenance member to events that came
// in through `cairn import` (see docs/cli.md). The SDK drops members it
// does not know, so provenanceRecorder reads them from the raw response
// as it passes and keeps them by event, for the table and JSON output.

// provenances maps an event (eventKey) to its CairnProvenance, as the
// server sent it. A nil *provenances knows of none.
type provenances struct {
	mu sync.Mutex
	m  map[string]json.RawMessage
}

func eventKey(id, record string) string { return id + "\x00" + record }

// of returns e's provenance, nil for a native event.
func (p *provenances) of(e types.Event) json.RawMessage {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[eventKey(aws.ToString(e.EventId), aws.ToString(e.CloudTrailEvent))]
}

func (p *provenances) set(key string, v json.RawMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]json.RawMessage{}
	}
	p.m[key] = v
}

// provenanceRecorder is the SDK's HTTP client with a look at LookupEvents
// answers.
type provenanceRecorder struct {
	next cloudtrail.HTTPClient
	into *provenances
}

// maxLookupAnswer bounds the answer read to find provenance: 50 events of
// at most a journal entry (1 MiB) each, and their envelope.
const maxLookupAnswer = 64 << 20

func (r *provenanceRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".LookupEvents") {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLookupAnswer+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the LookupEvents answer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var page struct {
		Events []struct {
			EventID         string          `json:"EventId"`
			CloudTrailEvent string          `json:"CloudTrailEvent"`
			Provenance      json.RawMessage `json:"CairnProvenance"`
		}
	}
	if len(body) > maxLookupAnswer || json.Unmarshal(body, &page) != nil {
		return resp, nil // the SDK reports what is wrong with it
	}
	for _, e := range page.Events {
		if len(e.Provenance) > 0 && !bytes.Equal(e.Provenance, []byte("null")) {
			r.into.set(eventKey(e.EventID, e.CloudTrailEvent), e.Provenance)
		}
	}
	return resp, nil
}

// withProvenance appends "cairnProvenance" to a record's JSON object: the
// server's CairnProvenance with lower-case member names and ImportTime as
// RFC 3339, as a record's members are written.
func withProvenance(record string, raw json.RawMessage) string {
	var p struct {
		Source       string  `json:"Source"`
		ImportID     string  `json:"ImportId"`
		ImportTime   float64 `json:"ImportTime"`
		AccessKeyID  string  `json:"AccessKeyId"`
		PrincipalARN string  `json:"PrincipalArn"`
		Records      int     `json:"Records"`
		SHA256       string  `json:"Sha256"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return record
	}
	out := struct {
		Source       string `json:"source"`
		ImportID     string `json:"importId"`
		ImportTime   string `json:"importTime"`
		AccessKeyID  string `json:"accessKeyId,omitempty"`
		PrincipalARN string `json:"principalArn,omitempty"`
		Records      int    `json:"records"`
		SHA256       string `json:"sha256"`
	}{p.Source, p.ImportID, time.Unix(int64(p.ImportTime), 0).UTC().Format(time.RFC3339), p.AccessKeyID, p.PrincipalARN, p.Records, p.SHA256}
	b, err := json.Marshal(out)
	rec := strings.TrimRight(record, " \t\r\n")
	if err != nil || !strings.HasSuffix(rec, "}") {
		return record
	}
	rec = strings.TrimSuffix(rec, "}")
	if strings.TrimSpace(rec) != "{" {
		rec += ","
	}
	return rec + `"cairnProvenance":` + string(b) + "}"
}
