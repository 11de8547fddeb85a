package ingest

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/objstore"
)

// Imported files: events copied from trail log files by StartImport
// (internal/lake/imports) live next to the journal's files, in the same
// partitions, named after the import chunk they hold:
//
//	eventdatastore/<store ID>/eventdate=YYYY-MM-DD/import-<name>.parquet
//
// An import writes a chunk again under the same name after a crash, so the
// object is replaced rather than added to. Imported files take no part in
// the journal ranges' coverage and are never merged; retention drops them
// with their partition.
const importFilePrefix = "import-"

// importNameRE is the form of an import chunk's name (an import ID, a hash
// of the source key and a chunk number, from internal/lake/imports).
var importNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,200}$`)

// importKey names an imported file.
func importKey(id, date, name string) string {
	return storePrefix(id) + partitionKey + date + "/" + importFilePrefix + name + fileSuffix
}

// WriteImport stores records (CloudTrail records' JSON, as trail log files
// hold them) as events of the store under name, one file per day of
// eventTime, replacing what an earlier call with the same name wrote. It
// is the Sink of internal/lake/imports. Records that are not CloudTrail
// records are skipped and counted as invalid.
func (in *Ingester) WriteImport(ctx context.Context, spec lake.Spec, name string, records [][]byte) error {
	if !importNameRE.MatchString(name) {
		return fmt.Errorf("lake ingest: import chunk name %q is not valid", name)
	}
	if kindOf(spec.Category) != kindEvents {
		return fmt.Errorf("lake ingest: the store %s holds %s events; trail events cannot be imported into it", spec.ID, spec.Category)
	}
	var a arena
	byDay := map[string][]Row{}
	for _, raw := range records {
		src := newSource(raw, &a)
		h, ok := readHeader(src)
		if !ok || h.category == lake.CategoryActivityAuditLog {
			in.m.skipped.WithLabelValues("invalid").Inc()
			continue
		}
		row, err := convertSafely(func() (Row, error) { return makeRow(src, &h) })
		if err != nil {
			in.m.skipped.WithLabelValues("invalid").Inc()
			continue
		}
		day := dayOf(h.eventTime)
		byDay[day] = append(byDay[day], row)
	}
	days := make([]string, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	slices.Sort(days)
	in.mu.Lock()
	s := in.stores[spec.ID]
	in.mu.Unlock()
	for _, day := range days {
		rows := byDay[day]
		data, err := encodeBytes(rows, sortOrder(rows), 0, 0)
		if err != nil {
			return fmt.Errorf("lake ingest: encode import %s of %s: %w", name, spec.ID, err)
		}
		key := importKey(spec.ID, day, name)
		if err := in.obj.Put(ctx, in.opts.Bucket, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{ContentType: "application/vnd.apache.parquet"}); err != nil {
			return fmt.Errorf("lake ingest: write %s: %w", key, err)
		}
		in.m.filesWritten.Inc()
		in.m.bytesWritten.Add(float64(len(data)))
		if s != nil {
			s.filesMu.Lock()
			s.files[key] = fileRef{Key: key, Date: day, Size: int64(len(data)), Import: true}
			s.filesMu.Unlock()
		}
	}
	return nil
}
