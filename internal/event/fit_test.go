package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func bigCall(req, resp json.RawMessage, userAgent string) APICall {
	return APICall{
		Time:              time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC),
		Source:            "cloudtrail.amazonaws.com",
		Name:              "PutEventSelectors",
		Region:            "us-east-1",
		SourceIP:          "127.0.0.1",
		UserAgent:         userAgent,
		EventID:           "00000000-0000-4000-8000-000000000000",
		Identity:          UserIdentity{Type: "IAMUser", AccountID: "123456789012"},
		RequestParameters: req,
		ResponseElements:  resp,
	}
}

type marker struct {
	Omitted struct {
		Member string `json:"member"`
		Bytes  int    `json:"bytes"`
		SHA256 string `json:"sha256"`
	} `json:"omittedByCairn"`
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A record over the journal's limit keeps every member it can and
// replaces the largest ones, response before request on a tie, by a
// marker naming the member, its size and its hash.
func TestRecordShrinksOversizedMembers(t *testing.T) {
	big := `["` + strings.Repeat("a", 600<<10) + `"]`
	req := json.RawMessage(`{"trailName":"t","advancedEventSelectors":` + big + `}`)
	resp := json.RawMessage(`{"trailARN":"arn:aws:cloudtrail:us-east-1:123456789012:trail/t","advancedEventSelectors":` + big + `}`)
	rec, err := bigCall(req, resp, "sdk").Record()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Raw) > MaxRecordBytes {
		t.Fatalf("record is %d bytes", len(rec.Raw))
	}
	var got struct {
		RequestParameters map[string]json.RawMessage `json:"requestParameters"`
		ResponseElements  map[string]json.RawMessage `json:"responseElements"`
		UserAgent         string                     `json:"userAgent"`
	}
	if err := json.Unmarshal(rec.Raw, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.RequestParameters["advancedEventSelectors"], []byte(big)) || string(got.RequestParameters["trailName"]) != `"t"` {
		t.Error("requestParameters changed although replacing one response member was enough")
	}
	if string(got.ResponseElements["trailARN"]) != `"arn:aws:cloudtrail:us-east-1:123456789012:trail/t"` {
		t.Errorf("small member replaced: %s", got.ResponseElements["trailARN"])
	}
	var m marker
	if err := json.Unmarshal(got.ResponseElements["advancedEventSelectors"], &m); err != nil {
		t.Fatalf("marker: %v", err)
	}
	if m.Omitted.Member != "responseElements.advancedEventSelectors" || m.Omitted.Bytes != len(big) || m.Omitted.SHA256 != sum([]byte(big)) {
		t.Errorf("marker = %+v, want member responseElements.advancedEventSelectors, %d bytes, sha256 %s", m.Omitted, len(big), sum([]byte(big)))
	}
	// Deterministic: the same call shrinks to the same bytes.
	again, err := bigCall(req, resp, "sdk").Record()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Raw, rec.Raw) {
		t.Error("the same call shrank differently")
	}
}

// Largest first: of three members over the limit together, the largest
// goes, whichever section it is in, and as many as needed go.
func TestRecordShrinksLargestFirst(t *testing.T) {
	a := `"` + strings.Repeat("a", 650<<10) + `"`
	b := `"` + strings.Repeat("b", 700<<10) + `"`
	c := `"` + strings.Repeat("c", 400<<10) + `"`
	req := json.RawMessage(`{"a":` + a + `,"b":` + b + `,"c":` + c + `}`)
	rec, err := bigCall(req, nil, "sdk").Record()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RequestParameters map[string]json.RawMessage `json:"requestParameters"`
	}
	if err := json.Unmarshal(rec.Raw, &got); err != nil {
		t.Fatal(err)
	}
	// 1.7 MiB: b (700 KiB) goes, then a (650 KiB); c stays.
	for name, want := range map[string]string{"a": a, "b": b} {
		var m marker
		if err := json.Unmarshal(got.RequestParameters[name], &m); err != nil || m.Omitted.Member != "requestParameters."+name || m.Omitted.Bytes != len(want) || m.Omitted.SHA256 != sum([]byte(want)) {
			t.Errorf("member %s: %s (%v)", name, got.RequestParameters[name][:min(80, len(got.RequestParameters[name]))], err)
		}
	}
	if string(got.RequestParameters["c"]) != c {
		t.Error("member c was replaced although the record fitted without it")
	}
}

