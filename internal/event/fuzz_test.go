package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/cairn-audit/cairn/internal/datasets"
	"os"
	"reflect"
	"testing"
)

// FuzzParse checks Parse against encoding/json: it accepts exactly the
// valid JSON objects that have a usable eventName and eventTime, Raw is
// json.Compact of the input and decodes to the same value, and parsing Raw
// again is a fixed point. Seeds: testdata/fuzz/FuzzParse (run as tests).
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	// Real records seed the corpus straight from the datasets, one per
	// eventName, rather than as copies in testdata.
	if _, ok := datasets.Find(); !ok {
		f.Log("shared/datasets not found: fuzzing from the committed seeds only")
	} else {
		addDatasetRecordSeeds(f)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		valid := json.Valid(data)
		if err != nil {
			var ire *InvalidRecordError
			if !errors.As(err, &ire) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			// A valid JSON object may only be rejected for its fields.
			isObject := bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
			if valid && isObject && ire.Field == "" {
				t.Fatalf("valid JSON object rejected as a whole: %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("Parse accepted invalid JSON %q", data)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want.Bytes(), r.Raw) {
			t.Fatalf("Raw %q differs from json.Compact %q", r.Raw, want.Bytes())
		}
		if !reflect.DeepEqual(decodeAny(t, data), decodeAny(t, r.Raw)) {
			t.Fatal("Raw not JSON-equivalent to the input")
		}
		r2, err := Parse(r.Raw)
		if err != nil {
			t.Fatalf("Raw does not parse again: %v", err)
		}
		if !bytes.Equal(r2.Raw, r.Raw) || r2.EventName != r.EventName || !r2.EventTime.Equal(r.EventTime) ||
			r2.Username != r.Username || !reflect.DeepEqual(r2.Resources, r.Resources) {
			t.Fatal("Parse(Raw) is not a fixed point")
		}
		for _, k := range AttributeKeys() {
			for _, v := range r.AttributeValues(k) {
				if v == "" || !r.MatchAttribute(k, v) {
					t.Fatalf("%s value %q does not match itself", k, v)
				}
			}
		}
		_ = r.LookupEvent()
	})
}

// FuzzReadRecords checks the reader never panics or loops, never hands out
// more bytes than it was given, and that every record it yields that Parse
// accepts survives a round trip through a delivery file. Seeds:
// testdata/fuzz/FuzzReadRecords (run as tests).
func FuzzReadRecords(f *testing.F) {
	f.Add([]byte(`{"Records":[` + recA + `,` + recB + `]}`))
	if _, ok := datasets.Find(); ok {
		for _, file := range append(stratusFiles(f)[:3], flaws2Files(f)[:2]...) {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs [][]byte
		total := 0
		err := ReadRecords(bytes.NewReader(data), func(raw []byte) error {
			total += len(raw)
			recs = append(recs, append([]byte(nil), raw...))
			return nil
		})
		if len(data) > 0 && data[0] != 0x1f && total > len(data) {
			t.Fatalf("yielded %d bytes from %d", total, len(data))
		}
		_ = err
		var parsed [][]byte
		for _, raw := range recs {
			if r, err := Parse(raw); err == nil {
				parsed = append(parsed, r.Raw)
			}
		}
		env := []byte(`{"Records":[` + string(bytes.Join(parsed, []byte(","))) + `]}`)
		var again [][]byte
		if err := ReadRecords(bytes.NewReader(env), func(raw []byte) error {
			again = append(again, append([]byte(nil), raw...))
			return nil
		}); err != nil {
			t.Fatalf("re-reading an envelope of parsed records: %v", err)
		}
		if len(again) != len(parsed) {
			t.Fatalf("envelope round trip: %d records, want %d", len(again), len(parsed))
		}
		for i := range again {
			if !bytes.Equal(again[i], parsed[i]) {
				t.Fatalf("record %d changed in the envelope round trip", i)
			}
		}
	})
}

// addDatasetRecordSeeds adds one real record per eventName to the corpus.
func addDatasetRecordSeeds(f *testing.F) {
	names, recs := datasetRecords(f)
	seen := map[string]bool{}
	for i, raw := range recs {
		if r, err := Parse(raw); err == nil && !seen[r.EventName] {
			seen[r.EventName] = true
			f.Add([]byte(raw))
		} else if err != nil {
			f.Fatalf("%s: %v", names[i], err)
		}
	}
}
