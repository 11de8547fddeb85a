package query

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// TestEngineEscapesRefused tries every way out of the store's files we
// know of. Each statement must be refused before it runs, as
// InvalidQueryStatementException with a message saying what is wrong.
func TestEngineEscapesRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	otherFile := f.cat.files[otherID][0]
	otherDir := filepath.Dir(otherFile)
	id := fixtureID
	secret := filepath.Join(t.TempDir(), "secret.csv")
	if err := os.WriteFile(secret, []byte("a,b\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, stmt, want string }{
		// file-reading table functions
		{"read_csv", "SELECT * FROM read_csv('/etc/passwd')", "table functions are not allowed"},
		{"read_csv_auto", "SELECT * FROM read_csv_auto('" + secret + "')", "table functions"},
		{"read_json", "SELECT * FROM read_json('/etc/passwd')", "table functions"},
		{"read_json_auto", "SELECT * FROM read_json_auto('/etc/passwd')", "table functions"},
		{"read_ndjson_objects", "SELECT * FROM read_ndjson_objects('/etc/passwd')", "table functions"},
		{"read_text", "SELECT * FROM read_text('/etc/passwd')", "table functions"},
		{"read_blob", "SELECT * FROM read_blob('/etc/passwd')", "table functions"},
		{"read_parquet other store", "SELECT * FROM read_parquet('" + otherDir + "/*.parquet')", "table functions"},
		{"parquet_scan", "SELECT * FROM parquet_scan('" + otherFile + "')", "table functions"},
		{"parquet_metadata", "SELECT * FROM parquet_metadata('" + otherFile + "')", "table functions"},
		{"sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')", "table functions"},
		{"glob table", "SELECT * FROM glob('/etc/*')", "table functions"},
		{"query_table", "SELECT * FROM query_table('" + id + "')", "table functions"},
		{"query", "SELECT * FROM query('SELECT 1')", "table functions"},
		{"duckdb_settings", "SELECT * FROM duckdb_settings()", "table functions"},
		{"duckdb_extensions", "SELECT * FROM duckdb_extensions()", "table functions"},
		{"pragma function", "SELECT * FROM pragma_database_list()", "table functions"},
		{"table function in join", "SELECT * FROM " + id + " a JOIN read_csv('/etc/passwd') b ON true", "table functions"},
		{"table function in subquery", "SELECT eventname FROM " + id + " WHERE eventname IN (SELECT column0 FROM read_csv('/etc/passwd'))", "table functions"},
		{"table function in CTE", "WITH p AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM p", "table functions"},
		{"unnest over a file", "SELECT * FROM UNNEST((SELECT list(column0) FROM read_csv('/etc/passwd')))", "table functions"},
		{"unnest over glob", "SELECT * FROM UNNEST(glob('/etc/*'))", "function glob is not supported"},
		{"qualified unnest", "SELECT * FROM main.unnest([1])", "table functions"},
		// a path as a table name (DuckDB's replacement scans)
		{"path as table", "SELECT * FROM '/etc/passwd'", "does not exist"},
		{"other store's file as table", "SELECT * FROM '" + otherFile + "'", "does not exist"},
		{"duckdb metadata view", "SELECT * FROM duckdb_settings", "does not exist"},
		{"information schema", "SELECT * FROM information_schema.tables", "qualified table names"},
		{"catalog qualified", "SELECT * FROM memory.main.x", "qualified table names"},
		// functions over paths, settings and the environment in expressions
		{"glob scalar", "SELECT glob('/etc/*') FROM " + id, "function glob is not supported"},
		{"getenv", "SELECT getenv('HOME') FROM " + id, "function getenv is not supported"},
		{"current_setting", "SELECT current_setting('memory_limit') FROM " + id, "function current_setting is not supported"},
		{"getvariable", "SELECT getvariable('x') FROM " + id, "function getvariable is not supported"},
		{"read_text scalar", "SELECT read_text('/etc/passwd') FROM " + id, "not supported"},
		{"query scalar", "SELECT query('SELECT 1') FROM " + id, "not supported"},
		{"qualified function", "SELECT pg_catalog.lower(eventname) FROM " + id, "qualified function names"},
		{"catalog-qualified function", "SELECT system.main.lower(eventname) FROM " + id, "qualified function names"},
		{"main-qualified file function", "SELECT main.read_text('/etc/passwd') FROM " + id, "not supported"},
		{"duckdb function scalar", "SELECT duckdb_databases() FROM " + id, "not supported"},
		// not SELECT
		{"copy to", "COPY (SELECT * FROM " + id + ") TO '/tmp/x.csv'", "Only SELECT"},
		{"copy from", "COPY x FROM '/etc/passwd'", "Only SELECT"},
		{"export", "EXPORT DATABASE '/tmp/x'", "Only SELECT"},
		{"attach", "ATTACH '/tmp/x.db' AS x", "Only SELECT"},
		{"detach", "DETACH x", "Only SELECT"},
		{"install", "INSTALL httpfs", "Only SELECT"},
		{"load", "LOAD httpfs", "Only SELECT"},
		{"set", "SET enable_external_access = true", "Only SELECT"},
		{"reset", "RESET lock_configuration", "Only SELECT"},
		{"pragma", "PRAGMA enable_profiling", "Only SELECT"},
		{"create", "CREATE TABLE x AS SELECT * FROM " + id, "Only SELECT"},
		{"create macro", "CREATE MACRO lower(x) AS x", "Only SELECT"},
		{"insert", "INSERT INTO x VALUES (1)", "Only SELECT"},
		{"update", "UPDATE x SET a = 1", "Only SELECT"},
		{"delete", "DELETE FROM x", "Only SELECT"},
		{"drop", "DROP TABLE x", "Only SELECT"},
		{"call", "CALL duckdb_settings()", "Only SELECT"},
		{"use", "USE memory", "Only SELECT"},
		{"checkpoint", "CHECKPOINT", "Only SELECT"},
		{"describe", "DESCRIBE SELECT 1", ""},
		{"explain", "EXPLAIN SELECT * FROM " + id, "Only SELECT"},
		// statements smuggled after a semicolon
		{"after semicolon: copy", "SELECT eventname FROM " + id + "; COPY (SELECT 1) TO '/tmp/x.csv'", "Only SELECT"},
		{"after semicolon: select", "SELECT eventname FROM " + id + "; SELECT * FROM read_csv('/etc/passwd')", "exactly one SELECT"},
		{"after semicolon: set", "SELECT 1 FROM " + id + ";SET enable_external_access=true", "Only SELECT"},
		{"unterminated comment", "SELECT eventname FROM " + id + " /* ; DROP TABLE x", ""},
		// no store at all
		{"unknown table", "SELECT * FROM nosuchtable", "does not exist"},
		{"length", strings.Repeat(" ", MaxStatementLen+1), "1 to 10000 characters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := f.eng.Check(ctx, testRegion, testAccount, c.stmt)
			if err == nil {
				t.Fatalf("accepted, rewritten to %s", q.SQL)
			}
			if !awsproto.IsCode(err, "InvalidQueryStatementException") {
				t.Fatalf("error %v, want InvalidQueryStatementException", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("message %q does not say %q", err.Error(), c.want)
			}
		})
	}
}

