package s3proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	throughput(b, direct, proxied, r.upstreamPID, 0)
}

// throughput runs the GetObject and PutObject cases of the throughput
// benchmarks with the clients direct (to versitygw) and proxied.
// upstreamPID is versitygw's process; proxyPID, when not 0, is the
// proxy's own process (0: the proxy runs in this one).
func throughput(b *testing.B, direct, proxied *s3.Client, upstreamPID, proxyPID int) {
	ctx := context.Background()
	if _, err := direct.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	// The proxy's CPU when it runs in a process of its own (in this one,
	// it counts with the clients').
	proxyCPU := func() time.Duration {
		if proxyPID == 0 {
			return 0
		}
		return cpuTime(b, proxyPID)
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
				var dDirect, dProxy, cpuDirect, cpuProxy, vgwDirect, vgwProxy time.Duration
				rounds := min(benchRounds, b.N)
				for i := range rounds {
					n := b.N / rounds
					if i < b.N%rounds {
						n++
					}
					sides := []struct {
						c             *s3.Client
						sum, cpu, vgw *time.Duration
					}{{direct, &dDirect, &cpuDirect, &vgwDirect}, {proxied, &dProxy, &cpuProxy, &vgwProxy}}
					if i%2 == 1 {
						sides[0], sides[1] = sides[1], sides[0]
					}
					for _, s := range sides {
						self0, vgw0, proxy0 := cpuTime(b, 0), cpuTime(b, upstreamPID), proxyCPU()
						d, err := run(n, benchClients, s.c, op)
						if err != nil {
							b.Fatal(err)
						}
						self, vgw, proxy := cpuTime(b, 0)-self0, cpuTime(b, upstreamPID)-vgw0, proxyCPU()-proxy0
						*s.sum += d
						*s.cpu += self + vgw + proxy
						*s.vgw += vgw
					}
				}
				b.StopTimer()
				mb := float64(b.N) * float64(size.n) / (1 << 20)
				b.ReportMetric(mb/dDirect.Seconds(), "direct-MB/s")
				b.ReportMetric(mb/dProxy.Seconds(), "proxy-MB/s")
				b.ReportMetric(100*dDirect.Seconds()/dProxy.Seconds(), "%direct")
				// CPU spent by clients, proxy and versitygw together per
				// call: what the proxy adds does not depend on what else
				// runs on the machine, and on a CPU-bound machine the
				// throughput ratio approaches the CPU ratio.
				b.ReportMetric(float64(cpuProxy.Microseconds()-cpuDirect.Microseconds())/float64(b.N), "proxy-cpu-µs/op")
				b.ReportMetric(100*cpuDirect.Seconds()/cpuProxy.Seconds(), "%direct-cpu")
				// The parts: versitygw's CPU per call (direct and
				// proxied, which should match) and the clients' (this
				// process's CPU in the direct rounds), so that the CPU
				// bound of a shared machine can be stated per party.
				perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
				b.ReportMetric(perOp(cpuDirect-vgwDirect), "client-cpu-µs/op")
				b.ReportMetric(perOp(vgwDirect), "vgw-cpu-µs/op")
				b.ReportMetric(perOp(vgwProxy), "vgw-proxied-cpu-µs/op")
			})
		}
	}
}

// cpuTime is the CPU (user+system) a process has used: pid 0 is this
// one (the clients, and the proxy unless it runs in its own process).
func cpuTime(b *testing.B, pid int) time.Duration {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("versitygw's CPU time: %v", err)
	}
	// Fields after the command name: state is field 3; utime and stime
	// are fields 14 and 15, in clock ticks (100 Hz on Linux).
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stt, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("versitygw's CPU time: bad /proc stat %q", st)
	}
	return time.Duration(ut+stt) * 10 * time.Millisecond
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
