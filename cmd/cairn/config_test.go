package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestApplySettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cairn.toml")
	if err := os.WriteFile(cfgFile, []byte(`
listen = "127.0.0.1:9999"
data-dir = "/from/file"
account-id = "111111111111"

[[topics]]
name = "ops"
url = "http://127.0.0.1:9000/hook"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4747", "")
	dataDir := fs.String("data-dir", "./cairn-data", "")
	account := fs.String("account-id", "000000000000", "")
	store := fs.String("store", "", "")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:1234"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CAIRN_DATA_DIR": "/from/env"}
	file, err := applySettings(fs, cfgFile, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:1234" {
		t.Errorf("listen = %s: the command line must win", *listen)
	}
	if *dataDir != "/from/env" {
		t.Errorf("data-dir = %s: the environment must beat the file", *dataDir)
	}
	if *account != "111111111111" {
		t.Errorf("account-id = %s: the file must beat the default", *account)
	}
	if *store != "" {
		t.Errorf("store = %q: unset everywhere, must keep its default", *store)
	}
	if _, ok := file["topics"]; !ok {
		t.Error("tables in the config file must be returned to their owners")
	}
}

func TestApplySettingsRejectsUnknownAndBadValues(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, env, want string }{
		{"unknown key", `lisen = "x"`, "", `unknown setting "lisen"`},
		{"bad syntax", `listen = `, "", "parse config file"},
		{"bad env value", ``, "CAIRN_VERBOSE=maybe", "CAIRN_VERBOSE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".toml")
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.String("listen", "", "")
			fs.Bool("verbose", false, "")
			env := func(k string) (string, bool) {
				name, val, _ := strings.Cut(tc.env, "=")
				return val, k == name
			}
			_, err := applySettings(fs, p, env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestCapturesRefuseUnknownTables(t *testing.T) {
	var file map[string]any
	if _, err := toml.Decode("listen = \"127.0.0.1:1\"\n[[s3_proxys]]\nlisten = \"127.0.0.1:9000\"\n", &file); err != nil {
		t.Fatal(err)
	}
	_, err := captures(file, func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "unknown table(s) s3_proxys") {
		t.Fatalf("captures = %v, want the misspelt table named", err)
	}
	if cs, err := captures(map[string]any{"listen": "x"}, func(string) (string, bool) { return "", false }); err != nil || len(cs) != 0 {
		t.Fatalf("no tables: %v %v", cs, err)
	}
}
