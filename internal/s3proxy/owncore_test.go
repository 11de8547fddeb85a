package s3proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

// Environment of the proxy child process of BenchmarkThroughputOwnCore.
const (
	childUpstreamEnv = "CAIRN_S3PROXY_CHILD_UPSTREAM" // the upstream URL; set only in the child
	childJournalEnv  = "CAIRN_S3PROXY_CHILD_JOURNAL"  // the journal directory
	childCPUEnv      = "CAIRN_S3PROXY_CHILD_CPU"      // the CPU the child pins itself to
	// ProxyProfileEnv names a file for the child's CPU profile: the
	// proxy's work alone, without the clients'.
	proxyProfileEnv = "CAIRN_S3PROXY_CPUPROFILE"
)

// The CPUs of BenchmarkThroughputOwnCore: the proxy gets one, the clients
// and versitygw share the other.
const (
	proxyCPU  = 1
	othersCPU = 0
)

func TestMain(m *testing.M) {
	if up := os.Getenv(childUpstreamEnv); up != "" {
		if err := runProxyChild(up); err != nil {
			fmt.Fprintln(os.Stderr, "s3 proxy child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkThroughputOwnCore is BenchmarkThroughput with the proxy where
// it is meant to run: in a process of its own (this test binary run as a
// child, with its own journal on the real disk, fsynced) with a core of
// its own, while the 32 clients and versitygw share the machine's other
// core, direct and proxied alike. On the shared two cores of
// BenchmarkThroughput the proxy's CPU is taken from the clients and
// versitygw, so that benchmark measures the proxy's CPU cost; this one
// measures what a deployment sees, where the proxy's host or container
// has CPU of its own: whether the proxy keeps up with, and how much it
// slows, the same clients against the same server.
func BenchmarkThroughputOwnCore(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs: one for the proxy, one for the clients and versitygw")
	}
	s3srv := s3test.StartWith(b, s3test.Options{KeepAlive: true})
	proxyURL, proxyPID := startProxyChild(b, s3srv.Endpoint)

	// This process (the clients) and versitygw on the other core, with
	// as many Go threads as they have cores.
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Fatal(err)
	}
	pinProcess(b, os.Getpid(), othersCPU)
	pinProcess(b, s3srv.PID, othersCPU)
	procs := runtime.GOMAXPROCS(1)
	b.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		if err := setAffinity(os.Getpid(), &all); err != nil {
			b.Errorf("restore this process's CPUs: %v", err)
		}
	})

	r := &rig{s3: s3srv}
	throughput(b, r.client(s3srv.Endpoint), r.client(proxyURL), s3srv.PID, proxyPID)
}

// startProxyChild runs a proxy in front of upstream in a child process
// pinned to proxyCPU and returns its URL and process ID. The child stops
// when its standard input closes, at the end of the benchmark.
func startProxyChild(b *testing.B, upstream string) (string, int) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childUpstreamEnv+"="+upstream, childJournalEnv+"="+b.TempDir(),
		childCPUEnv+"="+strconv.Itoa(proxyCPU))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the proxy child: %v", err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("proxy child: %v", err)
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			b.Errorf("proxy child did not stop within a minute")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("proxy child did not report its URL: %v", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

// runProxyChild is the child of startProxyChild: a proxy configured as
// the rig's, journaling to a real journal, until standard input closes.
func runProxyChild(upstream string) error {
	cpu, err := strconv.Atoi(os.Getenv(childCPUEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", childCPUEnv, err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := setAffinity(os.Getpid(), &set); err != nil {
		return err
	}
	runtime.GOMAXPROCS(1)
	if path := os.Getenv(proxyProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("%s: %w", proxyProfileEnv, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	j, err := journal.Open(ctx, os.Getenv(childJournalEnv), journal.Options{Logger: quiet, Registerer: reg})
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer j.Close()
	p, err := New(rigConfig(upstream))
	if err != nil {
		return err
	}
	if err := p.Start(ctx, capture.Env{Journal: j, AccountID: "000000000000", Logger: quiet, Now: time.Now}); err != nil {
		return err
	}
	fmt.Println(p.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	err = p.Close()
	reportGroups(reg)
	return err
}

// pinProcess runs every thread of a process on one CPU from now on.
func pinProcess(b *testing.B, pid, cpu int) {
	b.Helper()
	var set unix.CPUSet
	set.Set(cpu)
	if err := setAffinity(pid, &set); err != nil {
		b.Fatal(err)
	}
}

// setAffinity sets the CPUs of every thread of a process:
// sched_setaffinity applies to one thread, and threads inherit their
// creator's CPUs, so a second pass catches those started during the
// first.
func setAffinity(pid int, set *unix.CPUSet) error {
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return fmt.Errorf("list the threads of process %d: %w", pid, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("set the CPUs of thread %d of process %d: %w", tid, pid, err)
			}
		}
	}
	return nil
}

// BenchmarkThroughputBareRelay is BenchmarkThroughput with, in place of
// the proxy, a relay that only copies bytes between the client's and an
// upstream TCP connection (with splice(2), as io.Copy does between TCP
// connections), in this process on the shared cores: it parses nothing
// and records nothing. It is the floor of any proxy that stands in the
// path on the same two cores as the clients and versitygw, against which
// BenchmarkThroughput's figures are to be read.
func BenchmarkThroughputBareRelay(b *testing.B) {
	s3srv := s3test.StartWith(b, s3test.Options{KeepAlive: true})
	upstream := strings.TrimPrefix(s3srv.Endpoint, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(b, c.(*net.TCPConn), upstream)
			}()
		}
	}()
	r := &rig{s3: s3srv}
	throughput(b, r.client(s3srv.Endpoint), r.client("http://"+ln.Addr().String()), s3srv.PID, 0)
}

// relay copies bytes both ways between a client and a new connection to
// upstream until the client is done.
func relay(b *testing.B, c *net.TCPConn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		b.Errorf("relay: dial the upstream: %v", err)
		return
	}
	defer u.Close()
	up := u.(*net.TCPConn)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, up)
		_ = c.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(up, c)
	_ = up.CloseWrite()
	<-done
}

// reportGroups tells how the journal grouped the proxy's appends into
// commits: each group costs one fdatasync, the largest share of the
// proxy's CPU per small call.
func reportGroups(g prometheus.Gatherer) {
	mfs, err := g.Gather()
	if err != nil {
		return
	}
	var groups, entries, syncs uint64
	var syncSeconds float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			switch mf.GetName() {
			case "cairn_journal_group_entries":
				groups, entries = h.GetSampleCount(), uint64(h.GetSampleSum())
			case "cairn_journal_sync_seconds":
				syncs, syncSeconds = h.GetSampleCount(), h.GetSampleSum()
			}
		}
	}
	if groups > 0 && syncs > 0 {
		fmt.Fprintf(os.Stderr, "proxy child: %d events in %d group commits (%.1f per group), %d syncs of %.2f ms on average\n",
			entries, groups, float64(entries)/float64(groups), syncs, 1000*syncSeconds/float64(syncs))
	}
}
