package query

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

var update = flag.Bool("update", false, "rewrite testdata/samples.json's expected results from the oracles")

// sampleRow is one entry of testdata/samples.json.
type sampleRow struct {
	Sample
	Runs []sampleRun `json:"runs"`
}

// sampleRun is one way the table runs a sample: the edits the sample's
// comment tells the user to make (each replaces the first occurrence,
// in order; none means as published), the oracle computing the expected
// result in Go from the records' JSON, and the expected result.
type sampleRun struct {
	Edits  [][2]string       `json:"edits"`
	Oracle string            `json:"oracle"`
	Params map[string]string `json:"params,omitempty"`
	Note   string            `json:"note,omitempty"`
	Order  *struct {
		Column string `json:"column"`
		Desc   bool   `json:"desc,omitempty"`
	} `json:"order,omitempty"`
	// Expected: the columns the engine names, the columns the oracle
	// checks (all when empty) and their rows; or the error code.
	Columns []string    `json:"columns,omitempty"`
	Checked []string    `json:"checked,omitempty"`
	Rows    [][]*string `json:"rows,omitempty"`
	Error   string      `json:"error,omitempty"`
}

// TestSampleQueries runs every sample of the library on the fixture store
// and checks the result against an oracle that computes it in Go from
// the records' JSON, not with SQL, and against the table.
func TestSampleQueries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/samples.json")
	if err != nil {
		t.Fatal(err)
	}
	var table []sampleRow
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	for si := range table {
		s := &table[si]
		for ri := range s.Runs {
			run := &s.Runs[ri]
			t.Run(fmt.Sprintf("%s/%d", s.Name, ri), func(t *testing.T) {
				stmt := strings.ReplaceAll(s.SQL, s.Placeholder, fixtureID)
				for _, e := range run.Edits {
					if !strings.Contains(stmt, e[0]) {
						t.Fatalf("edit %q: not in the statement", e[0])
					}
					stmt = strings.Replace(stmt, e[0], e[1], 1)
				}
				got, err := f.run(ctx, stmt)
				if run.Oracle == "error" {
					if !awsproto.IsCode(err, "InvalidQueryStatementException") {
						t.Fatalf("got %v, want InvalidQueryStatementException", err)
					}
					run.Error = "InvalidQueryStatementException"
					return
				}
				if err != nil {
					t.Fatalf("%v\n%s", err, stmt)
				}
				oracle, ok := oracles[run.Oracle]
				if !ok {
					t.Fatalf("no oracle %q", run.Oracle)
				}
				checked, want := oracle(f.recs, run.Params)
				gotRows := project(t, got, checked)
				if run.Order != nil {
					checkOrder(t, got, run.Order.Column, run.Order.Desc)
				}
				if !sameRows(gotRows, want) {
					t.Fatalf("engine rows differ from the oracle's\nengine: %s\noracle: %s", show(gotRows), show(want))
				}
				if *update {
					run.Columns, run.Checked, run.Rows = got.cols, checked, sortedRows(want)
					return
				}
				if !reflect.DeepEqual(run.Columns, got.cols) {
					t.Fatalf("columns %v, table says %v", got.cols, run.Columns)
				}
				if !sameRows(run.Rows, want) {
					t.Fatalf("table rows differ from the oracle's\ntable: %s\noracle: %s", show(run.Rows), show(want))
				}
			})
		}
	}
	if *update {
		out, err := json.MarshalIndent(table, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/samples.json", append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func project(t *testing.T, c *collect, cols []string) [][]*string {
	t.Helper()
	if len(cols) == 0 {
		return c.rows
	}
	idx := make([]int, len(cols))
	for i, name := range cols {
		idx[i] = -1
		for j, cn := range c.cols {
			if cn == name {
				idx[i] = j
				break
			}
		}
		if idx[i] < 0 {
			t.Fatalf("result has no column %s (has %v)", name, c.cols)
		}
	}
	out := make([][]*string, len(c.rows))
	for r, row := range c.rows {
		p := make([]*string, len(idx))
		for i, j := range idx {
			p[i] = row[j]
		}
		out[r] = p
	}
	return out
}

func checkOrder(t *testing.T, c *collect, col string, desc bool) {
	t.Helper()
	rows := project(t, c, []string{col})
	for i := 1; i < len(rows); i++ {
		a, b := deref(rows[i-1][0]), deref(rows[i][0])
		if desc && a < b || !desc && a > b {
			t.Fatalf("rows not ordered by %s (desc=%v): %q before %q", col, desc, a, b)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "\x00NULL"
	}
	return *s
}

func rowKey(r []*string) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = strconv.Quote(deref(v))
	}
	return strings.Join(parts, ",")
}

