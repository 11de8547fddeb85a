package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/digest"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

// digestProxy is a loopback reverse proxy in front of the S3 server for
// Cairn's writes. It announces every digest PUT when it arrives and again
// when the server has accepted it, can hold digest PUTs for a while (so
// that a kill lands while one is in flight, before it reaches S3), and
// records the SHA-256 of every accepted PUT body per key, so that a digest
// written twice can be compared byte for byte.
type digestProxy struct {
	srv  *httptest.Server
	hold atomic.Int64 // nanoseconds a digest PUT is held before it is forwarded

	arrived, landed chan string // digest keys (paths); sends never block

	mu   sync.Mutex
	puts map[string][]string
}

func newDigestProxy(t *testing.T, target string) *digestProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the Host header, which the signature covers
	rp.ErrorLog = log.New(io.Discard, "", 0)    // a killed client's aborted requests are expected
	p := &digestProxy{arrived: make(chan string, 1000), landed: make(chan string, 1000), puts: map[string][]string{}}
	note := func(c chan string, s string) {
		select {
		case c <- s:
		default:
		}
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			rp.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		isDigest := strings.Contains(r.URL.Path, "/CloudTrail-Digest/")
		if isDigest {
			note(p.arrived, r.URL.Path)
			if d := time.Duration(p.hold.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return // the writer died: the PUT never reaches S3
				}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		if rec.status == http.StatusOK {
			sum := sha256.Sum256(body)
			p.mu.Lock()
			p.puts[r.URL.Path] = append(p.puts[r.URL.Path], hex.EncodeToString(sum[:]))
			p.mu.Unlock()
			if isDigest {
				note(p.landed, r.URL.Path)
			}
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// drain forgets earlier announcements.
func (p *digestProxy) drain() {
	for {
		select {
		case <-p.arrived:
		case <-p.landed:
		default:
			return
		}
	}
}

// rewrites counts digest keys written more than once, and fails the test
// for one written with different bytes.
func (p *digestProxy) rewrites(t *testing.T) int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for path, sums := range p.puts {
		if !strings.Contains(path, "/CloudTrail-Digest/") || len(sums) < 2 {
			continue
		}
		n++
		for _, s := range sums[1:] {
			if s != sums[0] {
				t.Errorf("digest %s was written %d times with different bytes", path, len(sums))
				break
			}
		}
	}
	return n
}

// waitFor returns the next key announced on c, failing the test after
// timeout.
func waitFor(t *testing.T, c chan string, what string, timeout time.Duration) string {
	t.Helper()
	select {
	case k := <-c:
		return k
	case <-time.After(timeout):
		t.Fatalf("no digest PUT %s within %s", what, timeout)
		return ""
	}
}

// startGateway runs versitygw (s3test's build) with the given root key on
// a free loopback port. The AWS CLI signs its CloudTrail and S3 requests
// with one credential set, so the S3 server here shares Cairn's key.
func startGateway(t *testing.T, accessKey, secret string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logPath := filepath.Join(filepath.Dir(dir), "versitygw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	gwLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	cmd := exec.Command(s3test.Binary(t), "--port", addr, "--region", s3test.Region, "--quiet", "posix", dir)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ROOT_ACCESS_KEY_ID="+accessKey, "ROOT_SECRET_ACCESS_KEY="+secret)
	exited, err := s3test.StartChild(cmd)
	if err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("versitygw output:\n%s", gwLog())
		}
	})
	endpoint := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("versitygw exited during startup: %v\n%s", err, gwLog())
		default:
		}
		if resp, err := client.Get(endpoint + "/"); err == nil {
			resp.Body.Close()
			return endpoint
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer within 20s\n%s", gwLog())
		}
	}
}

var (
	keyIDRE  = regexp.MustCompile(`Access key ID:\s+(\S+)`)
	secretRE = regexp.MustCompile(`Secret access key:\s+(\S+)`)
)

// digestObject is one digest file as read from the bucket.
type digestObject struct {
	key string
	raw []byte
	d   *digest.Digest
}

