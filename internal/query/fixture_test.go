package query

// The fixture store: real CloudTrail records from shared/datasets written
// to Parquet in CloudTrail Lake's schema. Everything about the fixture's
// schema and writing is in this file, so that it can switch to the
// ingestion package's writer when that lands.

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/cairn-audit/cairn/internal/datasets"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/testenv"
)

// lakeColumns is CloudTrail Lake's table for CloudTrail events, as the
// fixture writes it (and as an empty store's view declares it).
var lakeColumns = []Column{
	{"eventversion", "VARCHAR"},
	{"useridentity", `STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, accesskeyid VARCHAR, username VARCHAR, sessioncontext STRUCT(attributes STRUCT(creationdate VARCHAR, mfaauthenticated VARCHAR), sessionissuer STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, username VARCHAR), webidfederationdata STRUCT(federatedprovider VARCHAR, attributes MAP(VARCHAR, VARCHAR)), sourceidentity VARCHAR, ec2roledelivery VARCHAR, ec2issuedinvpc VARCHAR), invokedby VARCHAR, identityprovider VARCHAR, credentialid VARCHAR)`},
	{"eventtime", "TIMESTAMP"},
	{"eventsource", "VARCHAR"},
	{"eventname", "VARCHAR"},
	{"awsregion", "VARCHAR"},
	{"sourceipaddress", "VARCHAR"},
	{"useragent", "VARCHAR"},
	{"errorcode", "VARCHAR"},
	{"errormessage", "VARCHAR"},
	{"requestparameters", "MAP(VARCHAR, VARCHAR)"},
	{"responseelements", "MAP(VARCHAR, VARCHAR)"},
	{"additionaleventdata", "MAP(VARCHAR, VARCHAR)"},
	{"requestid", "VARCHAR"},
	{"eventid", "VARCHAR"},
	{"readonly", "BOOLEAN"},
	{"resources", "STRUCT(accountid VARCHAR, type VARCHAR, arn VARCHAR, arnprefix VARCHAR)[]"},
	{"eventtype", "VARCHAR"},
	{"apiversion", "VARCHAR"},
	{"managementevent", "BOOLEAN"},
	{"recipientaccountid", "VARCHAR"},
	{"sharedeventid", "VARCHAR"},
	{"annotation", "VARCHAR"},
	{"vpcendpointid", "VARCHAR"},
	{"vpcendpointaccountid", "VARCHAR"},
	{"serviceeventdetails", "VARCHAR"},
	{"addendum", "VARCHAR"},
	{"edgedevicedetails", "VARCHAR"},
	{"insightdetails", "VARCHAR"},
	{"eventcategory", "VARCHAR"},
	{"tlsdetails", "STRUCT(tlsversion VARCHAR, ciphersuite VARCHAR, clientprovidedhostheader VARCHAR)"},
	{"sessioncredentialfromconsole", "VARCHAR"},
	{"eventjson", "VARCHAR"},
	{"eventjsonchecksum", "VARCHAR"},
}

// record is one CloudTrail record as parsed from its JSON.
type record = map[string]any

// loadDatasets reads every CloudTrail record of the shared data sets.
func loadDatasets(t testing.TB) []record {
	t.Helper()
	dir := datasets.Dir(t)
	var out []record
	stratus, _ := filepath.Glob(filepath.Join(dir, "stratus-red-team-detonation-logs", "*.json"))
	for _, f := range stratus {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var recs []record
		if err := json.Unmarshal(b, &recs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, recs...)
	}
	flaws, _ := filepath.Glob(filepath.Join(dir, "flaws2-cloud", "AWSLogs", "*", "CloudTrail", "*", "*", "*", "*", "*.json.gz"))
	for _, f := range flaws {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Records []record }
		if err := json.NewDecoder(zr).Decode(&doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
		out = append(out, doc.Records...)
	}
	if len(stratus) == 0 || len(flaws) == 0 {
		testenv.RequireOrSkip(t, "shared/datasets has no CloudTrail records under %s", dir)
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i]["eventID"]) < str(out[j]["eventID"]) })
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// lakeRow turns a record into the row Lake shows: lower-case names, maps
// of strings (nested values as JSON text), resources as a list of
// structs, the raw event in eventjson.
func lakeRow(r record) map[string]any {
	raw, _ := json.Marshal(r)
	sum := sha256.Sum256(raw)
	row := map[string]any{
		"eventjson":         string(raw),
		"eventjsonchecksum": hex.EncodeToString(sum[:16]),
	}
	lowerStruct := func(v any) any { return lowerKeys(v) }
	for k, v := range r {
		lk := strings.ToLower(k)
		switch lk {
		case "requestparameters", "responseelements", "additionaleventdata":
			row[lk] = stringMap(v)
		case "useridentity", "tlsdetails":
			row[lk] = lowerStruct(v)
		case "resources":
			var list []map[string]any
			for _, e := range asList(v) {
				m, _ := e.(map[string]any)
				list = append(list, map[string]any{"accountid": m["accountId"], "type": m["type"], "arn": m["ARN"], "arnprefix": m["ARNPrefix"]})
			}
			row[lk] = list
		case "serviceeventdetails", "addendum", "edgedevicedetails", "insightdetails":
			b, _ := json.Marshal(v)
			row[lk] = string(b)
		case "readonly", "managementevent":
			switch x := v.(type) {
			case bool:
				row[lk] = x
			case string:
				row[lk] = x == "true"
			}
		case "sessioncredentialfromconsole":
			row[lk] = fmt.Sprint(v)
		default:
			row[lk] = v
		}
	}
	return row
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// stringMap is a JSON object as map<string,string>: strings as they are,
// anything else as its JSON text.
func stringMap(v any) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = mapValue(e)
	}
	return out
}

