package s3proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// benchClients is the number of concurrent clients of the throughput
// benchmarks.
const benchClients = 32

// benchRounds is how many alternating direct/proxy rounds b.N is split
// into.
const benchRounds = 10

// BenchmarkThroughput measures GetObject and PutObject throughput of 32
// concurrent SDK clients against a real versitygw, directly and through
// the proxy (which makes every event durable in a real journal), in
// alternating phases of b.N calls each so that load from elsewhere on the
// machine hits both alike. It reports both rates and the proxy's as a
// percentage of direct ("%direct"); the targets are >= 90% for 1 MB
// objects and >= 75% for 4 KB objects.
func BenchmarkThroughput(b *testing.B) {
	r := newRig(b, rigOptions{keepAlive: true})
	direct, proxied := r.client(r.s3.Endpoint), r.client(r.p.URL())
	ctx := context.Background()
	if _, err := direct.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"4KB", 4 << 10}, {"1MB", 1 << 20}} {
		body := make([]byte, size.n)
		_, _ = rand.Read(body)
		key := "get-" + size.name
		if _, err := direct.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			b.Fatal(err)
		}
		ops := map[string]func(c *s3.Client, i int64) error{
			"GetObject": func(c *s3.Client, _ int64) error {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String(key)})
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, out.Body)
				out.Body.Close()
				if err == nil && n != int64(size.n) {
					err = fmt.Errorf("read %d bytes, want %d", n, size.n)
				}
				return err
			},
			"PutObject": func(c *s3.Client, i int64) error {
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"),
					Key: aws.String(fmt.Sprintf("put-%s-%d", size.name, i%64)), Body: bytes.NewReader(body)})
				return err
			},
		}
		for _, opName := range []string{"GetObject", "PutObject"} {
			op := ops[opName]
			b.Run(opName+"/"+size.name, func(b *testing.B) {
				// Warm both connection pools.
				if _, err := run(benchClients, benchClients, direct, op); err != nil {
					b.Fatal(err)
				}
				if _, err := run(benchClients, benchClients, proxied, op); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				// Alternate in rounds, swapping which side goes first, so
				// that bursts of load from elsewhere on the machine hit
				// both sides alike.
				var dDirect, dProxy time.Duration
				rounds := min(benchRounds, b.N)
				for i := range rounds {
					n := b.N / rounds
					if i < b.N%rounds {
						n++
					}
					sides := []struct {
						c   *s3.Client
						sum *time.Duration
					}{{direct, &dDirect}, {proxied, &dProxy}}
					if i%2 == 1 {
						sides[0], sides[1] = sides[1], sides[0]
					}
					for _, s := range sides {
						d, err := run(n, benchClients, s.c, op)
						if err != nil {
							b.Fatal(err)
						}
						*s.sum += d
					}
				}
				b.StopTimer()
				mb := float64(b.N) * float64(size.n) / (1 << 20)
				b.ReportMetric(mb/dDirect.Seconds(), "direct-MB/s")
				b.ReportMetric(mb/dProxy.Seconds(), "proxy-MB/s")
				b.ReportMetric(100*dDirect.Seconds()/dProxy.Seconds(), "%direct")
			})
		}
	}
}

// run makes n calls with the given concurrency and returns how long they
// took.
func run(n, clients int, c *s3.Client, op func(*s3.Client, int64) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := op(c, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}
