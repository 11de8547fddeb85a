package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/delivery/notify"
	"github.com/cairn-audit/cairn/internal/digest"
	"github.com/cairn-audit/cairn/internal/region"
	"github.com/cairn-audit/cairn/internal/server"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath = fs.String("config", "", "TOML config file whose keys are these flags' names (env CAIRN_CONFIG)")
		listen     = fs.String("listen", "127.0.0.1:4747", "address to listen on")
		dataDir    = fs.String("data-dir", datadir.Default, "directory that holds all of Cairn's state")
		accountID  = fs.String("account-id", "000000000000", "the AWS account ID Cairn presents (12 digits)")
		store      = fs.String("store", "", "object store for trail delivery: file://DIR (default <data-dir>/buckets) or s3://HOST:PORT?region=..&tls=false")
		s3Key      = fs.String("s3-access-key-id", "", "access key for an s3:// store (default: the AWS SDK's credential chain)")
		s3Secret   = fs.String("s3-secret-access-key", "", "secret key for an s3:// store; prefer the env CAIRN_S3_SECRET_ACCESS_KEY")
		tlsCert    = fs.String("tls-cert", "", "PEM certificate; with --tls-key, serve HTTPS")
		tlsKey     = fs.String("tls-key", "", "PEM private key for --tls-cert")
		retention  = fs.Duration("history-retention", 90*24*time.Hour, "how long events stay in the event history (CloudTrail: 90 days)")
		dataEvents = fs.Bool("history-data-events", false, "keep data events in the event history too (a Cairn extension)")
		interval   = fs.Duration("delivery-interval", time.Minute, fmt.Sprintf("how long trails batch events before writing a log file (%s to %s)", delivery.MinInterval, delivery.MaxInterval))
		digestIvl  = fs.Duration("digest-interval", time.Hour, fmt.Sprintf("the time one digest file covers (%s to %s; CloudTrail: 1h)", digest.MinInterval, digest.MaxInterval))
		keyRotate  = fs.Duration("key-rotation", 30*24*time.Hour, "how long a digest-signing key signs before the next takes over")
		memLimit   = fs.Int64("memory-limit-mb", 320, "soft Go heap limit in MiB (0: none); GOMEMLIMIT, when set, wins")
		pprofAddr  = fs.String("pprof", "", "serve Go's profiling endpoints under /debug/pprof/ on their own loopback listener, e.g. 127.0.0.1:6060 (off when empty)")
		regionList = fs.String("regions", "", "private region names (xx-name-1, comma-separated) requests may be signed for besides AWS's own regions")
		bodyTime   = fs.Duration("body-timeout", server.DefaultBodyTimeout, "how long a client has to send a request body before its connection is closed")
		reserveMB  = fs.Int64("journal-reserve-mb", 256, "free disk space (MiB) the journal keeps; below it calls get 503 and /healthz fails (0: no reserve)")
		holdLimit  = fs.Int64("journal-hold-limit", 10_000_000, "journal entries a failing trail may hold back from trimming; past it the trail gets a gap (0: no limit)")
		logLevel   = fs.String("log-level", "info", "debug, info, warn or error")
		logFormat  = fs.String("log-format", "text", "text or json")
	)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *configPath == "" {
		*configPath = os.Getenv("CAIRN_CONFIG")
	}
	file, err := applySettings(fs, *configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	regions, err := region.ParseList(*regionList)
	if err != nil {
		return fmt.Errorf("--regions: %w", err)
	}
	topics, err := notify.ParseTopics(file["topics"], os.LookupEnv)
	if err != nil {
		return fmt.Errorf("config file %s: %w", *configPath, err)
	}
	caps, err := captures(file, os.LookupEnv)
	if err != nil {
		return fmt.Errorf("config file %s: %w", *configPath, err)
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// A soft heap limit makes the collector work harder before the heap
	// grows, which keeps ingest bursts (large journal and index batches)
	// from doubling the process's memory; throughput measured the same.
	if *memLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(*memLimit << 20)
	}
	if *reserveMB < 0 {
		return fmt.Errorf("--journal-reserve-mb %d: want 0 or more", *reserveMB)
	}
	reserve := *reserveMB << 20
	if reserve == 0 {
		reserve = -1 // the server's "no check"
	}
	if *holdLimit < 0 {
		return fmt.Errorf("--journal-hold-limit %d: want 0 or more", *holdLimit)
	}
	if *holdLimit == 0 {
		*holdLimit = -1 // the server's "no limit"
	}
	started := time.Now()
	srv, err := server.Open(ctx, server.Config{
		Listen:            *listen,
		DataDir:           *dataDir,
		AccountID:         *accountID,
		Store:             *store,
		S3AccessKeyID:     *s3Key,
		S3SecretAccessKey: *s3Secret,
		TLSCert:           *tlsCert,
		TLSKey:            *tlsKey,
		HistoryRetention:  *retention,
		HistoryDataEvents: *dataEvents,
		PprofListen:       *pprofAddr,
		JournalReserve:    reserve,
		JournalHoldLimit:  *holdLimit,
		DeliveryInterval:  *interval,
		Topics:            topics,
		DigestInterval:    *digestIvl,
		KeyRotation:       *keyRotate,
		Captures:          caps,
		Regions:           regions,
		BodyTimeout:       *bodyTime,
		Logger:            logger,
		Version:           versionString(),
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	logger.Info("cairn started", "version", versionString(), "startup", time.Since(started).Round(time.Millisecond))
	if err := srv.Serve(ctx); err != nil {
		return err
	}
	logger.Info("cairn stopped")
	return srv.Close()
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
