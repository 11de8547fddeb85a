package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/digest"
)

const keysExportUsage = `usage: cairn keys export-public --region R --out FILE [--start TIME] [--end TIME] [remote flags]

Writes the region's digest signing public keys, as ListPublicKeys returns
them from the running server, to FILE, for 'cairn validate-logs
--public-keys FILE' away from the server. Without --start/--end: every key
since the epoch up to now.
`

// keysExportPublic is `cairn keys export-public`.
func keysExportPublic(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cairn keys export-public", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := addRemoteFlags(fs)
	out := fs.String("out", "", "file to write (required; - for stdout)")
	startS := fs.String("start", "", "oldest validity to include (RFC 3339, date or age)")
	endS := fs.String("end", "", "newest validity to include (default now)")
	usageWithFlags(fs, keysExportUsage, stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errors.New("--out is required")
	}
	now := time.Now()
	start, end := time.Unix(0, 0).UTC(), now
	var err error
	if *startS != "" {
		if start, err = parseWhen(*startS, now); err != nil {
			return fmt.Errorf("--start: %w", err)
		}
	}
	if *endS != "" {
		if end, err = parseWhen(*endS, now); err != nil {
			return fmt.Errorf("--end: %w", err)
		}
	}
	ct, _, err := rf.cloudTrail(ctx, nil)
	if err != nil {
		return err
	}
	res, err := ct.ListPublicKeys(ctx, &cloudtrail.ListPublicKeysInput{StartTime: aws.Time(start), EndTime: aws.Time(end)})
	if err != nil {
		return fmt.Errorf("ListPublicKeys at %s (region %s): %w", rf.endpoint, rf.region, err)
	}
	doc := api.ListPublicKeysOutput{PublicKeyList: make([]api.PublicKeyOut, 0, len(res.PublicKeyList))}
	for _, k := range res.PublicKeyList {
		if fp := digest.Fingerprint(k.Value); fp != aws.ToString(k.Fingerprint) {
			return fmt.Errorf("server sent key %s whose value has fingerprint %s", aws.ToString(k.Fingerprint), fp)
		}
		doc.PublicKeyList = append(doc.PublicKeyList, api.PublicKeyOut{
			Value: k.Value, Fingerprint: aws.ToString(k.Fingerprint),
			ValidityStartTime: awsproto.NewTimestamp(aws.ToTime(k.ValidityStartTime)),
			ValidityEndTime:   awsproto.NewTimestamp(aws.ToTime(k.ValidityEndTime)),
		})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode public keys: %w", err)
	}
	b = append(b, '\n')
	if *out == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(stderr, "wrote %d public key(s) of %s to %s\n", len(doc.PublicKeyList), rf.region, abs)
	return nil
}
