package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `{"eventTime":"2024-07-31T13:06:24Z","eventName":"StopLogging"}`

func mustParse(t *testing.T, s string) *Record {
	t.Helper()
	r, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%.80s): %v", s, err)
	}
	return r
}

func TestParseRejects(t *testing.T) {
	deep := `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`
	cases := []struct {
		name, in, field, reason string
	}{
		{"array", `[` + minimal + `]`, "", "not a JSON object (an array)"},
		{"string", `"x"`, "", "not a JSON object (a string)"},
		{"null", `null`, "", "not a JSON object (null)"},
		{"empty", ``, "", "empty input"},
		{"truncated", `{"eventName":"A"`, "", "unexpected end"},
		{"trailing data", minimal + `x`, "", "after the top-level object"},
		{"two objects", minimal + minimal, "", "after the top-level object"},
		{"trailing comma", `{"eventName":"A",}`, "", "expected string key"},
		{"control char", "{\"eventName\":\"A\x01\"}", "", "control character"},
		{"bad escape", `{"eventName":"\x"}`, "", "invalid escape"},
		{"bad unicode escape", `{"eventName":"\u12G4"}`, "", `invalid \u escape`},
		{"leading zero", `{"n":01}`, "", "expected ',' or '}'"},
		{"bare minus", `{"n":-}`, "", "invalid number"},
		{"no fraction digits", `{"n":1.}`, "", "no digits after '.'"},
		{"no exponent digits", `{"n":1e}`, "", "no digits in exponent"},
		{"bad literal", `{"readOnly":tru}`, "", "expected true"},
		{"single quotes", `{'eventName':'A'}`, "", "expected string key"},
		{"too deep", deep, "", "nesting deeper than"},
		{"no eventTime", `{"eventName":"A"}`, "eventTime", "missing"},
		{"no eventName", `{"eventTime":"2024-01-01T00:00:00Z"}`, "eventName", "missing"},
		{"eventName number", `{"eventTime":"2024-01-01T00:00:00Z","eventName":5}`, "eventName", "not a string: 5"},
		{"eventName null", `{"eventTime":"2024-01-01T00:00:00Z","eventName":null}`, "eventName", "not a string"},
		{"eventName empty", `{"eventTime":"2024-01-01T00:00:00Z","eventName":""}`, "eventName", "empty"},
		{"eventTime number", `{"eventTime":1722431184,"eventName":"A"}`, "eventTime", "not a string"},
		{"eventTime garbage", `{"eventTime":"yesterday","eventName":"A"}`, "eventTime", `not an RFC 3339 time "yesterday"`},
		{"eventTime with space", `{"eventTime":"2024-01-01 00:00:00Z","eventName":"A"}`, "eventTime", "RFC 3339"},
		{"eventTime without zone", `{"eventTime":"2024-01-01T00:00:00","eventName":"A"}`, "eventTime", "RFC 3339"},
		{"eventTime impossible date", `{"eventTime":"2024-02-30T00:00:00Z","eventName":"A"}`, "eventTime", "RFC 3339"},
		{"insight without eventName", `{"eventTime":"2024-01-01T00:00:00Z","eventType":"AwsCloudTrailInsight","insightDetails":{}}`, "eventName", "missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.in))
			if r != nil {
				t.Errorf("got a Record with an error: %+v", r)
			}
			var ire *InvalidRecordError
			if !errors.As(err, &ire) {
				t.Fatalf("err = %v (%T), want *InvalidRecordError", err, err)
			}
			if ire.Field != tc.field || !strings.Contains(ire.Reason, tc.reason) {
				t.Errorf("got Field %q Reason %q; want Field %q, Reason containing %q", ire.Field, ire.Reason, tc.field, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "invalid CloudTrail record: ") {
				t.Errorf("error text %q", err)
			}
		})
	}
}