// TestDigestChainSurvivesKill9 kills `cairn serve` with SIGKILL while it
// writes digest files and checks that every chain still validates end to
// end. A multi-region trail with log file validation (--digest-interval
// 1m, the minimum, so the test takes about a minute and a half of real
// time; there is no test clock in the binary) delivers S3 data events
// from three regions every second into versitygw, behind a proxy that
// announces digest PUTs. Kills: while the first digest's PUT is held in
// flight (it never reaches S3), right after its rewrite was accepted by
// S3 (before Cairn can record it), at an arbitrary moment between
// digests, and while the final digest of StopLogging is in flight. After
// the last restart:
//   - `cairn validate-logs` (online) and the real `aws cloudtrail
//     validate-logs` (v1.45) report every digest and log file of every
//     region valid, nothing INVALID;
//   - read directly from the bucket, each region's digests form one
//     unbroken chain: each names its predecessor's key, hash and
//     signature, starts where the predecessor ended, exactly one starting
//     digest; every log file in the bucket is listed by exactly one digest
//     and every listed file exists;
//   - a digest key written twice was written with the same bytes.
func TestDigestChainSurvivesKill9(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	keyOut := runCairn(t, work, "keys", "create", "--name", "digest-crash", "--role", "admin", "--data-dir", dataDir)
	km, sm := keyIDRE.FindStringSubmatch(keyOut), secretRE.FindStringSubmatch(keyOut)
	if km == nil || sm == nil {
		t.Fatalf("no key in `keys create` output:\n%s", keyOut)
	}
	akid, secret := km[1], sm[1]
	// The credentials file serve would have written for its first key,
	// so that sdkClient and validate-logs --data-dir find this one.
	if err := os.WriteFile(filepath.Join(dataDir, "credentials"), []byte(auth.CredentialsFile(auth.AdminProfile, akid, secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, akid, secret)
	proxy := newDigestProxy(t, gw)
	s3c := s3.New(s3.Options{
		Region: s3test.Region, BaseEndpoint: aws.String(gw), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(akid, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	const bucket, trailName = "digest-crash", "validated"
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--data-dir", dataDir, "--delivery-interval", "1s", "--digest-interval", "1m",
		"--store", "s3://" + strings.TrimPrefix(proxy.srv.URL, "http://") + "?region=" + s3test.Region + "&tls=false",
		"--s3-access-key-id", akid, "--s3-secret-access-key", secret}
	var srvURL atomic.Pointer[string]
	var srv *child
	var ct *cloudtrail.Client
	start := func() {
		srv = startCairn(t, work, args...)
		u := srv.URL
		srvURL.Store(&u)
		ct = sdkClient(t, dataDir, srv.URL)
	}
	start()
	created, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{
		Name: aws.String(trailName), S3BucketName: aws.String(bucket), IsMultiRegionTrail: aws.Bool(true),
		EnableLogFileValidation: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.TrailARN)
	if _, err := ct.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String(trailName), AdvancedEventSelectors: toSDKSelectors(s3ObjectSelectors)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String(trailName)}); err != nil {
		t.Fatal(err)
	}
	began := time.Now().UTC()
	creds, err := ct.Options().Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := startTraffic(t, func() string { return *srvURL.Load() }, creds, "digest-kill9", 100*time.Millisecond)

	restart := func(what string) {
		t.Helper()
		srv.kill9(t)
		proxy.drain() // announcements from before the kill
		start()
		t.Logf("%6.1fs killed %s; restarted", time.Since(began).Seconds(), what)
	}
	// inS3 says whether the proxy path /bucket/key names an object in S3.
	inS3 := func(path string) bool {
		t.Helper()
		_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(strings.TrimPrefix(path, "/"+bucket+"/"))})
		return err == nil
	}
	// 1: the first digest (due a minute after StartLogging) held in flight.
	proxy.hold.Store(int64(3 * time.Second))
	k := waitFor(t, proxy.arrived, "for the first digest", 100*time.Second)
	time.Sleep(200 * time.Millisecond)
	restart("while the PUT of " + filepath.Base(k) + " was held in flight")
	if inS3(k) {
		t.Fatalf("%s reached S3: the kill did not land while it was in flight", k)
	}
	// 2: its rewrite after the restart, right after S3 accepted it.
	proxy.hold.Store(0)
	k = waitFor(t, proxy.landed, "after the restart", 30*time.Second)
	restart("right after S3 accepted " + filepath.Base(k))
	if !inS3(k) {
		t.Fatalf("%s is not in S3 although the server accepted it", k)
	}
	// 3: between digests, while log files are being delivered.
	time.Sleep(1500 * time.Millisecond)
	restart("at an arbitrary moment")
	time.Sleep(3 * time.Second)
	// 4: the final digests StopLogging makes, held in flight.
	tr.halt()
	proxy.drain()
	proxy.hold.Store(int64(3 * time.Second))
	if _, err := ct.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String(trailName)}); err != nil {
		t.Fatal(err)
	}
	k = waitFor(t, proxy.arrived, "after StopLogging", 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	restart("while the PUT of the final digest " + filepath.Base(k) + " was held in flight")
	if inS3(k) {
		t.Fatalf("%s reached S3: the kill did not land while it was in flight", k)
	}
	proxy.hold.Store(0)

	// Everything delivered and covered: each log file in the bucket is in
	// a digest (the files of the last batch, delivered after the final
	// digest, get a further digest).
	var digests map[string][]*digestObject
	var logs []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		digests, logs = readBucket(t, ctx, s3c, bucket)
		if uncovered := coverage(digests, logs, nil); len(uncovered) == 0 && len(logs) > 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after 60s %d of %d log files are in no digest, e.g. %s\n%s", len(uncovered), len(logs), uncovered[0], srv.stderr.String())
		}
		time.Sleep(time.Second)
	}
	time.Sleep(3 * time.Second) // a late duplicate digest would show now
	digests, logs = readBucket(t, ctx, s3c, bucket)
	problems := []string{}
	coverage(digests, logs, &problems)
	nDigests := 0
	for region, ds := range digests {
		nDigests += len(ds)
		problems = append(problems, checkChain(region, ds)...)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(digests) < 3 {
		t.Errorf("digest chains for %d regions, want the 3 the traffic logs in", len(digests))
	}
	t.Logf("%d log files in %d digests over %d regions; %d digest keys were written more than once, each time with the same bytes",
		len(logs), nDigests, len(digests), proxy.rewrites(t))

	// Both validators accept every region's chain.
	startS := began.Add(-time.Minute).Format(time.RFC3339)
	for region, ds := range digests {
		want := fmt.Sprintf("%d/%d digest files valid", len(ds), len(ds))
		var nLogs int
		for _, d := range ds {
			nLogs += len(d.d.LogFiles)
		}
		wantLogs := fmt.Sprintf("%d/%d log files valid", nLogs, nLogs)
		out := runCairn(t, work, "validate-logs", "--trail-arn", arn, "--start-time", startS, "--region", region,
			"--endpoint-url", srv.URL, "--data-dir", dataDir,
			"--store", "s3://"+strings.TrimPrefix(gw, "http://")+"?region="+s3test.Region+"&tls=false",
			"--s3-access-key-id", akid, "--s3-secret-access-key", secret)
		if strings.Contains(out, "INVALID") || !strings.Contains(out, want) || !strings.Contains(out, wantLogs) {
			t.Errorf("cairn validate-logs --region %s: want %q and %q, nothing INVALID:\n%s", region, want, wantLogs, out)
		}
		cliOut, code := runAWSValidate(t, arn, startS, region, srv.URL, gw, akid, secret)
		if code != 0 || strings.Contains(cliOut, "INVALID") || !strings.Contains(cliOut, want) || !strings.Contains(cliOut, wantLogs) {
			t.Errorf("aws cloudtrail validate-logs --region %s (exit %d): want %q and %q, nothing INVALID:\n%s", region, code, want, wantLogs, cliOut)
		}
	}
	srv.stop(t)
}

