package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

// TestValidateLogsOffline writes a short chain into a file store, exports
// the public keys the way `keys export-public` writes them, and runs
// `cairn validate-logs --public-keys` against it: exit 0, then exit 1 with
// the problem named once a log file is deleted.
func TestValidateLogsOffline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := state.Open(ctx, filepath.Join(dir, "state"), state.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storeDir := filepath.Join(dir, "buckets")
	store, err := file.New(storeDir, file.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateBucket(ctx, "audit-logs"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	clk := func() time.Time { return now }
	trails := trail.New(st, store, "123456789012", clk, trail.WithLogger(quiet))
	v := true
	tr, err := trails.Create(ctx, "us-east-1", trail.CreateInput{Name: "audit", S3BucketName: "audit-logs", EnableLogFileValidation: &v})
	if err != nil {
		t.Fatal(err)
	}
	if err := trails.StartLogging(ctx, "us-east-1", "audit"); err != nil {
		t.Fatal(err)
	}
	keys, err := digest.OpenKeys(dir, st, digest.KeyOptions{Clock: clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w, err := digest.NewWriter(st, trails, store, keys, digest.Options{Interval: time.Minute, Clock: clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	start := now
	var logKey string
	for i := range 5 {
		now = now.Add(30 * time.Second)
		body := []byte(`{"Records":[]}`)
		logKey = delivery.LogFileKey("", "123456789012", "us-east-1", now, "ABCDEFGHIJKLMNO"+string(rune('a'+i)))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(body)
		zw.Close()
		if err := store.Put(ctx, "audit-logs", logKey, bytes.NewReader(gz.Bytes()), int64(gz.Len()), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		f := delivery.LogFileDelivered{TrailARN: tr.ARN(), Region: "us-east-1", Bucket: "audit-logs", Key: logKey, DeliveredAt: now,
			NewestEventTime: now, OldestEventTime: now, First: uint64(i + 1), Last: uint64(i + 1)}
		f.SHA256 = sha(body)
		if err := w.Record(ctx, []delivery.LogFileDelivered{f}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(30 * time.Second)
		if err := w.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pks, err := keys.PublicKeys(ctx, "us-east-1", start.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	var doc api.ListPublicKeysOutput
	for _, pk := range pks {
		doc.PublicKeyList = append(doc.PublicKeyList, api.PublicKeyOut{Value: pk.DER, Fingerprint: pk.Fingerprint,
			ValidityStartTime: awsproto.NewTimestamp(pk.Start), ValidityEndTime: awsproto.NewTimestamp(pk.End)})
	}
	keysFile := filepath.Join(dir, "keys.json")
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(keysFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		var out bytes.Buffer
		err := validateLogsMain(ctx, []string{"--trail-arn", tr.ARN(), "--start-time", start.Format(time.RFC3339), "--s3-bucket", "audit-logs",
			"--public-keys", keysFile, "--store", "file://" + storeDir, "--region", "us-east-1", "--verbose"}, &out, &out, func() time.Time { return now })
		return out.String(), err
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "5/5 log files valid") {
		t.Fatalf("valid chain: err=%v\n%s", err, out)
	}
	if err := store.Delete(ctx, "audit-logs", logKey); err != nil {
		t.Fatal(err)
	}
	out, err = run()
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 || !strings.Contains(out, logKey+"\tINVALID: not found") {
		t.Fatalf("deleted log file: err=%v\n%s", err, out)
	}
	_ = runValidateLogs // wired in main.go by the lead
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }
