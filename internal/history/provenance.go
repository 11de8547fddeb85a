package history

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-audit/cairn/internal/event"
)

// importRange is one import: the journal sequence numbers [first, end) of
// its records and their provenance.
type importRange struct {
	first, end uint64
	prov       event.ImportProvenance
}

func (r importRange) covers(seq uint64) bool { return seq >= r.first && seq < r.end }

// lastImport returns the import with the greatest first sequence number
// not after seq, read through it (positioned anywhere over the 'p' keys);
// ok is false when there is none. Imports never overlap (a header inside
// an import is data), so it is the only one that can cover seq.
func lastImport(it *pebble.Iterator, seq uint64) (r importRange, ok bool, err error) {
	if seq == ^uint64(0) {
		if !it.Last() {
			return r, false, it.Error()
		}
	} else if !it.SeekLT(importKey(seq + 1)) {
		return r, false, it.Error()
	}
	k := it.Key()
	if len(k) != 9 || k[0] != prefixImport {
		return r, false, nil
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return r, false, err
	}
	r.first = binary.BigEndian.Uint64(k[1:])
	if err := json.Unmarshal(v, &r.prov); err != nil {
		return r, false, fmt.Errorf("import provenance at journal seq %d is unreadable: %w", r.first, err)
	}
	r.end = r.first + uint64(r.prov.Records)
	return r, true, nil
}

// importIterOptions bounds an iterator to the provenance keys.
func importIterOptions() *pebble.IterOptions {
	return &pebble.IterOptions{LowerBound: []byte{prefixImport}, UpperBound: []byte{prefixImport + 1}}
}

// currentImport returns the import that may still cover the journal
// entries after cursor (the last one that began at or before cursor+1).
func (h *History) currentImport(cursor uint64) (importRange, error) {
	it, err := h.db.NewIter(importIterOptions())
	if err != nil {
		return importRange{}, fmt.Errorf("reading import provenance: %w", err)
	}
	r, _, err := lastImport(it, cursor+1)
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return importRange{}, fmt.Errorf("reading import provenance: %w", err)
	}
	return r, nil
}

// noteImport is called by the indexer for every parsed entry: a header
// that is not itself inside an import starts a new import.
func (ix *indexer) noteImport(seq uint64, r *event.Record) {
	if ix.imp.covers(seq) {
		return
	}
	prov, ok := event.ImportHeader(r)
	if !ok || prov.Records == 0 {
		return
	}
	ix.imp = importRange{first: seq + 1, end: seq + 1 + uint64(prov.Records), prov: prov}
	ix.newImports = append(ix.newImports, ix.imp)
}

// writeImports adds the provenance keys of the imports that began in the
// batch.
func (ix *indexer) writeImports(b *pebble.Batch) error {
	for _, r := range ix.newImports {
		v, err := json.Marshal(r.prov)
		if err != nil {
			return fmt.Errorf("encoding the provenance of import %s: %w", r.prov.ImportID, err)
		}
		if err := b.Set(importKey(r.first), v, nil); err != nil {
			return err
		}
	}
	return nil
}

// provenance returns the import provenance of the event at p, nil for a
// native event.
func (s *scan) provenance(p pos) (*event.ImportProvenance, error) {
	if s.imports == nil {
		it, err := s.snap.NewIterWithContext(s.ctx, importIterOptions())
		if err != nil {
			return nil, err
		}
		s.imports = it
	}
	seq := p.seq()
	r, ok, err := lastImport(s.imports, seq)
	if err != nil || !ok || !r.covers(seq) {
		return nil, err
	}
	prov := r.prov
	return &prov, nil
}
