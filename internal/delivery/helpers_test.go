package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

const testAccount = "123456789012"

// rec describes a synthetic but realistic CloudTrail record.
type rec struct {
	Region   string
	Source   string
	Name     string
	ReadOnly string // "true", "false" or "" (absent)
	Category string // "" means Management
	// Resources are (type, ARN) pairs for the record's resources[].
	Resources [][2]string
	VPCE      string
	ErrorCode string
	Console   bool
	Pad       string // extra bytes in requestParameters
}

// eventID is the deterministic eventID of record i.
func eventID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }

// json renders the record with eventID(i), in AWS's member order.
func (r rec) json(i int) []byte {
	if r.Region == "" {
		r.Region = "us-east-1"
	}
	if r.Source == "" {
		r.Source = "ec2.amazonaws.com"
	}
	if r.Name == "" {
		r.Name = "DescribeInstances"
	}
	cat := r.Category
	if cat == "" {
		cat = "Management"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE%05d","arn":"arn:aws:iam::%s:user/alice","accountId":"%s","accessKeyId":"AKIAEXAMPLE%09d","userName":"alice"},`, i%100000, testAccount, testAccount, i)
	fmt.Fprintf(&b, `"eventTime":"2024-05-01T12:%02d:%02dZ","eventSource":%q,"eventName":%q,"awsRegion":%q,"sourceIPAddress":"192.0.2.%d","userAgent":"aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",`,
		(i/60)%60, i%60, r.Source, r.Name, r.Region, i%250)
	if r.ErrorCode != "" {
		fmt.Fprintf(&b, `"errorCode":%q,`, r.ErrorCode)
	}
	fmt.Fprintf(&b, `"requestParameters":{"n":%d,"pad":%q},"responseElements":null,"requestID":"req-%d","eventID":%q,`, i, r.Pad, i, eventID(i))
	if r.ReadOnly != "" {
		fmt.Fprintf(&b, `"readOnly":%s,`, r.ReadOnly)
	}
	if len(r.Resources) > 0 {
		b.WriteString(`"resources":[`)
		for k, res := range r.Resources {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"accountId":%q,"type":%q,"ARN":%q}`, testAccount, res[0], res[1])
		}
		b.WriteString(`],`)
	}
	fmt.Fprintf(&b, `"eventType":"AwsApiCall","managementEvent":%t,"recipientAccountId":%q,`, cat == "Management", testAccount)
	if r.VPCE != "" {
		fmt.Fprintf(&b, `"vpcEndpointId":%q,`, r.VPCE)
	}
	fmt.Fprintf(&b, `"eventCategory":%q`, cat)
	if r.Console {
		b.WriteString(`,"sessionCredentialFromConsole":"true"`)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// env is a real journal, state store, file object store and trail service
// in a temporary directory.
type env struct {
	t        testing.TB
	dir      string
	j        *journal.Journal
	st       *state.Store
	store    objstore.Store
	storeDir string
	trails   *trail.Service
	next     int // the next record number append uses
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir}
	e.open(nil)
	t.Cleanup(e.close)
	return e
}

// open opens the stores; buckets is the object store to use (nil: the
// file store under dir) .
func (e *env) open(store objstore.Store) {
	t := e.t
	ctx := context.Background()
	var err error
	e.j, err = journal.Open(ctx, filepath.Join(e.dir, "journal"), journal.Options{Logger: quietLogger(), MinFreeBytes: -1, MemTableSize: 4 << 20, CacheSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = state.Open(ctx, filepath.Join(e.dir, "state"), state.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.storeDir = filepath.Join(e.dir, "buckets")
	if store == nil {
		fs, err := file.New(e.storeDir, file.Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		store = fs
	}
	e.store = store
	e.trails = trail.New(e.st, e.store, testAccount, nil, trail.WithLogger(quietLogger()))
}

func (e *env) close() {
	if e.j != nil {
		e.j.Close()
		e.j = nil
	}
	if e.st != nil {
		e.st.Close()
		e.st = nil
	}
	if e.store != nil {
		e.store.Close()
		e.store = nil
	}
}

func (e *env) bucket(name string) {
	e.t.Helper()
	if err := e.store.CreateBucket(context.Background(), name); err != nil {
		e.t.Fatal(err)
	}
}

// trail creates a trail in region and starts it logging.
func (e *env) trail(region string, in trail.CreateInput) trail.Trail {
	e.t.Helper()
	ctx := context.Background()
	tr, err := e.trails.Create(ctx, region, in)
	if err != nil {
		e.t.Fatalf("create trail: %v", err)
	}
	if err := e.trails.StartLogging(ctx, region, in.Name); err != nil {
		e.t.Fatalf("start logging: %v", err)
	}
	return tr
}

// append appends records, numbering them from e.next; it returns their
// numbers.
func (e *env) append(recs ...rec) []int {
	e.t.Helper()
	entries := make([][]byte, len(recs))
	nums := make([]int, len(recs))
	for i, r := range recs {
		nums[i] = e.next
		entries[i] = r.json(e.next)
		e.next++
	}
	if _, err := e.j.Append(context.Background(), entries); err != nil {
		e.t.Fatal(err)
	}
	return nums
}

// testOptions are fast Options for tests.
func testOptions() Options {
	return Options{
		Interval:     50 * time.Millisecond,
		minInterval:  time.Millisecond,
		PollInterval: 20 * time.Millisecond,
		RetryMin:     10 * time.Millisecond,
		RetryMax:     50 * time.Millisecond,
		Logger:       quietLogger(),
	}
}

// manager makes a manager on the env; start runs it until the test ends.
func (e *env) manager(opts Options) *Manager {
	e.t.Helper()
	m, err := NewManager(e.j, e.st, e.trails, e.store, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) start(m *Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := m.Run(ctx); err != nil {
			e.t.Errorf("manager: %v", err)
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return stop
}

// changed tells the manager about a trail change, as the trail service's
// hook will.
func (e *env) changed(m *Manager) {
	e.t.Helper()
	if err := m.TrailChanged(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// caughtUp waits until the trail's cursor reached the journal's end and
// no plan is pending.
func (e *env) caughtUp(arn string) {
	e.t.Helper()
	waitFor(e.t, 20*time.Second, "delivery of "+arn+" to catch up", func() bool {
		if e.j.Cursor(CursorName(arn)).Position() != e.j.LastSeq() {
			return false
		}
		st, err := stateStore{e.st}.load(context.Background(), arn)
		return err == nil && st.Plan == nil
	})
}

// logFile is one delivered object, decoded.
type logFile struct {
	Key     string
	Info    objstore.ObjectInfo
	Raw     []byte   // gzip bytes
	Records [][]byte // each record's exact bytes
}

// files lists and decodes every object in bucket.
func files(t *testing.T, store objstore.Store, bucket string) []logFile {
	t.Helper()
	ctx := context.Background()
	var keys []string
	if err := store.List(ctx, bucket, "", "", func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var out []logFile
	for _, k := range keys {
		rc, info, err := store.Get(ctx, bucket, k)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, logFile{Key: k, Info: info, Raw: raw, Records: decodeLogFile(t, k, raw)})
	}
	return out
}

// decodeLogFile checks the file is one gzip member holding exactly
// {"Records":[...]} and returns the records' bytes as they are in the file.
func decodeLogFile(t *testing.T, key string, raw []byte) [][]byte {
	t.Helper()
	br := bytes.NewReader(raw) // an io.ByteReader: gzip reads no further than the member
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatalf("%s: not gzip: %v", key, err)
	}
	zr.Multistream(false)
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: gunzip: %v", key, err)
	}
	// aws cloudtrail validate-logs refuses data after the first member.
	if br.Len() != 0 {
		t.Fatalf("%s: %d bytes after the gzip member", key, br.Len())
	}
	var doc struct {
		Records []json.RawMessage `json:"Records"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: not {\"Records\":[...]}: %v", key, err)
	}
	if !bytes.HasPrefix(body, []byte(`{"Records":[`)) || !bytes.HasSuffix(body, []byte(`]}`)) {
		t.Fatalf("%s: unexpected framing %.40q...", key, body)
	}
	out := make([][]byte, len(doc.Records))
	for i, r := range doc.Records {
		out[i] = []byte(r)
	}
	return out
}

// eventIDOf extracts a record's eventID.
func eventIDOf(t *testing.T, r []byte) string {
	t.Helper()
	var v struct {
		EventID string `json:"eventID"`
	}
	if err := json.Unmarshal(r, &v); err != nil {
		t.Fatal(err)
	}
	return v.EventID
}

// delivered maps eventID -> how many times it appears across files.
func delivered(t *testing.T, fs []logFile) map[string]int {
	out := map[string]int{}
	for _, f := range fs {
		for _, r := range f.Records {
			out[eventIDOf(t, r)]++
		}
	}
	return out
}

func idsOf(nums []int) []string {
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = eventID(n)
	}
	return out
}

// exactlyOnce checks that want are each delivered once and nothing else.
func exactlyOnce(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	wantSet := map[string]bool{}
	for _, id := range want {
		wantSet[id] = true
		if got[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, got[id])
		}
	}
	var extra []string
	for id := range got {
		if !wantSet[id] {
			extra = append(extra, id)
		}
	}
	if len(extra) > 0 {
		t.Errorf("delivered events that should not have been: %s", strings.Join(extra, ", "))
	}
}
