package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/digest"
	"github.com/cairn-audit/cairn/internal/objstore/stores"
)

const validateLogsUsage = `usage: cairn validate-logs --trail-arn ARN --start-time TIME [flags]

Validates a trail's digest and log files like 'aws cloudtrail validate-logs'
(same flags, same report, exit status 1 on any problem), reading the object
store directly and hashing in parallel. It also reports what the AWS CLI
cannot: digests whose successor recorded another hash or signature, more
than one consecutive deleted digest, deleted newest digests (online: from
GetTrailStatus), log files no digest lists, data after a gzip stream and
breaks in time continuity. CloudTrail's "_backfill" digests are walked
after the regular chain, as the AWS CLI v1.45 does.

Online (default): public keys, the trail's bucket and its latest digest
delivery come from Cairn at --endpoint-url. Offline: --public-keys FILE
(from 'cairn keys export-public' or 'aws cloudtrail list-public-keys') and
--s3-bucket.

  cairn validate-logs --trail-arn arn:aws:cloudtrail:us-east-1:123456789012:trail/audit --start-time 7d
  cairn validate-logs --trail-arn ARN --start-time 2026-01-01 --s3-bucket audit --public-keys keys.json --store s3://s3.local:9000
`

// runValidateLogs is `cairn validate-logs`.
func runValidateLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return validateLogsMain(ctx, args, stdout, stderr, time.Now)
}

