package ingest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Object layout (Hive-style partitions, readable by any engine):
//
//	eventdatastore/<store ID>/eventdate=YYYY-MM-DD/<first>-<last>.parquet
//
// <first> and <last> are the journal sequence numbers (20 digits, zero
// padded, so that names sort by them) of the range of entries the file was
// made from: a flush covers the entries its store's cursor moved over, a
// compacted file the union of the files it merged. A name is a function of
// the range, so writing a range again (a replay after a crash) replaces the
// same object instead of adding a copy; and a file whose range lies inside
// another file's range in the same partition holds nothing that file does
// not, so readers skip it ("covered").
const (
	// Prefix is the key prefix of every store's files in the bucket.
	Prefix = "eventdatastore/"
	// partitionKey names the partition column.
	partitionKey = "eventdate="
	fileSuffix   = ".parquet"
	dateLayout   = "2006-01-02"
	seqDigits    = 20
)

// fileRef is one Parquet object of a store.
type fileRef struct {
	Key         string
	Date        string // YYYY-MM-DD
	First, Last uint64
	Size        int64
	// Import: an imported file (see imported.go); First and Last are 0.
	Import bool
}

// storePrefix is the prefix of a store's objects.
func storePrefix(id string) string { return Prefix + id + "/" }

// fileKey names the object of a store's range in a partition.
func fileKey(id, date string, first, last uint64) string {
	return fmt.Sprintf("%s%s%s/%0*d-%0*d%s", storePrefix(id), partitionKey, date, seqDigits, first, seqDigits, last, fileSuffix)
}

// parseKey reads a store object's key; ok is false for anything that is not
// one of its Parquet files (leftovers, other tools' files).
func parseKey(id, key string) (fileRef, bool) {
	rest, ok := strings.CutPrefix(key, storePrefix(id)+partitionKey)
	if !ok {
		return fileRef{}, false
	}
	date, name, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(name, "/") {
		return fileRef{}, false
	}
	if _, err := time.Parse(dateLayout, date); err != nil {
		return fileRef{}, false
	}
	name, ok = strings.CutSuffix(name, fileSuffix)
	if !ok {
		return fileRef{}, false
	}
	if chunk, isImport := strings.CutPrefix(name, importFilePrefix); isImport {
		if !importNameRE.MatchString(chunk) {
			return fileRef{}, false
		}
		return fileRef{Key: key, Date: date, Import: true}, true
	}
	a, b, ok := strings.Cut(name, "-")
	if !ok || len(a) != seqDigits || len(b) != seqDigits {
		return fileRef{}, false
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || first == 0 || first > last {
		return fileRef{}, false
	}
	return fileRef{Key: key, Date: date, First: first, Last: last}, true
}

// current returns the files of the list that no other file covers, sorted
// by partition and range. Within a partition the ranges of current files
// never overlap: flushes cover disjoint ranges and a compacted file covers
// whole files.
func current(files []fileRef) []fileRef {
	var imported []fileRef
	sorted := make([]fileRef, 0, len(files))
	for _, f := range files {
		if f.Import {
			imported = append(imported, f) // never covered, never covering
		} else {
			sorted = append(sorted, f)
		}
	}
	slices.SortFunc(sorted, func(a, b fileRef) int {
		if c := strings.Compare(a.Date, b.Date); c != 0 {
			return c
		}
		if a.First != b.First {
			if a.First < b.First {
				return -1
			}
			return 1
		}
		// The widest range first, so that it covers the others that start
		// with it.
		switch {
		case a.Last > b.Last:
			return -1
		case a.Last < b.Last:
			return 1
		}
		return 0
	})
	out := sorted[:0]
	var date string
	var reach uint64 // the highest Last of the partition so far
	for i, f := range sorted {
		if i == 0 || f.Date != date {
			date, reach = f.Date, 0
		}
		if f.Last <= reach {
			continue // inside a file seen before (or the same range twice)
		}
		reach = f.Last
		out = append(out, f)
	}
	slices.SortFunc(imported, func(a, b fileRef) int { return strings.Compare(a.Key, b.Key) })
	return append(out, imported...)
}

// covered returns the files of the list that another file covers.
func covered(files []fileRef) []fileRef {
	cur := current(files)
	keep := make(map[string]bool, len(cur))
	for _, f := range cur {
		keep[f.Key] = true
	}
	var out []fileRef
	for _, f := range files {
		if !keep[f.Key] {
			out = append(out, f)
		}
	}
	return out
}

// dayOf is the partition of an event time.
func dayOf(t time.Time) string { return t.UTC().Format(dateLayout) }