func sortedRows(rows [][]*string) [][]*string {
	out := append([][]*string(nil), rows...)
	sort.Slice(out, func(i, j int) bool { return rowKey(out[i]) < rowKey(out[j]) })
	if out == nil {
		out = [][]*string{}
	}
	return out
}

func sameRows(a, b [][]*string) bool {
	if len(a) != len(b) {
		return false
	}
	sa, sb := sortedRows(a), sortedRows(b)
	for i := range sa {
		if rowKey(sa[i]) != rowKey(sb[i]) {
			return false
		}
	}
	return true
}

func show(rows [][]*string) string {
	var b strings.Builder
	for _, r := range sortedRows(rows) {
		b.WriteString("\n  " + rowKey(r))
	}
	return b.String()
}

// The oracles: each computes a sample's expected result from the
// records' JSON with plain Go, returning the columns it checks (nil: all
// of them, in order) and the rows.
type oracle func(recs []record, p map[string]string) ([]string, [][]*string)

func sp(s string) *string { return &s }

// at walks a record's JSON: at(r, "userIdentity", "arn").
func at(r record, path ...string) any {
	var v any = map[string]any(r)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// val is a field as Lake shows it: a string as it is, a number or
// boolean as its text, nil as NULL.
func val(r record, path ...string) *string {
	switch x := at(r, path...).(type) {
	case nil:
		return nil
	case string:
		return &x
	case bool:
		return sp(strconv.FormatBool(x))
	default:
		b, _ := json.Marshal(x)
		return sp(string(b))
	}
}

// mapVal is a value of requestparameters and its kind: strings as they
// are, anything else as JSON text.
func mapVal(r record, m, key string) *string {
	obj, ok := at(r, m).(map[string]any)
	if !ok {
		return nil
	}
	v, ok := obj[key]
	if !ok || v == nil {
		return nil
	}
	s, _ := mapValue(v).(string)
	return &s
}

// mapText renders a whole map<string,string> column as Trino does.
func mapText(r record, m string) *string {
	obj, ok := at(r, m).(map[string]any)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := "null"
		if s, ok := mapValue(obj[k]).(string); ok {
			v = s
		}
		parts[i] = k + "=" + v
	}
	return sp("{" + strings.Join(parts, ", ") + "}")
}

func eventTime(r record) time.Time {
	t, _ := time.Parse(time.RFC3339, str(r["eventTime"]))
	return t
}

func timeText(r record) *string { return sp(eventTime(r).Format("2006-01-02 15:04:05.000")) }

func param(p map[string]string, k string) time.Time {
	t, _ := time.Parse("2006-01-02 15:04:05", p[k])
	return t
}

// strictly: from < eventTime < to.
func strictly(r record, p map[string]string) bool {
	t := eventTime(r)
	return t.After(param(p, "from")) && t.Before(param(p, "to"))
}

// within: from <= eventTime <= to.
func within(r record, p map[string]string) bool {
	t := eventTime(r)
	return !t.Before(param(p, "from")) && !t.After(param(p, "to"))
}

func is(v *string, s string) bool { return v != nil && *v == s }

