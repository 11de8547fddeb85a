package event

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

func readAll(t testing.TB, r io.Reader) ([][]byte, error) {
	t.Helper()
	var out [][]byte
	err := ReadRecords(r, func(raw []byte) error {
		out = append(out, append([]byte(nil), raw...))
		return nil
	})
	return out, err
}

// TestReaderDatasets reads every dataset file with ReadRecords (auto-detect:
// pretty-printed arrays, gzip delivery files) and checks it yields the same
// records, in order, as decoding the files with encoding/json.
func TestReaderDatasets(t *testing.T) {
	_, want := datasetRecords(t)
	var got [][]byte
	for _, f := range append(stratusFiles(t), flaws2Files(t)...) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := readAll(t, fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got = append(got, recs...)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadRecords found %d records, encoding/json %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(decodeAny(t, got[i]), decodeAny(t, want[i])) {
			t.Errorf("record %d differs", i)
		}
	}
}

const (
	recA = `{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventName":"A","n":[1,{"x":"]}\""}]}`
	recB = `{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:01Z","eventName":"B"}`
)

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReaderShapes(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want []string
	}{
		{"delivery file", []byte(`{"Records":[` + recA + `,` + recB + `]}`), []string{recA, recB}},
		{"delivery file, pretty, other members", []byte("{\n \"x\": {\"Records\": 1},\n \"Records\" : [\n  " + recA + " ,\n " + recB + "\n ],\n \"y\": [\"]\"]\n}\n"), []string{recA, recB}},
		{"empty delivery file", []byte(`{"Records":[]}`), nil},
		{"array", []byte(" [ " + recA + " , " + recB + " ] "), []string{recA, recB}},
		{"single object", []byte(recA), []string{recA}},
		{"JSON lines", []byte(recA + "\n" + recB + "\n"), []string{recA, recB}},
		{"JSON lines CRLF no final newline", []byte(recA + "\r\n" + recB), []string{recA, recB}},
		{"concatenated delivery files", []byte(`{"Records":[` + recA + `]}{"Records":[` + recB + `]}`), []string{recA, recB}},
		{"gzip delivery file", gz(t, `{"Records":[`+recA+`,`+recB+`]}`), []string{recA, recB}},
		{"multi-member gzip", append(gz(t, recA+"\n"), gz(t, recB+"\n")...), []string{recA, recB}},
		{"BOM", []byte("\xEF\xBB\xBF[" + recA + "]"), []string{recA}},
		{"object with Records not an array is a record", []byte(`{"Records":null,"eventName":"x"}`), []string{`{"Records":null,"eventName":"x"}`}},
		{"bad element passed through for Parse to reject", []byte(`[1,"s",` + recB + `]`), []string{"1", `"s"`, recB}},
		{"empty", nil, nil},
		{"whitespace only", []byte(" \n\t"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, bytes.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, g := range got {
				gs = append(gs, string(g))
			}
			if !reflect.DeepEqual(gs, tc.want) {
				t.Errorf("got  %q\nwant %q", gs, tc.want)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	cases := map[string][]byte{
		"not JSON":           []byte("hello"),
		"top-level number":   []byte("42"),
		"truncated array":    []byte("[" + recA + ","),
		"truncated envelope": []byte(`{"Records":[` + recA),
		"truncated record":   []byte(recA[:20]),
		"missing comma":      []byte("[" + recA + recB + "]"),
		"bad gzip":           append([]byte{0x1f, 0x8b}, "garbage"...),
		"truncated gzip":     gz(t, `{"Records":[`+recA+`]}`)[:40],
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := readAll(t, bytes.NewReader(in))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "CloudTrail records") {
				t.Errorf("error does not say what failed: %v", err)
			}
		})
	}
}

// TestReaderStreams proves records come out before the rest of the input is
// read: the source fails right after the first record.
func TestReaderStreams(t *testing.T) {
	boom := errors.New("source broke")
	src := io.MultiReader(strings.NewReader(`{"Records":[`+recA+`,`), &errReader{boom})
	rd := NewReader(src)
	raw, err := rd.Next()
	if err != nil || string(raw) != recA {
		t.Fatalf("first record: %q, %v", raw, err)
	}
	if _, err := rd.Next(); !errors.Is(err, boom) {
		t.Fatalf("second Next: %v, want the source error", err)
	}
	if _, err := rd.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next after an error must keep returning it, got %v", err)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

func TestReaderFnErrorStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := ReadRecords(strings.NewReader("["+recA+","+recB+"]"), func([]byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d calls", err, n)
	}
}

func TestReaderLargeRecordLimit(t *testing.T) {
	big := `{"eventName":"x","eventTime":"2024-01-01T00:00:00Z","pad":"` + strings.Repeat("a", MaxRecordSize) + `"}`
	if _, err := readAll(t, strings.NewReader("["+big+"]")); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}
