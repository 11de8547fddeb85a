package delivery

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/s3"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
	"github.com/cairn-audit/cairn/internal/trail"
)

// putRecorder remembers the headers of every object PUT it carries.
type putRecorder struct {
	mu   sync.Mutex
	puts map[string]http.Header // by URL path
}

func (p *putRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		p.mu.Lock()
		p.puts[r.URL.Path] = r.Header.Clone()
		p.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func newS3Env(t *testing.T, srv *s3test.Server, rt http.RoundTripper) *env {
	t.Helper()
	opts := srv.Options()
	if rt != nil {
		opts.HTTPClient = &http.Client{Transport: rt}
	}
	store, err := s3.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: t.TempDir()}
	e.open(store)
	t.Cleanup(e.close)
	return e
}

// TestS3DeliveryWithKMS delivers through a real S3 server (versitygw): the
// log files arrive with CloudTrail's headers and, for a trail with a KMS
// key, SSE-KMS headers naming the key (versitygw accepts and ignores them).
func TestS3DeliveryWithKMS(t *testing.T) {
	srv := s3test.Start(t)
	recorder := &putRecorder{puts: map[string]http.Header{}}
	e := newS3Env(t, srv, recorder)
	e.bucket("trail-logs")
	const key = "arn:aws:kms:us-east-1:123456789012:key/0e2f1d4c-0000-4000-8000-000000000000"
	tr := e.trail("us-east-1", trail.CreateInput{Name: "encrypted", S3BucketName: "trail-logs", S3KeyPrefix: "ct", KmsKeyId: key, IsMultiRegionTrail: ptr(true)})
	m := e.manager(testOptions())
	e.changed(m)
	nums := e.append(rec{Region: "us-east-1"}, rec{Region: "eu-west-1"}, rec{Region: "us-east-1", Source: "iam.amazonaws.com", Name: "CreateRole", ReadOnly: "false"})
	e.start(m)
	e.caughtUp(tr.ARN())
	if st := e.status(tr.ARN()); st.LatestDeliveryError != "" || st.LatestDeliveryTime.IsZero() {
		t.Fatalf("status: %+v", st)
	}
	fs := files(t, e.store, "trail-logs")
	if len(fs) != 2 {
		t.Errorf("%d files, want one per region (2)", len(fs))
	}
	exactlyOnce(t, delivered(t, fs), idsOf(nums))
	recorder.mu.Lock()
	defer recorder.mu.Unlock()
	for _, f := range fs {
		checkKey(t, f.Key, "ct", time.Time{})
		h := recorder.puts["/trail-logs/"+f.Key]
		if h == nil {
			t.Fatalf("no PUT recorded for %s", f.Key)
		}
		for k, want := range map[string]string{
			"Content-Type":                                ContentType,
			"Content-Encoding":                            ContentEncoding,
			"X-Amz-Server-Side-Encryption":                "aws:kms",
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": key,
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: PUT header %s = %q, want %q", f.Key, k, got, want)
			}
		}
		if f.Info.ContentEncoding != ContentEncoding || f.Info.ContentType != ContentType {
			t.Errorf("%s stored with Content-Type %q, Content-Encoding %q", f.Key, f.Info.ContentType, f.Info.ContentEncoding)
		}
	}
}

// TestS3Failures: refused credentials, a missing bucket and an unreachable
// server each show in the trail status with S3's error code, and the
// events stay in the journal.
func TestS3Failures(t *testing.T) {
	srv := s3test.Start(t)
	e := newS3Env(t, srv, nil)
	e.bucket("exists")
	tr := e.trail("us-east-1", trail.CreateInput{Name: "failing", S3BucketName: "exists"})

	badCreds := srv.Options()
	badCreds.SecretAccessKey = "not-the-secret-0123456789abcdefghijklmn"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	unreachable := srv.Options()
	unreachable.Endpoint = "http://" + closedAddr

	cases := []struct {
		name string
		opts s3.Options
		want string
		// before and after change the server around the case.
		before, after func()
	}{
		{name: "refused credentials", opts: badCreds, want: "SignatureDoesNotMatch"},
		{
			name: "missing bucket", opts: srv.Options(), want: "NoSuchBucket",
			// The bucket is deleted after CreateTrail checked it.
			before: func() {
				if _, err := e.store.(*s3.Store).Client().DeleteBucket(context.Background(), &awss3.DeleteBucketInput{Bucket: aws.String("exists")}); err != nil {
					t.Fatal(err)
				}
			},
			after: func() { e.bucket("exists") },
		},
		{name: "unreachable server", opts: unreachable, want: CodeStoreUnreachable},
	}
	ctx := context.Background()
	e.changed(newManagerOn(t, e, e.store)) // open the logging window
	nums := e.append(rec{}, rec{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store, err := s3.New(ctx, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.before != nil {
				c.before()
			}
			stop := e.start(newManagerOn(t, e, store))
			waitFor(t, 30*time.Second, c.want+" in the status", func() bool {
				return e.status(tr.ARN()).LatestDeliveryError == c.want
			})
			stop()
			if pos := e.j.Cursor(CursorName(tr.ARN())).Position(); pos != 0 {
				t.Errorf("cursor moved to %d while delivery failed", pos)
			}
			if c.after != nil {
				c.after()
			}
		})
	}
	// With the real server and credentials, the waiting events go out.
	e.start(newManagerOn(t, e, e.store))
	e.caughtUp(tr.ARN())
	if st := e.status(tr.ARN()); st.LatestDeliveryError != "" {
		t.Errorf("status after recovery: %+v", st)
	}
	exactlyOnce(t, delivered(t, files(t, e.store, "exists")), idsOf(nums))
}

func newManagerOn(t *testing.T, e *env, store objstore.Store) *Manager {
	t.Helper()
	m, err := NewManager(e.j, e.st, e.trails, store, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
