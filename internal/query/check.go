package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/lake"
)

// MaxStatementLen is the model's limit on QueryStatement.
const MaxStatementLen = 10000

// Checked is a statement that passed the checks, rewritten for DuckDB.
type Checked struct {
	// SQL is the statement DuckDB runs: table references name the
	// stores' views, Trino functions are renamed or replaced by macros,
	// output columns are named as Trino names them.
	SQL string
	// Stores are the stores the statement reads, each once, in order of
	// first reference.
	Stores []lake.Spec
}

// invalid is the error of a statement Lake refuses.
func invalid(format string, args ...any) error {
	return awsproto.Errorf("InvalidQueryStatementException", format, args...)
}

// Check parses stmt with DuckDB's own parser, refuses anything but one
// SELECT over known, queryable stores calling allowed functions, and
// returns it rewritten for the engine.
//
// The parser is the engine's: what Check accepts is exactly what the
// engine will run, so no statement can mean one thing to the check and
// another to the engine. A statement smuggled after a semicolon is a
// second statement; one inside a comment is not a statement at all.
func (e *Engine) Check(ctx context.Context, region, account, stmt string) (*Checked, error) {
	if len(stmt) == 0 || len(stmt) > MaxStatementLen {
		return nil, invalid("The query statement must be 1 to %d characters long.", MaxStatementLen)
	}
	prepared := quoteStoreRefs(stmt)
	var ast string
	if err := e.parser.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(CAST(? AS VARCHAR)) AS VARCHAR)", prepared).Scan(&ast); err != nil {
		return nil, fmt.Errorf("query: parse statement: %w", err)
	}
	// Numbers stay json.Number: the tree holds uint64 locations
	// (18446744073709551615 for "none") that float64 would not round-trip.
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(ast))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("query: read the parser's tree: %w", err)
	}
	if isErr, _ := doc["error"].(bool); isErr {
		msg, _ := doc["error_message"].(string)
		typ, _ := doc["error_type"].(string)
		if typ == "not implemented" {
			return nil, invalid("Only SELECT statements are allowed: %s", firstWord(stmt))
		}
		if pos, ok := doc["position"].(string); ok {
			if p, err := strconv.Atoi(pos); err == nil {
				return nil, invalid("%s at %s", msg, where(prepared, p))
			}
		}
		return nil, invalid("%s", msg)
	}
	stmts, _ := doc["statements"].([]any)
	if len(stmts) != 1 {
		return nil, invalid("A query must be exactly one SELECT statement; found %d statements.", len(stmts))
	}
	w := &walker{e: e, ctx: ctx, region: region, account: account, text: prepared, ctes: map[string]bool{}, seen: map[string]bool{}}
	collectCTEs(stmts[0], w.ctes)
	st, _ := stmts[0].(map[string]any)
	node, _ := st["node"].(map[string]any)
	if node == nil {
		return nil, invalid("A query must be a SELECT statement.")
	}
	if err := w.walk(node); err != nil {
		return nil, err
	}
	nameOutputColumns(node)
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("query: write the rewritten tree: %w", err)
	}
	var rewritten sql.NullString
	if err := e.parser.QueryRowContext(ctx, "SELECT json_deserialize_sql(CAST(? AS JSON))", string(out)).Scan(&rewritten); err != nil {
		return nil, fmt.Errorf("query: rewrite statement: %w", err)
	}
	return &Checked{SQL: rewritten.String, Stores: w.stores}, nil
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return strings.ToUpper(f[0])
}

