package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/term"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal"
)

const importUsage = `usage: cairn import [flags] FILE|DIR...

Imports existing CloudTrail records into a running Cairn, so that they show
up in the event history and are delivered by its trails. Files may be
CloudTrail delivery files (.json.gz), JSON arrays of records, single
records or JSON Lines, gzipped or not; directories are walked for *.json,
*.json.gz, *.jsonl and *.ndjson files. Records keep their eventID and
eventTime. Import needs an admin key.

  cairn import --data-dir /var/lib/cairn AWSLogs/
  cairn import --endpoint-url https://cairn.internal:4747 --profile cairn-admin logs.jsonl

JSON Lines files (.jsonl, .ndjson, or any file whose first line is one
whole record) are read line by line: every non-blank line is one record,
and a bad line is reported as FILE:LINE without stopping the file. Other
shapes report a bad record as FILE: record N. Records = Accepted +
Rejected; blank lines are not records.

Exits 1 when any record was rejected (every reason is listed, up to 100000).
Event history keeps only the last 90 days by default: older records are
stored and delivered, but LookupEvents does not return them.
`

// runImport is `cairn import`.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("cairn import", flag.ContinueOnError)
	fset.SetOutput(stderr)
	concurrency := fset.Int("concurrency", 4, "import requests in flight")
	batch := fset.Int("batch", bench.ImportBatchRecords, "records per request (requests also stop at 4 MB)")
	rf := addRemoteFlags(fset)
	usageWithFlags(fset, importUsage, stderr)
	pos, err := parseInterspersed(fset, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fset.Usage()
		return errors.New("name at least one file or directory")
	}
	if *concurrency < 1 || *batch < 1 {
		return errors.New("--concurrency and --batch must be at least 1")
	}
	files, err := importFiles(pos)
	if err != nil {
		return err
	}
	creds, err := rf.credentials(ctx)
	if err != nil {
		return err
	}
	client := apiclient.NewClient(rf.endpoint, rf.region, creds, &http.Client{Transport: apiclient.NewTransport(*concurrency)})
	im := &importer{client: client, batch: *batch, files: len(files)}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		im.progress = stderr
	}
	sum, err := im.run(ctx, files, *concurrency)
	if err != nil {
		return err
	}
	sum.print(stdout)
	if sum.rejected > 0 {
		return exitCode(1)
	}
	return nil
}

// importFiles expands the arguments: files as given, directories walked
// for record files, in a stable order.
func importFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", a, err)
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && isRecordFile(d.Name()) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", a, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("directory %s holds no .json, .json.gz, .jsonl or .ndjson files", a)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func isRecordFile(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	for _, ext := range []string{".json", ".jsonl", ".ndjson"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// origin is where a record came from: the file (by its place in the
// argument order, for sorting, and its path) and either its 1-based line
// (JSON Lines files) or its 1-based place among the file's records (every
// other shape, where records need not start on lines of their own).
type origin struct {
	fileIdx int
	file    string
	line    int // 0: not a JSON Lines file; see record
	record  int
}

func (o origin) String() string {
	if o.line > 0 {
		return fmt.Sprintf("%s:%d", o.file, o.line)
	}
	return fmt.Sprintf("%s: record %d", o.file, o.record)
}

func (o origin) before(p origin) bool {
	if o.fileIdx != p.fileIdx {
		return o.fileIdx < p.fileIdx
	}
	if o.line != p.line {
		return o.line < p.line
	}
	return o.record < p.record
}

type rejection struct {
	at     origin
	reason string
}

// importBatch is one request: JSON Lines plus the origin of each line, to
// map the server's rejections (by line index) back to file:index.
type importBatch struct {
	body    []byte
	origins []origin
}

type importer struct {
	client   *apiclient.Client
	batch    int
	files    int
	progress io.Writer // nil: no progress bar

	filesDone atomic.Int64
	read      atomic.Int64
	accepted  atomic.Int64

	mu         sync.Mutex
	rejections []rejection // the first maxListed
	rejected   int64
}

// maxListed bounds the rejections kept for the summary (and so the memory
// a file of garbage can make the CLI hold); past it they are counted only.
// maxReason bounds one listed reason.
const (
	maxListed = 100_000
	maxReason = 300
)

