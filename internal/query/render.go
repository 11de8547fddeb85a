package query

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Lake's results are strings, rendered as Trino renders values: a
// timestamp "2024-01-02 03:04:05.000", a boolean "true", a row
// "{field=value, ...}", a map "{key=value, ...}", an array "[a, b]", a
// NULL inside them "null". duckType is the part of a column's DuckDB
// type the rendering needs: struct field order, which the driver's Go
// maps do not keep.
type duckType struct {
	name   string      // STRUCT, MAP, LIST, TIMESTAMP, ...
	fields []string    // STRUCT: field names in order
	elems  []*duckType // STRUCT: field types; LIST: [element]; MAP: [key, value]
}

// parseType reads a DuckDB type name such as
// STRUCT("type" VARCHAR, "arn" VARCHAR)[] or MAP(VARCHAR, VARCHAR).
func parseType(s string) *duckType {
	t, _ := parseTypeAt(strings.TrimSpace(s), 0)
	return t
}

func parseTypeAt(s string, i int) (*duckType, int) {
	start := i
	for i < len(s) && s[i] != '(' && s[i] != '[' && s[i] != ',' && s[i] != ')' {
		i++
	}
	t := &duckType{name: strings.ToUpper(strings.TrimSpace(s[start:i]))}
	if i < len(s) && s[i] == '(' {
		i++
		switch t.name {
		case "STRUCT":
			for i < len(s) && s[i] != ')' {
				for i < len(s) && s[i] == ' ' {
					i++
				}
				var name string
				if i < len(s) && s[i] == '"' {
					j := i + 1
					for j < len(s) {
						if s[j] == '"' {
							if j+1 < len(s) && s[j+1] == '"' {
								j += 2
								continue
							}
							break
						}
						j++
					}
					name = strings.ReplaceAll(s[i+1:j], `""`, `"`)
					i = j + 1
				} else {
					j := i
					for j < len(s) && s[j] != ' ' {
						j++
					}
					name = s[i:j]
					i = j
				}
				for i < len(s) && s[i] == ' ' {
					i++
				}
				var ft *duckType
				ft, i = parseTypeAt(s, i)
				t.fields = append(t.fields, name)
				t.elems = append(t.elems, ft)
				if i < len(s) && s[i] == ',' {
					i++
				}
			}
		case "MAP":
			for i < len(s) && s[i] != ')' {
				for i < len(s) && s[i] == ' ' {
					i++
				}
				var et *duckType
				et, i = parseTypeAt(s, i)
				t.elems = append(t.elems, et)
				if i < len(s) && s[i] == ',' {
					i++
				}
			}
		default: // DECIMAL(p,s) and the like
			depth := 1
			for i < len(s) && depth > 0 {
				switch s[i] {
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth > 0 {
					i++
				}
			}
		}
		if i < len(s) && s[i] == ')' {
			i++
		}
	}
	for i+1 < len(s) && s[i] == '[' {
		j := strings.IndexByte(s[i:], ']')
		if j < 0 {
			break
		}
		t = &duckType{name: "LIST", elems: []*duckType{t}}
		i += j + 1
	}
	return t, i
}

func (t *duckType) elem(i int) *duckType {
	if t == nil || i >= len(t.elems) {
		return nil
	}
	return t.elems[i]
}

// render writes a non-NULL value as Lake shows it.
func render(v any, t *duckType) string {
	var b strings.Builder
	renderTo(&b, v, t)
	return b.String()
}

func renderTo(b *strings.Builder, v any, t *duckType) {
	name := ""
	if t != nil {
		name = t.name
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		b.WriteString(x)
	case []byte:
		b.WriteString(string(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		fmt.Fprint(b, x)
	case float32:
		b.WriteString(renderFloat(float64(x), 32))
	case float64:
		b.WriteString(renderFloat(x, 64))
	case *big.Int:
		b.WriteString(x.String())
	case duckdb.Decimal:
		b.WriteString(renderDecimal(x))
	case duckdb.UUID:
		b.WriteString(x.String())
	case duckdb.Interval:
		b.WriteString(renderInterval(x))
	case time.Time:
		switch name {
		case "DATE":
			b.WriteString(x.UTC().Format("2006-01-02"))
		case "TIME":
			b.WriteString(x.UTC().Format("15:04:05.000"))
		case "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ":
			b.WriteString(x.UTC().Format("2006-01-02 15:04:05.000") + " UTC")
		default:
			b.WriteString(x.UTC().Format("2006-01-02 15:04:05.000"))
		}
	case duckdb.OrderedMap:
		b.WriteByte('{')
		keys, vals := x.Keys(), x.Values()
		for i := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			renderTo(b, keys[i], t.elem(0))
			b.WriteByte('=')
			renderTo(b, vals[i], t.elem(1))
		}
		b.WriteByte('}')
	case []any:
		if name == "JSON" {
			renderJSON(b, x)
			return
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			renderTo(b, e, t.elem(0))
		}
		b.WriteByte(']')
	case map[string]any:
		if name == "JSON" {
			renderJSON(b, x)
			return
		}
		b.WriteByte('{')
		fields := []string(nil)
		if t != nil && t.name == "STRUCT" {
			fields = t.fields
		}
		if len(fields) == 0 {
			for k := range x {
				fields = append(fields, k)
			}
			sort.Strings(fields)
		}
		for i, f := range fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f)
			b.WriteByte('=')
			var ft *duckType
			if t != nil && i < len(t.elems) {
				ft = t.elems[i]
			}
			renderTo(b, x[f], ft)
		}
		b.WriteByte('}')
	default:
		if name == "JSON" {
			renderJSON(b, x)
			return
		}
		fmt.Fprint(b, x)
	}
}

// renderJSON writes a JSON value (which the driver hands back decoded) as
// compact JSON text, as Trino shows a json value.
func renderJSON(b *strings.Builder, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		fmt.Fprint(b, v)
		return
	}
	b.Write(out)
}

// renderFloat writes a double as Java's Double.toString does for the
// common cases: "1.5", "2.0", "1.0E10".
func renderFloat(f float64, bits int) string {
	if f == float64(int64(f)) && f < 1e7 && f > -1e7 {
		return strconv.FormatFloat(f, 'f', 1, bits)
	}
	a := f
	if a < 0 {
		a = -a
	}
	if a >= 1e-3 && a < 1e7 {
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	s := strconv.FormatFloat(f, 'E', -1, bits)
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	exp = strings.TrimPrefix(exp, "+")
	return mant + "E" + exp
}

func renderDecimal(d duckdb.Decimal) string {
	v := new(big.Int).Set(d.Value)
	neg := v.Sign() < 0
	v.Abs(v)
	s := v.String()
	scale := int(d.Scale)
	if scale > 0 {
		for len(s) <= scale {
			s = "0" + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func renderInterval(iv duckdb.Interval) string {
	if iv.Months != 0 {
		return fmt.Sprintf("%d-%d", iv.Months/12, iv.Months%12)
	}
	d := time.Duration(iv.Micros) * time.Microsecond
	h := int64(d / time.Hour)
	m := int64(d/time.Minute) % 60
	s := int64(d/time.Second) % 60
	ms := int64(d/time.Millisecond) % 1000
	return fmt.Sprintf("%d %02d:%02d:%02d.%03d", iv.Days, h, m, s, ms)
}
