package query

import (
	"fmt"
	"regexp"
	"strings"
)

// Lake's dialect is Trino's; the engine is DuckDB. The two agree on most
// of SQL and on many function names; where they differ, the checker
// renames a Trino function to its DuckDB equivalent (renames) or to a
// macro that gives Trino's answer (macros, created in every query's
// database before its configuration is locked). Everything a user may
// call is in allowed: a function outside it is refused, so nothing that
// reads files, settings or the environment can be named at all.

// trinoMacro is a DuckDB macro standing in for a Trino function, with
// the number of arguments it takes.
type trinoMacro struct {
	name string // the macro's name, "t_" + Trino's
	args int
	body string
}

// macroFor maps a Trino function (by name and argument count) to its
// macro.
var macroFor = map[string][]trinoMacro{
	// element_at(map, key) is the value in Trino, a one-element list in
	// DuckDB; element_at(array, i) is 1-based with negative indexes from
	// the end in both, which DuckDB's subscript gives for lists and maps.
	"element_at": {{"t_element_at", 2, "c[k]"}},
	// Trino answers NULL when the text is not JSON or the path selects an
	// object or array; DuckDB errors or returns the JSON text.
	"json_extract_scalar": {{"t_json_extract_scalar", 2, "CASE WHEN json_valid(j) AND json_type(j, p) NOT IN ('OBJECT', 'ARRAY') THEN json_extract_string(j, p) END"}},
	"json_extract":        {{"t_json_extract", 2, "CASE WHEN json_valid(j) THEN json_extract(j, p) END"}},
	"json_array_length":   {{"t_json_array_length", 1, "CASE WHEN json_valid(j) AND json_type(j) = 'ARRAY' THEN json_array_length(j) END"}},
	"json_size":           {{"t_json_size", 2, "CASE WHEN json_valid(j) THEN CASE json_type(j, p) WHEN 'ARRAY' THEN json_array_length(j, p) WHEN 'OBJECT' THEN len(json_keys(j, p)) ELSE 0 END END"}},
	"json_array_contains": {{"t_json_array_contains", 2, "CASE WHEN json_valid(j) AND json_type(j) = 'ARRAY' THEN list_contains(CAST(json_extract_string(j, '$[*]') AS VARCHAR[]), CAST(v AS VARCHAR)) END"}},
	// date_add(unit, n, t): DuckDB's date_add takes (t, interval).
	"date_add": {{"t_date_add", 3, "t + CAST(CAST(n AS VARCHAR) || ' ' || u AS INTERVAL)"}},
	// from_iso8601_timestamp keeps the zone, as Trino's does.
	"from_iso8601_timestamp": {{"t_from_iso8601_timestamp", 1, "CAST(s AS TIMESTAMPTZ)"}},
	"from_iso8601_date":      {{"t_from_iso8601_date", 1, "CAST(s AS DATE)"}},
	"to_iso8601":             {{"t_to_iso8601", 1, "strftime(t, '%Y-%m-%dT%H:%M:%S.%g')"}},
	"from_unixtime":          {{"t_from_unixtime", 1, "make_timestamp(CAST(x * 1000000 AS BIGINT))"}},
	// Trino answers NULL when nothing matches; DuckDB an empty string.
	"regexp_extract": {
		{"t_regexp_extract2", 2, "CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p) END"},
		{"t_regexp_extract3", 3, "CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p, g) END"},
	},
	// Trino replaces every match; DuckDB only the first without 'g'.
	"regexp_replace": {
		{"t_regexp_replace2", 2, "regexp_replace(s, p, '', 'g')"},
		{"t_regexp_replace3", 3, "regexp_replace(s, p, r, 'g')"},
	},
	// cardinality counts an array's elements or a map's entries; DuckDB's
	// len takes only lists and its cardinality only maps, and a macro
	// cannot choose by type, so both are counted through their JSON form.
	"cardinality": {{"t_cardinality", 1, "CASE WHEN x IS NOT NULL THEN CAST(coalesce(len(json_keys(to_json(x))), 0) + coalesce(json_array_length(to_json(x)), 0) AS BIGINT) END"}},
	// slice(array, start, length).
	"slice": {{"t_slice", 3, "list_slice(a, s, s + n - 1)"}},
}

// macroParams names each macro's parameters from its body's letters.
var macroParams = map[string]string{
	"t_element_at":             "c, k",
	"t_json_extract_scalar":    "j, p",
	"t_json_extract":           "j, p",
	"t_json_array_length":      "j",
	"t_json_size":              "j, p",
	"t_json_array_contains":    "j, v",
	"t_date_add":               "u, n, t",
	"t_from_iso8601_timestamp": "s",
	"t_from_iso8601_date":      "s",
	"t_to_iso8601":             "t",
	"t_from_unixtime":          "x",
	"t_regexp_extract2":        "s, p",
	"t_regexp_extract3":        "s, p, g",
	"t_regexp_replace2":        "s, p",
	"t_regexp_replace3":        "s, p, r",
	"t_cardinality":            "x",
	"t_slice":                  "a, s, n",
}