func TestParseTimes(t *testing.T) {
	want := time.Date(2024, 7, 31, 13, 6, 24, 0, time.UTC)
	// An escaped character in eventTime is decoded before parsing.
	if r := mustParse(t, `{"eventName":"A","eventTime":"2024-07-31T13:06:24\u005a"}`); !r.EventTime.Equal(want) {
		t.Errorf("escaped Z: %v", r.EventTime)
	}
	for in, w := range map[string]time.Time{
		"2024-07-31T13:06:24Z":             want,
		"2024-07-31T13:06:24+00:00":        want,
		"2024-07-31T15:06:24+02:00":        want,
		"2024-07-31T13:06:24.123Z":         want.Add(123 * time.Millisecond),
		"2024-07-31T13:06:24.123456789Z":   want.Add(123456789),
		"2024-07-31T08:06:24.5-05:00":      want.Add(500 * time.Millisecond),
		"2024-07-31T13:06:24.000000+00:00": want,
	} {
		r := mustParse(t, `{"eventName":"A","eventTime":"`+in+`"}`)
		if !r.EventTime.Equal(w) || r.EventTime.Location() != time.UTC {
			t.Errorf("%s: EventTime %v, want %v in UTC", in, r.EventTime, w)
		}
	}
}

func TestParseTolerance(t *testing.T) {
	t.Run("booleans", func(t *testing.T) {
		for in, want := range map[string]OptBool{
			`true`: True, `false`: False, `"true"`: True, `"false"`: False, `"TRUE"`: True, `"False"`: False,
			`1`: Unknown, `null`: Unknown, `"yes"`: Unknown, `{}`: Unknown,
		} {
			r := mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","readOnly":`+in+`,"managementEvent":`+in+`}`)
			if r.ReadOnly != want || r.ManagementEvent != want {
				t.Errorf("readOnly %s: got %v/%v want %v", in, r.ReadOnly, r.ManagementEvent, want)
			}
		}
		r := mustParse(t, minimal)
		if r.ReadOnly != Unknown || r.ReadOnly.String() != "" || r.AttributeValues(AttrReadOnly) != nil {
			t.Errorf("missing readOnly must stay unknown: %v", r.ReadOnly)
		}
	})
	t.Run("unexpected types keep raw", func(t *testing.T) {
		in := `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","eventSource":5,"userIdentity":"me","resources":{"a":1},"requestParameters":"x","awsRegion":["us-east-1"]}`
		r := mustParse(t, in)
		if r.EventSource != "" || r.AWSRegion != "" || r.Username != "" || r.RecordResources != nil || r.Resources != nil {
			t.Errorf("view should fall back to zero values: %+v", r)
		}
		if string(r.Raw) != in {
			t.Errorf("Raw changed:\n%s\n%s", r.Raw, in)
		}
		if string(r.Field("eventSource")) != "5" || r.Field("nope") != nil {
			t.Errorf("Field: %s", r.Field("eventSource"))
		}
	})
	t.Run("duplicate keys: raw keeps both, view takes the last", func(t *testing.T) {
		in := `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","eventName":"B","userIdentity":{"type":"IAMUser","userName":"x","userName":"y"}}`
		r := mustParse(t, in)
		if r.EventName != "B" || r.Username != "y" || string(r.Raw) != in || string(r.Field("eventName")) != `"B"` {
			t.Errorf("EventName %q Username %q Raw %s", r.EventName, r.Username, r.Raw)
		}
		var m map[string]any
		if err := json.Unmarshal(r.Raw, &m); err != nil || m["eventName"] != "B" {
			t.Errorf("encoding/json must agree (last wins): %v %v", m["eventName"], err)
		}
	})
	t.Run("unicode escapes", func(t *testing.T) {
		in := `{"event\u0054ime":"2024-01-01T00:00:00Z","eventName":"\u0041ssume\u0052ole","userIdentity":{"type":"IAMUser","userName":"\ud83d\ude00 \u00e9\\\"\/\b\f\n\r\t"},"userAgent":"\ud800x","errorCode":"é直"}`
		r := mustParse(t, in)
		if r.EventName != "AssumeRole" || r.Username != "😀 é\\\"/\b\f\n\r\t" || r.UserAgent != "\uFFFDx" || r.ErrorCode != "é直" {
			t.Errorf("EventName %q Username %q UserAgent %q ErrorCode %q", r.EventName, r.Username, r.UserAgent, r.ErrorCode)
		}
		if string(r.Raw) != in {
			t.Errorf("escapes must be kept as written")
		}
	})
	t.Run("invalid UTF-8 passes through", func(t *testing.T) {
		in := "{\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventName\":\"A\",\"userAgent\":\"a\xffb\"}"
		r := mustParse(t, in)
		if string(r.Raw) != in || r.UserAgent != "a\xffb" {
			t.Errorf("Raw %q UserAgent %q", r.Raw, r.UserAgent)
		}
	})
	t.Run("number literals", func(t *testing.T) {
		in := `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","additionalEventData":{"bytesTransferredIn":0.0,"bytesTransferredOut":500.0,"big":12345678901234567890123,"neg":-0,"exp":1E+400,"e":2.5e-3}}`
		r := mustParse(t, in)
		if string(r.Raw) != in {
			t.Errorf("literals changed:\n%s\n%s", r.Raw, in)
		}
	})
	t.Run("requestParameters null, object, huge and deep", func(t *testing.T) {
		for _, rp := range []string{
			`null`, `{}`, `{"a":{"b":[1,2,{"c":null}]}}`,
			`{"policy":"` + strings.Repeat(`%7B%22Version%22`, 1<<14) + `"}`,
			`{"deep":` + strings.Repeat(`{"k":[`, 2000) + `1` + strings.Repeat(`]}`, 2000) + `}`,
		} {
			in := `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","requestParameters":` + rp + `}`
			r := mustParse(t, in)
			if string(r.Raw) != in || string(r.Field("requestParameters")) != rp {
				t.Errorf("requestParameters %.40s changed", rp)
			}
		}
	})
	t.Run("whitespace is dropped, nothing else", func(t *testing.T) {
		in := " {\n \"eventTime\" : \"2024-01-01T00:00:00Z\" ,\r\n\t\"eventName\":\"A B\", \"x\" : [ 1 , { } , [ ] , \" \" ] } \n"
		r := mustParse(t, in)
		if want := `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A B","x":[1,{},[]," "]}`; string(r.Raw) != want {
			t.Errorf("Raw %s want %s", r.Raw, want)
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, []byte(in))
		if buf.String() != string(r.Canonical()) {
			t.Errorf("Canonical differs from json.Compact")
		}
	})
	t.Run("insights record", func(t *testing.T) {
		in := `{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","awsRegion":"us-east-1","eventID":"e1","eventType":"AwsCloudTrailInsight","recipientAccountId":"123456789012","sharedEventID":"s1","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiCallRateInsight","insightContext":{"statistics":{"baseline":{"average":0.0983},"insight":{"average":30.0}}}},"eventCategory":"Insight"}`
		r := mustParse(t, in)
		if r.EventName != "RunInstances" || r.EventSource != "ec2.amazonaws.com" || r.Username != "" || r.EventCategory != "Insight" {
			t.Errorf("insight view: %+v", r)
		}
	})
	t.Run("does not retain the input", func(t *testing.T) {
		in := []byte(minimal)
		r, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		for i := range in {
			in[i] = 'x'
		}
		if string(r.Raw) != minimal {
			t.Errorf("Raw aliases the input")
		}
	})
}

