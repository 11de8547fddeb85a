package awsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/golden"
)

// sampleInput has every member kind a CloudTrail input uses.
type sampleInput struct {
	Name      *string           `json:"Name"`
	Flag      *bool             `json:"Flag"`
	Max       *int32            `json:"MaxResults"`
	Start     *Timestamp        `json:"StartTime"`
	List      []string          `json:"trailNameList"`
	Tags      []map[string]any  `json:"TagsList"`
	Attrs     map[string]string `json:"Attrs"`
	Selectors []struct {
		Field  string   `json:"Field"`
		Equals []string `json:"Equals"`
	} `json:"AdvancedEventSelectors"`
}

func TestDecodeJSON11(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		wantErr    bool
	}{
		{"empty body is the empty object", "", false},
		{"empty object", "{}", false},
		{"unknown members are ignored", `{"Nope":1,"Name":"a"}`, false},
		{"epoch seconds", `{"StartTime":1714554000}`, false},
		{"fractional epoch", `{"StartTime":1714554000.5}`, false},
		{"ISO time as botocore tolerates", `{"StartTime":"2024-05-01T09:00:00Z"}`, false},
		{"truncated", `{"Name":`, true},
		{"array", `[]`, true},
		{"string", `"x"`, true},
		{"wrong type", `{"Name":5}`, true},
		{"bool as string", `{"Flag":"true"}`, true},
		{"int overflow", `{"MaxResults":99999999999}`, true},
		{"trailing data", `{} {}`, true},
		{"bad time", `{"StartTime":"yesterday"}`, true},
		{"NaN time", `{"StartTime":1e400}`, true},
		{"duplicate member", `{"Name":"a","Name":"b"}`, true},
		{"duplicate nested member", `{"AdvancedEventSelectors":[{"Field":"a","Field":"b"}]}`, true},
		{"duplicate map key", `{"Attrs":{"k":"a","k":"b"}}`, true},
		{"duplicate inside an ignored member", `{"Nope":{"x":1,"x":2}}`, true},
		{"duplicate inside a free-form value", `{"TagsList":[{"Key":"a","Key":"b"}]}`, true},
		{"wrong-case member is ignored, not a duplicate", `{"Name":"a","NAME":"b"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in sampleInput
			_, err := DecodeJSON11([]byte(tc.body), &in)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !IsCode(err, "SerializationException") {
				t.Fatalf("err = %v, want SerializationException", err)
			}
		})
	}
}

func TestTimestampWire(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1714554000, 0), "1714554000"},
		{time.Unix(1714554000, 250*int64(time.Millisecond)), "1714554000.250"},
	} {
		got, err := json.Marshal(Timestamp{tc.t})
		if err != nil || string(got) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.t, got, err, tc.want)
		}
		var back Timestamp
		if err := json.Unmarshal(got, &back); err != nil || !back.Equal(tc.t) {
			t.Errorf("round trip of %s = %v, %v", got, back.Time, err)
		}
	}
	if NewTimestamp(time.Time{}) != nil {
		t.Error("NewTimestamp of the zero time must be nil so omitempty drops it")
	}
}

// TestErrorFrames pins the error bytes clients decode, for both protocols.
func TestErrorFrames(t *testing.T) {
	var got bytes.Buffer
	for _, tc := range []struct {
		contentType string
		err         error
	}{
		{ContentTypeJSON11, Errorf("TrailNotFoundException", "Unknown trail: x for the user: 000000000000")},
		{ContentTypeJSON11, Errorf("AccessDeniedException", "denied")},
		{ContentTypeJSON11, errors.New("disk on fire")},
		{"application/json", Errorf("ChannelNotFound", "Channel not found")},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, "req-1", tc.contentType, tc.err)
		got.WriteString(rec.Result().Status + "\n")
		for _, h := range []string{"Content-Type", "X-Amzn-Errortype", "X-Amzn-Requestid"} {
			got.WriteString(h + ": " + rec.Header().Get(h) + "\n")
		}
		got.WriteString(rec.Body.String() + "\n\n")
	}
	golden.Check(t, filepath.Join("testdata", "error_frames.golden"), got.Bytes())
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCanonicalJSON11 pins the document the record is built from: members
// named exactly as the input's tags, in the caller's order, numbers as
// sent, unknown and wrong-case members dropped at every depth.
func TestCanonicalJSON11(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{``, `{}`},
		{` {"Name":"innocent","NAME":"victim"} `, `{"Name":"innocent"}`},
		{`{"NAME":"victim"}`, `{}`},
		{`{"name":"victim","Flag":true}`, `{"Flag":true}`},
		{`{"MaxResults":5.0e0,"Name":"a\u0041"}`, `{"MaxResults":5.0e0,"Name":"aA"}`},
		{`{"StartTime":"2024-05-01T09:00:00Z","Nope":[1,{"a":[]}]}`, `{"StartTime":"2024-05-01T09:00:00Z"}`},
		{`{"AdvancedEventSelectors":[{"field":"x","Field":"f","Equals":["a"],"equals":["b"]}]}`, `{"AdvancedEventSelectors":[{"Field":"f","Equals":["a"]}]}`},
		{`{"Attrs":{"K":"v","k":"w"}}`, `{"Attrs":{"K":"v","k":"w"}}`},
		{`{"TagsList":[{"Key":"k","key":"K"}]}`, `{"TagsList":[{"Key":"k","key":"K"}]}`},
		{`{"Name":{"x":1}}`, `{"Name":{"x":1}}`}, // kept whole: decoding then refuses the type
	} {
		got, err := CanonicalJSON11([]byte(tc.body), reflect.TypeFor[sampleInput]())
		if err != nil || string(got) != tc.want {
			t.Errorf("CanonicalJSON11(%s) = %s, %v; want %s", tc.body, got, err, tc.want)
		}
	}
	_, err := CanonicalJSON11([]byte(`{"AdvancedEventSelectors":[{"Field":"a"},{"Equals":[],"Equals":[]}]}`), reflect.TypeFor[sampleInput]())
	if e := AsError(err); e.Code != "SerializationException" || !strings.Contains(e.Message, "AdvancedEventSelectors[1].Equals") {
		t.Errorf("nested duplicate: %v, want a SerializationException naming AdvancedEventSelectors[1].Equals", err)
	}
}

// FuzzDecodeJSON11 feeds arbitrary bodies to the request decoder: it must
// never panic and must refuse with SerializationException only.
func FuzzDecodeJSON11(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"Name":"t","Flag":true,"MaxResults":50}`, `{"StartTime":1714554000.123}`,
		`{"StartTime":"2024-05-01T09:00:00Z"}`, `{"trailNameList":["a","b"]}`,
		`{"TagsList":[{"Key":"k","Value":"v"}]}`, `{"AdvancedEventSelectors":[{"Field":"eventCategory","Equals":["Data"]}]}`,
		`{"Name":`, `[1]`, `{"MaxResults":1e99}`, `{"Attrs":{"a":"b"}}`, "{\"Name\":\"\\ud800\"}",
		`{"Name":"innocent","NAME":"victim"}`, `{"Name":"a","Name":"b"}`, `{"nAME":"x","flag":true}`,
		`{"AdvancedEventSelectors":[{"Field":"a","FIELD":"b","Field":"c"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in sampleInput
		doc, err := DecodeJSON11(body, &in)
		if err != nil && !IsCode(err, "SerializationException") {
			t.Fatalf("DecodeJSON11(%q) = %v, want SerializationException or nil", body, err)
		}
		if err != nil {
			return
		}
		if !json.Valid(bytes.TrimSpace(body)) && len(bytes.TrimSpace(body)) > 0 {
			t.Fatalf("DecodeJSON11 accepted invalid JSON %q", body)
		}
		// The canonical document is itself canonical and decodes to the
		// same input: nothing in it is dropped, renamed or overridden.
		again, err := CanonicalJSON11(doc, reflect.TypeFor[sampleInput]())
		if err != nil || !bytes.Equal(again, doc) {
			t.Fatalf("canonical document %s of %q is not a fixed point: %s, %v", doc, body, again, err)
		}
		var plain sampleInput
		if err := json.Unmarshal(doc, &plain); err != nil {
			t.Fatalf("canonical document %s does not decode: %v", doc, err)
		}
		if a, b := mustJSON(t, in), mustJSON(t, plain); a != b {
			t.Fatalf("body %q decoded to %s but its canonical document %s to %s", body, a, doc, b)
		}
	})
}