// macroStatements are the CREATE MACRO statements every query database
// runs before its configuration is locked.
func macroStatements() []string {
	var out []string
	for _, ms := range macroFor {
		for _, m := range ms {
			out = append(out, fmt.Sprintf("CREATE MACRO %s(%s) AS %s", m.name, macroParams[m.name], m.body))
		}
	}
	return out
}

// renames are Trino functions DuckDB has under another name with the
// same meaning.
var renames = map[string]string{
	"approx_percentile":    "approx_quantile",
	"arbitrary":            "any_value",
	"regexp_like":          "regexp_matches",
	"array_join":           "array_to_string",
	"array_distinct":       "list_distinct",
	"array_max":            "list_max",
	"array_min":            "list_min",
	"array_position":       "list_position",
	"array_sort":           "list_sort",
	"contains":             "list_contains",
	"split":                "string_split",
	"day_of_week":          "isodow",
	"dow":                  "isodow",
	"day_of_year":          "dayofyear",
	"doy":                  "dayofyear",
	"day_of_month":         "dayofmonth",
	"week_of_year":         "weekofyear",
	"year_of_week":         "isoyear",
	"yow":                  "isoyear",
	"date_diff":            "date_sub", // whole units elapsed, as Trino counts
	"to_unixtime":          "epoch",
	"json_parse":           "json",
	"json_format":          "to_json",
	"levenshtein_distance": "levenshtein",
	"hamming_distance":     "hamming",
	"truncate":             "trunc",
	"codepoint":            "unicode",
	"transform":            "list_transform",
	"filter":               "list_filter",
	"reduce":               "list_reduce",
	"count_if":             "count_if",
	"map_from_entries":     "map_from_entries",
}

// formatFunctions take a date-time format as their second argument, in
// Joda (format_datetime, parse_datetime) or MySQL (date_format,
// date_parse) syntax; the checker translates a constant format to
// strftime's and calls the DuckDB function named here.
var formatFunctions = map[string]struct {
	duck string
	joda bool
}{
	"format_datetime": {"strftime", true},
	"date_format":     {"strftime", false},
	"parse_datetime":  {"strptime", true},
	"date_parse":      {"strptime", false},
}