func (im *importer) reject(r rejection) {
	if len(r.reason) > maxReason {
		r.reason = r.reason[:maxReason] + "..."
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	im.rejected++
	if len(im.rejections) < maxListed {
		im.rejections = append(im.rejections, r)
	}
}

type importSummary struct {
	files, read, accepted, rejected int64
	rejections                      []rejection
	elapsed                         time.Duration
}

// print writes the totals and every rejection (up to maxListed) in file
// order, each as FILE:LINE (JSON Lines) or FILE: record N (other shapes).
// Records = Accepted + Rejected: every record read is one or the other.
func (s *importSummary) print(w io.Writer) {
	rate := float64(s.accepted+s.rejected) / max(s.elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "Imported %d files in %s (%.0f records/s).\n", s.files, s.elapsed.Round(time.Millisecond), rate)
	fmt.Fprintf(w, "Records: %d\nAccepted: %d\nRejected: %d\n", s.read, s.accepted, s.rejected)
	sort.SliceStable(s.rejections, func(i, j int) bool { return s.rejections[i].at.before(s.rejections[j].at) })
	for _, r := range s.rejections {
		fmt.Fprintf(w, "  %s: %s\n", r.at, r.reason)
	}
	if more := s.rejected - int64(len(s.rejections)); more > 0 {
		fmt.Fprintf(w, "  ... and %d more (only the first %d are listed)\n", more, maxListed)
	}
}

// run reads the files in order on this goroutine and sends batches from
// concurrency workers. A request that fails after retries stops the import
// (the server is unreachable or refuses the key); records already
// acknowledged stay imported.
func (im *importer) run(ctx context.Context, files []string, concurrency int) (*importSummary, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan importBatch, concurrency)
	var (
		wg       sync.WaitGroup
		sendErr  error
		sendOnce sync.Once
	)
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := im.send(ctx, b); err != nil {
					sendOnce.Do(func() { sendErr = err; cancel() })
				}
			}
		}()
	}
	stopBar := im.startBar(start)

	var cur importBatch
	flush := func() {
		if len(cur.origins) == 0 {
			return
		}
		select {
		case batches <- cur:
		case <-ctx.Done():
		}
		cur = importBatch{}
	}
	var readErr error
	for i, f := range files {
		if ctx.Err() != nil {
			break
		}
		err := im.readFile(ctx, i, f, func(raw []byte, at origin) {
			if len(cur.origins) > 0 && (len(cur.origins) >= im.batch || len(cur.body)+len(raw)+1 > bench.ImportBatchBytes) {
				flush()
			}
			cur.body = append(append(cur.body, raw...), '\n')
			cur.origins = append(cur.origins, at)
		})
		if err != nil {
			readErr = err
			break
		}
		im.filesDone.Add(1)
	}
	flush()
	close(batches)
	wg.Wait()
	stopBar()
	if sendErr != nil {
		return nil, fmt.Errorf("import stopped after %d accepted records: %w", im.accepted.Load(), sendErr)
	}
	if readErr != nil {
		return nil, readErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("import interrupted after %d accepted records: %w", im.accepted.Load(), err)
	}
	return &importSummary{files: im.filesDone.Load(), read: im.read.Load(), accepted: im.accepted.Load(), rejected: im.rejected,
		rejections: im.rejections, elapsed: time.Since(start)}, nil
}

// readFile streams the records of one file to add. Records that cannot be
// valid are rejected here with the same validation the server applies
// (event.Parse and event.CheckImportable), so their reasons point at the
// file.
//
// A JSON Lines file (named .jsonl or .ndjson, or whose first non-blank line
// is a whole JSON object other than a delivery file's envelope) is read
// line by line: every non-blank line is one record, accepted or rejected
// with its line number, so one bad line never hides the lines after it and
// the totals add up to the file's non-blank lines. Blank lines are not
// records and are not counted. Every other shape (delivery files, arrays,
// pretty-printed records) is a stream of JSON values: damage to the stream
// itself counts as one rejection and ends that file, and records before it
// are still imported.
func (im *importer) readFile(ctx context.Context, fileIdx int, path string, add func(raw []byte, at origin)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			im.read.Add(1)
			im.reject(rejection{origin{fileIdx: fileIdx, file: path, record: 1}, "not a readable gzip file: " + err.Error()})
			return nil
		}
		defer zr.Close()
		r = zr
	}
	lr := bufio.NewReaderSize(r, lineProbeBytes)
	if isLinesName(path) || firstLineIsRecord(lr) {
		return im.readLines(ctx, fileIdx, path, lr, add)
	}
	n := 0
	err = event.ReadRecords(lr, func(raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		im.check(raw, origin{fileIdx: fileIdx, file: path, record: n}, add)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		im.read.Add(1)
		im.reject(rejection{origin{fileIdx: fileIdx, file: path, record: n + 1}, "the rest of the file is unreadable: " + err.Error()})
	}
	return nil
}