// runAWSValidate runs the AWS CLI v1 (first on PATH) validate-logs with
// CloudTrail at Cairn and S3 at the gateway.
func runAWSValidate(t *testing.T, arn, startS, region, cairnURL, s3URL, akid, secret string) (string, int) {
	t.Helper()
	cli, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the AWS CLI is required: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "cloudtrail", "validate-logs", "--trail-arn", arn, "--start-time", startS, "--region", region)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_ENDPOINT_URL="+cairnURL, "AWS_ENDPOINT_URL_S3="+s3URL,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
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

// readBucket reads every digest (by source region, oldest first) and lists
// every log file key in the bucket.
func readBucket(t *testing.T, ctx context.Context, c *s3.Client, bucket string) (map[string][]*digestObject, []string) {
	t.Helper()
	digests := map[string][]*digestObject{}
	var logs []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !strings.Contains(key, "/CloudTrail-Digest/") {
				if strings.HasSuffix(key, ".json.gz") {
					logs = append(logs, key)
				}
				continue
			}
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(out.Body)
			if err != nil {
				t.Fatalf("digest %s: %v", key, err)
			}
			raw, err := io.ReadAll(zr)
			out.Body.Close()
			if err != nil {
				t.Fatalf("digest %s: %v", key, err)
			}
			d, err := digest.Parse(raw)
			if err != nil {
				t.Fatalf("digest %s: %v", key, err)
			}
			if d.DigestS3Object != key {
				t.Errorf("digest %s names itself %s", key, d.DigestS3Object)
			}
			region := strings.Split(key[strings.Index(key, "/CloudTrail-Digest/")+len("/CloudTrail-Digest/"):], "/")[0]
			digests[region] = append(digests[region], &digestObject{key: key, raw: raw, d: d})
		}
	}
	for _, ds := range digests {
		sort.Slice(ds, func(i, j int) bool { return ds[i].d.DigestEndTime < ds[j].d.DigestEndTime })
	}
	return digests, logs
}

