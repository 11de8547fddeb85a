package main

import (
	"context"
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

	"golang.org/x/term"

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

Exits 1 when any record was rejected (the first ten reasons are shown).
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
	client := bench.NewClient(rf.endpoint, rf.region, creds, &http.Client{Transport: bench.NewTransport(*concurrency)})
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

// origin is where a record came from: file and 0-based record index.
type origin struct {
	file  string
	index int
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
	client   *bench.Client
	batch    int
	files    int
	progress io.Writer // nil: no progress bar

	filesDone atomic.Int64
	read      atomic.Int64
	accepted  atomic.Int64

	mu         sync.Mutex
	rejections []rejection // the first maxShown
	rejected   int64
}

const maxShown = 10

func (im *importer) reject(r rejection) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.rejected++
	if len(im.rejections) < maxShown {
		im.rejections = append(im.rejections, r)
	}
}

type importSummary struct {
	files, accepted, rejected int64
	rejections                []rejection
	elapsed                   time.Duration
}

func (s *importSummary) print(w io.Writer) {
	rate := float64(s.accepted+s.rejected) / max(s.elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "Imported %d files in %s (%.0f records/s).\n", s.files, s.elapsed.Round(time.Millisecond), rate)
	fmt.Fprintf(w, "Accepted: %d\nRejected: %d\n", s.accepted, s.rejected)
	for _, r := range s.rejections {
		fmt.Fprintf(w, "  %s:%d: %s\n", r.at.file, r.at.index, r.reason)
	}
	if more := s.rejected - int64(len(s.rejections)); more > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", more)
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
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		err := im.readFile(ctx, f, func(raw []byte, at origin) {
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
	return &importSummary{files: im.filesDone.Load(), accepted: im.accepted.Load(), rejected: im.rejected,
		rejections: im.rejections, elapsed: time.Since(start)}, nil
}

// readFile streams the records of one file to add. Records that cannot be
// valid are rejected here with the same validation the server applies, so
// their reasons point at the file. A file that is not a record stream at
// all (bad gzip, truncated JSON) counts as one rejection; records before
// the damage are still imported.
func (im *importer) readFile(ctx context.Context, path string, add func(raw []byte, at origin)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	defer f.Close()
	index := 0
	err = event.ReadRecords(f, func(raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		at := origin{path, index}
		index++
		im.read.Add(1)
		rec, err := event.Parse(raw)
		if err != nil {
			im.reject(rejection{at, err.Error()})
			return nil
		}
		if len(rec.Raw) > journal.MaxEntrySize {
			im.reject(rejection{at, fmt.Sprintf("record is %d bytes, over Cairn's per-record limit of %d bytes", len(rec.Raw), journal.MaxEntrySize)})
			return nil
		}
		add(rec.Raw, at)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		im.reject(rejection{origin{path, index}, "the rest of the file is unreadable: " + err.Error()})
	}
	return nil
}

func (im *importer) send(ctx context.Context, b importBatch) error {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := im.client.Import(ctx, b.body)
		if err == nil {
			im.accepted.Add(int64(out.Accepted))
			for _, r := range out.Rejected {
				at := origin{"?", r.Index}
				if r.Index >= 0 && r.Index < len(b.origins) {
					at = b.origins[r.Index]
				}
				im.reject(rejection{at, r.Error})
			}
			return nil
		}
		if attempt == 5 || !bench.IsRetryable(err) {
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
