// Package servertest starts a real Cairn server in-process for tests and
// hands out real aws-sdk-go-v2 clients signed with real Cairn keys, so that
// tests exercise the same path as the AWS CLI and SDKs do.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/server"
)

// DefaultRegion is the region the default clients sign for.
const DefaultRegion = "us-east-1"

// Harness is a running server plus clients for it.
type Harness struct {
	Server  *server.Server
	URL     string
	DataDir string

	AdminKeyID, AdminSecret       string
	ReadOnlyKeyID, ReadOnlySecret string

	// CloudTrail is an admin client for DefaultRegion.
	CloudTrail *cloudtrail.Client
	// ReadOnly is a client whose key may call only read-only operations.
	ReadOnly *cloudtrail.Client

	stop func()
}

// Stop shuts the server down (as at the end of the test, which then does
// nothing more), for restart tests that open the same DataDir again.
func (h *Harness) Stop() { h.stop() }

// Options adjust Start.
type Options struct {
	// DataDir reuses a data directory (for restart tests); empty means a
	// fresh temporary one.
	DataDir string
	// Store overrides the object store URL.
	Store string
	// Configure edits the server config before Open.
	Configure func(*server.Config)
}

// Start opens a server on a random loopback port and stops it when the test
// ends.
func Start(t testing.TB, opts ...Options) *Harness {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := o.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := server.Config{
		Listen:  "127.0.0.1:0",
		DataDir: dir,
		Store:   o.Store,
		Logger:  testLogger(t),
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("open server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	t.Cleanup(stop)

	h := &Harness{Server: srv, URL: srv.URL(), DataDir: dir, stop: stop}
	keys, err := srv.Keys().List(ctx)
	if err != nil {
		t.Fatalf("list keys: %v", err)
	}
	for _, k := range keys {
		if k.Role == auth.RoleAdmin && h.AdminKeyID == "" {
			_, secret, ok, err := srv.Keys().Lookup(ctx, k.AccessKeyID)
			if err != nil || !ok {
				t.Fatalf("look up admin key: ok=%v err=%v", ok, err)
			}
			h.AdminKeyID, h.AdminSecret = k.AccessKeyID, secret
		}
	}
	if h.AdminKeyID == "" {
		t.Fatal("server has no admin key")
	}
	ro, secret, err := srv.Keys().Create(ctx, "auditor", auth.RoleReadOnly)
	if err != nil {
		t.Fatalf("create read-only key: %v", err)
	}
	h.ReadOnlyKeyID, h.ReadOnlySecret = ro.AccessKeyID, secret
	h.CloudTrail = h.Client(h.AdminKeyID, h.AdminSecret, DefaultRegion)
	h.ReadOnly = h.Client(h.ReadOnlyKeyID, h.ReadOnlySecret, DefaultRegion)
	return h
}

// Client is a CloudTrail client with the given key and region.
func (h *Harness) Client(keyID, secret, region string) *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		Region:       region,
		BaseEndpoint: aws.String(h.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		Retryer:      aws.NopRetryer{},
		// Without retries, the SDK's early body close would rarely fail
		// a call with a 200 status (see awsproto.SDKHTTPClient).
		HTTPClient: awsproto.SDKHTTPClient{Client: &http.Client{}},
	})
}

// CreateBucket makes a bucket in the server's object store.
func (h *Harness) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := h.Server.ObjectStore().CreateBucket(context.Background(), name); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// CredentialsFile writes an AWS shared-credentials file for the admin key
// and returns its path, for driving the AWS CLI.
func (h *Harness) CredentialsFile(t testing.TB) string {
	t.Helper()
	return datadir.Path(h.DataDir, datadir.Credentials)
}

// Context is a context bounded for one test step.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CAIRN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