// coverage returns the log files no digest lists; with problems, it also
// reports log files listed twice and listed files that do not exist.
func coverage(digests map[string][]*digestObject, logs []string, problems *[]string) []string {
	listed := map[string]int{}
	for _, ds := range digests {
		for _, d := range ds {
			for _, lf := range d.d.LogFiles {
				listed[lf.S3Object]++
			}
		}
	}
	var uncovered []string
	for _, k := range logs {
		if listed[k] == 0 {
			uncovered = append(uncovered, k)
		}
	}
	if problems != nil {
		for _, k := range uncovered {
			*problems = append(*problems, "log file "+k+" is in no digest")
		}
		for k, n := range listed {
			if n > 1 {
				*problems = append(*problems, fmt.Sprintf("log file %s is listed by %d digests", k, n))
			}
			if !slices.Contains(logs, k) {
				*problems = append(*problems, "digests list "+k+", which is not in the bucket")
			}
		}
	}
	return uncovered
}

// checkChain checks one region's digests, oldest first: one chain start,
// then each digest names its predecessor's key and the hash of its JSON,
// and starts where it ended. (Signatures, and the previousDigestSignature
// links, are what the validators check.)
func checkChain(region string, ds []*digestObject) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(region+": "+format, args...))
	}
	if len(ds) == 0 {
		return nil
	}
	if ds[0].d.PreviousDigestS3Object != nil {
		bad("the oldest digest %s names a predecessor %s", ds[0].key, *ds[0].d.PreviousDigestS3Object)
	}
	for i := 1; i < len(ds); i++ {
		prev, d := ds[i-1], ds[i].d
		if d.PreviousDigestS3Object == nil {
			bad("%s starts a new chain (only the first digest should): a gap", ds[i].key)
			continue
		}
		if *d.PreviousDigestS3Object != prev.key {
			bad("%s names %s as its predecessor, want %s", ds[i].key, *d.PreviousDigestS3Object, prev.key)
		}
		sum := sha256.Sum256(prev.raw)
		if d.PreviousDigestHashValue == nil || *d.PreviousDigestHashValue != hex.EncodeToString(sum[:]) {
			bad("%s records another hash for %s", ds[i].key, prev.key)
		}
		if d.DigestStartTime != prev.d.DigestEndTime {
			bad("%s starts at %s but its predecessor ends at %s", ds[i].key, d.DigestStartTime, prev.d.DigestEndTime)
		}
	}
	return problems
}