// TestEngineCommentIsNotAStatement: a statement inside a comment is not
// run; the query around it is, with the same answer as without it.
func TestEngineCommentIsNotAStatement(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := "SELECT count(*) AS n FROM " + fixtureID
	want, err := f.run(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		base + " -- ; COPY (SELECT 1) TO '/tmp/cairn-escape.csv'",
		base + " /* ; ATTACH '/tmp/cairn-escape.db' */",
		"/* DROP TABLE x; */ " + base,
	} {
		got, err := f.run(ctx, stmt)
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if *got.rows[0][0] != *want.rows[0][0] {
			t.Fatalf("%s: %s rows, want %s", stmt, *got.rows[0][0], *want.rows[0][0])
		}
	}
	for _, p := range []string{"/tmp/cairn-escape.csv", "/tmp/cairn-escape.db"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s was written", p)
		}
	}
}

// TestEngineSandboxHolds runs escapes directly in a query database,
// bypassing the statement check: the sandbox alone must refuse them.
func TestEngineSandboxHolds(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	own := f.cat.files[fixtureID]
	conn, closeDB, err := f.eng.sandbox(ctx, []storeView{{id: fixtureID, files: own, cols: lakeColumns}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM "`+fixtureID+`"`).Scan(&n); err != nil || n != len(f.recs) {
		t.Fatalf("own store: %d rows, %v; want %d", n, err, len(f.recs))
	}
	target := filepath.Join(t.TempDir(), "out.csv")
	for _, stmt := range []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM read_parquet('" + f.cat.files[otherID][0] + "')",
		"SELECT * FROM '" + f.cat.files[otherID][0] + "'",
		"SELECT * FROM glob('/etc/*')",
		"COPY (SELECT 1) TO '" + target + "'",
		"COPY (SELECT 1) TO '" + own[0] + "'",
		"ATTACH '" + filepath.Join(t.TempDir(), "x.db") + "' AS x",
		"INSTALL httpfs",
		"LOAD httpfs",
		"SET enable_external_access = true",
		"SET allowed_paths = ['/etc/passwd']",
		"RESET lock_configuration",
		"SET threads = 64",
		"SELECT getenv('HOME')",
	} {
		if _, err := conn.ExecContext(ctx, stmt); err == nil {
			t.Errorf("sandbox ran %s", stmt)
		}
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("COPY wrote a file")
	}
}
