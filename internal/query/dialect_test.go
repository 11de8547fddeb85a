package query

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDialect checks Lake's Trino functions and forms on the engine, each
// against the answer Trino gives (worked out by hand or in Go).
func TestDialect(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := fixtureID
	arn := f.cat.stores[fixtureID].ARN
	login := "FROM " + id + " WHERE eventname = 'ConsoleLogin'"
	countBy := func(pred func(record) bool) string {
		n := 0
		for _, r := range f.recs {
			if pred(r) {
				n++
			}
		}
		return strconv.Itoa(n)
	}
	distinctNames := map[string]bool{}
	for _, r := range f.recs {
		distinctNames[str(r["eventName"])] = true
	}
	var loginRec record
	for _, r := range f.recs {
		if str(r["eventName"]) == "ConsoleLogin" {
			loginRec = r
		}
	}
	loginTime := eventTime(loginRec)
	now := time.Now().UTC()

	cases := []struct {
		name, stmt string
		want       []string // the first row; "*" matches anything non-NULL, "NULL" a NULL
	}{
		{"element_at map", "SELECT element_at(additionaleventdata, 'MFAUsed') " + login, []string{"No"}},
		{"element_at map missing key", "SELECT element_at(additionaleventdata, 'nope') " + login, []string{"NULL"}},
		{"element_at array", "SELECT element_at(ARRAY['a', 'b', 'c'], 2), element_at(ARRAY['a', 'b', 'c'], -1), element_at(ARRAY['a'], 5) " + login, []string{"b", "c", "NULL"}},
		{"subscript map", "SELECT additionaleventdata['MFAUsed'] " + login, []string{"No"}},
		{"struct fields", "SELECT useridentity.type, userIdentity.accountId " + login, []string{str(at(loginRec, "userIdentity", "type").(string)), at(loginRec, "userIdentity", "accountId").(string)}},
		{"json_extract_scalar", `SELECT json_extract_scalar('{"a": {"b": "x"}, "n": 5}', '$.a.b'), json_extract_scalar('{"a": {"b": "x"}}', '$.a'), json_extract_scalar('not json', '$.a'), json_extract_scalar('{"n": 5}', '$.n') ` + login, []string{"x", "NULL", "NULL", "5"}},
		{"json paths", `SELECT json_extract_scalar('{"a b": {"c": [5, 6]}}', '$["a b"].c[1]'), json_extract_scalar('{"a b": 1}', '$."a b"') ` + login, []string{"6", "1"}},
		{"lambdas", "SELECT transform(ARRAY[1, 2], x -> x + 1), filter(ARRAY[1, 2, 3], x -> x > 1) " + login, []string{"[2, 3]", "[2, 3]"}},
		{"json_extract", `SELECT json_extract('{"a": {"b": 1}}', '$.a'), json_extract('nope', '$.a') ` + login, []string{`{"b":1}`, "NULL"}},
		{"json_array_length", `SELECT json_array_length('[1, 2, 3]'), json_array_length('{}') ` + login, []string{"3", "NULL"}},
		{"date_diff whole units", "SELECT date_diff('day', TIMESTAMP '2020-01-01 23:00:00', TIMESTAMP '2020-01-02 01:00:00'), date_diff('hour', TIMESTAMP '2020-01-01 23:00:00', TIMESTAMP '2020-01-02 01:30:00') " + login, []string{"0", "2"}},
		{"date_add", "SELECT date_add('day', -7, TIMESTAMP '2024-01-08 00:00:00'), date_add('hour', 2, eventtime) " + login, []string{"2024-01-01 00:00:00.000", loginTime.Add(2 * time.Hour).Format("2006-01-02 15:04:05.000")}},
		{"date_trunc", "SELECT date_trunc('day', eventtime) " + login, []string{loginTime.Truncate(24 * time.Hour).Format("2006-01-02 15:04:05.000")}},
		{"from_iso8601_timestamp", "SELECT from_iso8601_timestamp('2024-08-02T08:53:24Z') = eventtime, eventtime > from_iso8601_timestamp('2024-01-01T00:00:00Z') " + login, []string{strconv.FormatBool(loginTime.Equal(time.Date(2024, 8, 2, 8, 53, 24, 0, time.UTC))), "true"}},
		{"to_iso8601", "SELECT to_iso8601(eventtime) " + login, []string{loginTime.Format("2006-01-02T15:04:05.000")}},
		{"eventtime vs string", "SELECT count(*) FROM " + id + " WHERE eventtime >= '2024-08-01 00:00:00' AND eventtime < '2024-08-02 00:00:00'", []string{countBy(func(r record) bool {
			t := eventTime(r)
			return !t.Before(time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)) && t.Before(time.Date(2024, 8, 2, 0, 0, 0, 0, time.UTC))
		})}},
		{"approx_distinct", "SELECT approx_distinct(eventname) FROM " + id, []string{strconv.Itoa(len(distinctNames))}},
		{"regexp_like", "SELECT count(*) FROM " + id + " WHERE regexp_like(eventname, '^Get.*Data$')", []string{countBy(func(r record) bool {
			n := str(r["eventName"])
			return strings.HasPrefix(n, "Get") && strings.HasSuffix(n, "Data")
		})}},
		{"regexp_extract", "SELECT regexp_extract('arn:aws:iam::123:role/x', 'role/(\\w+)', 1), regexp_extract('abc', 'z'), regexp_extract('abc', 'b') " + login, []string{"x", "NULL", "b"}},
		{"regexp_replace all", "SELECT regexp_replace('a-b-c', '-', '+') " + login, []string{"a+b+c"}},
		{"cardinality", "SELECT cardinality(ARRAY[1, 2, 3]), cardinality(additionaleventdata), cardinality(resources) " + login, []string{"3", strconv.Itoa(len(loginRec["additionalEventData"].(map[string]any))), "NULL"}},
		{"contains", "SELECT contains(ARRAY['a', 'b'], 'b'), contains(map_keys(additionaleventdata), 'MFAUsed') " + login, []string{"true", "true"}},
		{"map_keys map_values", "SELECT array_join(array_sort(map_keys(additionaleventdata)), ','), cardinality(map_values(additionaleventdata)) " + login, []string{"LoginTo,MFAUsed,MobileVersion", "3"}},
		{"split", "SELECT split('a,b,c', ','), element_at(split('a,b,c', ','), 2) " + login, []string{"[a, b, c]", "b"}},
		{"now and current_timestamp", "SELECT now() > eventtime, current_timestamp > eventtime, year(now()) " + login, []string{"true", "true", strconv.Itoa(now.Year())}},
		{"from_unixtime to_unixtime", "SELECT from_unixtime(0), to_unixtime(TIMESTAMP '1970-01-02 00:00:00') " + login, []string{"1970-01-01 00:00:00.000", "86400.0"}},
		{"format_datetime", "SELECT format_datetime(eventtime, 'yyyy-MM-dd HH:mm') " + login, []string{loginTime.Format("2006-01-02 15:04")}},
		{"date_format", "SELECT date_format(eventtime, '%Y/%m/%d %H:%i:%s') " + login, []string{loginTime.Format("2006/01/02 15:04:05")}},
		{"day_of_week", "SELECT day_of_week(TIMESTAMP '2024-08-04 00:00:00'), day_of_week(TIMESTAMP '2024-08-05 00:00:00') " + login, []string{"7", "1"}},
		{"IS DISTINCT FROM, BETWEEN, IN, LIKE", "SELECT count(*) FROM " + id + " WHERE errorcode IS DISTINCT FROM NULL AND eventtime BETWEEN '2018-01-01 00:00:00' AND '2030-01-01 00:00:00' AND eventname IN ('GetPasswordData', 'GetSecretValue') AND eventsource LIKE '%.amazonaws.com'", []string{countBy(func(r record) bool {
			n := str(r["eventName"])
			return r["errorCode"] != nil && (n == "GetPasswordData" || n == "GetSecretValue")
		})}},
		{"ARN as table", "SELECT count(*) FROM " + arn, []string{strconv.Itoa(len(f.recs))}},
		{"quoted ID", `SELECT count(*) FROM "` + id + `"`, []string{strconv.Itoa(len(f.recs))}},
		{"UNION ALL across stores", "SELECT count(*) FROM (SELECT eventid FROM " + id + " UNION ALL SELECT eventid FROM " + otherID + ")", []string{strconv.Itoa(len(f.recs) + 5)}},
		{"JOIN across stores", "SELECT count(*) FROM " + id + " a JOIN " + otherID + " b ON a.eventid = b.eventid", []string{"5"}},
		{"EXCEPT", "SELECT count(*) FROM (SELECT eventid FROM " + id + " EXCEPT SELECT eventid FROM " + otherID + ")", []string{strconv.Itoa(len(f.recs) - 5)}},
		{"CTE and subquery", "WITH names AS (SELECT DISTINCT eventname FROM " + id + ") SELECT count(*) FROM names WHERE eventname IN (SELECT eventname FROM " + otherID + ")", []string{"*"}},
		{"window", "SELECT eventname, row_number() OVER (ORDER BY eventtime) FROM " + id + " ORDER BY 2 LIMIT 1", []string{"*", "1"}},
		{"unnest resources", "SELECT count(*) FROM " + id + " CROSS JOIN UNNEST(resources) AS r (res) WHERE res.type = 'AWS::IAM::Role'", []string{"*"}},
		{"rendering", "SELECT CAST(1.5 AS DOUBLE), CAST(1e10 AS DOUBLE), CAST(0.1 AS DECIMAL(3, 2)), INTERVAL '1' DAY, from_iso8601_timestamp('2024-01-01T00:00:00Z'), CAST(ROW(1, 'x') AS ROW(a INTEGER, b VARCHAR)), ARRAY[1, NULL], MAP(ARRAY['k'], ARRAY['v']), DATE '2024-01-02' " + login,
			[]string{"1.5", "1.0E10", "0.10", "1 00:00:00.000", "2024-01-01 00:00:00.000 UTC", "{a=1, b=x}", "[1, null]", "{k=v}", "2024-01-02"}},
		{"booleans and NULL", "SELECT readonly, errorcode, managementevent " + login, []string{fmt.Sprint(loginRec["readOnly"]), "NULL", "*"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.run(ctx, c.stmt)
			if err != nil {
				t.Fatalf("%v\n%s", err, c.stmt)
			}
			if len(got.rows) == 0 {
				t.Fatal("no rows")
			}
			row := got.rows[0]
			if len(row) != len(c.want) {
				t.Fatalf("%d columns %v, want %d", len(row), got.cols, len(c.want))
			}
			for i, w := range c.want {
				v := row[i]
				switch {
				case w == "NULL" && v == nil, w == "*" && v != nil:
				case v == nil || w != *v:
					t.Errorf("column %d (%s) = %s, want %s", i, got.cols[i], deref(v), w)
				}
			}
		})
	}
}
