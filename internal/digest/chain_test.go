package digest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/digest"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/testenv"
	"github.com/cairn-audit/cairn/internal/trail"
)

const (
	account = "123456789012"
	bucket  = "audit-digests"
)

// clock is a manual clock shared by the trail service, delivery, the key
// store and the digest writer, so that a chain of digests one minute apart
// is written in seconds.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quiet() *slog.Logger {
	if os.Getenv("CAIRN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// record is a minimal management event of region at t.
func record(i int, region string, t time.Time) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::%s:user/alice","accountId":"%s","userName":"alice"},"eventTime":%q,"eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":%q,"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2","requestParameters":{"n":%d},"responseElements":null,"requestID":"req-%d","eventID":"%08x-0000-4000-8000-000000000000","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":%q,"eventCategory":"Management"}`,
		account, account, t.UTC().Format(time.RFC3339), region, i, i, i, account)
}

// chainEnv is a chain written through real components: journal, state
// store, trail service, delivery (whose OnLogFiles feeds the writer) and a
// real S3 server (versitygw).
type chainEnv struct {
	srv       *s3test.Server
	store     objstore.Store
	st        *state.Store
	trails    *trail.Service
	keys      *digest.Keys
	w         *digest.Writer
	clk       *clock
	arn       string
	start     time.Time
	delivered atomic.Int64
	dataDir   string
}