// allowed are the functions (by their name as written, lower-cased) a
// query may call: Trino's names, the DuckDB spellings of the same
// functions, and the internal names DuckDB's parser gives to operators
// and literals (count_star for count(*), to_days for INTERVAL '1' DAY,
// list_value for ARRAY[...]).
var allowed = setOf(
	// aggregates
	"count", "count_star", "sum", "min", "max", "avg", "arbitrary", "any_value", "approx_distinct",
	"approx_count_distinct", "approx_percentile", "approx_quantile", "array_agg", "list", "bool_and", "bool_or",
	"every", "count_if", "max_by", "min_by", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop",
	"var_samp", "first", "last", "median", "mode", "histogram", "string_agg", "listagg", "geometric_mean",
	// window functions
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
	"last_value", "nth_value",
	// conditional and general
	"coalesce", "nullif", "if", "greatest", "least", "typeof", "try", "ifnull",
	// strings
	"lower", "upper", "length", "char_length", "substr", "substring", "concat", "concat_ws", "replace", "trim",
	"ltrim", "rtrim", "lpad", "rpad", "reverse", "starts_with", "ends_with", "split_part", "strpos", "position",
	"chr", "codepoint", "unicode", "levenshtein_distance", "levenshtein", "hamming_distance", "hamming",
	"split", "string_split", "format", "printf", "left", "right", "repeat", "translate", "url_decode", "url_encode",
	"like_escape", "contains", "prefix", "suffix", "md5", "sha256", "sha1", "to_base64", "from_base64",
	"regexp_like", "regexp_matches", "regexp_full_match", "regexp_extract", "regexp_extract_all", "regexp_replace",
	"regexp_split_to_array", "regexp_count",
	// numbers
	"abs", "round", "floor", "ceil", "ceiling", "power", "pow", "sqrt", "cbrt", "ln", "log", "log10", "log2",
	"exp", "mod", "sign", "truncate", "trunc", "random", "pi", "infinity", "nan", "is_nan", "is_finite",
	"is_infinite", "bit_count", "width_bucket", "to_hex", "from_hex",
	// dates and times
	"now", "current_date", "current_time", "current_timestamp", "localtimestamp", "localtime",
	"get_current_timestamp", "date_trunc", "date_diff", "date_add", "date_sub", "date_part", "datepart",
	"extract", "year", "quarter", "month", "week", "week_of_year", "weekofyear", "day", "dayofmonth",
	"day_of_month", "day_of_week", "dow", "isodow", "dayofweek", "day_of_year", "doy", "dayofyear", "hour",
	"minute", "second", "millisecond", "year_of_week", "yow", "isoyear", "from_iso8601_timestamp",
	"from_iso8601_date", "to_iso8601", "from_unixtime", "to_unixtime", "epoch", "epoch_ms", "format_datetime",
	"date_format", "parse_datetime", "date_parse", "strftime", "strptime", "last_day_of_month", "last_day",
	"date", "make_date", "make_timestamp", "to_years", "to_months", "to_days", "to_hours", "to_minutes",
	"to_seconds", "to_milliseconds", "to_microseconds", "to_weeks", "timezone", "at_timezone",
	// arrays, maps, rows
	"element_at", "cardinality", "array_join", "array_to_string", "array_distinct", "list_distinct",
	"array_max", "list_max", "array_min", "list_min", "array_position", "list_position", "array_sort",
	"list_sort", "array_contains", "list_contains", "list_has", "slice", "list_slice", "array_slice",
	"list_value", "array_value", "list_extract", "array_extract", "map", "map_keys", "map_values",
	"map_entries", "map_from_entries", "map_concat", "map_extract", "map_extract_value", "struct_pack",
	"struct_extract", "row", "len", "array_length", "flatten", "list_filter", "filter", "list_transform",
	"transform", "array_concat", "list_concat", "array_remove", "array_union", "array_intersect",
	"array_except", "sequence", "range", "zip", "unnest", "reduce", "list_reduce",
	// JSON
	"json_extract", "json_extract_scalar", "json_extract_string", "json_array_length", "json_size",
	"json_array_contains", "json_parse", "json_format", "json", "to_json", "json_valid", "json_keys",
	"json_type", "is_json_scalar",
	// operators as DuckDB's parser spells them
	"+", "-", "*", "/", "//", "%", "^", "**", "||", "~~", "!~~", "~~*", "!~~*", "~~~", "!~~~", "&", "|", "<<", ">>",
	"~", "@", "<->", "->>", "->",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// jsonFunctions take a JSON path as their second argument.
var jsonFunctions = setOf("json_extract", "json_extract_scalar", "json_size")

// bracketKey matches a Trino JSON path's bracketed member, ["a b"].
var bracketKey = regexp.MustCompile(`\["((?:[^"\\]|\\.)*)"\]`)

// jsonPath rewrites a Trino JSON path for DuckDB: $["a b"] is $."a b".
func jsonPath(p string) string { return bracketKey.ReplaceAllString(p, `."$1"`) }

// jodaToStrftime translates a Joda-Time pattern (Trino's
// format_datetime) to strftime's; ok is false for a letter it does not
// know.
func jodaToStrftime(p string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(p); {
		c := p[i]
		if c == '\'' { // quoted literal text
			j := strings.IndexByte(p[i+1:], '\'')
			if j < 0 {
				return "", false
			}
			b.WriteString(strings.ReplaceAll(p[i+1:i+1+j], "%", "%%"))
			i += j + 2
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			if c == '%' {
				b.WriteString("%%")
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		n := 1
		for i+n < len(p) && p[i+n] == c {
			n++
		}
		var s string
		switch {
		case c == 'y' || c == 'Y' || c == 'u':
			s = "%Y"
			if n == 2 {
				s = "%y"
			}
		case c == 'M':
			switch {
			case n >= 4:
				s = "%B"
			case n == 3:
				s = "%b"
			case n == 2:
				s = "%m"
			default:
				s = "%-m"
			}
		case c == 'd':
			s = "%d"
			if n == 1 {
				s = "%-d"
			}
		case c == 'H':
			s = "%H"
			if n == 1 {
				s = "%-H"
			}
		case c == 'h':
			s = "%I"
		case c == 'm':
			s = "%M"
			if n == 1 {
				s = "%-M"
			}
		case c == 's':
			s = "%S"
			if n == 1 {
				s = "%-S"
			}
		case c == 'S':
			s = "%g"
			if n > 3 {
				s = "%f"
			}
		case c == 'E':
			s = "%a"
			if n >= 4 {
				s = "%A"
			}
		case c == 'a':
			s = "%p"
		case c == 'D':
			s = "%j"
		case c == 'Z' || c == 'z':
			s = "%z"
		default:
			return "", false
		}
		b.WriteString(s)
		i += n
	}
	return b.String(), true
}

// mysqlToStrftime translates a MySQL date_format pattern (Trino's
// date_format) to strftime's.
func mysqlToStrftime(p string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+1 >= len(p) {
			return "", false
		}
		i++
		switch p[i] {
		case 'Y', 'y', 'm', 'd', 'H', 'I', 'M', 'S', 'p', 'j', 'a', 'b', 'W':
			if p[i] == 'W' {
				b.WriteString("%A")
			} else {
				b.WriteByte('%')
				b.WriteByte(p[i])
			}
		case 'i':
			b.WriteString("%M")
		case 's':
			b.WriteString("%S")
		case 'c':
			b.WriteString("%-m")
		case 'e':
			b.WriteString("%-d")
		case 'f':
			b.WriteString("%f")
		case 'h':
			b.WriteString("%I")
		case 'k':
			b.WriteString("%-H")
		case 'l':
			b.WriteString("%-I")
		case 'T':
			b.WriteString("%H:%M:%S")
		case 'r':
			b.WriteString("%I:%M:%S %p")
		case '%':
			b.WriteString("%%")
		default:
			return "", false
		}
	}
	return b.String(), true
}
