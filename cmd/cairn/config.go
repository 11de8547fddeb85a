package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// envName is the environment variable that may set a flag: --data-dir is
// CAIRN_DATA_DIR.
func envName(flagName string) string {
	return "CAIRN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applySettings fills every flag not given on the command line, first from
// its CAIRN_* environment variable, then from the config file, so the
// precedence is: command line, environment, config file, default. The
// config file is TOML whose top-level keys are flag names; tables in it
// (notification topics, proxies) are read by the parts that own them and
// are returned raw.
func applySettings(fs *flag.FlagSet, configPath string, lookupEnv func(string) (string, bool)) (map[string]any, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var file map[string]any
	if configPath != "" {
		raw, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		if _, err := toml.Decode(string(raw), &file); err != nil {
			return nil, fmt.Errorf("parse config file %s: %w", configPath, err)
		}
		for k, v := range file {
			if _, isTable := v.(map[string]any); isTable {
				continue
			}
			if _, isTables := v.([]map[string]any); isTables {
				continue
			}
			if fs.Lookup(k) == nil {
				return nil, fmt.Errorf("config file %s: unknown setting %q", configPath, k)
			}
		}
	}
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if firstErr != nil || set[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, err)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if list, isList := v.([]any); isList {
				// A TOML array is the flag's comma-separated list
				// (regions = ["a", "b"] is --regions a,b).
				parts := make([]string, len(list))
				for i, e := range list {
					parts[i] = fmt.Sprint(e)
				}
				v = strings.Join(parts, ",")
			}
			if err := f.Value.Set(fmt.Sprint(v)); err != nil {
				firstErr = fmt.Errorf("config file %s: %s = %v: %w", configPath, f.Name, v, err)
			}
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return file, nil
}
