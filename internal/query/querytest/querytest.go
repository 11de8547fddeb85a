// Package querytest builds fixture event data stores for the query
// engine's tests: real CloudTrail Records from shared/datasets written to
// Parquet in CloudTrail Lake's schema. Everything about the fixture's
// schema and writing is in this package, so that it can switch to the
// ingestion package's writer when that lands.
package querytest

// The fixture store: real CloudTrail Records from shared/datasets written
// to Parquet in CloudTrail Lake's schema. Everything about the fixture's
// schema and writing is in this file, so that it can switch to the
// ingestion package's writer when that lands.

import (
	"bufio"
	"compress/gzip"
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
	"github.com/cairn-audit/cairn/internal/testenv"
)

// Columns is CloudTrail Lake's table for CloudTrail events, as the
// fixture writes it (and as an empty store's view declares it).
var Columns = [][2]string{
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

// Record is one CloudTrail Record as parsed from its JSON.
type Record = map[string]any

// LoadDatasets reads every CloudTrail Record of the shared data sets.
func LoadDatasets(t testing.TB) []Record {
	t.Helper()
	dir := datasets.Dir(t)
	var out []Record
	stratus, _ := filepath.Glob(filepath.Join(dir, "stratus-red-team-detonation-logs", "*.json"))
	for _, f := range stratus {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var recs []Record
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
		var doc struct{ Records []Record }
		if err := json.NewDecoder(zr).Decode(&doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
		out = append(out, doc.Records...)
	}
	if len(stratus) == 0 || len(flaws) == 0 {
		testenv.RequireOrSkip(t, "shared/datasets has no CloudTrail Records under %s", dir)
	}
	sort.Slice(out, func(i, j int) bool { return Str(out[i]["eventID"]) < Str(out[j]["eventID"]) })
	return out
}

func Str(v any) string {
	s, _ := v.(string)
	return s
}

// LakeRow turns a Record into the row Lake shows: lower-case names, maps
// of strings (nested values as JSON text), resources as a list of
// structs, the raw event in eventjson.
func LakeRow(r Record) map[string]any {
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
			for _, e := range AsList(v) {
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

func AsList(v any) []any {
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
		out[k] = MapValue(e)
	}
	return out
}

func MapValue(e any) any {
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

// WriteStore writes Records as a store's Parquet files under dir (several
// files, as a store has) and returns their paths. It runs in an ordinary,
// unsandboxed DuckDB: the writer is not under test.
func WriteStore(t testing.TB, dir string, recs []Record, perFile int) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cols := make([]string, len(Columns))
	for i, c := range Columns {
		cols[i] = fmt.Sprintf("%s: %s", sqlString(c[0]), sqlString(c[1]))
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
			b, err := json.Marshal(LakeRow(r))
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

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Generated are CloudTrail records made up for the published sample
// queries that no record of the data sets answers (a role assuming
// itself, a user added to an admin group, an instance launched with a
// given ID, a security group opened to the internet in the samples' time
// windows...). They follow the shapes of real records; their IDs start
// with "generated-" so that no one mistakes them for captured events.
func Generated() []Record {
	// The samples' own example names: role alice in 555555555555, a user
	// with key AKIAIOSFODNN7EXAMPLE from 192.0.2.76 in another account.
	const acct, aliceAcct = "111122223333", "555555555555"
	alice := "arn:aws:iam::" + aliceAcct + ":role/alice"
	aliceSession := map[string]any{
		"type": "AssumedRole", "principalId": "AROAEXAMPLEALICE:ci", "arn": "arn:aws:sts::" + aliceAcct + ":assumed-role/alice/ci",
		"accountId": aliceAcct, "accessKeyId": "ASIAEXAMPLEALICE",
		"sessionContext": map[string]any{
			"sessionIssuer": map[string]any{"type": "Role", "principalId": "AROAEXAMPLEALICE", "arn": alice, "accountId": aliceAcct, "userName": "alice"},
			"attributes":    map[string]any{"creationDate": "2023-01-02T10:00:00Z", "mfaAuthenticated": "false"},
		},
	}
	user := map[string]any{
		"type": "IAMUser", "principalId": "AIDAEXAMPLEUSER", "arn": "arn:aws:iam::" + acct + ":user/dev",
		"accountId": acct, "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "dev",
	}
	rec := func(id, t, source, name string, ident map[string]any, extra map[string]any) Record {
		r := Record{
			"eventVersion": "1.08", "eventID": "generated-" + id, "eventTime": t, "eventSource": source, "eventName": name,
			"awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.76", "userAgent": "aws-cli/2.15.0",
			"userIdentity": ident, "requestID": "generated-" + id, "readOnly": false, "eventType": "AwsApiCall",
			"managementEvent": true, "recipientAccountId": acct, "eventCategory": "Management",
			"tlsDetails": map[string]any{"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": source},
		}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	return []Record{
		rec("self-assume", "2023-01-02T10:05:00Z", "sts.amazonaws.com", "AssumeRole", aliceSession, map[string]any{
			"requestParameters": map[string]any{"roleArn": alice, "roleSessionName": "ci", "durationSeconds": 900},
			"resources":         []any{map[string]any{"accountId": aliceAcct, "type": "AWS::IAM::Role", "ARN": alice}},
		}),
		rec("alice-create-bucket", "2023-01-02T10:06:00Z", "s3.amazonaws.com", "CreateBucket", aliceSession, map[string]any{
			"requestParameters": map[string]any{"bucketName": "alice-artifacts", "Host": "alice-artifacts.s3.amazonaws.com"},
			"resources":         []any{map[string]any{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::alice-artifacts"}},
		}),
		rec("acl-get-object", "2023-01-02T10:07:00Z", "s3.amazonaws.com", "GetObject", aliceSession, map[string]any{
			"requestParameters":   map[string]any{"bucketName": "alice-artifacts", "key": "build.zip"},
			"additionalEventData": map[string]any{"aclRequired": "Yes", "bytesTransferredIn": 0},
			"eventCategory":       "Data", "managementEvent": false, "readOnly": true,
		}),
		rec("dev-assume-role", "2023-01-03T09:00:00Z", "sts.amazonaws.com", "AssumeRole", user, map[string]any{
			"requestParameters": map[string]any{"roleArn": alice, "roleSessionName": "dev"},
			"responseElements":  map[string]any{"assumedRoleUser": map[string]any{"arn": "arn:aws:sts::" + acct + ":assumed-role/alice/dev", "assumedRoleId": "AROAEXAMPLEALICE:dev"}},
			"readOnly":          true,
		}),
		rec("run-instances", "2023-01-03T09:10:00Z", "ec2.amazonaws.com", "RunInstances", user, map[string]any{
			"requestParameters": map[string]any{"instanceType": "t3.micro"},
			"responseElements":  map[string]any{"instancesSet": map[string]any{"items": []any{map[string]any{"instanceId": "i-b188560f"}}}},
		}),
		rec("cross-account", "2022-05-15T07:00:00Z", "s3.amazonaws.com", "GetBucketAcl", aliceSession, map[string]any{
			"requestParameters": map[string]any{"bucketName": "shared-logs", "acl": ""},
			"readOnly":          true,
		}),
		rec("add-to-admins", "2022-06-15T12:00:00Z", "iam.amazonaws.com", "AddUserToGroup", user, map[string]any{
			"requestParameters": map[string]any{"userName": "intern", "groupName": "cloud-admins"},
		}),
		rec("open-sg", "2023-07-07T08:00:00Z", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", user, map[string]any{
			"requestParameters": map[string]any{"groupId": "sg-0123456789abcdef0", "ipPermissions": map[string]any{"items": []any{map[string]any{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": map[string]any{"items": []any{map[string]any{"cidrIp": "0.0.0.0/0"}}}}}}},
		}),
		rec("modify-sg", "2023-07-08T08:00:00Z", "ec2.amazonaws.com", "ModifySecurityGroupRules", user, map[string]any{
			"requestParameters": map[string]any{"ModifySecurityGroupRulesRequest": map[string]any{"GroupId": "sg-0123456789abcdef0", "SecurityGroupRule": map[string]any{"SecurityGroupRuleId": "sgr-0123", "SecurityGroupRule": map[string]any{"CidrIpv4": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389}}}},
		}),
	}
}

// Fixture is the fixture store's records: the data sets' and Generated,
// in eventID order.
func Fixture(t testing.TB) []Record {
	recs := append(LoadDatasets(t), Generated()...)
	sort.Slice(recs, func(i, j int) bool { return Str(recs[i]["eventID"]) < Str(recs[j]["eventID"]) })
	return recs
}
