package s3proxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-audit/cairn/internal/bench"
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
// benchmarks (bench.S3Proxy, as `cairn bench s3proxy` runs them against
// running servers) with the clients direct (to versitygw) and proxied,
// and reports the rates and every party's CPU per call. upstreamPID is
// versitygw's process; proxyPID, when not 0, is the proxy's own process
// (0: the proxy runs in this one).
func throughput(b *testing.B, direct, proxied *s3.Client, upstreamPID, proxyPID int) {
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
		n    int64
	}{{"4KB", 4 << 10}, {"1MB", 1 << 20}} {
		for _, op := range []string{bench.OpGetObject, bench.OpPutObject} {
			b.Run(op+"/"+size.name, func(b *testing.B) {
				// CPU of all parties, and versitygw's alone, per side.
				cpu := map[string]time.Duration{}
				vgw := map[string]time.Duration{}
				around := func(side string) func() {
					self0, vgw0, proxy0 := cpuTime(b, 0), cpuTime(b, upstreamPID), proxyCPU()
					return func() {
						self, v, p := cpuTime(b, 0)-self0, cpuTime(b, upstreamPID)-vgw0, proxyCPU()-proxy0
						cpu[side] += self + v + p
						vgw[side] += v
					}
				}
				b.ResetTimer()
				res, err := bench.S3Proxy(context.Background(), bench.S3ProxyConfig{Direct: direct, Proxy: proxied, Bucket: "bench",
					Sizes: []int64{size.n}, Ops: []string{op}, Clients: benchClients, Calls: b.N, Rounds: benchRounds, Around: around})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				r := res[0]
				b.ReportMetric(r.Direct.MBPerSec, "direct-MB/s")
				b.ReportMetric(r.Proxy.MBPerSec, "proxy-MB/s")
				b.ReportMetric(r.PercentDirect, "%direct")
				// CPU spent by clients, proxy and versitygw together per
				// call: what the proxy adds does not depend on what else
				// runs on the machine, and on a CPU-bound machine the
				// throughput ratio approaches the CPU ratio.
				perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
				b.ReportMetric(perOp(cpu["proxy"]-cpu["direct"]), "proxy-cpu-µs/op")
				b.ReportMetric(100*cpu["direct"].Seconds()/cpu["proxy"].Seconds(), "%direct-cpu")
				// The parts: versitygw's CPU per call (direct and
				// proxied, which should match) and the clients' (this
				// process's CPU in the direct rounds), so that the CPU
				// bound of a shared machine can be stated per party.
				b.ReportMetric(perOp(cpu["direct"]-vgw["direct"]), "client-cpu-µs/op")
				b.ReportMetric(perOp(vgw["direct"]), "vgw-cpu-µs/op")
				b.ReportMetric(perOp(vgw["proxy"]), "vgw-proxied-cpu-µs/op")
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
