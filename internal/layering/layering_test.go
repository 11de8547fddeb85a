package layering

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cairn-audit/cairn/"

// allowed lists, for every package of the module, the module's packages its
// non-test files may import. A new package or a new import direction is a
// deliberate change to this table, reviewed with the code. Rules the table
// encodes:
//   - the record (event), the wire plumbing (awsproto), metrics, state, the
//     object-store interface and the key store import nothing of Cairn's;
//   - captures (s3proxy, httpproxy, k8saudit) see only the capture
//     contract, the journal, the record, the wire plumbing, metrics and
//     rate-limited logs: never the server, the API, the console, delivery
//     or digests;
//   - only cmd/cairn and servertest import the server, the composition root.
var allowed = map[string][]string{
	"audit":                          {},
	"cmd/cairn":                      {"internal/api", "internal/apiclient", "internal/auth", "internal/awsproto", "internal/bench", "internal/bench/lakebench", "internal/capture", "internal/datadir", "internal/delivery", "internal/delivery/notify", "internal/digest", "internal/event", "internal/httpproxy", "internal/journal", "internal/k8saudit", "internal/objstore", "internal/objstore/file", "internal/objstore/stores", "internal/region", "internal/s3proxy", "internal/selector", "internal/server", "internal/state", "internal/trail"},
	"examples/notes-service":         {"audit"},
	"internal/api":                   {"internal/awsproto", "internal/channel", "internal/digest", "internal/event", "internal/history", "internal/lake", "internal/lake/dashboards", "internal/lake/imports", "internal/query", "internal/selector", "internal/state", "internal/trail", "internal/tags"},
	"internal/apiclient":             {"internal/channel"},
	"internal/auth":                  {"internal/datadir"},
	"internal/awsproto":              {},
	"internal/bench/lakebench":       {"internal/bench", "internal/event", "internal/journal", "internal/lake", "internal/lake/ingest", "internal/objstore/file", "internal/query"},
	"internal/bench":                 {"internal/apiclient", "internal/channel", "internal/event"},
	"internal/capture":               {"internal/auth", "internal/journal"},
	"internal/channel":               {"internal/awsproto", "internal/event", "internal/metrics", "internal/selector", "internal/state", "internal/tags"},
	"internal/console":               {"internal/api", "internal/awsproto", "internal/event", "internal/history", "internal/selector", "internal/trail"},
	"internal/datadir":               {},
	"internal/datasets":              {"internal/testenv"},
	"internal/delivery":              {"internal/delivery/notify", "internal/event", "internal/journal", "internal/metrics", "internal/objstore", "internal/selector", "internal/state", "internal/trail"},
	"internal/delivery/notify":       {},
	"internal/digest":                {"internal/datadir", "internal/delivery", "internal/objstore", "internal/state", "internal/trail"},
	"internal/event":                 {},
	"internal/golden":                {},
	"internal/history":               {"internal/awsproto", "internal/event", "internal/journal", "internal/metrics"},
	"internal/httpproxy":             {"internal/capture", "internal/event", "internal/metrics", "internal/ratelog"},
	"internal/journal":               {"internal/metrics"},
	"internal/journal/journaltest":   {},
	"internal/k8saudit":              {"internal/awsproto", "internal/capture", "internal/event", "internal/journal", "internal/metrics", "internal/ratelog"},
	"internal/lake":                  {"internal/awsproto", "internal/selector", "internal/state", "internal/tags"},
	"internal/lake/dashboards":       {"internal/awsproto", "internal/state", "internal/tags"},
	"internal/lake/imports":          {"internal/awsproto", "internal/event", "internal/lake", "internal/objstore", "internal/state"},
	"internal/lake/ingest":           {"internal/event", "internal/journal", "internal/lake", "internal/metrics", "internal/objstore", "internal/selector"},
	"internal/layering":              {},
	"internal/metrics":               {},
	"internal/objstore":              {},
	"internal/objstore/file":         {"internal/objstore"},
	"internal/objstore/objstoretest": {"internal/objstore"},
	"internal/objstore/s3":           {"internal/objstore"},
	"internal/objstore/s3/s3test":    {"internal/objstore/s3"},
	"internal/objstore/stores":       {"internal/objstore", "internal/objstore/file", "internal/objstore/s3"},
	"internal/query":                 {"internal/awsproto", "internal/lake", "internal/objstore", "internal/state"},
	"internal/query/querytest":       {"internal/datasets", "internal/testenv"},
	"internal/ratelog":               {},
	"internal/region":                {},
	"internal/s3proxy":               {"internal/capture", "internal/event", "internal/metrics", "internal/ratelog"},
	"internal/selector":              {"internal/awsproto"},
	"internal/server":                {"internal/api", "internal/apiclient", "internal/auth", "internal/awsproto", "internal/capture", "internal/channel", "internal/console", "internal/datadir", "internal/delivery", "internal/delivery/notify", "internal/digest", "internal/event", "internal/history", "internal/journal", "internal/lake", "internal/lake/dashboards", "internal/lake/imports", "internal/lake/ingest", "internal/objstore", "internal/objstore/stores", "internal/query", "internal/ratelog", "internal/region", "internal/state", "internal/tags", "internal/trail"},
	"internal/server/servertest":     {"internal/auth", "internal/awsproto", "internal/datadir", "internal/server"},
	"internal/state":                 {},
	"internal/testenv":               {},
	"internal/tlstest":               {},
	"internal/trail":                 {"internal/awsproto", "internal/objstore", "internal/selector", "internal/state", "internal/tags"},
	"internal/tags":                  {"internal/awsproto", "internal/state"},
}

// TestImportDirections reads every package's non-test imports (go/build,
// the same file selection as the build) and checks each against allowed.
func TestImportDirections(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			if _, none := err.(*build.NoGoError); none {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		may, known := allowed[rel]
		if !known {
			t.Errorf("package %s is not in the layering table: add it with the packages it may import", rel)
			return nil
		}
		for _, imp := range pkg.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if ours && !slices.Contains(may, dep) {
				t.Errorf("%s imports %s, which the layering table does not allow", rel, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the module: %v", err)
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("the layering table names %s, which no longer exists", pkg)
		}
	}
}
