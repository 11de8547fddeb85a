package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cairn-audit/cairn/internal/server"
)

// captureTable is a config-file table that declares captures, with the
// function (in the capture's own file here) that turns it into them.
type captureTable struct {
	name  string
	parse func(raw any, lookupEnv func(string) (string, bool)) ([]server.Capture, error)
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
func captures(file map[string]any, lookupEnv func(string) (string, bool)) ([]server.Capture, error) {
	known := map[string]bool{}
	for _, t := range otherTables {
		known[t] = true
	}
	var out []server.Capture
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
