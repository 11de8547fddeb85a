package event

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func decodeAny(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

// TestRoundTripDatasets: every dataset record parses, and Raw decodes to
// exactly the same value as the input (fields, values, types, number
// literals via UseNumber).
func TestRoundTripDatasets(t *testing.T) {
	names, recs := datasetRecords(t)
	if len(recs) != 347 {
		t.Errorf("got %d dataset records, want 347 (310 Stratus + 37 flaws2)", len(recs))
	}
	for i, raw := range recs {
		r, err := Parse(raw)
		if err != nil {
			t.Errorf("%s: Parse: %v", names[i], err)
			continue
		}
		if !reflect.DeepEqual(decodeAny(t, raw), decodeAny(t, r.Raw)) {
			t.Errorf("%s: Raw is not JSON-equivalent to the input", names[i])
		}
		var want bytes.Buffer
		if err := json.Compact(&want, raw); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want.Bytes(), r.Raw) {
			t.Errorf("%s: Raw differs from json.Compact of the input", names[i])
		}
	}
}
