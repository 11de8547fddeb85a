package s3proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/journal/journaltest"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

// testAccount owns the buckets behind the test proxies.
const testAccount = "123456789012"

// rig is a real versitygw, optionally behind a request-counting front, a
// real journal (on a disk that can be made to fail) and a proxy in front.
type rig struct {
	s3       *s3test.Server
	upstream string // what the proxy forwards to
	hits     atomic.Int64
	// upstreamPID is versitygw's process.
	upstreamPID int
	disk        *journaltest.FullDisk
	j           *journal.Journal
	reg         *prometheus.Registry
	p           *Proxy
}

type rigOptions struct {
	count bool // put a request counter between the proxy and versitygw
	// keepAlive runs versitygw with keep-alive connections (s3test's
	// server closes each connection after one response, which would make
	// a benchmark measure TCP handshakes).
	keepAlive bool
	// virtualDomain runs versitygw with virtual-hosted addressing under
	// this domain.
	virtualDomain string
	configure     func(*Config)
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	r := &rig{disk: journaltest.NewFullDisk(), reg: prometheus.NewRegistry()}
	r.s3 = s3test.StartWith(t, s3test.Options{KeepAlive: o.keepAlive, VirtualDomain: o.virtualDomain})
	r.upstreamPID = r.s3.PID
	r.upstream = r.s3.Endpoint
	if o.count {
		target, _ := url.Parse(r.s3.Endpoint)
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // SigV4 signs the Host the client used
		}}
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.hits.Add(1)
			rp.ServeHTTP(w, req)
		}))
		t.Cleanup(front.Close)
		r.upstream = front.URL
	}
	ctx := context.Background()
	j, err := journal.Open(ctx, t.TempDir(), journal.Options{FS: r.disk, MinFreeBytes: -1, RetryInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	r.j = j
	cfg := rigConfig(r.upstream)
	if o.configure != nil {
		o.configure(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("CAIRN_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// The proxy's goroutines (and the upstream connections' ones they
	// start) carry the label side=proxy, so that a CPU profile of a
	// benchmark tells the proxy's work from the clients'
	// (go tool pprof -tagfocus side=proxy).
	var startErr error
	pprof.Do(ctx, pprof.Labels("side", "proxy"), func(ctx context.Context) {
		startErr = p.Start(ctx, capture.Env{Journal: j, AccountID: "000000000000", Logger: logger, Registerer: r.reg, Now: time.Now})
	})
	if startErr != nil {
		t.Fatalf("start proxy: %v", startErr)
	}
	r.p = p
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close proxy: %v", err)
		}
		r.disk.Full.Store(false)
		if err := j.Close(); err != nil {
			t.Errorf("close journal: %v", err)
		}
	})
	return r
}

// rigConfig is the test proxies' configuration: any port on loopback,
// versitygw's key mapped to alice.
func rigConfig(upstream string) Config {
	return Config{Listen: "127.0.0.1:0", Upstream: upstream, AccountID: testAccount,
		Identities: []Identity{{AccessKeyID: s3test.AccessKeyID, UserName: "alice", PrincipalID: "AIDAEXAMPLEALICE01",
			ARN: "arn:aws:iam::" + testAccount + ":user/alice", AccountID: testAccount}}}
}

// client is an SDK S3 client that talks to url (the proxy, or versitygw
// directly) with versitygw's credentials, path-style, without retries.
func (r *rig) client(url string) *s3.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 128
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the TLS test's self-signed proxy
	})
	return s3.New(s3.Options{
		Region:       s3test.Region,
		BaseEndpoint: aws.String(url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(r.s3.AccessKeyID, r.s3.SecretAccessKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   hc,
	})
}

// sign signs req with versitygw's key, SigV4 over body (what the request
// will carry), for tests that craft requests the SDK would not send.
func (r *rig) sign(t testing.TB, req *http.Request, body []byte) {
	t.Helper()
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: r.s3.AccessKeyID, SecretAccessKey: r.s3.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", s3test.Region, time.Now()); err != nil {
		t.Fatalf("sign %s %s: %v", req.Method, req.URL, err)
	}
}

// events are the records in the journal, parsed as generic JSON.
func (r *rig) events(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	_, err := r.j.Read(context.Background(), 0, 1<<20, func(_ uint64, e []byte) error {
		var m map[string]any
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatalf("journal entry %s: %v", e, err)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		t.Fatalf("read journal: %v", err)
	}
	return out
}

// counter is the value of one of the proxy's counters.
func (r *rig) counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			sum += counterValue(m)
		}
	}
	return sum
}

func counterValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return 0
}

// byName indexes events by eventName (the last one wins).
func byName(evs []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, e := range evs {
		out[e["eventName"].(string)] = e
	}
	return out
}

// path reads a nested member, "a.b.c".
func path(m map[string]any, p string) any {
	var cur any = m
	for _, k := range strings.Split(p, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}
