package event

import (
	"compress/gzip"
	"encoding/json"
	"github.com/cairn-audit/cairn/internal/datasets"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// datasetsDir finds shared/datasets by walking up from the test's working
// directory: the datasets live next to the repository, never copied into it.
func datasetsDir(t testing.TB) string {
	t.Helper()
	return datasets.Dir(t)
}

func stratusFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(datasetsDir(t), "stratus-red-team-detonation-logs", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Stratus files (err %v)", err)
	}
	sort.Strings(files)
	return files
}

func flaws2Files(t testing.TB) []string {
	t.Helper()
	var files []string
	root := filepath.Join(datasetsDir(t), "flaws2-cloud")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json.gz") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no flaws2 files under %s (err %v)", root, err)
	}
	sort.Strings(files)
	return files
}

// datasetRecords returns every record of the Stratus and flaws2 sets as the
// raw bytes encoding/json's decoder sees them, keyed "file#index". It reads
// the files independently of ReadRecords, so it can check that reader.
func datasetRecords(t testing.TB) (names []string, recs [][]byte) {
	t.Helper()
	for _, f := range stratusFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(b, &arr); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, r := range arr {
			names = append(names, filepath.Base(f)+"#"+itoa(i))
			recs = append(recs, r)
		}
	}
	for _, f := range flaws2Files(t) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, err := io.ReadAll(zr)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var env struct{ Records []json.RawMessage }
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, r := range env.Records {
			names = append(names, filepath.Base(f)+"#"+itoa(i))
			recs = append(recs, r)
		}
	}
	return names, recs
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