// groupCount counts records by a key and returns rows of key + count,
// or count + key when countFirst.
func groupCount(recs []record, keep func(record) bool, key func(record) []*string, countFirst bool) [][]*string {
	counts := map[string]int{}
	keys := map[string][]*string{}
	for _, r := range recs {
		if !keep(r) {
			continue
		}
		k := key(r)
		s := rowKey(k)
		counts[s]++
		keys[s] = k
	}
	var out [][]*string
	for s, n := range counts {
		c := sp(strconv.Itoa(n))
		if countFirst {
			out = append(out, append([]*string{c}, keys[s]...))
		} else {
			out = append(out, append(append([]*string(nil), keys[s]...), c))
		}
	}
	return out
}

func rows(recs []record, keep func(record) bool, row func(record) []*string) [][]*string {
	var out [][]*string
	for _, r := range recs {
		if keep(r) {
			out = append(out, row(r))
		}
	}
	return out
}

func distinct(in [][]*string) [][]*string {
	seen := map[string]bool{}
	var out [][]*string
	for _, r := range in {
		if k := rowKey(r); !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

func eventIDs(recs []record, keep func(record) bool) ([]string, [][]*string) {
	return []string{"eventid"}, rows(recs, keep, func(r record) []*string { return []*string{val(r, "eventID")} })
}

var oracles = map[string]oracle{
	"empty": func([]record, map[string]string) ([]string, [][]*string) { return nil, nil },
	"console-no-mfa": func(recs []record, _ map[string]string) ([]string, [][]*string) {
		return eventIDs(recs, func(r record) bool {
			return str(r["eventSource"]) == "signin.amazonaws.com" && str(r["eventName"]) == "ConsoleLogin" && is(mapVal(r, "additionalEventData", "MFAUsed"), "No")
		})
	},
	"trail-changes": func(recs []record, p map[string]string) ([]string, [][]*string) {
		names := map[string]bool{"CreateTrail": true, "UpdateTrail": true, "DeleteTrail": true, "StartLogging": true, "StopLogging": true}
		return nil, rows(recs, func(r record) bool { return strictly(r, p) && names[str(r["eventName"])] },
			func(r record) []*string {
				return []*string{val(r, "eventName"), mapVal(r, "requestParameters", "name"), val(r, "userIdentity", "principalId"), timeText(r)}
			})
	},
	"by-region": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, groupCount(recs, func(r record) bool { return strictly(r, p) },
			func(r record) []*string { return []*string{val(r, "awsRegion"), val(r, "eventSource")} }, false)
	},
	"errors": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return []string{"arn", "eventtime", "eventname", "errorcode"}, rows(recs,
			func(r record) bool { return strictly(r, p) && r["errorCode"] != nil },
			func(r record) []*string {
				return []*string{val(r, "userIdentity", "arn"), timeText(r), val(r, "eventName"), val(r, "errorCode")}
			})
	},
	"by-user": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, groupCount(recs, func(r record) bool { return strictly(r, p) && val(r, "userIdentity", "principalId") != nil },
			func(r record) []*string {
				return []*string{val(r, "userIdentity", "principalId"), val(r, "userIdentity", "accountId")}
			}, false)
	},
	"iam-callers": func(recs []record, _ map[string]string) ([]string, [][]*string) {
		since := time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC)
		return nil, groupCount(recs, func(r record) bool {
			return !eventTime(r).Before(since) && str(r["eventSource"]) == "iam.amazonaws.com" && val(r, "userIdentity", "principalId") != nil
		}, func(r record) []*string {
			return []*string{val(r, "eventName"), val(r, "recipientAccountId"), val(r, "userIdentity", "principalId")}
		}, true)
	},
	"tls": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, rows(recs, func(r record) bool {
			v := val(r, "tlsDetails", "tlsVersion")
			return strictly(r, p) && v != nil && *v != "TLSv1.3"
		}, func(r record) []*string {
			return []*string{val(r, "eventName"), val(r, "awsRegion"), val(r, "sourceIPAddress"), val(r, "recipientAccountId"), val(r, "tlsDetails", "tlsVersion")}
		})
	},
	"key-activity": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, rows(recs, func(r record) bool { return strictly(r, p) && is(val(r, "userIdentity", "accessKeyId"), p["key"]) },
			func(r record) []*string {
				return []*string{val(r, "eventSource"), val(r, "eventName"), val(r, "sourceIPAddress"), timeText(r), val(r, "errorCode")}
			})
	},
	"ip-accounts": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, distinct(rows(recs, func(r record) bool {
			a := val(r, "userIdentity", "accountId")
			return strictly(r, p) && str(r["sourceIPAddress"]) == p["ip"] && a != nil && *a != "555555555555"
		}, func(r record) []*string { return []*string{val(r, "userIdentity", "accountId")} }))
	},
	"role-actions": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, groupCount(recs, func(r record) bool {
			return strictly(r, p) && is(val(r, "userIdentity", "type"), "AssumedRole") && is(val(r, "userIdentity", "sessionContext", "sessionIssuer", "arn"), p["role"])
		}, func(r record) []*string { return []*string{val(r, "eventSource"), val(r, "eventName")} }, true)
	},
	"weekday": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, groupCount(recs, func(r record) bool { return strictly(r, p) && str(r["eventCategory"]) == p["category"] },
			func(r record) []*string {
				wd := int(eventTime(r).Weekday())
				if wd == 0 {
					wd = 7 // ISO: Monday 1 .. Sunday 7, as Trino's day_of_week
				}
				return []*string{sp(strconv.Itoa(wd))}
			}, false)
	},
	"flat": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return eventIDs(recs, func(r record) bool { return within(r, p) })
	},
	"range": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return eventIDs(recs, func(r record) bool { return within(r, p) })
	},
	"cross-account": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return []string{"principalid", "eventname", "eventsource", "accountid", "recipientaccountid", "eventtime"}, rows(recs, func(r record) bool {
			a, b := val(r, "userIdentity", "accountId"), val(r, "recipientAccountId")
			return strictly(r, p) && a != nil && b != nil && *a != *b
		}, func(r record) []*string {
			return []*string{val(r, "userIdentity", "principalId"), val(r, "eventName"), val(r, "eventSource"), val(r, "userIdentity", "accountId"), val(r, "recipientAccountId"), timeText(r)}
		})
	},
	"self-assume": func(recs []record, _ map[string]string) ([]string, [][]*string) {
		return nil, rows(recs, func(r record) bool {
			res := asList(r["resources"])
			if len(res) == 0 {
				return false
			}
			first, _ := res[0].(map[string]any)
			return str(r["eventSource"]) == "sts.amazonaws.com" && str(r["eventName"]) == "AssumeRole" &&
				is(val(r, "userIdentity", "type"), "AssumedRole") && r["errorCode"] == nil &&
				is(val(r, "userIdentity", "sessionContext", "sessionIssuer", "arn"), str(first["ARN"]))
		}, func(r record) []*string {
			return []*string{val(r, "eventID"), timeText(r), val(r, "userIdentity", "sessionContext", "sessionIssuer", "arn"), val(r, "userIdentity", "principalId")}
		})
	},
	"manual-resources": func(recs []record, _ map[string]string) ([]string, [][]*string) {
		return []string{"user", "eventtime", "eventid"}, rows(recs, func(r record) bool {
			n := str(r["eventName"])
			u := val(r, "userIdentity", "sessionContext", "sessionIssuer", "userName")
			_, hasRes := r["resources"]
			return (strings.Contains(n, "Create") || strings.Contains(n, "Update") || strings.Contains(n, "Put") || strings.Contains(n, "Delete")) &&
				hasRes && r["resources"] != nil && u != nil && !strings.HasPrefix(*u, "AWSServiceRole") && *u != "" &&
				str(r["sourceIPAddress"]) != "cloudformation.amazonaws.com"
		}, func(r record) []*string {
			return []*string{val(r, "userIdentity", "arn"), timeText(r), val(r, "eventID")}
		})
	},
	"role-activity": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, rows(recs, func(r record) bool {
			return strictly(r, p) && is(val(r, "userIdentity", "type"), "AssumedRole") && is(val(r, "userIdentity", "sessionContext", "sessionIssuer", "arn"), p["role"])
		}, func(r record) []*string {
			return []*string{val(r, "eventSource"), val(r, "eventName"), timeText(r), val(r, "eventID"), val(r, "errorCode")}
		})
	},
	"acl-buckets": func(recs []record, _ map[string]string) ([]string, [][]*string) {
		return nil, distinct(rows(recs, func(r record) bool { return is(mapVal(r, "additionalEventData", "aclRequired"), "Yes") },
			func(r record) []*string {
				return []*string{mapVal(r, "requestParameters", "bucketName"), val(r, "awsRegion"), val(r, "recipientAccountId")}
			}))
	},
	"public-sg": func(recs []record, p map[string]string) ([]string, [][]*string) {
		// The two halves of the UNION have their own windows: from..to
		// and from..to2.
		second := map[string]string{"from": p["from"], "to": p["to2"]}
		return nil, rows(recs, func(r record) bool {
			switch str(r["eventName"]) {
			case "AuthorizeSecurityGroupIngress":
				v := mapVal(r, "requestParameters", "ipPermissions")
				return within(r, p) && v != nil && strings.Contains(*v, p["pattern"])
			case "ModifySecurityGroupRules":
				v := mapVal(r, "requestParameters", "ModifySecurityGroupRulesRequest")
				return within(r, second) && v != nil && strings.Contains(*v, p["pattern"])
			}
			return false
		}, func(r record) []*string {
			group, rule := mapVal(r, "requestParameters", "groupId"), mapVal(r, "requestParameters", "ipPermissions")
			if str(r["eventName"]) == "ModifySecurityGroupRules" {
				rule = mapVal(r, "requestParameters", "ModifySecurityGroupRulesRequest")
				var m map[string]any
				group = nil
				if rule != nil && json.Unmarshal([]byte(*rule), &m) == nil {
					if g, ok := m["GroupId"].(string); ok {
						group = &g
					}
				}
			}
			return []*string{val(r, "eventName"), val(r, "userIdentity", "arn"), val(r, "sourceIPAddress"), timeText(r), val(r, "eventSource"), group, rule}
		})
	},
	"admin-group": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, rows(recs, func(r record) bool {
			g := mapVal(r, "requestParameters", "groupName")
			return strictly(r, p) && str(r["eventName"]) == "AddUserToGroup" && g != nil && strings.Contains(*g, "admin")
		}, func(r record) []*string {
			return []*string{val(r, "userIdentity", "principalId"), val(r, "eventName"), timeText(r), mapVal(r, "requestParameters", "userName"), mapVal(r, "requestParameters", "groupName")}
		})
	},
	"launched-instance": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, rows(recs, func(r record) bool {
			set := mapVal(r, "responseElements", "instancesSet")
			return strictly(r, p) && str(r["eventName"]) == "RunInstances" && set != nil && strings.Contains(*set, `"instanceId":"`+p["instance"]+`"`)
		}, func(r record) []*string {
			return []*string{val(r, "userIdentity", "principalId"), val(r, "eventName"), timeText(r), val(r, "recipientAccountId"), val(r, "awsRegion")}
		})
	},
	"assumed-by-key": func(recs []record, p map[string]string) ([]string, [][]*string) {
		return nil, rows(recs, func(r record) bool {
			return strictly(r, p) && str(r["eventName"]) == "AssumeRole" && is(val(r, "userIdentity", "accessKeyId"), p["key"])
		}, func(r record) []*string {
			return []*string{mapText(r, "requestParameters"), mapText(r, "responseElements")}
		})
	},
}
