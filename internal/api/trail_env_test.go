package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
	"github.com/cairn-audit/cairn/internal/trail"
)

// The -update flag regenerates golden files. Several test files of this
// package may want it, so it is registered only if nobody has yet.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// quietLog keeps the test output to failures.
var quietLog = slog.New(slog.DiscardHandler)

const (
	testAccount = "123456789012"
	east        = "us-east-1"
	west        = "us-west-2"
	euWest      = "eu-west-1"
	logsBucket  = "cairn-logs"
	otherBucket = "cairn-other"
)

// trailEnv is a real trail control plane: a Pebble state store and a file
// object store in a temporary directory, the trail service with a fixed
// clock, and the operation registry the server uses.
type trailEnv struct {
	t       *testing.T
	dir     string
	now     time.Time
	store   *state.Store
	objects *file.Store
	svc     *trail.Service
	reg     *api.Registry
	opts    []trail.Option
	// extra resolvers for tag tests (channels...), keyed by resource type.
	resolvers map[string]tags.Resolver
}

func newTrailEnv(t *testing.T, opts ...trail.Option) *trailEnv {
	t.Helper()
	e := &trailEnv{t: t, dir: t.TempDir(), now: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), opts: opts}
	objects, err := file.New(filepath.Join(e.dir, "objects"), file.Options{Logger: quietLog})
	if err != nil {
		t.Fatalf("open object store: %v", err)
	}
	e.objects = objects
	t.Cleanup(func() { _ = objects.Close() })
	for _, b := range []string{logsBucket, otherBucket} {
		if err := objects.CreateBucket(context.Background(), b); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}
	e.open()
	t.Cleanup(func() {
		if e.store != nil {
			_ = e.store.Close()
		}
	})
	return e
}

// open opens the state store and builds the service and registry on it.
func (e *trailEnv) open() {
	e.t.Helper()
	st, err := state.Open(context.Background(), filepath.Join(e.dir, "state"), state.Options{Logger: quietLog})
	if err != nil {
		e.t.Fatalf("open state store: %v", err)
	}
	e.store = st
	e.svc = trail.New(st, e.objects, testAccount, func() time.Time { return e.now }, append([]trail.Option{trail.WithLogger(quietLog)}, e.opts...)...)
	resolvers := map[string]tags.Resolver{tags.TypeTrail: e.svc}
	for k, v := range e.resolvers {
		resolvers[k] = v
	}
	reg, err := api.NewRegistry(api.TrailOperations(e.svc), api.TagOperations(tags.NewService(st, testAccount, resolvers)))
	if err != nil {
		e.t.Fatalf("build registry: %v", err)
	}
	e.reg = reg
}

// reopen closes the store and opens it again, as a restart does.
func (e *trailEnv) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatalf("close state store: %v", err)
	}
	e.open()
}

// call runs an operation through the registry with a JSON body, as the
// server does, and returns the encoded output or the modeled error.
func (e *trailEnv) call(region, op, body string) ([]byte, *awsproto.Error) {
	e.t.Helper()
	o, ok := e.reg.Lookup(op)
	if !ok {
		e.t.Fatalf("operation %s is not registered", op)
	}
	req := &api.Request{Operation: op, Region: region, AccountID: testAccount, RequestID: "req-1", Time: e.now}
	out, err := o.Handle(context.Background(), req, []byte(body))
	if err != nil {
		ae := awsproto.AsError(err)
		if ae.Code == "InternalFailure" {
			e.t.Fatalf("%s %s: internal failure: %v", op, body, err)
		}
		return nil, ae
	}
	b, encErr := api.Encode(out)
	if encErr != nil {
		e.t.Fatalf("%s: encode output: %v", op, encErr)
	}
	return b, nil
}

// ok runs an operation that must succeed and returns its output.
func (e *trailEnv) ok(region, op, body string) []byte {
	e.t.Helper()
	out, err := e.call(region, op, body)
	if err != nil {
		e.t.Fatalf("%s in %s with %s: %v", op, region, body, err)
	}
	return out
}

// fail runs an operation that must fail with code and returns the error.
func (e *trailEnv) fail(region, op, body, code string) *awsproto.Error {
	e.t.Helper()
	out, err := e.call(region, op, body)
	if err == nil {
		e.t.Fatalf("%s in %s with %s: succeeded with %s, want %s", op, region, body, out, code)
	}
	if err.Code != code {
		e.t.Fatalf("%s in %s with %s: got %s (%s), want %s", op, region, body, err.Code, err.Message, code)
	}
	return err
}

// decode unmarshals an operation's output for assertions.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// transcript collects the wire responses of a sequence of calls and
// compares them with a golden file, so that every member name, omission
// and message text is pinned.
type transcript struct {
	t   *testing.T
	buf bytes.Buffer
}

func (tr *transcript) add(title, region, op, body string, out []byte, err *awsproto.Error) {
	tr.t.Helper()
	fmt.Fprintf(&tr.buf, "### %s\n%s %s %s\n", title, region, op, body)
	if err != nil {
		fmt.Fprintf(&tr.buf, "-> HTTP %d\n", err.HTTPStatus())
		b, _ := json.MarshalIndent(struct {
			Type    string `json:"__type"`
			Message string
		}{err.Code, err.Message}, "", "  ")
		tr.buf.Write(b)
	} else {
		var pretty bytes.Buffer
		if e := json.Indent(&pretty, out, "", "  "); e != nil {
			tr.t.Fatalf("indent %s: %v", out, e)
		}
		tr.buf.WriteString("-> HTTP 200\n")
		tr.buf.Write(pretty.Bytes())
	}
	tr.buf.WriteString("\n\n")
}

func (tr *transcript) check(name string) {
	tr.t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if updateGolden() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tr.t.Fatal(err)
		}
		if err := os.WriteFile(path, tr.buf.Bytes(), 0o644); err != nil {
			tr.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tr.t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got := tr.buf.String(); got != string(want) {
		tr.t.Errorf("%s differs from the golden file; run go test ./internal/api/ -run %s -update and review the diff.\n%s",
			path, tr.t.Name(), firstDiff(string(want), got))
	}
}

// firstDiff shows where two transcripts start to differ.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n want: %s\n  got: %s", i+1, w, g)
		}
	}
	return ""
}

// step is one call of a scenario: it runs, is checked against wantErr
// ("" = must succeed), and lands in the transcript. The clock advances a
// minute after each step so that recorded times tell steps apart.
type step struct {
	title   string
	region  string
	op      string
	body    string
	wantErr string
}

func (e *trailEnv) run(tr *transcript, steps []step) {
	e.t.Helper()
	for _, s := range steps {
		out, err := e.call(s.region, s.op, s.body)
		switch {
		case s.wantErr == "" && err != nil:
			e.t.Errorf("%s: %s failed: %s: %s", s.title, s.op, err.Code, err.Message)
		case s.wantErr != "" && err == nil:
			e.t.Errorf("%s: %s succeeded, want %s", s.title, s.op, s.wantErr)
		case s.wantErr != "" && err.Code != s.wantErr:
			e.t.Errorf("%s: %s failed with %s (%s), want %s", s.title, s.op, err.Code, err.Message, s.wantErr)
		}
		tr.add(s.title, s.region, s.op, s.body, out, err)
		e.now = e.now.Add(time.Minute)
	}
}
