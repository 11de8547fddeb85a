package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/bench"
)

const benchS3ProxyUsage = `usage: cairn bench s3proxy --direct URL --proxy URL [flags]

Compares S3 throughput directly against an S3-compatible server and through
Cairn's S3 audit proxy in front of it (a running 'cairn serve' with an
[[s3_proxy]] table whose upstream is the --direct server): GetObject and
PutObject of each of --sizes, from --clients concurrent aws-sdk-go-v2
clients, --calls per side and case in --rounds rounds that alternate which
side goes first. It reports each side's rate and latency and the proxied
rate as a percentage of direct. Calls are signed with the S3 server's key
from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN).

  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
    cairn bench s3proxy --direct http://127.0.0.1:7070 --proxy http://127.0.0.1:9000

To measure the proxy as deployed, give it CPU of its own: run it on another
host, or pin it apart from the clients and the S3 server, e.g.
  taskset -c 1 cairn serve --config cairn.toml
  taskset -c 0 versitygw ... ; taskset -c 0 cairn bench s3proxy ...
`

func runBenchS3Proxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cairn bench s3proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	direct := fs.String("direct", "", "the S3 server's URL (required)")
	proxy := fs.String("proxy", "", "the URL of Cairn's S3 proxy in front of it (required)")
	region := fs.String("region", firstEnv("us-east-1", "AWS_REGION", "AWS_DEFAULT_REGION"), "region to sign for (env AWS_REGION)")
	bucket := fs.String("bucket", "cairn-bench", "bucket to use (created through --direct when missing); objects go under cairn-bench/")
	sizes := fs.String("sizes", "4KB,1MB", "object sizes, comma-separated (B, KB = 1024 B, MB = 1024 KB)")
	ops := fs.String("ops", "GetObject,PutObject", "operations, comma-separated")
	clients := fs.Int("clients", 32, "concurrent clients")
	calls := fs.Int("calls", 3000, "calls per side and case")
	rounds := fs.Int("rounds", 10, "alternating rounds each side's calls are split into")
	pathStyle := fs.Bool("path-style", true, "path-style addressing (virtual-hosted needs DNS for <bucket>.<host>)")
	asJSON := fs.Bool("json", false, "print machine-readable results (JSON) instead of a table")
	usageWithFlags(fs, benchS3ProxyUsage, stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *direct == "" || *proxy == "" {
		fs.Usage()
		return errors.New("--direct and --proxy are required")
	}
	byteSizes, err := parseSizes(*sizes)
	if err != nil {
		return err
	}
	akid, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if akid == "" || secret == "" {
		return errors.New("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the S3 server's key")
	}
	creds := credentials.NewStaticCredentialsProvider(akid, secret, os.Getenv("AWS_SESSION_TOKEN"))
	client := func(endpoint string) *s3.Client {
		return s3.New(s3.Options{
			Region:       *region,
			BaseEndpoint: aws.String(endpoint),
			UsePathStyle: *pathStyle,
			Credentials:  creds,
			Retryer:      aws.NopRetryer{}, // a retry would hide a failure in the figures
			HTTPClient:   awsproto.SDKHTTPClient{Client: &http.Client{Transport: apiclient.NewTransport(*clients)}},
		})
	}
	cfg := bench.S3ProxyConfig{Direct: client(*direct), Proxy: client(*proxy), Bucket: *bucket, Sizes: byteSizes,
		Ops: splitList(*ops), Clients: *clients, Calls: *calls, Rounds: *rounds}
	cfg.Progress = func(op string, size int64) {
		fmt.Fprintf(stderr, "%s %s: %d calls per side, %d clients\n", op, formatSize(size), *calls, *clients)
	}
	start := time.Now()
	res, err := bench.S3Proxy(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Direct  string                `json:"direct"`
			Proxy   string                `json:"proxy"`
			Clients int                   `json:"clients"`
			Seconds float64               `json:"seconds"`
			Cases   []bench.S3ProxyResult `json:"cases"`
		}{*direct, *proxy, *clients, time.Since(start).Seconds(), res})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tsize\tdirect MB/s\tproxy MB/s\tdirect calls/s\tproxy calls/s\t% of direct\tdirect p50/p99 ms\tproxy p50/p99 ms\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.0f\t%.0f\t%.1f\t%.2f/%.2f\t%.2f/%.2f\t\n", r.Op, formatSize(r.Size),
			r.Direct.MBPerSec, r.Proxy.MBPerSec, r.Direct.CallsPerSec, r.Proxy.CallsPerSec, r.PercentDirect,
			r.Direct.Latency.P50, r.Direct.Latency.P99, r.Proxy.Latency.P50, r.Proxy.Latency.P99)
	}
	return tw.Flush()
}

// parseSizes reads "4KB,1MB,512B" (KB = 1024 bytes, MB = 1024 KB).
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range splitList(s) {
		num, unit := f, int64(1)
		for _, u := range []struct {
			suffix string
			n      int64
		}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"B", 1}} {
			if v, ok := strings.CutSuffix(strings.ToUpper(f), u.suffix); ok {
				num, unit = v, u.n
				break
			}
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 || n > (5<<30)/unit {
			return nil, fmt.Errorf("--sizes: %q is not a size between 1 B and 5 GB (e.g. 4KB, 1MB)", f)
		}
		out = append(out, n*unit)
	}
	if len(out) == 0 {
		return nil, errors.New("--sizes: no size given")
	}
	return out, nil
}

// formatSize writes a size as parseSizes reads it.
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