// check validates one record and hands it to add or rejects it.
func (im *importer) check(raw []byte, at origin, add func(raw []byte, at origin)) {
	im.read.Add(1)
	rec, err := event.Parse(raw)
	if err == nil {
		err = event.CheckImportable(rec, time.Now())
	}
	if err != nil {
		im.reject(rejection{at, err.Error()})
		return
	}
	if len(rec.Raw) > journal.MaxEntrySize {
		im.reject(rejection{at, fmt.Sprintf("record is %d bytes, over Cairn's per-record limit of %d bytes", len(rec.Raw), journal.MaxEntrySize)})
		return
	}
	add(rec.Raw, at)
}

// lineProbeBytes is how much of a file firstLineIsRecord may look at: a
// first line longer than this is not taken for a JSON Lines record.
const lineProbeBytes = 1 << 20

// isLinesName reports whether the file's name says JSON Lines.
func isLinesName(path string) bool {
	name := strings.TrimSuffix(strings.ToLower(filepath.Base(path)), ".gz")
	return strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".ndjson")
}

// firstLineIsRecord reports whether the first non-blank line of br (within
// lineProbeBytes) is, alone, one whole JSON object that is not a delivery
// file's {"Records":[...]} envelope: then the file is JSON Lines, whatever
// its name. It does not consume anything.
func firstLineIsRecord(br *bufio.Reader) bool {
	buf, _ := br.Peek(lineProbeBytes)
	buf = bytes.TrimPrefix(buf, []byte{0xEF, 0xBB, 0xBF})
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return false // one line only, or longer than the probe: a stream
		}
		line := bytes.TrimSpace(buf[:i])
		buf = buf[i+1:]
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' || !json.Valid(line) {
			return false
		}
		var probe struct {
			Records json.RawMessage `json:"Records"`
		}
		if json.Unmarshal(line, &probe) == nil && len(probe.Records) > 0 && probe.Records[0] == '[' {
			return false
		}
		return true
	}
	return false
}

// readLines reads a JSON Lines file: each non-blank line is one record.
// A line longer than event.MaxRecordSize is rejected without being held in
// memory.
func (im *importer) readLines(ctx context.Context, fileIdx int, path string, br *bufio.Reader, add func(raw []byte, at origin)) error {
	var line []byte
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil
		}
		line = line[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			if !tooLong {
				if len(line)+len(chunk) > event.MaxRecordSize {
					tooLong, line = true, line[:0]
				} else {
					line = append(line, chunk...)
				}
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		at := origin{fileIdx: fileIdx, file: path, line: n}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte{0xEF, 0xBB, 0xBF})
		}
		switch {
		case tooLong:
			im.read.Add(1)
			im.reject(rejection{at, fmt.Sprintf("line is longer than %d bytes", event.MaxRecordSize)})
		case len(bytes.TrimSpace(line)) > 0:
			im.check(bytes.TrimSpace(line), at, add)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			im.read.Add(1)
			im.reject(rejection{origin{fileIdx: fileIdx, file: path, line: n + 1}, "the rest of the file is unreadable: " + err.Error()})
			return nil
		}
	}
}

func (im *importer) send(ctx context.Context, b importBatch) error {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := im.client.Import(ctx, b.body)
		if err == nil {
			im.accepted.Add(int64(out.Accepted))
			for _, r := range out.Rejected {
				at := origin{fileIdx: -1, file: "?", record: r.Index + 1}
				if r.Index >= 0 && r.Index < len(b.origins) {
					at = b.origins[r.Index]
				}
				im.reject(rejection{at, r.Error})
			}
			return nil
		}
		if attempt == 5 || !apiclient.IsRetryable(err) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff *= 2
	}
}

// startBar draws a one-line progress bar on a terminal until the returned
// function is called; it does nothing when stderr is not a terminal.
func (im *importer) startBar(start time.Time) func() {
	if im.progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(im.progress, "\r\033[K")
				return
			case <-t.C:
				im.drawBar(start)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (im *importer) drawBar(start time.Time) {
	const barWidth = 24
	files := im.filesDone.Load()
	filled := int(files * barWidth / max(int64(im.files), 1))
	bar := strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
	read := im.read.Load()
	rate := float64(im.accepted.Load()) / max(time.Since(start).Seconds(), 1e-9)
	im.mu.Lock()
	rejected := im.rejected
	im.mu.Unlock()
	fmt.Fprintf(im.progress, "\r\033[K%s files %d/%d  records %d  accepted %d  rejected %d  %.0f rec/s",
		bar, files, im.files, read, im.accepted.Load(), rejected, rate)
}
