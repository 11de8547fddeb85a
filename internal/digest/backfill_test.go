package digest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/digest"
)

// TestBackfillDigests checks validate-logs' handling of CloudTrail's
// "_backfill" digests (reference §5.1, §5.5 step 8) against the AWS CLI v1.45,
// which walks them after the regular chain: a log file delivered late,
// which no regular digest lists, is reported by Cairn as listed in no
// digest; once a signed backfill digest lists it, Cairn and the CLI both
// report "1/1 backfill digest files valid" and the file valid. A backfill
// digest without its backfill-generation-timestamp metadata, or one whose
// log file was altered, is INVALID for both, with the CLI's "(backfill) "
// prefix on the digest line.
func TestBackfillDigests(t *testing.T) {
	cli := awsCLI(t)
	e := buildBigChain(t, 4, 2)
	endpoint := cloudTrailStub(t, e.trails, e.keys)
	ctx := context.Background()

	res, out := e.validate(t, "us-east-1", true)
	if !res.OK() || res.ValidDigests != 4 || res.ValidLogs != 8 {
		t.Fatalf("the chain itself: %+v\n%s", res, out)
	}
	digests, _ := e.objects(t)
	raw, _ := e.get(t, digests[1])
	reg, err := digest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := digest.ParseTime(reg.DigestEndTime)

	// A log file delivered within the second digest's period that it does
	// not list (CloudTrail's "processing delay").
	evTime := end.Add(-20 * time.Second)
	body := []byte(`{"Records":[` + string(record(9999, "us-east-1", evTime)) + `]}`)
	lateKey := delivery.LogFileKey("", account, "us-east-1", end.Add(-10*time.Second), "LATEFILE0000001")
	e.putRaw(t, lateKey, gz(body), nil)
	res, out = e.validate(t, "us-east-1", true)
	if res.OK() || !strings.Contains(out, lateKey+"\tINVALID: not listed in any digest file") {
		t.Fatalf("a late file no digest lists: want it reported as not listed; %+v\n%s", res, out)
	}

	// The backfill digest listing it: the regular digest's period and
	// key with "_backfill", signed by the key of its end time, a starting
	// digest (CloudTrail does not document backfill chaining).
	bfKey := strings.TrimSuffix(digests[1], ".json.gz") + "_backfill.json.gz"
	sk, err := e.keys.SigningKey(ctx, "us-east-1", end)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	ts := digest.FormatTime(evTime)
	bf := &digest.Digest{
		AWSAccountID: account, DigestStartTime: reg.DigestStartTime, DigestEndTime: reg.DigestEndTime,
		DigestS3Bucket: bucket, DigestS3Object: bfKey, DigestPublicKeyFingerprint: sk.Fingerprint,
		DigestSignatureAlgorithm: digest.SignatureAlgorithm, NewestEventTime: &ts, OldestEventTime: &ts,
		LogFiles: []digest.LogFile{{S3Bucket: bucket, S3Object: lateKey, HashValue: hex.EncodeToString(sum[:]), HashAlgorithm: "SHA-256",
			NewestEventTime: ts, OldestEventTime: ts}},
	}
	sealed, _, sig, err := digest.Seal(bf, sk)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{digest.MetaSignature: sig, digest.MetaSignatureAlgorithm: digest.SignatureAlgorithm,
		digest.MetaBackfillGenerationTimestamp: end.Add(5 * time.Minute).Format(time.RFC3339)}
	e.putRaw(t, bfKey, sealed, meta)

	bfLine := fmt.Sprintf("(backfill) Digest file\ts3://%s/%s\t", bucket, bfKey)
	res, out = e.validate(t, "us-east-1", true)
	if !res.OK() || res.ValidBackfillDigests != 1 || res.ValidDigests != 4 || res.ValidLogs != 9 ||
		!strings.Contains(out, bfLine+"valid") || !strings.Contains(out, "1/1 backfill digest files valid") ||
		!strings.Contains(out, lateKey+"\tvalid") {
		t.Fatalf("with the backfill digest: want all valid, 1 backfill digest, 9 log files; %+v\n%s", res, out)
	}
	cliOut, code := e.runCLI(t, cli, endpoint, "us-east-1")
	t.Logf("aws cloudtrail validate-logs with a backfill digest:\n%s", cliOut)
	if code != 0 || strings.Contains(cliOut, "INVALID") || !strings.Contains(cliOut, bfLine+"valid") ||
		!strings.Contains(cliOut, "1/1 backfill digest files valid") || !strings.Contains(cliOut, "9/9 log files valid") {
		t.Fatalf("the AWS CLI (exit %d) did not accept the backfill digest:\n%s", code, cliOut)
	}

	// Without its generation time: invalid format, for both.
	delete(meta, digest.MetaBackfillGenerationTimestamp)
	e.putRaw(t, bfKey, sealed, meta)
	res, out = e.validate(t, "us-east-1", false)
	if res.OK() || res.InvalidBackfillDigests != 1 || !strings.Contains(out, bfLine+"INVALID: invalid format") {
		t.Fatalf("backfill digest without backfill-generation-timestamp: %+v\n%s", res, out)
	}
	cliOut, code = e.runCLI(t, cli, endpoint, "us-east-1")
	if code == 0 || !strings.Contains(cliOut, bfLine+"INVALID: invalid format") {
		t.Fatalf("the AWS CLI (exit %d) on a backfill digest without its generation time:\n%s", code, cliOut)
	}

	// The late file altered after the backfill digest listed it.
	meta[digest.MetaBackfillGenerationTimestamp] = end.Add(5 * time.Minute).Format(time.RFC3339)
	e.putRaw(t, bfKey, sealed, meta)
	e.putRaw(t, lateKey, gz([]byte(strings.Replace(string(body), "9999", "9998", 1))), nil)
	res, out = e.validate(t, "us-east-1", false)
	if res.OK() || res.ValidBackfillDigests != 1 || !strings.Contains(out, lateKey+"\tINVALID: hash value doesn't match") {
		t.Fatalf("altered late file: %+v\n%s", res, out)
	}
	cliOut, code = e.runCLI(t, cli, endpoint, "us-east-1")
	if code == 0 || !strings.Contains(cliOut, lateKey+"\tINVALID: hash value doesn't match") {
		t.Fatalf("the AWS CLI (exit %d) on an altered late file:\n%s", code, cliOut)
	}
}
