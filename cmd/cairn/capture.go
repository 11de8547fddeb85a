package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/capture"
)

// captureTable is a config-file table that declares captures, with the
// function (in the capture's own file here) that turns it into them.
type captureTable struct {
	name  string
	parse func(raw any, lookupEnv func(string) (string, bool)) ([]capture.Capture, error)
}

// captureTables are the config-file tables that declare captures.
func captureTables() []captureTable {
	return []captureTable{
		{"s3_proxy", parseS3Proxies},
		{"http_proxy", parseHTTPProxies},
		{"kubernetes_audit", parseKubernetesAudit},
	}
}

// otherTables are config-file tables read elsewhere.
var otherTables = []string{"topics"}

// captures builds every capture the config file declares and refuses
// tables nobody reads, so a misspelt [[s3_proxy]] is an error rather than
// an unrecorded upstream.
func captures(file map[string]any, lookupEnv func(string) (string, bool)) ([]capture.Capture, error) {
	known := map[string]bool{}
	for _, t := range otherTables {
		known[t] = true
	}
	var out []capture.Capture
	for _, t := range captureTables() {
		known[t.name] = true
		raw, ok := file[t.name]
		if !ok {
			continue
		}
		cs, err := t.parse(raw, lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		out = append(out, cs...)
	}
	var unknown []string
	for k, v := range file {
		switch v.(type) {
		case map[string]any, []map[string]any:
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown table(s) %s", strings.Join(unknown, ", "))
	}
	return out, nil
}

// tables accepts what the TOML decoder makes of [[name]] (or of a single
// [name] table, taken as a list of one).
func tables(name string, raw any) ([]map[string]any, error) {
	switch v := raw.(type) {
	case map[string]any:
		return []map[string]any{v}, nil
	case []map[string]any:
		return v, nil
	case []any:
		out := make([]map[string]any, 0, len(v))
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: want a table, got %T", name, i, e)
			}
			out = append(out, m)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want a table or an array of tables, got %T", name, raw)
}

// tableReader reads typed values from a decoded TOML table, keeping the
// first error (which names the key and what was wrong with it), so every
// capture's settings are read, and refused, the same way.
type tableReader struct {
	t   map[string]any
	err error
}

func (r *tableReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *tableReader) known(keys []string) {
	var unknown []string
	for k := range r.t {
		if !slices.Contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		r.fail("unknown key(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(keys, ", "))
	}
}

func (r *tableReader) str(key string) string {
	v, ok := r.t[key]
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		r.fail("%s: want a string, got %T", key, v)
	}
	return s
}

// strs takes an array of strings, or a single string as a list of one.
func (r *tableReader) strs(key string) []string {
	v, ok := r.t[key]
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, isStr := e.(string)
			if !isStr {
				r.fail("%s[%d]: want a string, got %T", key, i, e)
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	r.fail("%s: want a string or an array of strings, got %T", key, v)
	return nil
}

// list takes an array of strings only; present but empty is an empty,
// non-nil list.
func (r *tableReader) list(key string) []string {
	v, ok := r.t[key]
	if !ok {
		return nil
	}
	items, isList := v.([]any)
	if !isList {
		r.fail("%s: want an array of strings, got %T", key, v)
		return nil
	}
	out := make([]string, 0, len(items))
	for i, e := range items {
		s, isStr := e.(string)
		if !isStr {
			r.fail("%s[%d]: want a string, got %T", key, i, e)
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (r *tableReader) bool(key string, def bool) bool {
	v, ok := r.t[key]
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		r.fail("%s: want true or false, got %T", key, v)
	}
	return b
}

func (r *tableReader) int(key string) int64 {
	v, ok := r.t[key]
	if !ok {
		return 0
	}
	n, isInt := v.(int64)
	if !isInt || n <= 0 {
		r.fail("%s: want a positive integer, got %v", key, v)
	}
	return n
}

// duration takes Go duration strings ("30s", "5m").
func (r *tableReader) duration(key string) time.Duration {
	v, ok := r.t[key]
	if !ok {
		return 0
	}
	s, isStr := v.(string)
	if !isStr {
		r.fail("%s: want a duration string such as \"30s\", got %T", key, v)
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.fail("%s: %q is not a positive duration such as \"30s\"", key, s)
		return 0
	}
	return d
}