func mapValue(e any) any {
	switch x := e.(type) {
	case nil:
		return nil
	case string:
		return x
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func lowerKeys(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		lk := strings.ToLower(k)
		if lk == "attributes" {
			if am, ok := e.(map[string]any); ok && am["creationDate"] == nil && am["mfaAuthenticated"] == nil {
				// webIdFederationData.attributes is a map.
				out[lk] = stringMap(am)
				continue
			}
		}
		out[lk] = lowerKeys(e)
	}
	return out
}

// writeStore writes records as a store's Parquet files under dir (several
// files, as a store has) and returns their paths. It runs in an ordinary,
// unsandboxed DuckDB: the writer is not under test.
func writeStore(t testing.TB, dir string, recs []record, perFile int) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cols := make([]string, len(lakeColumns))
	for i, c := range lakeColumns {
		cols[i] = fmt.Sprintf("%s: %s", sqlString(c.Name), sqlString(c.Type))
	}
	var files []string
	for start := 0; start < len(recs); start += perFile {
		end := min(start+perFile, len(recs))
		nd := filepath.Join(t.TempDir(), fmt.Sprintf("part-%04d.json", len(files)))
		f, err := os.Create(nd)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for _, r := range recs[start:end] {
			b, err := json.Marshal(lakeRow(r))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out := filepath.Join(dir, fmt.Sprintf("part-%04d.parquet", len(files)))
		q := fmt.Sprintf("COPY (SELECT * FROM read_json(%s, format = 'newline_delimited', columns = {%s}, timestampformat = '%%Y-%%m-%%dT%%H:%%M:%%SZ')) TO %s (FORMAT parquet, COMPRESSION zstd)",
			sqlString(nd), strings.Join(cols, ", "), sqlString(out))
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("write fixture parquet: %v", err)
		}
		files = append(files, out)
	}
	return files
}

// testCatalog is a Catalog over fixed stores.
type testCatalog struct {
	stores map[string]lake.Spec
	files  map[string][]string
}

func newTestCatalog() *testCatalog {
	return &testCatalog{stores: map[string]lake.Spec{}, files: map[string][]string{}}
}

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
)

func (c *testCatalog) add(id string, files []string, queryable bool) lake.Spec {
	s := lake.Spec{
		ID: id, ARN: fmt.Sprintf("arn:aws:cloudtrail:%s:%s:eventdatastore/%s", testRegion, testAccount, id),
		Region: testRegion, AccountID: testAccount, Status: lake.StatusEnabled,
		Category: lake.CategoryManagement, Queryable: queryable,
	}
	if !queryable {
		s.Status = lake.StatusPendingDeletion
	}
	c.stores[id] = s
	c.files[id] = files
	return s
}

func (c *testCatalog) Lookup(_ context.Context, region, account, ref string) (lake.Spec, bool, error) {
	for _, s := range c.stores {
		if s.Region == region && s.AccountID == account && (strings.EqualFold(ref, s.ID) || ref == s.ARN) {
			return s, true, nil
		}
	}
	return lake.Spec{}, false, nil
}

func (c *testCatalog) Files(_ context.Context, id string) ([]string, error) { return c.files[id], nil }

func (c *testCatalog) Columns(string) []Column { return lakeColumns }
