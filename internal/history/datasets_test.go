package history

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/datasets"
	"github.com/cairn-audit/cairn/internal/event"
)

// datasetsDir is the shared data sets' folder; under CI its absence
// fails the test (datasets.Dir).
func datasetsDir(t testing.TB) string {
	t.Helper()
	return datasets.Dir(t)
}

// datasetRecords reads every record of the Stratus arrays and the flaws2
// delivery files with the event package's reader, as the importers do.
func datasetRecords(t testing.TB) [][]byte {
	t.Helper()
	root := datasetsDir(t)
	var files []string
	stratus, _ := filepath.Glob(filepath.Join(root, "stratus-red-team-detonation-logs", "*.json"))
	files = append(files, stratus...)
	_ = filepath.WalkDir(filepath.Join(root, "flaws2-cloud"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json.gz") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	if len(stratus) == 0 || len(files) == len(stratus) {
		t.Fatalf("data sets incomplete under %s: %d files", root, len(files))
	}
	var recs [][]byte
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		err = event.ReadRecords(fh, func(raw []byte) error {
			recs = append(recs, bytes.Clone(raw))
			return nil
		})
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return recs
}

func decodeAny(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %.80s: %v", b, err)
	}
	return v
}

// TestDatasetsRoundTrip ingests the real records through the journal and
// finds each one by EventId in its own region, with a CloudTrailEvent equal
// to the original record. Without IncludeDataEvents, the data events (the
// flaws2 S3 object reads and Lambda invocations) are not in the history.
func TestDatasetsRoundTrip(t *testing.T) {
	recs := datasetRecords(t)
	if len(recs) != 347 {
		t.Fatalf("read %d records, the data sets hold 347", len(recs))
	}
	// The records are from 2018 and 2024: keep them all searchable.
	retention := time.Since(time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)) + 365*24*time.Hour
	for _, include := range []bool{true, false} {
		name := "management_only"
		if include {
			name = "with_data_events"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Options{IncludeDataEvents: include, Retention: retention, Now: time.Now})
			e.append(recs...)
			found, data := 0, 0
			for _, raw := range recs {
				r := mustParse(t, raw)
				isData := classify(r) == classData
				if isData {
					data++
				}
				p := e.lookup(Query{Region: r.AWSRegion, Attributes: []Attribute{{event.AttrEventID, r.EventID}}})
				if isData && !include {
					if len(p.Events) != 0 {
						t.Errorf("data event %s (%s %s) is in the history", r.EventID, r.EventSource, r.EventName)
					}
					continue
				}
				if len(p.Events) != 1 {
					t.Errorf("event %s (%s %s in %s): %d results", r.EventID, r.EventSource, r.EventName, r.AWSRegion, len(p.Events))
					continue
				}
				found++
				ev := p.Events[0]
				if !reflect.DeepEqual(decodeAny(t, []byte(ev.CloudTrailEvent)), decodeAny(t, raw)) {
					t.Errorf("event %s: CloudTrailEvent differs from the original record", r.EventID)
				}
				if ev.EventName != r.EventName || ev.EventSource != r.EventSource || !ev.EventTime.Equal(r.EventTime) {
					t.Errorf("event %s: view %+v", r.EventID, ev)
				}
				// Every other attribute of the record finds it too.
				for _, key := range event.AttributeKeys() {
					for _, v := range r.AttributeValues(key) {
						q := Query{Region: r.AWSRegion, Attributes: []Attribute{{key, v}}, StartTime: r.EventTime, EndTime: r.EventTime}
						if !containsID(e.lookupAll(q), r.EventID) {
							t.Errorf("event %s not found by %s=%q", r.EventID, key, v)
						}
					}
				}
			}
			// 23 flaws2 S3 object reads plus 2 Lambda invocations.
			if data != 25 {
				t.Errorf("%d records classified as data events, want 25", data)
			}
			if want := len(recs) - data; include {
				if found != len(recs) {
					t.Errorf("found %d of %d records", found, len(recs))
				}
			} else if found != want {
				t.Errorf("found %d records, want the %d management events", found, want)
			}
		})
	}
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
