package stores_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/objstore/s3"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/objstore/stores"
)

func TestParseS3(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want s3.Options
	}{
		{"s3://s3.example.com", s3.Options{Endpoint: "https://s3.example.com", Region: "us-east-1"}},
		{"s3://127.0.0.1:7070?tls=false", s3.Options{Endpoint: "http://127.0.0.1:7070", Region: "us-east-1"}},
		{"s3://minio:9000/?region=eu-west-1&tls=true", s3.Options{Endpoint: "https://minio:9000", Region: "eu-west-1"}},
		{"s3://s3.us-west-2.amazonaws.com?region=us-west-2&path_style=false", s3.Options{Endpoint: "https://s3.us-west-2.amazonaws.com", Region: "us-west-2", VirtualHostedStyle: true}},
		{"s3://[::1]:7070?tls=0", s3.Options{Endpoint: "http://[::1]:7070", Region: "us-east-1"}},
	} {
		got, err := stores.ParseS3(tc.url)
		if err != nil {
			t.Errorf("ParseS3(%q): %v", tc.url, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseS3(%q) = %+v, want %+v", tc.url, got, tc.want)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	for _, tc := range []struct{ url, wantInErr string }{
		{"", "want file://DIR"},
		{"/var/lib/cairn", "want file://DIR"},
		{"file://", "no directory"},
		{"http://127.0.0.1:7070", "unknown scheme"},
		{"s3://", "no host"},
		{"s3://host/bucket", "no path"},
		{"s3://host?tls=maybe", "tls=maybe"},
		{"s3://host?path_style=x", "path_style=x"},
		{"s3://host?regoin=eu-west-1", `unknown parameter "regoin"`},
		{"s3://host?region=", "empty region"},
		{"s3://host?region=a&region=b", "more than once"},
		{"s3://host:99999", "port"},
		{"s3://host#frag", "fragment"},
		{"s3://AKIAXXXX:topsecret@host:7070", "credentials do not belong"},
		{"s3://AKIAXXXX:top%zzsecret@host:7070", "REDACTED"},
	} {
		_, err := stores.Open(t.Context(), tc.url, stores.Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantInErr) {
			t.Errorf("Open(%q) = %v; want the error to mention %q", tc.url, err, tc.wantInErr)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error repeats the secret: %v", tc.url, err)
		}
	}
}

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "buckets")
	s, err := stores.Open(t.Context(), "file://"+dir, stores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fs, ok := s.(*file.Store); !ok || fs.Dir() != dir {
		t.Fatalf("Open(file://%s) = %T, want a *file.Store on that directory", dir, s)
	}
	if err := s.CreateBucket(t.Context(), "trail-bucket"); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, "trail-bucket")); err != nil || !info.IsDir() {
		t.Fatalf("bucket directory: %v", err)
	}
}

func TestOpenFileRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := stores.Open(t.Context(), "file://cairn-data/buckets", stores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateBucket(t.Context(), "rel-bucket"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("cairn-data", "buckets", "rel-bucket")); err != nil {
		t.Fatalf("relative store directory: %v", err)
	}
}

func TestOpenS3(t *testing.T) {
	srv := s3test.Start(t)
	ctx := t.Context()
	s, err := stores.Open(ctx, srv.StoreURL(), stores.Options{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*s3.Store); !ok {
		t.Fatalf("Open(%s) = %T, want *s3.Store", srv.StoreURL(), s)
	}
	if err := s.CreateBucket(ctx, "via-url"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "via-url", "k", strings.NewReader("v"), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "via-url", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "v" {
		t.Fatalf("got %q", b)
	}

	// Wrong credentials are refused: the server really checks signatures.
	bad, err := stores.Open(ctx, srv.StoreURL(), stores.Options{AccessKeyID: srv.AccessKeyID, SecretAccessKey: "wrong-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.ListBuckets(ctx); err == nil {
		t.Fatal("ListBuckets with a wrong secret succeeded")
	} else if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error repeats the secret: %v", err)
	}
	// Half a key pair is a configuration mistake, not "use the default chain".
	if _, err := stores.Open(ctx, srv.StoreURL(), stores.Options{AccessKeyID: srv.AccessKeyID}); err == nil {
		t.Fatal("Open with an access key but no secret succeeded")
	}
}