// newChainEnv is a versitygw with the trail bucket, the state store, the
// trail service and a digest writer with one-minute digests and keys that
// rotate every rotation, all on a simulated clock that starts two days
// ago, so that the AWS CLI's default --end-time (now) covers the chain.
func newChainEnv(t *testing.T, rotation time.Duration) *chainEnv {
	t.Helper()
	ctx := context.Background()
	e := &chainEnv{srv: s3test.Start(t), dataDir: t.TempDir()}
	e.store = e.srv.NewStore(t)
	e.clk = &clock{t: time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)}
	e.start = e.clk.Now()
	var err error
	e.st, err = state.Open(ctx, filepath.Join(e.dataDir, "state"), state.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if err := e.store.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	e.trails = trail.New(e.st, e.store, account, e.clk.Now, trail.WithLogger(quiet()))
	e.keys, err = digest.OpenKeys(e.dataDir, e.st, digest.KeyOptions{Rotation: rotation, Clock: e.clk.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e.w, err = digest.NewWriter(e.st, e.trails, e.store, e.keys, digest.Options{Interval: time.Minute, Clock: e.clk.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// buildChain writes 36 one-minute digests in us-east-1 (and a chain in
// eu-west-1 for the files of that region), spanning key rotations (10
// minutes), empty intervals, and a StopLogging/StartLogging gap.
func buildChain(t *testing.T) *chainEnv {
	t.Helper()
	ctx := context.Background()
	e := newChainEnv(t, 10*time.Minute)
	j, err := journal.Open(ctx, filepath.Join(e.dataDir, "journal"), journal.Options{Logger: quiet(), MinFreeBytes: -1, MemTableSize: 4 << 20, CacheSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	m, err := delivery.NewManager(j, e.st, e.trails, e.store, delivery.Options{
		Interval: time.Second, PollInterval: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Clock: e.clk.Now, Logger: quiet(),
		OnLogFiles: func(ctx context.Context, files []delivery.LogFileDelivered) error {
			if err := e.w.Record(ctx, files); err != nil {
				return err
			}
			e.delivered.Add(int64(len(files)))
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(mctx) }()
	t.Cleanup(func() { cancel(); <-done })

	tr, err := e.trails.Create(ctx, "us-east-1", trail.CreateInput{Name: "audit", S3BucketName: bucket, IsMultiRegionTrail: ptr(true), EnableLogFileValidation: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	e.arn = tr.ARN()
	logging := func(on bool) {
		t.Helper()
		var err error
		if on {
			err = e.trails.StartLogging(ctx, "us-east-1", "audit")
		} else {
			err = e.trails.StopLogging(ctx, "us-east-1", "audit")
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := m.TrailChanged(ctx); err != nil {
			t.Fatal(err)
		}
	}
	logging(true)
	n := 0
	deliver := func(regions ...string) {
		t.Helper()
		want := e.delivered.Load() + int64(len(regions))
		var entries [][]byte
		for _, r := range regions {
			entries = append(entries, record(n, r, e.clk.Now().Add(-10*time.Second)))
			n++
		}
		if _, err := j.Append(ctx, entries); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for e.delivered.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("delivery did not report %d files within 20s (got %d)", want, e.delivered.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	tick := func() {
		t.Helper()
		if err := e.w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 36 {
		e.clk.Add(20 * time.Second)
		switch {
		case i%5 == 0:
			deliver("us-east-1")
		case i%7 == 0:
			deliver("us-east-1", "eu-west-1")
		}
		if i == 17 {
			// Stop: the final digest; a gap of five minutes; a new chain.
			logging(false)
			tick()
			e.clk.Add(5 * time.Minute)
			logging(true)
		}
		e.clk.Add(40 * time.Second)
		tick()
	}
	return e
}

func ptr[T any](v T) *T { return &v }

// publicKeysFrom adapts the key store for Validate.
func publicKeysFrom(k *digest.Keys, region string) func(ctx context.Context, s, e time.Time) ([]digest.PublicKey, error) {
	return func(ctx context.Context, s, e time.Time) ([]digest.PublicKey, error) {
		return k.PublicKeys(ctx, region, s, e)
	}
}

func (e *chainEnv) validate(t *testing.T, region string, online bool) (*digest.Result, string) {
	t.Helper()
	var out bytes.Buffer
	o := digest.ValidateOptions{
		TrailARN: e.arn, Start: e.start, Now: e.clk.Now(), Bucket: bucket, SourceRegion: region, Store: e.store,
		PublicKeys: publicKeysFrom(e.keys, region), Verbose: true, Out: &out, Err: &out,
	}
	if online {
		tr, err := e.trails.GetStatus(context.Background(), "us-east-1", "audit")
		if err != nil {
			t.Fatal(err)
		}
		o.LatestDigestDelivery = tr.Status.LatestDigestDeliveryTime
	}
	res, err := digest.Validate(context.Background(), o)
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out.String())
	}
	return res, out.String()
}

// cloudTrailStub serves the CloudTrail operations the AWS CLI's
// validate-logs calls (DescribeTrails, ListPublicKeys) with Cairn's own
// operation code, on loopback. The region comes from the SigV4 scope, as
// in Cairn's server; signatures are not checked here (the server's tests
// cover that).
func cloudTrailStub(t *testing.T, trails *trail.Service, keys *digest.Keys) string {
	t.Helper()
	reg, err := api.NewRegistry(api.TrailOperations(trails), api.PublicKeyOperations(keys))
	if err != nil {
		t.Fatal(err)
	}
	scope := regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		name := target[strings.LastIndexByte(target, '.')+1:]
		op, ok := reg.Lookup(name)
		if !ok {
			awsproto.WriteError(w, "req", awsproto.ContentTypeJSON11, awsproto.Errorf("UnknownOperationException", "%s", target))
			return
		}
		body, _ := io.ReadAll(r.Body)
		region := "us-east-1"
		if m := scope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			region = m[1]
		}
		out, err := op.Handle(r.Context(), &api.Request{Operation: name, Region: region, AccountID: account, Time: time.Now()}, body)
		if err != nil {
			awsproto.WriteError(w, "req", awsproto.ContentTypeJSON11, err)
			return
		}
		awsproto.WriteJSON11(w, "req", out)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// awsCLI finds the real AWS CLI; under CI its absence is a failure.
func awsCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("aws")
	if err != nil {
		testenv.RequireOrSkip(t, "no aws CLI on PATH: %v", err)
	}
	return p
}

func (e *chainEnv) runCLI(t *testing.T, cli, endpoint, region string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "cloudtrail", "validate-logs", "--trail-arn", e.arn,
		"--start-time", e.start.Format(time.RFC3339), "--region", region, "--verbose")
	cmd.Env = append(os.Environ(), e.srv.Env()...)
	cmd.Env = append(cmd.Env, "AWS_ENDPOINT_URL="+endpoint, "AWS_ENDPOINT_URL_S3="+e.srv.Endpoint,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_DEFAULT_REGION="+region, "AWS_REGION="+region)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("aws cloudtrail validate-logs: %v\n%s", err, out)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

var summaryRE = regexp.MustCompile(`(\d+)/(\d+) digest files valid`)

// TestChainValidates builds the chain and checks that both the real AWS
// CLI and Cairn's validator accept every digest and log file, then tampers
// with it in every way the issue lists: Cairn's validator names each
// problem and fails; what the AWS CLI says is logged for comparison.
func TestChainValidates(t *testing.T) {
	e := buildChain(t)
	cli := awsCLI(t)
	endpoint := cloudTrailStub(t, e.trails, e.keys)
	ctx := context.Background()

	res, out := e.validate(t, "us-east-1", true)
	t.Logf("cairn validate-logs (us-east-1):\n%s", out)
	if !res.OK() || res.ValidDigests < 30 || res.ValidLogs < 8 {
		t.Fatalf("want >=30 valid digests and >=8 valid log files, nothing invalid; got %+v\n%s", res, out)
	}
	if res2, out2 := e.validate(t, "eu-west-1", true); !res2.OK() || res2.ValidLogs == 0 {
		t.Fatalf("eu-west-1 chain: %+v\n%s", res2, out2)
	}
	cliOut, code := e.runCLI(t, cli, endpoint, "us-east-1")
	t.Logf("aws cloudtrail validate-logs:\n%s", cliOut)
	if code != 0 || strings.Contains(cliOut, "INVALID") {
		t.Fatalf("the AWS CLI rejected the chain (exit %d):\n%s", code, cliOut)
	}
	if m := summaryRE.FindStringSubmatch(cliOut); m == nil || m[1] != m[2] || m[1] != fmt.Sprint(res.ValidDigests) {
		t.Fatalf("AWS CLI summary %v, Cairn found %d valid digests", m, res.ValidDigests)
	}
	if !strings.Contains(cliOut, fmt.Sprintf("%d/%d log files valid", res.ValidLogs, res.ValidLogs)) {
		t.Fatalf("AWS CLI did not validate the %d log files Cairn did:\n%s", res.ValidLogs, cliOut)
	}

	digests, logs := e.objects(t)
	if len(digests) < 30 {
		t.Fatalf("only %d digests in us-east-1", len(digests))
	}
	mid := len(digests) / 2
	// A us-east-1 log file from the middle of the chain.
	var usLogs []string
	for _, k := range logs {
		if strings.Contains(k, "/us-east-1/") {
			usLogs = append(usLogs, k)
		}
	}
	aLog := usLogs[len(usLogs)/2]
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T)
		want   string
	}{
		{"log file modified", func(t *testing.T) { e.put(t, aLog, gz([]byte(`{"Records":[]}`)), nil) }, "hash value doesn't match"},
		{"log file deleted", func(t *testing.T) { e.del(t, aLog) }, "\tINVALID: not found"},
		{"one digest deleted", func(t *testing.T) { e.del(t, digests[mid]) }, digests[mid] + "\tINVALID: not found"},
		{"two consecutive digests deleted", func(t *testing.T) { e.del(t, digests[mid+4]); e.del(t, digests[mid+3]) }, "1 more consecutive digest file(s) missing"},
		{"newest digest deleted", func(t *testing.T) { e.del(t, digests[len(digests)-1]) }, "newest digest file(s) missing"},
		{"digest modified", func(t *testing.T) {
			raw, meta := e.get(t, digests[mid])
			raw = bytes.Replace(raw, []byte(`"logFiles":[`), []byte(`"logFiles":[ `), 1)
			e.put(t, digests[mid], gz(raw), meta)
		}, digests[mid] + "\tINVALID: signature verification failed"},
		{"foreign log file injected", func(t *testing.T) {
			k := strings.Replace(aLog, ".json.gz", "", 1)[:len(aLog)-len(".json.gz")-16] + "FOREIGNFOREIGN00.json.gz"
			e.put(t, k, gz([]byte(`{"Records":[]}`)), nil)
		}, "not listed in any digest file"},
		{"bytes appended after gzip stream", func(t *testing.T) {
			raw, _ := e.get(t, aLog)
			e.put(t, aLog, append(gz(raw), gz([]byte(`{"Records":[{"injected":true}]}`))...), nil)
		}, "data after the end of the gzip stream"},
		{"digest re-signed with a foreign key", func(t *testing.T) {
			raw, _ := e.get(t, digests[mid])
			d, err := digest.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			der := x509.MarshalPKCS1PublicKey(&foreign.PublicKey)
			d.DigestPublicKeyFingerprint = digest.Fingerprint(der)
			body, _, sig, err := digest.Seal(d, &digest.SigningKey{PublicKey: digest.PublicKey{DER: der, Fingerprint: d.DigestPublicKeyFingerprint}, Private: foreign})
			if err != nil {
				t.Fatal(err)
			}
			e.putRaw(t, digests[mid], body, map[string]string{"signature": sig, "signature-algorithm": "SHA256withRSA"})
		}, digests[mid] + "\tINVALID: public key not found in region us-east-1 for fingerprint"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			snap := e.snapshot(t)
			defer e.restore(t, snap)
			c.tamper(t)
			res, out := e.validate(t, "us-east-1", true)
			if res.OK() || !strings.Contains(out, c.want) {
				t.Errorf("cairn validate-logs did not report %q (ok=%v):\n%s", c.want, res.OK(), out)
			}
			cliOut, code := e.runCLI(t, cli, endpoint, "us-east-1")
			t.Logf("aws cloudtrail validate-logs (exit %d) says:\n%s", code, onlyProblems(cliOut))
		})
	}
	_ = ctx
}

func onlyProblems(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "INVALID") || strings.Contains(l, "files valid") || strings.Contains(l, "No log files") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// objects lists us-east-1 digests (oldest first) and all log files.
func (e *chainEnv) objects(t *testing.T) (digests, logs []string) {
	t.Helper()
	err := e.store.List(context.Background(), bucket, "", "", func(oi objstore.ObjectInfo) error {
		switch {
		case strings.Contains(oi.Key, "/CloudTrail-Digest/us-east-1/"):
			digests = append(digests, oi.Key)
		case strings.Contains(oi.Key, "/CloudTrail/"):
			logs = append(logs, oi.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return digests, logs
}

type object struct {
	body []byte
	meta map[string]string
}

func (e *chainEnv) snapshot(t *testing.T) map[string]object {
	t.Helper()
	out := map[string]object{}
	err := e.store.List(context.Background(), bucket, "", "", func(oi objstore.ObjectInfo) error {
		rc, info, err := e.store.Get(context.Background(), bucket, oi.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		out[oi.Key] = object{b, info.Metadata}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *chainEnv) restore(t *testing.T, snap map[string]object) {
	t.Helper()
	ctx := context.Background()
	var extra []string
	_ = e.store.List(ctx, bucket, "", "", func(oi objstore.ObjectInfo) error {
		if _, ok := snap[oi.Key]; !ok {
			extra = append(extra, oi.Key)
		}
		return nil
	})
	for _, k := range extra {
		e.del(t, k)
	}
	for k, o := range snap {
		e.putRaw(t, k, o.body, o.meta)
	}
}

func (e *chainEnv) get(t *testing.T, key string) ([]byte, map[string]string) {
	t.Helper()
	rc, info, err := e.store.Get(context.Background(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b, info.Metadata
}

func (e *chainEnv) put(t *testing.T, key string, body []byte, meta map[string]string) {
	e.putRaw(t, key, body, meta)
}

func (e *chainEnv) putRaw(t *testing.T, key string, body []byte, meta map[string]string) {
	t.Helper()
	if err := e.store.Put(context.Background(), bucket, key, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{Metadata: meta}); err != nil {
		t.Fatal(err)
	}
}

func (e *chainEnv) del(t *testing.T, key string) {
	t.Helper()
	if err := e.store.Delete(context.Background(), bucket, key); err != nil {
		t.Fatal(err)
	}
}

var _ = hex.EncodeToString
