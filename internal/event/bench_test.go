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

// BenchmarkReadRecords streams a gzip delivery file of ~1,400 dataset
// records (~1.8 MB uncompressed) through ReadRecords and Parse, the import
// path. MB/s counts uncompressed bytes.
func BenchmarkReadRecords(b *testing.B) {
	_, recs := datasetRecords(b)
	var plain bytes.Buffer
	plain.WriteString(`{"Records":[`)
	for i := 0; i < 4; i++ {
		for j, r := range recs {
			if i > 0 || j > 0 {
				plain.WriteByte(',')
			}
			if err := json.Compact(&plain, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	plain.WriteString(`]}`)
	file := gz(b, plain.String())
	b.SetBytes(int64(plain.Len()))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := ReadRecords(bytes.NewReader(file), func(raw []byte) error {
			if _, err := Parse(raw); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil || n != 4*len(recs) {
			b.Fatalf("%d records, %v", n, err)
		}
	}
}
