package event

import (
	"bytes"
	"encoding/json"
	"testing"
)

// BenchmarkParse measures Parse on the dataset records, in the two shapes
// importers meet: compact (delivery files, the journal) and pretty-printed
// (Stratus-style exports). SetBytes makes -bench report MB/s.
func BenchmarkParse(b *testing.B) {
	_, recs := datasetRecords(b)
	var pretty, compact [][]byte
	var nPretty, nCompact int
	for _, r := range recs {
		var c, p bytes.Buffer
		if err := json.Compact(&c, r); err != nil {
			b.Fatal(err)
		}
		if err := json.Indent(&p, r, "", "   "); err != nil {
			b.Fatal(err)
		}
		compact = append(compact, c.Bytes())
		pretty = append(pretty, p.Bytes())
		nCompact += c.Len()
		nPretty += p.Len()
	}
	run := func(b *testing.B, set [][]byte, n int) {
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range set {
				if _, err := Parse(r); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("compact", func(b *testing.B) { run(b, compact, nCompact) })
	b.Run("pretty", func(b *testing.B) { run(b, pretty, nPretty) })
}