// When the members are not the problem, the long strings are cut to
// CloudTrail's 1 KB and say what was cut.
func TestRecordShortensHugeUserAgent(t *testing.T) {
	ua := strings.Repeat("é", 600<<10)
	rec, err := bigCall(nil, nil, ua).Record()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Raw) > MaxRecordBytes {
		t.Fatalf("record is %d bytes", len(rec.Raw))
	}
	want := strings.Repeat("é", 512) + " [truncated by Cairn: " + "1228800 bytes, sha256 " + sum([]byte(ua)) + "]"
	if rec.UserAgent != want {
		t.Errorf("userAgent = %.80q…", rec.UserAgent)
	}
}

// A record that fits is not touched.
func TestFitRecordLeavesSmallRecordsAlone(t *testing.T) {
	rec, err := bigCall(json.RawMessage(`{"a":"b"}`), nil, "sdk").Record()
	if err != nil {
		t.Fatal(err)
	}
	out, err := FitRecord(rec.Raw, MaxRecordBytes)
	if err != nil || !bytes.Equal(out, rec.Raw) {
		t.Errorf("FitRecord changed a small record: %v", err)
	}
	if _, err := FitRecord(rec.Raw, 10); err == nil {
		t.Error("a record whose fixed parts exceed the limit was accepted")
	}
}

// A section of many members each smaller than a marker is replaced as a
// whole: the record is still written.
func TestRecordReplacesASectionOfManySmallMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"name":"t"`)
	for i := range 120_000 {
		b.WriteString(`,"m` + strconv.Itoa(i) + `":1`)
	}
	b.WriteString(`}`)
	req := json.RawMessage(b.String())
	rec, err := bigCall(req, nil, "sdk").Record()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RequestParameters json.RawMessage `json:"requestParameters"`
	}
	if err := json.Unmarshal(rec.Raw, &got); err != nil {
		t.Fatal(err)
	}
	var m marker
	if err := json.Unmarshal(got.RequestParameters, &m); err != nil || m.Omitted.Member != "requestParameters" || m.Omitted.Bytes != len(req) || m.Omitted.SHA256 != sum(req) {
		t.Errorf("requestParameters = %.200s (%v)", got.RequestParameters, err)
	}
}

// FuzzFitRecord checks FitRecord's promises on any record: the result
// fits or there is an error, it is a record Parse accepts, and the same
// input always gives the same bytes.
func FuzzFitRecord(f *testing.F) {
	f.Add([]byte(`{"a":"`+strings.Repeat("x", 300)+`","b":[1,2,3]}`), []byte(`{"c":{"d":"`+strings.Repeat("y", 200)+`"}}`), "ua", 700)
	f.Add([]byte(`{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9}`), []byte(`null`), strings.Repeat("é", 2000), 600)
	f.Fuzz(func(t *testing.T, req, resp []byte, ua string, limit int) {
		if !json.Valid(req) || !json.Valid(resp) || limit < 0 || limit > 1<<16 {
			return
		}
		call := bigCall(req, resp, ua)
		rec, err := call.Record()
		if err != nil {
			return // not an object: Record refuses it before fitting
		}
		out, err := FitRecord(rec.Raw, limit)
		if err != nil {
			return
		}
		if len(out) > limit {
			t.Fatalf("FitRecord gave %d bytes for limit %d", len(out), limit)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("the fitted record does not parse: %v\n%s", err, out)
		}
		again, _ := FitRecord(rec.Raw, limit)
		if !bytes.Equal(out, again) {
			t.Fatal("FitRecord is not deterministic")
		}
	})
}

// TestImportHeaderSurvivesAHugeUserAgent: a caller-chosen User-Agent big
// enough to push an import's audit record over the limit is cut before any
// section is given up, so the record keeps the provenance that marks the
// import's records as imported (found by review: the header's
// additionalEventData was replaced first, and the records passed for
// native ones).
func TestImportHeaderSurvivesAHugeUserAgent(t *testing.T) {
	for _, ua := range []string{strings.Repeat("a", MaxRecordBytes+10), strings.Repeat("\xff", 200_000)} {
		rec, err := APICall{
			Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Source: ImportEventSource, Name: ImportEventName,
			Region: "us-east-1", SourceIP: "127.0.0.1", UserAgent: ua, RequestID: "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", RecipientAccountID: "000000000000",
			Identity:            UserIdentity{Type: "IAMUser", AccessKeyID: "AKIAEXAMPLE"},
			RequestParameters:   json.RawMessage(`{"records":3,"bytes":300}`),
			AdditionalEventData: ImportHeaderData("6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f", 3, strings.Repeat("0", 64)),
		}.Record()
		if err != nil {
			t.Fatal(err)
		}
		p, ok := ImportHeader(rec)
		if !ok || p.Records != 3 || p.ImportID != "6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f" {
			t.Fatalf("a %d-byte User-Agent cost the import its provenance: %v %+v (%.300s)", len(ua), ok, p, rec.Raw)
		}
	}
}