// TestEventVersions synthesises a record of every eventVersion from 1.0 to
// 1.11 from a real 1.10 Stratus record, keeping only the fields that version
// had (reference §3.1 "Since" column), and checks each parses and round-trips.
func TestEventVersions(t *testing.T) {
	base := findRecord(t, "cloudtrail-stop", "StopLogging")
	since := map[string]int{ // top-level field -> minor version it appeared in
		"requestID": 1, "eventID": 1, "readOnly": 1, "resources": 1, "apiVersion": 1,
		"eventType": 2, "recipientAccountId": 2, "sharedEventID": 3, "vpcEndpointId": 4,
		"serviceEventDetails": 5, "managementEvent": 6, "eventCategory": 7,
		"tlsDetails": 8, "sessionCredentialFromConsole": 8, "vpcEndpointAccountId": 9, "eventContext": 11,
	}
	versions := []string{"1.0", "1.01", "1.02", "1.03", "1.04", "1.05", "1.06", "1.07", "1.08", "1.09", "1.10", "1.11"}
	for i, v := range versions {
		t.Run(v, func(t *testing.T) {
			var m map[string]any
			d := json.NewDecoder(bytes.NewReader(base.Raw))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			for f, minor := range since {
				if minor > i {
					delete(m, f)
				}
			}
			m["eventVersion"] = v
			if i >= 11 {
				m["eventContext"] = map[string]any{"requestContext": map[string]any{"aws:SourceVpc": "vpc-1"}}
			}
			if i >= 8 {
				m["sessionCredentialFromConsole"] = "true"
			}
			in, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(decodeAny(t, in), decodeAny(t, r.Raw)) {
				t.Errorf("round trip differs")
			}
			if r.EventVersion != v || !r.VersionAtLeast(1, i) || r.VersionAtLeast(1, i+1) || r.VersionAtLeast(2, 0) {
				t.Errorf("version %q: VersionAtLeast wrong", r.EventVersion)
			}
			if (i == 0) != (r.EventID == "") || (i == 0) != (r.ReadOnly == Unknown) || (i < 6) != (r.ManagementEvent == Unknown) {
				t.Errorf("optional fields: EventID %q ReadOnly %v ManagementEvent %v", r.EventID, r.ReadOnly, r.ManagementEvent)
			}
			if r.EventName != "StopLogging" || r.Username != "christophe" || len(r.Resources) != 1 {
				t.Errorf("view: %q %q %v", r.EventName, r.Username, r.Resources)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for in, want := range map[string][3]int{"1.0": {1, 0, 1}, "1.01": {1, 1, 1}, "1.09": {1, 9, 1}, "1.10": {1, 10, 1}, "1.11": {1, 11, 1}, "2.0": {2, 0, 1},
		"": {0, 0, 0}, "1": {0, 0, 0}, "1.x": {0, 0, 0}, "1.-1": {0, 0, 0}, "a.1": {0, 0, 0}} {
		ma, mi, ok := Version(in)
		ok1 := 0
		if ok {
			ok1 = 1
		}
		if [3]int{ma, mi, ok1} != want {
			t.Errorf("Version(%q) = %d %d %v, want %v", in, ma, mi, ok, want)
		}
	}
	_, a, _ := Version("1.10")
	_, b, _ := Version("1.09")
	if a <= b {
		t.Error("1.10 must be newer than 1.09")
	}
}

// TestPlainStringBytes compares the eight-bytes-at-a-time scan with the
// byte loop it replaces, for every special byte at every position.
func TestPlainStringBytes(t *testing.T) {
	slow := func(b []byte) int {
		for i, c := range b {
			if c == '"' || c == '\\' || c < 0x20 {
				return i
			}
		}
		return len(b)
	}
	for n := 0; n <= 20; n++ {
		for pos := 0; pos <= n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("aé\xff~", n)[:n])
				if pos < n {
					b[pos] = byte(c)
				}
				if got, want := PlainRun(b, false), slow(b); got != want {
					t.Fatalf("%q: got %d, want %d", b, got, want)
				}
			}
		}
	}
}
