package digest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/digest"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/s3"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/testenv"
	"github.com/cairn-audit/cairn/internal/trail"
)

// debianAWS is where Debian's awscli package (v2.9.19 on bookworm) puts
// the CLI. The image's pip AWS CLI v1 comes first on PATH, so v2 is always
// called by this path.
const debianAWS = "/usr/bin/aws"

// botocoreS3Data is the S3 model directory of Debian's awscli.
const botocoreS3Data = "/usr/lib/python3/dist-packages/awscli/botocore/data/s3/2006-03-01"

// awsCLIv2 returns Debian's AWS CLI v2; under CI its absence is a failure.
func awsCLIv2(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(debianAWS); err != nil {
		testenv.RequireOrSkip(t, "no %s (Debian's AWS CLI v2: apt-get install awscli): %v", debianAWS, err)
	}
	return debianAWS
}

// s3DataPath writes an AWS_DATA_PATH directory whose S3 endpoint rule set
// sends every request to endpoint, path style (reference §5.6): AWS CLI v2.9
// ignores AWS_ENDPOINT_URL_S3 and validate-logs has no S3 endpoint flag.
// The parameters block is the bundled rule set's, so botocore's built-in
// parameters still resolve.
func s3DataPath(t *testing.T, endpoint, region string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(botocoreS3Data, "endpoint-rule-set-1.json"))
	if os.IsNotExist(err) {
		var gzRaw []byte
		if gzRaw, err = os.ReadFile(filepath.Join(botocoreS3Data, "endpoint-rule-set-1.json.gz")); err == nil {
			var zr *gzip.Reader
			if zr, err = gzip.NewReader(bytes.NewReader(gzRaw)); err == nil {
				raw, err = io.ReadAll(zr)
			}
		}
	}
	if err != nil {
		t.Fatalf("the bundled S3 endpoint rule set: %v", err)
	}
	var bundled struct {
		Version    string          `json:"version"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal(raw, &bundled); err != nil || len(bundled.Parameters) == 0 {
		t.Fatalf("the bundled S3 endpoint rule set has no parameters: %v", err)
	}
	props := map[string]any{"authSchemes": []any{map[string]any{
		"name": "sigv4", "signingName": "s3", "signingRegion": region, "disableDoubleEncoding": true,
	}}}
	ep := func(url string) map[string]any {
		return map[string]any{"url": url, "properties": props, "headers": map[string]any{}}
	}
	rules := map[string]any{
		"version":    bundled.Version,
		"parameters": bundled.Parameters,
		"rules": []any{
			map[string]any{
				"conditions": []any{map[string]any{"fn": "isSet", "argv": []any{map[string]any{"ref": "Bucket"}}}},
				"type":       "endpoint",
				"endpoint":   ep(endpoint + "/{Bucket}"),
			},
			map[string]any{"conditions": []any{}, "type": "endpoint", "endpoint": ep(endpoint)},
		},
	}
	b, err := json.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "s3", "2006-03-01")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "endpoint-rule-set-1.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cleanEnv is the environment without AWS_* variables, so that neither
// the caller's endpoints nor its profiles reach the CLI.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// runCLIv2 runs Debian's AWS CLI v2 validate-logs: the CloudTrail client
// through --endpoint-url, S3 through an AWS_DATA_PATH endpoint rule set.
func (e *chainEnv) runCLIv2(t *testing.T, cli, endpoint, dataPath, region string, verbose bool) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"cloudtrail", "validate-logs", "--trail-arn", e.arn,
		"--start-time", e.start.Format(time.RFC3339), "--region", region, "--endpoint-url", endpoint}
	if verbose {
		args = append(args, "--verbose")
	}
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = append(cleanEnv(),
		"AWS_ACCESS_KEY_ID="+e.srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+e.srv.SecretAccessKey,
		"AWS_DATA_PATH="+dataPath, "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_DEFAULT_REGION="+region, "AWS_REGION="+region)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s cloudtrail validate-logs: %v\n%s", cli, err, out)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// checkCLIAccepts asserts what TestChainValidates asserts of the AWS CLI
// v1 run: exit 0, nothing INVALID, every digest and every log file Cairn
// validated reported valid.
func checkCLIAccepts(t *testing.T, name, out string, code int, res *digest.Result) {
	t.Helper()
	if code != 0 || strings.Contains(out, "INVALID") {
		t.Fatalf("%s rejected the chain (exit %d):\n%s", name, code, out)
	}
	if m := summaryRE.FindStringSubmatch(out); m == nil || m[1] != m[2] || m[1] != fmt.Sprint(res.ValidDigests) {
		t.Fatalf("%s summary %v, Cairn found %d valid digests:\n%s", name, m, res.ValidDigests, out)
	}
	if !strings.Contains(out, fmt.Sprintf("%d/%d log files valid", res.ValidLogs, res.ValidLogs)) {
		t.Fatalf("%s did not validate the %d log files Cairn did:\n%s", name, res.ValidLogs, out)
	}
}

// TestChainValidatesAWSCLIv2 is TestChainValidates' acceptance check with
// Debian's AWS CLI v2.9.19 instead of the image's v1.45: the same chain
// (key rotations, a StopLogging/StartLogging gap, empty intervals) is
// valid, digest for digest and log file for log file.
func TestChainValidatesAWSCLIv2(t *testing.T) {
	cli := awsCLIv2(t)
	e := buildChain(t)
	endpoint := cloudTrailStub(t, e.trails, e.keys)
	dataPath := s3DataPath(t, e.srv.Endpoint, e.srv.Region)

	res, out := e.validate(t, "us-east-1", true)
	if !res.OK() || res.ValidDigests < 30 || res.ValidLogs < 8 {
		t.Fatalf("want >=30 valid digests and >=8 valid log files, nothing invalid; got %+v\n%s", res, out)
	}
	cliOut, code := e.runCLIv2(t, cli, endpoint, dataPath, "us-east-1", true)
	t.Logf("%s cloudtrail validate-logs:\n%s", cli, cliOut)
	checkCLIAccepts(t, "AWS CLI v2", cliOut, code, res)
	if !strings.Contains(cliOut, "Results requested for") {
		t.Fatalf("AWS CLI v2 printed no results header:\n%s", cliOut)
	}

	// The CLI really read the objects: a deleted log file is reported.
	_, logs := e.objects(t)
	var usLogs []string
	for _, k := range logs {
		if strings.Contains(k, "/us-east-1/") {
			usLogs = append(usLogs, k)
		}
	}
	aLog := usLogs[len(usLogs)/2]
	snap := e.snapshot(t)
	e.del(t, aLog)
	cliOut, code = e.runCLIv2(t, cli, endpoint, dataPath, "us-east-1", false)
	e.restore(t, snap)
	if code == 0 || !strings.Contains(cliOut, aLog) || !strings.Contains(cliOut, "INVALID: not found") {
		t.Fatalf("AWS CLI v2 did not report the deleted log file %s (exit %d):\n%s", aLog, code, cliOut)
	}
}

// buildBigChain writes a chain of n one-minute digests in us-east-1 with
// perDigest log files each. The log files are written straight to the
// store and recorded with the real digest writer (what delivery's
// OnLogFiles does), which keeps a 1,000-file chain quick to build.
func buildBigChain(t *testing.T, n, perDigest int) *chainEnv {
	t.Helper()
	ctx := context.Background()
	e := newChainEnv(t, 30*time.Minute)
	tr, err := e.trails.Create(ctx, "us-east-1", trail.CreateInput{Name: "audit", S3BucketName: bucket, EnableLogFileValidation: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	e.arn = tr.ARN()
	if err := e.trails.StartLogging(ctx, "us-east-1", "audit"); err != nil {
		t.Fatal(err)
	}
	seq := 0
	for i := range n {
		e.clk.Add(30 * time.Second)
		now := e.clk.Now()
		files := make([]delivery.LogFileDelivered, perDigest)
		errs := make(chan error, perDigest)
		for j := range perDigest {
			seq++
			var body bytes.Buffer
			body.WriteString(`{"Records":[`)
			for r := range 20 {
				if r > 0 {
					body.WriteByte(',')
				}
				body.Write(record(seq*100+r, "us-east-1", now.Add(-10*time.Second)))
			}
			body.WriteString(`]}`)
			key := delivery.LogFileKey("", account, "us-east-1", now, fmt.Sprintf("B%05dX%010d", i, seq))
			files[j] = delivery.LogFileDelivered{TrailARN: e.arn, Region: "us-east-1", Bucket: bucket, Key: key,
				SHA256: sha256.Sum256(body.Bytes()), NewestEventTime: now.Add(-10 * time.Second), OldestEventTime: now.Add(-10 * time.Second),
				DeliveredAt: now, First: uint64(i + 1), Last: uint64(i + 1)}
			z := gz(body.Bytes())
			go func() {
				errs <- e.store.Put(ctx, bucket, key, bytes.NewReader(z), int64(len(z)), objstore.PutOptions{ContentType: delivery.ContentType})
			}()
		}
		for range perDigest {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if err := e.w.Record(ctx, files); err != nil {
			t.Fatal(err)
		}
		e.clk.Add(30 * time.Second)
		if err := e.w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// TestBenchValidateChain times `cairn validate-logs` against the AWS CLI's
// on a 100-digest, 1,000-log-file chain in versitygw, back to back in
// rounds (CAIRN_BENCH_ROUNDS, default 5), against versitygw as the tests
// run it and with --keep-alive, and times the bare GETs of the same
// objects as a floor. It is a benchmark, run by scripts/bench-validate
// (CAIRN_BENCH_VALIDATE=1; CAIRN_BIN is the cairn binary, else it is
// built). Both validators go online through the same loopback CloudTrail
// handler and read the same store.
func TestBenchValidateChain(t *testing.T) {
	if os.Getenv("CAIRN_BENCH_VALIDATE") == "" {
		t.Skip("a benchmark: run scripts/bench-validate (CAIRN_BENCH_VALIDATE=1)")
	}
	cli := awsCLI(t)
	cairn := os.Getenv("CAIRN_BIN")
	if cairn == "" {
		cairn = filepath.Join(t.TempDir(), "cairn")
		if out, err := exec.Command("go", "build", "-o", cairn, "../../cmd/cairn").CombinedOutput(); err != nil {
			t.Fatalf("go build cairn: %v\n%s", err, out)
		}
	}
	nDigests, perDigest := 100, 10
	t0 := time.Now()
	e := buildBigChain(t, nDigests, perDigest)
	t.Logf("built %d digests x %d log files in %v", nDigests, perDigest, time.Since(t0).Round(time.Millisecond))
	endpoint := cloudTrailStub(t, e.trails, e.keys)

	// The public keys for the offline run, as `cairn keys export-public`
	// writes them.
	pks, err := e.keys.PublicKeys(context.Background(), "us-east-1", e.start, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	var lo api.ListPublicKeysOutput
	for _, pk := range pks {
		s, en := awsproto.Timestamp{Time: pk.Start}, awsproto.Timestamp{Time: pk.End}
		lo.PublicKeyList = append(lo.PublicKeyList, api.PublicKeyOut{Value: pk.DER, Fingerprint: pk.Fingerprint, ValidityStartTime: &s, ValidityEndTime: &en})
	}
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	kb, _ := json.Marshal(lo)
	if err := os.WriteFile(keysFile, kb, 0o644); err != nil {
		t.Fatal(err)
	}

	startS := e.start.Format(time.RFC3339)
	cairnEnv := append(cleanEnv(), "AWS_ACCESS_KEY_ID="+e.srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+e.srv.SecretAccessKey,
		"CAIRN_S3_ACCESS_KEY_ID="+e.srv.AccessKeyID, "CAIRN_S3_SECRET_ACCESS_KEY="+e.srv.SecretAccessKey)
	if hold := os.Getenv("CAIRN_BENCH_HOLD"); hold != "" {
		// Keep the chain and its servers up for measuring by hand: write
		// the commands to the file and wait until it is removed.
		q := func(ss ...string) string {
			var b strings.Builder
			for _, s := range ss {
				b.WriteString(" '" + s + "'")
			}
			return b.String()
		}
		script := "# rm this file to end the benchmark\n" +
			"export" + q(cairnEnv[len(cairnEnv)-4:]...) + "\n" +
			"cairn_online() { \"${CAIRN_BIN:-" + cairn + "}\" validate-logs" + q("--trail-arn", e.arn, "--start-time", startS, "--region", "us-east-1", "--endpoint-url", endpoint, "--store", e.srv.StoreURL()) + " \"$@\"; }\n" +
			"cairn_offline() { \"${CAIRN_BIN:-" + cairn + "}\" validate-logs" + q("--trail-arn", e.arn, "--start-time", startS, "--region", "us-east-1", "--s3-bucket", bucket, "--public-keys", keysFile, "--store", e.srv.StoreURL()) + " \"$@\"; }\n" +
			"aws_v1() { env -i PATH=\"$PATH\" HOME=\"$HOME\"" + q(append(e.srv.Env(), "AWS_ENDPOINT_URL="+endpoint, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")...) +
			" " + cli + " cloudtrail validate-logs" + q("--trail-arn", e.arn, "--start-time", startS, "--region", "us-east-1") + " \"$@\"; }\n" +
			"versitygw_pid=" + strconv.Itoa(versitygwPID(t, e.srv.Endpoint)) + "\n" +
			"s3_endpoint=" + e.srv.Endpoint + "\n"
		if err := os.WriteFile(hold, []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("holding: source %s; remove it to end", hold)
		for {
			if _, err := os.Stat(hold); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}

	rounds := 5
	if v := os.Getenv("CAIRN_BENCH_ROUNDS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			rounds = n
		}
	}
	want := fmt.Sprintf("%d/%d digest files valid", nDigests, nDigests)
	wantLogs := fmt.Sprintf("%d/%d log files valid", nDigests*perDigest, nDigests*perDigest)
	// versitygw closes every connection after one request unless started
	// with --keep-alive (AWS S3, MinIO and Ceph keep them open), so each
	// GET costs both sides a TCP connection. Both set-ups are measured:
	// the test's server, and a second versitygw with --keep-alive serving
	// the same directory.
	servers := []struct {
		name, endpoint string
	}{{"versitygw (default: a connection per request)", e.srv.Endpoint}, {"versitygw --keep-alive", startKeepAliveGateway(t, e.srv)}}
	for _, sv := range servers {
		gw := versitygwPID(t, sv.endpoint)
		storeURL := "s3://" + strings.TrimPrefix(sv.endpoint, "http://") + "?region=" + e.srv.Region + "&tls=false"
		type validator struct {
			name string
			cmd  func() *exec.Cmd
		}
		validators := []validator{
			{"aws v1.45", func() *exec.Cmd {
				c := exec.Command(cli, "cloudtrail", "validate-logs", "--trail-arn", e.arn, "--start-time", startS, "--region", "us-east-1")
				c.Env = append(cleanEnv(), "AWS_ACCESS_KEY_ID="+e.srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+e.srv.SecretAccessKey,
					"AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL_S3="+sv.endpoint,
					"AWS_ENDPOINT_URL="+endpoint, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
				return c
			}},
			{"cairn online", func() *exec.Cmd {
				c := exec.Command(cairn, "validate-logs", "--trail-arn", e.arn, "--start-time", startS, "--region", "us-east-1",
					"--endpoint-url", endpoint, "--store", storeURL)
				c.Env = cairnEnv
				return c
			}},
			{"cairn offline", func() *exec.Cmd {
				c := exec.Command(cairn, "validate-logs", "--trail-arn", e.arn, "--start-time", startS, "--region", "us-east-1",
					"--s3-bucket", bucket, "--public-keys", keysFile, "--store", storeURL)
				c.Env = cairnEnv
				return c
			}},
		}
		if _, err := os.Stat(debianAWS); err == nil {
			dataPath := s3DataPath(t, sv.endpoint, e.srv.Region)
			validators = append(validators, validator{"aws v2.9.19", func() *exec.Cmd {
				c := exec.Command(debianAWS, "cloudtrail", "validate-logs", "--trail-arn", e.arn, "--start-time", startS,
					"--region", "us-east-1", "--endpoint-url", endpoint)
				c.Env = append(cleanEnv(), "AWS_ACCESS_KEY_ID="+e.srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+e.srv.SecretAccessKey,
					"AWS_DATA_PATH="+dataPath, "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
				return c
			}})
		}
		fmt.Printf("\n== %s: %d digests, %d log files; %d rounds, each validator once per round, back to back\n", sv.name, nDigests, nDigests*perDigest, rounds)
		fmt.Printf("%-6s %-14s %8s %8s %10s %6s\n", "round", "validator", "wall", "CPU", "versitygw", "load")
		walls := map[string][]float64{}
		var ratios, ratiosV2 []float64
		for r := range rounds {
			wall := map[string]float64{}
			for _, v := range validators {
				c := v.cmd()
				gw0 := procCPU(gw)
				s := time.Now()
				out, err := c.CombinedOutput()
				d := time.Since(s)
				if err != nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), wantLogs) {
					t.Fatalf("%s: %v; want %q and %q:\n%s", v.name, err, want, wantLogs, out)
				}
				wall[v.name] = d.Seconds()
				walls[v.name] = append(walls[v.name], d.Seconds())
				fmt.Printf("%-6d %-14s %7.2fs %7.2fs %9.2fs %6s\n", r+1, v.name, d.Seconds(),
					(c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds(), (procCPU(gw) - gw0).Seconds(), loadAvg())
			}
			ratios = append(ratios, wall["aws v1.45"]/wall["cairn online"])
			if w, ok := wall["aws v2.9.19"]; ok {
				ratiosV2 = append(ratiosV2, w/wall["cairn online"])
			}
		}
		fmt.Printf("speed-up of cairn online, per round: vs aws v1.45 %s (median %.1fx); vs aws v2.9.19 %s (median %.1fx)\n",
			fmtRatios(ratios), median(ratios), fmtRatios(ratiosV2), median(ratiosV2))
		fmt.Printf("median wall: aws v1.45 %.2fs, cairn online %.2fs, cairn offline %.2fs\n",
			median(walls["aws v1.45"]), median(walls["cairn online"]), median(walls["cairn offline"]))

		// The floor: the same GETs with nothing else (a lean signed GET
		// per object, 32 at once, bodies discarded), in process.
		st, err := s3.New(context.Background(), s3.Options{Endpoint: sv.endpoint, Region: e.srv.Region, AccessKeyID: e.srv.AccessKeyID, SecretAccessKey: e.srv.SecretAccessKey})
		if err != nil {
			t.Fatal(err)
		}
		digestKeys, logKeys := e.objects(t)
		all := append(digestKeys, logKeys...)
		var floors []float64
		for range rounds {
			gw0 := procCPU(gw)
			s := time.Now()
			getAll(t, st, all, 32)
			floors = append(floors, time.Since(s).Seconds())
			fmt.Printf("minimal client: %d GETs, 32 at once: %.2fs (versitygw CPU %.2fs, load %s)\n", len(all), floors[len(floors)-1], (procCPU(gw) - gw0).Seconds(), loadAvg())
		}
		fmt.Printf("median: minimal client %.2fs; cairn online is %.1fx the minimal client's time\n", median(floors), median(walls["cairn online"])/median(floors))
	}

	// In process, without process start and SDK set-up: where the time
	// goes inside Validate (CAIRN_BENCH_CPUPROFILE=FILE writes a profile).
	if p := os.Getenv("CAIRN_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	gw := versitygwPID(t, e.srv.Endpoint)
	for _, par := range []int{1, 8, 32} {
		gw0 := procCPU(gw)
		s := time.Now()
		res, err := digest.Validate(context.Background(), digest.ValidateOptions{TrailARN: e.arn, Start: e.start, Now: time.Now(),
			Bucket: bucket, SourceRegion: "us-east-1", Store: e.store, PublicKeys: publicKeysFrom(e.keys, "us-east-1"), Parallel: par})
		if err != nil || !res.OK() || res.ValidLogs != nDigests*perDigest {
			t.Fatalf("in-process Validate: %v %+v", err, res)
		}
		fmt.Printf("in-process digest.Validate, Parallel %2d: %5.2fs (versitygw CPU %.2fs)\n", par, time.Since(s).Seconds(), (procCPU(gw) - gw0).Seconds())
	}
}

// getAll reads every key with n readers, discarding the bodies.
func getAll(t *testing.T, st *s3.Store, keys []string, n int) {
	t.Helper()
	next := make(chan string)
	errs := make(chan error, n)
	for range n {
		go func() {
			var err error
			for k := range next {
				rc, _, gerr := st.GetLean(context.Background(), bucket, k)
				if gerr != nil {
					err = gerr
					continue
				}
				_, _ = io.Copy(io.Discard, rc)
				rc.Close()
			}
			errs <- err
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// startKeepAliveGateway runs a second versitygw with --keep-alive over
// srv's directory (read-only use), with the same credentials.
func startKeepAliveGateway(t *testing.T, srv *s3test.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(s3test.Binary(t), "--port", addr, "--region", srv.Region, "--quiet", "--keep-alive", "posix", srv.Dir)
	cmd.Dir = srv.Dir
	cmd.Env = append(cleanEnv(), "ROOT_ACCESS_KEY_ID="+srv.AccessKeyID, "ROOT_SECRET_ACCESS_KEY="+srv.SecretAccessKey)
	exited, err := s3test.StartChild(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	endpoint := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(endpoint + "/"); err == nil {
			resp.Body.Close()
			return endpoint
		}
		if time.Now().After(deadline) {
			t.Fatal("versitygw --keep-alive did not answer within 20s")
		}
	}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.1fx", x)
	}
	return strings.Join(parts, " ")
}

// versitygwPID finds the versitygw serving endpoint (0 if not found).
func versitygwPID(t *testing.T, endpoint string) int {
	t.Helper()
	addr := strings.TrimPrefix(endpoint, "http://")
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err == nil && bytes.Contains(cl, []byte("versitygw")) && bytes.Contains(cl, []byte(addr)) {
			return pid
		}
	}
	t.Logf("versitygw for %s not found in /proc; its CPU is not reported", endpoint)
	return 0
}

// procCPU is a process's user+system CPU time from /proc (USER_HZ 100).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" closing the command name: state is field 3,
	// utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	sy, _ := strconv.Atoi(f[12])
	return time.Duration(u+sy) * 10 * time.Millisecond
}

// TestTamperingReportsMatchAWSCLI tampers with log files and digests in
// S3 (versitygw) the ways issue 12 lists (a log file edited, truncated,
// replaced by another valid log file; a digest edited, truncated, stripped
// of its signature metadata), one at a time and all at once, and checks
// that `cairn validate-logs` and `aws cloudtrail validate-logs` (the
// image's v1 and, when present, Debian's v2) report them line for line:
// the same lines in the same order, except Cairn's own extra findings
// (log files of an unverifiable digest that no valid digest lists) and the
// log-file count they add to.
func TestTamperingReportsMatchAWSCLI(t *testing.T) {
	cli := awsCLI(t)
	e := buildBigChain(t, 8, 2)
	endpoint := cloudTrailStub(t, e.trails, e.keys)
	digests, logs := e.objects(t)
	if len(digests) != 8 || len(logs) != 16 {
		t.Fatalf("chain: %d digests, %d log files", len(digests), len(logs))
	}
	type cliRun func(t *testing.T) (string, int)
	clis := map[string]cliRun{"aws v1": func(t *testing.T) (string, int) {
		return e.runCLI(t, cli, endpoint, "us-east-1")
	}}
	if _, err := os.Stat(debianAWS); err == nil {
		dataPath := s3DataPath(t, e.srv.Endpoint, e.srv.Region)
		clis["aws v2"] = func(t *testing.T) (string, int) {
			return e.runCLIv2(t, debianAWS, endpoint, dataPath, "us-east-1", true)
		}
	}
	editLog := func(k string) func(t *testing.T) {
		return func(t *testing.T) {
			raw, _ := e.get(t, k)
			e.putRaw(t, k, gz(bytes.Replace(raw, []byte("DescribeInstances"), []byte("TerminateInstances"), 1)), nil)
		}
	}
	truncate := func(k string, keepMeta bool) func(t *testing.T) {
		return func(t *testing.T) {
			rc, info, err := e.store.Get(context.Background(), bucket, k)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			var meta map[string]string
			if keepMeta {
				meta = info.Metadata
			}
			e.putRaw(t, k, b[:len(b)/2], meta)
		}
	}
	replaceLog := func(k, with string) func(t *testing.T) {
		return func(t *testing.T) {
			raw, _ := e.get(t, with)
			e.putRaw(t, k, gz(raw), nil)
		}
	}
	editDigest := func(k string) func(t *testing.T) {
		return func(t *testing.T) {
			raw, meta := e.get(t, k)
			e.putRaw(t, k, gz(bytes.Replace(raw, []byte(`"logFiles":[`), []byte(`"logFiles":[ `), 1)), meta)
		}
	}
	stripDigest := func(k string) func(t *testing.T) {
		return func(t *testing.T) {
			raw, _ := e.get(t, k)
			e.putRaw(t, k, gz(raw), nil)
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T)
	}{
		{"log file edited", editLog(logs[3])},
		{"log file truncated", truncate(logs[6], false)},
		{"log file replaced by another valid log file", replaceLog(logs[7], logs[2])},
		{"digest edited", editDigest(digests[5])},
		{"digest truncated", truncate(digests[6], true)},
		{"digest without its signature metadata", stripDigest(digests[4])},
	}
	each := slices.Clone(cases)
	cases = append(cases, struct {
		name   string
		tamper func(t *testing.T)
	}{"all at once", func(t *testing.T) {
		for _, c := range each {
			c.tamper(t)
		}
	}})
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			snap := e.snapshot(t)
			defer e.restore(t, snap)
			c.tamper(t)
			res, out := e.validate(t, "us-east-1", false)
			if res.OK() {
				t.Fatalf("cairn validate-logs found nothing:\n%s", out)
			}
			for name, run := range clis {
				cliOut, code := run(t)
				if code == 0 {
					t.Errorf("%s found nothing (exit 0):\n%s", name, cliOut)
				}
				// aws v2.9.19 starts "Results found for" at the oldest
				// digest's end, v1.45 (and Cairn) at its start: a
				// difference between CLI versions, tampered with or not.
				v29 := name == "aws v2"
				want, got := comparable(cliOut, v29), comparable(out, v29)
				if !slices.Equal(want, got) {
					t.Errorf("%s and cairn validate-logs disagree:\n%s\n--- cairn:\n%s", name, cliOut, out)
				}
			}
		})
	}
}

// comparable is a validate-logs report's lines without blank lines,
// Cairn's own extra finding of log files no valid digest lists, and the
// log-file count line (those findings add to it). The requested end time
// is cut from the two lines that show it: it is "now" for the CLI, the
// chain's simulated clock for Cairn here. noFound drops the "Results
// found for" line too.
func comparable(report string, noFound bool) []string {
	var out []string
	for l := range strings.SplitSeq(report, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.Contains(l, "INVALID: not listed in any digest file") || strings.Contains(l, " log files valid") ||
			noFound && strings.HasPrefix(l, "Results found for ") {
			continue
		}
		if strings.HasPrefix(l, "Validating log files for trail ") {
			l, _, _ = strings.Cut(l, " and ")
		}
		if strings.HasPrefix(l, "Results requested for ") {
			l, _, _ = strings.Cut(l, " to ")
		}
		out = append(out, l)
	}
	return out
}