func validateLogsMain(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("cairn validate-logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRemoteFlags(fs)
	var (
		trailARN  = fs.String("trail-arn", "", "the trail's ARN (required)")
		startS    = fs.String("start-time", "", "validate digests from this time: RFC 3339, a date, or an age (7d) (required)")
		endS      = fs.String("end-time", "", "validate digests up to this time (default now)")
		bucket    = fs.String("s3-bucket", "", "the trail's bucket (default: from DescribeTrails)")
		prefix    = fs.String("s3-prefix", "", "the trail's key prefix (default: from DescribeTrails when --s3-bucket is not given)")
		accountID = fs.String("account-id", "", "the account whose files to validate (default: the ARN's)")
		verbose   = fs.Bool("verbose", false, "print valid files too")
		storeURL  = fs.String("store", "", "object store URL: file://DIR or s3://HOST[:PORT]?... (default file://<data-dir>/buckets)")
		s3Key     = fs.String("s3-access-key-id", os.Getenv("CAIRN_S3_ACCESS_KEY_ID"), "access key for an s3:// --store (env CAIRN_S3_ACCESS_KEY_ID)")
		s3Secret  = fs.String("s3-secret-access-key", os.Getenv("CAIRN_S3_SECRET_ACCESS_KEY"), "secret key for an s3:// --store; prefer the env CAIRN_S3_SECRET_ACCESS_KEY")
		keysFile  = fs.String("public-keys", "", "offline: JSON file of public keys (ListPublicKeys output) instead of asking the server")
		parallel  = fs.Int("parallel", 32, "objects read at once")
	)
	usageWithFlags(fs, validateLogsUsage, stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *trailARN == "" || *startS == "" {
		fs.Usage()
		return errors.New("--trail-arn and --start-time are required")
	}
	t0 := now()
	start, err := parseWhen(*startS, t0)
	if err != nil {
		return fmt.Errorf("--start-time: %w", err)
	}
	end := t0
	if *endS != "" {
		if end, err = parseWhen(*endS, t0); err != nil {
			return fmt.Errorf("--end-time: %w", err)
		}
	}
	if end.Before(start) {
		return fmt.Errorf("invalid time range: --end-time %s is before --start-time %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	opts := digest.ValidateOptions{
		TrailARN: *trailARN, Start: start, End: end, Now: t0, Bucket: *bucket, Prefix: *prefix, Account: *accountID,
		SourceRegion: rf.region, Parallel: *parallel, Verbose: *verbose, Out: stdout, Err: stderr,
	}
	if *keysFile != "" {
		if *bucket == "" {
			return errors.New("offline validation (--public-keys) needs --s3-bucket")
		}
		pks, err := readPublicKeysFile(*keysFile, rf.region)
		if err != nil {
			return err
		}
		opts.PublicKeys = func(_ context.Context, s, e time.Time) ([]digest.PublicKey, error) {
			var out []digest.PublicKey
			for _, pk := range pks {
				if !pk.Start.After(e) && pk.End.After(s) {
					out = append(out, pk)
				}
			}
			return out, nil
		}
	} else {
		ct, _, err := rf.cloudTrail(ctx, nil)
		if err != nil {
			return err
		}
		if err := onlineTrailInfo(ctx, ct, &opts, *bucket == ""); err != nil {
			return err
		}
		opts.PublicKeys = func(ctx context.Context, s, e time.Time) ([]digest.PublicKey, error) {
			out, err := ct.ListPublicKeys(ctx, &cloudtrail.ListPublicKeysInput{StartTime: aws.Time(s), EndTime: aws.Time(e)})
			if err != nil {
				return nil, fmt.Errorf("ListPublicKeys at %s: %w", rf.endpoint, err)
			}
			pks := make([]digest.PublicKey, 0, len(out.PublicKeyList))
			for _, k := range out.PublicKeyList {
				pks = append(pks, digest.PublicKey{Region: rf.region, DER: k.Value, Fingerprint: aws.ToString(k.Fingerprint),
					Start: aws.ToTime(k.ValidityStartTime), End: aws.ToTime(k.ValidityEndTime)})
			}
			return pks, nil
		}
	}
	if *storeURL == "" {
		u, err := datadir.StoreURL(rf.dataDir)
		if err != nil {
			return err
		}
		*storeURL = u
	}
	store, err := stores.Open(ctx, *storeURL, stores.Options{AccessKeyID: *s3Key, SecretAccessKey: *s3Secret})
	if err != nil {
		return err
	}
	defer store.Close()
	opts.Store = store
	if os.Getenv("GOGC") == "" {
		// A validation allocates per object read but keeps little (the
		// digest list and the verdicts) and ends soon: collecting at
		// 5x the live heap instead of 2x saves most GC work.
		debug.SetGCPercent(400)
	}
	if p := os.Getenv("CAIRN_VALIDATE_CPUPROFILE"); p != "" {
		// For scripts/bench-validate: where a whole validation's CPU goes.
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("CAIRN_VALIDATE_CPUPROFILE: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("CAIRN_VALIDATE_CPUPROFILE: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := digest.Validate(ctx, opts)
	if err != nil {
		return err
	}
	if !res.OK() {
		return exitCode(1)
	}
	return nil
}

// onlineTrailInfo fills the bucket and prefix (DescribeTrails, when
// lookup) and the latest digest delivery (GetTrailStatus) from the server.
func onlineTrailInfo(ctx context.Context, ct *cloudtrail.Client, o *digest.ValidateOptions, lookup bool) error {
	if lookup {
		out, err := ct.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
		if err != nil {
			return fmt.Errorf("DescribeTrails: %w", err)
		}
		found := false
		for _, t := range out.TrailList {
			if aws.ToString(t.TrailARN) == o.TrailARN {
				o.Bucket, o.Prefix, found = aws.ToString(t.S3BucketName), aws.ToString(t.S3KeyPrefix), true
			}
		}
		if !found {
			return fmt.Errorf("trail %s not found", o.TrailARN)
		}
	}
	st, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(o.TrailARN)})
	if err != nil {
		return fmt.Errorf("GetTrailStatus: %w", err)
	}
	o.LatestDigestDelivery = aws.ToTime(st.LatestDigestDeliveryTime)
	return nil
}

// readPublicKeysFile reads ListPublicKeys output (Cairn's export or the AWS
// CLI's list-public-keys JSON: base64 values, epoch or ISO times) and
// checks every fingerprint against its key.
func readPublicKeysFile(path, region string) ([]digest.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public keys: %w", err)
	}
	var in api.ListPublicKeysOutput
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("public keys file %s: %w", path, err)
	}
	out := make([]digest.PublicKey, 0, len(in.PublicKeyList))
	for i, k := range in.PublicKeyList {
		if fp := digest.Fingerprint(k.Value); fp != k.Fingerprint {
			return nil, fmt.Errorf("public keys file %s: key %d has fingerprint %s but its value's MD5 is %s", path, i, k.Fingerprint, fp)
		}
		pk := digest.PublicKey{Region: region, DER: k.Value, Fingerprint: k.Fingerprint}
		if k.ValidityStartTime != nil {
			pk.Start = k.ValidityStartTime.Time
		}
		if k.ValidityEndTime != nil {
			pk.End = k.ValidityEndTime.Time
		}
		out = append(out, pk)
	}
	return out, nil
}
