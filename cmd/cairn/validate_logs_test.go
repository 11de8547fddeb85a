package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/digest"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

// fileChain is a short chain in a file store: digests one minute apart,
// each listing perDigest log files of one record, and the public keys
// exported the way `keys export-public` writes them.
type fileChain struct {
	store     *file.Store
	storeDir  string
	keysFile  string
	arn       string
	start     time.Time
	now       time.Time
	digests   []string // oldest first
	logs      []string // in delivery order
	logsOf    map[string][]string
	logBucket string
}

func newFileChain(t *testing.T, nDigests, perDigest int) *fileChain {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := state.Open(ctx, filepath.Join(dir, "state"), state.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &fileChain{storeDir: filepath.Join(dir, "buckets"), logBucket: "audit-logs", logsOf: map[string][]string{}}
	c.store, err = file.New(c.storeDir, file.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.store.Close() })
	if err := c.store.CreateBucket(ctx, c.logBucket); err != nil {
		t.Fatal(err)
	}
	c.now = time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	clk := func() time.Time { return c.now }
	trails := trail.New(st, c.store, "123456789012", clk, trail.WithLogger(quiet))
	v := true
	tr, err := trails.Create(ctx, "us-east-1", trail.CreateInput{Name: "audit", S3BucketName: c.logBucket, EnableLogFileValidation: &v})
	if err != nil {
		t.Fatal(err)
	}
	c.arn = tr.ARN()
	if err := trails.StartLogging(ctx, "us-east-1", "audit"); err != nil {
		t.Fatal(err)
	}
	keys, err := digest.OpenKeys(dir, st, digest.KeyOptions{Clock: clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w, err := digest.NewWriter(st, trails, c.store, keys, digest.Options{Interval: time.Minute, Clock: clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c.start = c.now
	n := 0
	for range nDigests {
		c.now = c.now.Add(30 * time.Second)
		var files []delivery.LogFileDelivered
		for range perDigest {
			n++
			body := fmt.Appendf(nil, `{"Records":[{"eventVersion":"1.11","eventTime":%q,"eventName":"DescribeInstances","awsRegion":"us-east-1","requestID":"req-%d"}]}`,
				c.now.Format(time.RFC3339), n)
			key := delivery.LogFileKey("", "123456789012", "us-east-1", c.now, fmt.Sprintf("ABCDEFGHIJ%05d", n))
			z := gzipped(body)
			if err := c.store.Put(ctx, c.logBucket, key, bytes.NewReader(z), int64(len(z)), objstore.PutOptions{ContentEncoding: "gzip"}); err != nil {
				t.Fatal(err)
			}
			f := delivery.LogFileDelivered{TrailARN: tr.ARN(), Region: "us-east-1", Bucket: c.logBucket, Key: key, DeliveredAt: c.now,
				NewestEventTime: c.now, OldestEventTime: c.now, First: uint64(n), Last: uint64(n)}
			f.SHA256 = sha(body)
			files = append(files, f)
			c.logs = append(c.logs, key)
		}
		if err := w.Record(ctx, files); err != nil {
			t.Fatal(err)
		}
		c.now = c.now.Add(30 * time.Second)
		if err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err = c.store.List(ctx, c.logBucket, "AWSLogs/123456789012/CloudTrail-Digest/", "", func(oi objstore.ObjectInfo) error {
		c.digests = append(c.digests, oi.Key)
		return nil
	})
	if err != nil || len(c.digests) != nDigests {
		t.Fatalf("listing the digests: %v, %d of %d", err, len(c.digests), nDigests)
	}
	for i, d := range c.digests {
		c.logsOf[d] = c.logs[i*perDigest : (i+1)*perDigest]
	}
	pks, err := keys.PublicKeys(ctx, "us-east-1", c.start.Add(-time.Hour), c.now)
	if err != nil {
		t.Fatal(err)
	}
	var doc api.ListPublicKeysOutput
	for _, pk := range pks {
		doc.PublicKeyList = append(doc.PublicKeyList, api.PublicKeyOut{Value: pk.DER, Fingerprint: pk.Fingerprint,
			ValidityStartTime: awsproto.NewTimestamp(pk.Start), ValidityEndTime: awsproto.NewTimestamp(pk.End)})
	}
	c.keysFile = filepath.Join(dir, "keys.json")
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(c.keysFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// validate runs `cairn validate-logs --verbose` offline against the store.
func (c *fileChain) validate(t *testing.T) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := validateLogsMain(context.Background(), []string{"--trail-arn", c.arn, "--start-time", c.start.Format(time.RFC3339), "--s3-bucket", c.logBucket,
		"--public-keys", c.keysFile, "--store", "file://" + c.storeDir, "--region", "us-east-1", "--verbose"}, &out, &out, func() time.Time { return c.now })
	return out.String(), err
}

// path is the file holding key's body.
func (c *fileChain) path(key string) string {
	return filepath.Join(c.storeDir, c.logBucket, filepath.FromSlash(key))
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func gunzipped(t *testing.T, z []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValidateLogsOffline writes a short chain into a file store, exports
// the public keys the way `keys export-public` writes them, and runs
// `cairn validate-logs --public-keys` against it: exit 0, then exit 1 with
// the problem named once a log file is deleted.
func TestValidateLogsOffline(t *testing.T) {
	c := newFileChain(t, 5, 1)
	out, err := c.validate(t)
	if err != nil || !strings.Contains(out, "5/5 log files valid") {
		t.Fatalf("valid chain: err=%v\n%s", err, out)
	}
	logKey := c.logs[len(c.logs)-1]
	if err := c.store.Delete(context.Background(), c.logBucket, logKey); err != nil {
		t.Fatal(err)
	}
	out, err = c.validate(t)
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 || !strings.Contains(out, logKey+"\tINVALID: not found") {
		t.Fatalf("deleted log file: err=%v\n%s", err, out)
	}
	_ = runValidateLogs // wired in main.go by the lead
}

// TestValidateLogsFileStoreTampering tampers with a file store's files on
// disk, as someone with access to the directory would, and checks that
// `cairn validate-logs` judges the bytes by the digest's hash like `aws
// cloudtrail validate-logs`: each tampered log file gets the CLI's own
// INVALID line, each tampered digest the CLI's digest line, every other
// digest and log file is still reported valid, the summary counts them
// all, and nothing stops the run or advises putting a file again (the
// file store's own sidecar check used to surface as an I/O error that
// ended validation with "put it again").
func TestValidateLogsFileStoreTampering(t *testing.T) {
	const perDigest = 2
	c := newFileChain(t, 8, perDigest)
	url := func(key string) string { return "s3://" + c.logBucket + "/" + key }
	type tampering struct {
		name string
		// do tampers and returns the lines the CLI prints for it (the
		// key's INVALID line), and the keys it leaves unchecked.
		do func(t *testing.T) (want []string, unchecked []string)
	}
	rewrite := func(t *testing.T, key string, b []byte) {
		t.Helper()
		// In place, as an editor or `cp` over it would: same inode.
		if err := os.WriteFile(c.path(key), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	read := func(t *testing.T, key string) []byte {
		t.Helper()
		b, err := os.ReadFile(c.path(key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hashMismatch := func(key string) string { return "Log file\t" + url(key) + "\tINVALID: hash value doesn't match" }
	// A digest the CLI finds invalid is skipped with its log files: the
	// walk goes on with the next older digest. (Cairn then also reports
	// those log files as listed in no digest it could verify.)
	digestInvalid := func(d, why string) ([]string, []string) {
		return []string{"Digest file\t" + url(d) + "\tINVALID: " + why}, append([]string{d}, c.logsOf[d]...)
	}
	cases := []tampering{
		{"log file edited", func(t *testing.T) ([]string, []string) {
			k := c.logs[3]
			rewrite(t, k, gzipped(bytes.Replace(gunzipped(t, read(t, k)), []byte("DescribeInstances"), []byte("TerminateInstances"), 1)))
			return []string{hashMismatch(k)}, nil
		}},
		{"log file edited and its sidecar deleted", func(t *testing.T) ([]string, []string) {
			k := c.logs[5]
			rewrite(t, k, gzipped(bytes.Replace(gunzipped(t, read(t, k)), []byte("DescribeInstances"), []byte("TerminateInstances"), 1)))
			if err := os.Remove(c.path(k) + ".cairn-meta.json"); err != nil {
				t.Fatal(err)
			}
			return []string{hashMismatch(k)}, nil
		}},
		{"log file sidecar deleted", func(t *testing.T) ([]string, []string) {
			// The bytes are the ones the digest hashed: valid.
			if err := os.Remove(c.path(c.logs[4]) + ".cairn-meta.json"); err != nil {
				t.Fatal(err)
			}
			return nil, nil
		}},
		{"log file truncated", func(t *testing.T) ([]string, []string) {
			k := c.logs[6]
			if err := os.Truncate(c.path(k), int64(len(read(t, k))/2)); err != nil {
				t.Fatal(err)
			}
			return []string{hashMismatch(k)}, nil
		}},
		{"log file replaced by another valid log file", func(t *testing.T) ([]string, []string) {
			k := c.logs[7]
			rewrite(t, k, read(t, c.logs[2]))
			return []string{hashMismatch(k)}, nil
		}},
		{"digest edited", func(t *testing.T) ([]string, []string) {
			d := c.digests[5]
			rewrite(t, d, gzipped(bytes.Replace(gunzipped(t, read(t, d)), []byte(`"logFiles":[`), []byte(`"logFiles":[ `), 1)))
			return digestInvalid(d, "signature verification failed")
		}},
		{"digest truncated", func(t *testing.T) ([]string, []string) {
			d := c.digests[6]
			if err := os.Truncate(c.path(d), int64(len(read(t, d))-5)); err != nil {
				t.Fatal(err)
			}
			return digestInvalid(d, "invalid format")
		}},
		{"digest sidecar deleted", func(t *testing.T) ([]string, []string) {
			// Its signature was in the sidecar.
			d := c.digests[4]
			if err := os.Remove(c.path(d) + ".cairn-meta.json"); err != nil {
				t.Fatal(err)
			}
			return digestInvalid(d, "signature verification failed")
		}},
	}
	// Restore through the store: a fresh sidecar for each original body.
	type object struct {
		body []byte
		info objstore.ObjectInfo
	}
	ctx := context.Background()
	snapshot := map[string]object{}
	for _, k := range append(slices.Clone(c.digests), c.logs...) {
		rc, info, err := c.store.Get(ctx, c.logBucket, k)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		snapshot[k] = object{b, info}
	}
	restore := func(t *testing.T) {
		t.Helper()
		for k, o := range snapshot {
			err := c.store.Put(ctx, c.logBucket, k, bytes.NewReader(o.body), int64(len(o.body)),
				objstore.PutOptions{ContentType: o.info.ContentType, ContentEncoding: o.info.ContentEncoding, Metadata: o.info.Metadata})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(t *testing.T, out string, err error, want []string, unchecked map[string]bool) {
		t.Helper()
		for _, bad := range []string{"again", "damaged", "does not match its stored metadata", "sidecar"} {
			if strings.Contains(out, bad) || (err != nil && strings.Contains(err.Error(), bad)) {
				t.Errorf("the report mentions %q (err=%v):\n%s", bad, err, out)
			}
		}
		var ec exitCode
		if len(want) == 0 && err != nil || len(want) > 0 && (!errors.As(err, &ec) || ec != 1) {
			t.Errorf("exit: %v, want %s", err, map[bool]string{true: "0", false: "exitCode(1)"}[len(want) == 0])
		}
		lines := map[string]bool{}
		for l := range strings.SplitSeq(out, "\n") {
			lines[l] = true
		}
		for _, w := range want {
			if !lines[w] {
				t.Errorf("missing the CLI's line %q", w)
			}
		}
		// Everything else is checked and valid.
		digests, logs, unlisted := 0, 0, 0
		for _, d := range c.digests {
			if unchecked[d] {
				// Cairn's own finding; the CLI says nothing of them.
				for _, k := range c.logsOf[d] {
					unlisted++
					if l := "Log file\t" + url(k) + "\tINVALID: not listed in any digest file (added, or its digest is gone)"; !lines[l] {
						t.Errorf("missing %q", l)
					}
				}
				continue
			}
			digests++
			if l := "Digest file\t" + url(d) + "\tvalid"; !lines[l] {
				t.Errorf("missing %q", l)
			}
			for _, k := range c.logsOf[d] {
				logs++
				if l := "Log file\t" + url(k) + "\tvalid"; !lines[l] && !slices.Contains(want, hashMismatch(k)) {
					t.Errorf("missing %q", l)
				}
			}
		}
		badDigests, badLogs := 0, 0
		for _, w := range want {
			if strings.HasPrefix(w, "Digest") {
				badDigests++
			} else {
				badLogs++
			}
		}
		sum := fmt.Sprintf("%d/%d digest files valid", digests, digests+badDigests)
		if badDigests > 0 {
			sum += fmt.Sprintf(", %d/%d digest files INVALID", badDigests, digests+badDigests)
		}
		sum += fmt.Sprintf("\n%d/%d log files valid", logs-badLogs, logs+unlisted)
		if badLogs+unlisted > 0 {
			sum += fmt.Sprintf(", %d/%d log files INVALID", badLogs+unlisted, logs+unlisted)
		}
		if !strings.Contains(out, sum) {
			t.Errorf("want the summary %q", sum)
		}
		if t.Failed() {
			t.Logf("cairn validate-logs (err=%v):\n%s", err, out)
		}
	}
	if out, err := c.validate(t); err != nil {
		t.Fatalf("the chain before tampering: %v\n%s", err, out)
	}
	all, allUnchecked := []string{}, map[string]bool{}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			defer restore(t)
			want, unchecked := tc.do(t)
			m := map[string]bool{}
			for _, k := range unchecked {
				m[k] = true
			}
			out, err := c.validate(t)
			check(t, out, err, want, m)
		})
	}
	// All at once: each reported, the rest still checked.
	t.Run("all_at_once", func(t *testing.T) {
		defer restore(t)
		for _, tc := range cases {
			want, unchecked := tc.do(t)
			all = append(all, want...)
			for _, k := range unchecked {
				allUnchecked[k] = true
			}
		}
		out, err := c.validate(t)
		check(t, out, err, all, allUnchecked)
	})
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }
