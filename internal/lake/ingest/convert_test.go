package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/golden"
	"github.com/cairn-audit/cairn/internal/lake"
)

const testChannelARN = "arn:aws:cloudtrail:us-east-1:123456789012:channel/01234567-89ab-cdef-0123-456789abcdef"

// auditRecord builds a channel event's journal entry exactly as
// PutAuditEvents does.
func auditRecord(t testing.TB, i int, channelARN string, eventTime time.Time) []byte {
	t.Helper()
	data := fmt.Sprintf(`{"version":"0.01","userIdentity":{"type":"CustomUser","principalId":"alice","details":{"team":"payments","level":3}},`+
		`"userAgent":"app/1.0","eventSource":"payments.example.com","eventName":"Refund","eventTime":%q,"UID":"uid-%d",`+
		`"requestParameters":{"orderId":"o-%d","amount":12.5,"items":[1,2]},"responseElements":{"ok":true},`+
		`"sourceIPAddress":"192.0.2.7","recipientAccountId":"123456789012","additionalEventData":{"note":"tab\tbed"}}`,
		eventTime.UTC().Format(time.RFC3339), i, i)
	rec, eerr := channel.BuildRecord([]byte(data), nil, &channel.Envelope{
		EventID:       fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i),
		Region:        "us-east-1",
		AccountID:     "123456789012",
		ChannelARN:    channelARN,
		IngestionTime: eventTime.Add(time.Second),
	})
	if eerr != nil {
		t.Fatalf("building a channel record: %v", eerr)
	}
	return rec
}