// where describes a byte offset of the statement as "line L, column C"
// followed by the line itself and a caret, as DuckDB's messages do.
func where(text string, pos int) string {
	if pos < 0 || pos > len(text) {
		return "an unknown position"
	}
	line := 1 + strings.Count(text[:pos], "\n")
	start := strings.LastIndexByte(text[:pos], '\n') + 1
	end := strings.IndexByte(text[pos:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += pos
	}
	return fmt.Sprintf("line %d, column %d:\n%s\n%s^", line, pos-start+1, text[start:end], strings.Repeat(" ", pos-start))
}

// storeRef matches, outside strings, quoted names and comments, the
// table references Lake accepts unquoted though they are not SQL
// identifiers: a store ID (a UUID) or a store ARN.
var storeRef = regexp.MustCompile(`^(arn:[a-z-]+:cloudtrail:[a-z0-9-]+:\d{12}:eventdatastore/[A-Za-z0-9-]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})`)

// quoteStoreRefs double-quotes the unquoted store IDs and ARNs of stmt so
// that DuckDB's parser reads them as table names.
func quoteStoreRefs(stmt string) string {
	var b strings.Builder
	identChar := func(c byte) bool {
		return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(stmt) {
				if stmt[j] == c {
					if j+1 < len(stmt) && stmt[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j < len(stmt) {
				j++
			}
			b.WriteString(stmt[i:j])
			i = j
		case c == '-' && i+1 < len(stmt) && stmt[i+1] == '-':
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				j = len(stmt) - i
			}
			b.WriteString(stmt[i : i+j])
			i += j
		case c == '/' && i+1 < len(stmt) && stmt[i+1] == '*':
			j := strings.Index(stmt[i+2:], "*/")
			if j < 0 {
				b.WriteString(stmt[i:])
				i = len(stmt)
			} else {
				b.WriteString(stmt[i : i+j+4])
				i += j + 4
			}
		default:
			if i == 0 || !identChar(stmt[i-1]) {
				if m := storeRef.FindString(stmt[i:]); m != "" && (i+len(m) == len(stmt) || !identChar(stmt[i+len(m)]) && stmt[i+len(m)] != '-') {
					b.WriteString(`"` + m + `"`)
					i += len(m)
					continue
				}
			}
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// collectCTEs gathers the names of every common table expression in the
// statement: a table reference naming one reads it, not a store.
func collectCTEs(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if cm, ok := x["cte_map"].(map[string]any); ok {
			if entries, ok := cm["map"].([]any); ok {
				for _, e := range entries {
					if em, ok := e.(map[string]any); ok {
						if k, ok := em["key"].(string); ok {
							out[strings.ToLower(k)] = true
						}
					}
				}
			}
		}
		for _, c := range x {
			collectCTEs(c, out)
		}
	case []any:
		for _, c := range x {
			collectCTEs(c, out)
		}
	}
}

// walker checks and rewrites a parsed statement in place.
type walker struct {
	e       *Engine
	ctx     context.Context
	region  string
	account string
	text    string
	ctes    map[string]bool
	seen    map[string]bool
	stores  []lake.Spec
}

// refused lists node types that are never part of a query over stores:
// table functions read files, settings and catalogs; the others are
// DuckDB extensions to SQL that Lake does not have.
var refusedTypes = map[string]string{
	"TABLE_FUNCTION": "table functions are not allowed",
	"PIVOT":          "PIVOT is not supported",
	"SHOW_REF":       "SHOW and DESCRIBE are not allowed",
	"COLUMN_DATA":    "this table reference is not allowed",
	"DELIM_GET":      "this table reference is not allowed",
}

func (w *walker) at(x map[string]any) string {
	n, ok := x["query_location"].(json.Number)
	if !ok {
		return ""
	}
	loc, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || loc < 0 || loc > int64(len(w.text)) {
		return ""
	}
	return " at " + where(w.text, int(loc))
}

func (w *walker) walk(v any) error {
	switch x := v.(type) {
	case []any:
		for _, c := range x {
			if err := w.walk(c); err != nil {
				return err
			}
		}
	case map[string]any:
		if err := w.node(x); err != nil {
			return err
		}
		for _, c := range x {
			if err := w.walk(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *walker) node(x map[string]any) error {
	typ, _ := x["type"].(string)
	class, _ := x["class"].(string)
	if class == "" {
		if typ == "TABLE_FUNCTION" && isUnnest(x) {
			return nil // UNNEST(array) in FROM reads the row's own values
		}
		if why, bad := refusedTypes[typ]; bad {
			return invalid("%s%s", why, w.at(x))
		}
		if strings.HasSuffix(typ, "_NODE") {
			switch typ {
			case "SELECT_NODE", "SET_OPERATION_NODE", "CTE_NODE", "RECURSIVE_CTE_NODE":
			default:
				return invalid("only SELECT statements are allowed (found %s)%s", typ, w.at(x))
			}
		}
		if typ == "BASE_TABLE" {
			return w.table(x)
		}
		return nil
	}
	switch class {
	case "FUNCTION", "WINDOW":
		return w.function(x)
	}
	return nil
}

// isUnnest reports whether a table function reference is UNNEST, the one
// table function Lake's dialect has: it expands a column of the rows
// being read and touches nothing else.
func isUnnest(x map[string]any) bool {
	fn, _ := x["function"].(map[string]any)
	if fn == nil {
		return false
	}
	name, _ := fn["function_name"].(string)
	schema, _ := fn["schema"].(string)
	catalog, _ := fn["catalog"].(string)
	return strings.EqualFold(name, "unnest") && schema == "" && catalog == ""
}

// table checks a table reference and points it at the store's view.
func (w *walker) table(x map[string]any) error {
	name, _ := x["table_name"].(string)
	schema, _ := x["schema_name"].(string)
	catalog, _ := x["catalog_name"].(string)
	if schema != "" || catalog != "" {
		return invalid("table %s: qualified table names are not allowed; name an event data store by its ID or ARN%s", strings.Trim(catalog+"."+schema+"."+name, "."), w.at(x))
	}
	if at, ok := x["at_clause"]; ok && at != nil {
		return invalid("AT clauses are not supported%s", w.at(x))
	}
	if w.ctes[strings.ToLower(name)] {
		return nil
	}
	spec, err := w.e.resolve(w.ctx, w.region, w.account, name)
	if err != nil {
		return err
	}
	x["table_name"] = viewName(spec.ID)
	if alias, _ := x["alias"].(string); alias == "" && name != spec.ID {
		// Columns qualified with the ARN as written keep resolving.
		x["alias"] = name
	}
	if !w.seen[spec.ID] {
		w.seen[spec.ID] = true
		w.stores = append(w.stores, spec)
	}
	return nil
}

// viewName is the name of a store's view in a query database.
func viewName(id string) string { return id }

// function checks a call against the allow-list and rewrites Trino's
// functions to DuckDB's.
func (w *walker) function(x map[string]any) error {
	name, _ := x["function_name"].(string)
	schema, _ := x["schema"].(string)
	catalog, _ := x["catalog"].(string)
	// DuckDB's parser itself writes some constructs as main.f (ROW(...)
	// is main.row); any other qualification is refused.
	if catalog != "" || schema != "" && schema != "main" {
		return invalid("function %s.%s: qualified function names are not allowed%s", strings.Trim(catalog+"."+schema, "."), name, w.at(x))
	}
	lower := strings.ToLower(name)
	if !allowed[lower] {
		return invalid("function %s is not supported%s", name, w.at(x))
	}
	children, _ := x["children"].([]any)
	if jsonFunctions[lower] && len(children) == 2 {
		if c, ok := children[1].(map[string]any); ok {
			if path, ok := constantString(c); ok {
				setConstantString(c, jsonPath(path))
			}
		}
	}
	if ms, ok := macroFor[lower]; ok {
		for _, m := range ms {
			if m.args == len(children) {
				x["function_name"] = m.name
				return nil
			}
		}
		return invalid("function %s does not take %d arguments%s", name, len(children), w.at(x))
	}
	if f, ok := formatFunctions[lower]; ok {
		if len(children) != 2 {
			return invalid("function %s takes 2 arguments%s", name, w.at(x))
		}
		c, _ := children[1].(map[string]any)
		format, ok := constantString(c)
		if !ok {
			return invalid("function %s: the format must be a string constant%s", name, w.at(x))
		}
		var conv string
		if f.joda {
			conv, ok = jodaToStrftime(format)
		} else {
			conv, ok = mysqlToStrftime(format)
		}
		if !ok {
			return invalid("function %s: format %q is not supported%s", name, format, w.at(x))
		}
		setConstantString(c, conv)
		x["function_name"] = f.duck
		return nil
	}
	if lower == "approx_distinct" && x["class"] == "FUNCTION" {
		// Exact: Trino's estimate is exact at the cardinalities an audit
		// query groups by, DuckDB's HyperLogLog is not (70 for 62 names on
		// the fixture); the memory it takes is under the query's limit.
		if len(children) < 1 || len(children) > 2 {
			return invalid("function %s takes 1 or 2 arguments%s", name, w.at(x))
		}
		x["function_name"] = "count"
		x["distinct"] = true
		x["children"] = children[:1]
		return nil
	}
	if r, ok := renames[lower]; ok {
		x["function_name"] = r
	}
	return nil
}

func constantString(c map[string]any) (string, bool) {
	if c == nil || c["class"] != "CONSTANT" {
		return "", false
	}
	val, _ := c["value"].(map[string]any)
	s, ok := val["value"].(string)
	return s, ok
}

func setConstantString(c map[string]any, s string) {
	if val, ok := c["value"].(map[string]any); ok {
		val["value"] = s
	}
}

// nameOutputColumns names the result columns as Trino does: a column
// reference by its (last) name, an aliased expression by its alias (both
// lower-cased, by Run), and anything else _colN by its position.
func nameOutputColumns(node map[string]any) {
	for node != nil && node["type"] == "SET_OPERATION_NODE" {
		node, _ = node["left"].(map[string]any)
	}
	if node == nil {
		return
	}
	list, _ := node["select_list"].([]any)
	for i, item := range list {
		e, ok := item.(map[string]any)
		if !ok || e["class"] == "STAR" {
			continue
		}
		if alias, _ := e["alias"].(string); alias != "" {
			e["alias"] = strings.ToLower(alias)
			continue
		}
		if e["class"] == "COLUMN_REF" {
			continue // DuckDB names it by its last part; Run lower-cases it
		}
		e["alias"] = fmt.Sprintf("_col%d", i)
	}
}