func readJSONL(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func rowOf(raw []byte, a *arena) (Row, error) {
	src := newSource(raw, a)
	h, ok := readHeader(src)
	if !ok {
		return Row{}, errNotRecord
	}
	return makeRow(src, &h)
}

func auditRowOf(raw []byte, a *arena) (AuditRow, error) {
	src := newSource(raw, a)
	h, ok := readHeader(src)
	if !ok {
		return AuditRow{}, errNotRecord
	}
	return makeAuditRow(src, &h)
}

// TestGoldenRows pins the rows of real records (Stratus Red Team and
// flaws2.cloud, eventVersions 1.04 to 1.08) and of a PutAuditEvents
// event, as they read back from the Parquet files written for them.
func TestGoldenRows(t *testing.T) {
	var a arena
	var rows []Row
	for _, raw := range readJSONL(t, filepath.Join("testdata", "records.jsonl")) {
		r, err := event.Parse(raw) // the journal holds canonical records
		if err != nil {
			t.Fatal(err)
		}
		row, err := rowOf(r.Raw, &a)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	raw := auditRecord(t, 1, testChannelARN, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	audit, err := auditRowOf(raw, &a)
	if err != nil {
		t.Fatal(err)
	}

	data, err := encodeBytes(rows, sortOrder(rows), 1, uint64(len(rows)))
	if err != nil {
		t.Fatal(err)
	}
	back, err := readRows[Row](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	auditData, err := encodeBytes([]AuditRow{audit}, []int32{0}, 9, 9)
	if err != nil {
		t.Fatal(err)
	}
	auditBack, err := readRows[AuditRow](bytes.NewReader(auditData), int64(len(auditData)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range back {
		// eventjson is the record as stored; pinned by its checksum.
		if Checksum([]byte(back[i].EventJSON)) != back[i].EventJSONChecksum {
			t.Errorf("row %d: eventjsonchecksum does not match eventjson", i)
		}
		back[i].EventJSON = fmt.Sprintf("<%d bytes>", len(back[i].EventJSON))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"events": back, "audit": auditBack}); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "rows.golden"), out.Bytes())

	// The files carry what readers need: zstd, a bloom filter on eventid,
	// the journal range.
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Lookup(metaFirst); v != "1" {
		t.Errorf("%s = %q", metaFirst, v)
	}
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			path := strings.Join(c.MetaData.PathInSchema, ".")
			if c.MetaData.Codec != format.Zstd {
				t.Errorf("column %s compressed with %v", path, c.MetaData.Codec)
			}
			if path == "eventid" && c.MetaData.BloomFilterOffset <= 0 {
				t.Errorf("no bloom filter on eventid")
			}
		}
	}
}

// TestChecksum: eventjsonchecksum is base64(SHA-256(eventjson)), the
// eventDataChecksum convention (openssl dgst -binary -sha256 | base64).
func TestChecksum(t *testing.T) {
	// printf %s '{"a":1}' | openssl dgst -binary -sha256 | base64
	if got, want := Checksum([]byte(`{"a":1}`)), "AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX+GI="; got != want {
		t.Errorf("Checksum = %s, want %s", got, want)
	}
}

// TestColumnsMatchFiles checks the DuckDB column lists the query engine
// gives empty stores against the Parquet schema the files are written
// with, mapped the way DuckDB reads Parquet (strings VARCHAR, non-UTC
// timestamps TIMESTAMP, LIST T[], MAP MAP(K, V), groups STRUCT).
func TestColumnsMatchFiles(t *testing.T) {
	for _, tc := range []struct {
		category string
		schema   *parquet.Schema
	}{
		{lake.CategoryManagement, parquet.SchemaOf(Row{})},
		{lake.CategoryActivityAuditLog, parquet.SchemaOf(AuditRow{})},
	} {
		var cols []string
		for _, f := range tc.schema.Fields() {
			cols = append(cols, f.Name()+" "+duckType(t, f))
		}
		if got, want := Columns(tc.category), strings.Join(cols, ", "); got != want {
			t.Errorf("Columns(%s) =\n%s\nthe files have\n%s", tc.category, got, want)
		}
		names := ColumnNames(tc.category)
		if len(names) != len(tc.schema.Fields()) || names[0] != "eventversion" {
			t.Errorf("ColumnNames(%s) = %v", tc.category, names)
		}
	}
}

func duckType(t *testing.T, n parquet.Node) string {
	var lv format.LogicalTypeValue
	if lt := n.Type().LogicalType(); lt != nil {
		lv = lt.Value
	}
	switch v := lv.(type) {
	case *format.ListType:
		return duckType(t, n.Fields()[0].Fields()[0]) + "[]"
	case *format.MapType:
		kv := n.Fields()[0].Fields()
		return "MAP(" + duckType(t, kv[0]) + ", " + duckType(t, kv[1]) + ")"
	case *format.TimestampType:
		if v.IsAdjustedToUTC {
			t.Errorf("%s is adjusted to UTC: DuckDB would read TIMESTAMP WITH TIME ZONE", n.Type())
		}
		return "TIMESTAMP"
	case *format.StringType:
		return "VARCHAR"
	}
	if !n.Leaf() {
		var parts []string
		for _, f := range n.Fields() {
			parts = append(parts, f.Name()+" "+duckType(t, f))
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")"
	}
	if n.Type().Kind() == parquet.Boolean {
		return "BOOLEAN"
	}
	t.Errorf("unexpected column type %v", n.Type())
	return "?"
}

// FuzzRow: any record the journal can hold converts without panicking,
// and its row survives a Parquet round trip with its eventid, eventtime
// and eventjson intact (the columns queries and exactly-once checks rely
// on).
func FuzzRow(f *testing.F) {
	for _, raw := range readJSONL(f, filepath.Join("testdata", "records.jsonl")) {
		f.Add(raw)
	}
	f.Add(auditRecord(f, 2, testChannelARN, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := event.Parse(raw)
		if err != nil {
			return
		}
		var a arena
		// The fast header read agrees with the parser.
		src := newSource(r.Raw, &a)
		h, ok := readHeader(src)
		p, _ := parseHeader(r.Raw)
		if !ok || h.eventID != p.eventID || !h.eventTime.Equal(p.eventTime) || h.category != p.category || h.region != p.region ||
			h.ev.EventName != p.ev.EventName || h.ev.EventSource != p.ev.EventSource || h.ev.ReadOnly != p.ev.ReadOnly ||
			h.ev.UserIdentityARN != p.ev.UserIdentityARN || h.ev.EventType != p.ev.EventType || h.ev.ErrorCode != p.ev.ErrorCode {
			t.Fatalf("readHeader = %+v, %v; event.Parse gives %+v", h, ok, p)
		}
		row, err := rowOf(r.Raw, &a)
		if err == nil {
			data, err := encodeBytes([]Row{row}, []int32{0}, 1, 1)
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			back, err := readRows[Row](bytes.NewReader(data), int64(len(data)))
			if err != nil || len(back) != 1 {
				t.Fatalf("reading back: %v (%d rows)", err, len(back))
			}
			if back[0].EventID != r.EventID || back[0].EventJSON != string(r.Raw) || !back[0].EventTime.Equal(r.EventTime.Truncate(time.Microsecond)) {
				t.Fatalf("round trip changed the row: %q %q %v", back[0].EventID, back[0].EventTime, back[0].EventJSON == string(r.Raw))
			}
		}
		if ar, err := auditRowOf(r.Raw, &a); err == nil {
			if _, err := encodeBytes([]AuditRow{ar}, []int32{0}, 1, 1); err != nil {
				t.Fatalf("encoding the audit row: %v", err)
			}
		}
	})
}
