package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/bench"
	"github.com/cairn-audit/cairn/internal/testenv"
)

// TestUnauthenticatedBodyFlood holds 300 connections that declare large
// bodies, send a little of them and stall, against a `cairn serve` child
// for 60 s (issue 12, defect 2: the same attack drove RSS to 1.75 GB and
// kept stalled connections open for good). A third of them carry an
// Authorization that names the real admin key with a fresh date, so they
// pass every check the headers allow and reach the body budget; the rest
// are unsigned or name an unknown key. Throughout, the child's RSS must
// stay within the README's bound, /healthz must answer within 50 ms, and
// signed calls from the real SDK must succeed; every attacking connection
// must be closed by the server within the body deadline.
//
// The bound is the shipped binary's: under the race detector the child
// (the test binary itself) takes several times the memory, so the test
// runs in scripts/test's step without -race, after everything else.
func TestUnauthenticatedBodyFlood(t *testing.T) {
	if raceEnabled {
		t.Skip("measures the shipped binary's memory: scripts/test runs it without -race")
	}
	const (
		conns       = 300
		attackFor   = 60 * time.Second
		bodyTimeout = 5 * time.Second
		// The README: --memory-limit-mb 320 "keeps ingest bursts within
		// ~420 MB RSS".
		rssBound    = 420 << 20
		healthBound = 50 * time.Millisecond
		// overloadedHealthBound applies instead on an overloaded machine
		// outside CI (see below).
		overloadedHealthBound = 2 * time.Second
	)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	c := startCairn(t, work, "--data-dir", data, "--body-timeout", bodyTimeout.String())
	pid := c.cmd.Process.Pid
	addr := strings.TrimPrefix(c.URL, "http://")
	keyID, _ := readCredentials(t, data)
	client := sdkClient(t, data, c.URL)

	ctx, cancel := context.WithTimeout(context.Background(), attackFor)
	defer cancel()
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		failures    []string
		opened      atomic.Int64
		longest     atomic.Int64 // nanoseconds from the request's headers to the server's close
		healthMax   atomic.Int64
		healthN     atomic.Int64
		calls       atomic.Int64
		rssMax      atomic.Int64
		healthTimes []time.Duration
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}

	// The attackers. Each holds one connection at a time and opens the
	// next when the server has closed it, at most one a second, so that
	// 300 connections stay open without a busy loop of reconnects.
	paths := []struct {
		path, service string
		declared      int64
	}{
		{"/", "cloudtrail", 4_000_000},
		{"/cairn/import", "cairn", 5_000_000},
		{"/PutAuditEvents", "cloudtrail-data", 1_000_000},
	}
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for n := 0; ; n++ {
				p := paths[(i+n)%len(paths)]
				var auth string
				switch i % 3 {
				case 0: // the real key, a fresh date, a signature that cannot be right
					now := time.Now().UTC()
					auth = fmt.Sprintf("X-Amz-Date: %s\r\nAuthorization: AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/%s/aws4_request, SignedHeaders=host;x-amz-date, Signature=%s\r\n",
						now.Format("20060102T150405Z"), keyID, now.Format("20060102"), p.service, strings.Repeat("0", 64))
				case 1: // an unknown key
					now := time.Now().UTC()
					auth = fmt.Sprintf("X-Amz-Date: %s\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAUNKNOWN000000000/%s/us-east-1/%s/aws4_request, SignedHeaders=host;x-amz-date, Signature=%s\r\n",
						now.Format("20060102T150405Z"), now.Format("20060102"), p.service, strings.Repeat("0", 64))
				}
				if d := stallOnce(addr, p.path, auth, p.declared, bodyTimeout+5*time.Second); d < 0 {
					fail("%s (attacker %d): the server did not close a stalled connection within %s", p.path, i, bodyTimeout+5*time.Second)
				} else {
					opened.Add(1)
					for {
						old := longest.Load()
						if int64(d) <= old || longest.CompareAndSwap(old, int64(d)) {
							break
						}
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}

	// /healthz, on its own connection, ten times a second.
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			began := time.Now()
			resp, err := hc.Get(c.URL + "/healthz")
			took := time.Since(began)
			if err != nil {
				fail("/healthz: %v", err)
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail("/healthz: status %d", resp.StatusCode)
				}
			}
			healthN.Add(1)
			mu.Lock()
			healthTimes = append(healthTimes, took)
			mu.Unlock()
			if int64(took) > healthMax.Load() {
				healthMax.Store(int64(took))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// Signed calls from the real SDK, twice a second.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			callCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := client.DescribeTrails(callCtx, &cloudtrail.DescribeTrailsInput{})
			stop()
			if err != nil {
				fail("signed DescribeTrails during the attack: %v", err)
			} else {
				calls.Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// The child's resident set, five times a second.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := bench.RSS(pid); err == nil && rss > rssMax.Load() {
				rssMax.Store(rss)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	wg.Wait()
	hwm, err := bench.PeakRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d attacking connections; longest until the server closed one: %s; /healthz: %d polls, slowest %s; %d signed calls; peak VmRSS %d MB, VmHWM %d MB",
		opened.Load(), time.Duration(longest.Load()), healthN.Load(), time.Duration(healthMax.Load()), calls.Load(), rssMax.Load()>>20, hwm>>20)
	t.Logf("the child wrote %d bytes of log", len(c.stderr.String()))
	slices.Sort(healthTimes)
	t.Logf("healthz p50 %s p90 %s p99 %s", healthTimes[len(healthTimes)/2], healthTimes[len(healthTimes)*9/10], healthTimes[len(healthTimes)*99/100])
	for _, f := range failures {
		t.Error(f)
	}
	if hwm > rssBound {
		t.Errorf("VmHWM %d MB over the documented ~%d MB", hwm>>20, rssBound>>20)
	}
	if d := time.Duration(healthMax.Load()); d > healthBound {
		// On a machine whose run queue is already many times its CPUs
		// (a shared developer box), any process waits that long for a
		// CPU now and then, attack or not; there the bound is one that
		// still tells a server that the attack stalls from one that is
		// merely descheduled. CI's runners are not shared: the bound
		// holds exactly there.
		if load := loadPerCPU(t); !testenv.CI() && load > 2 && d <= overloadedHealthBound {
			t.Logf("/healthz took %s at worst, over %s, on a machine with %.1f runnable tasks per CPU: not counted", d, healthBound, load)
		} else {
			t.Errorf("/healthz took %s at worst during the attack, want within %s", d, healthBound)
		}
	}
	if opened.Load() < conns {
		t.Errorf("only %d attacking connections were made", opened.Load())
	}
	if calls.Load() < int64(attackFor/time.Second) {
		t.Errorf("only %d signed calls succeeded in %s", calls.Load(), attackFor)
	}
}

// stallOnce sends a POST's headers declaring declared bytes of body and
// waits a moment for an answer. A server that answers from the headers
// alone has refused the request; otherwise all of the body but its last
// byte goes out (the attack of issue 12) and the connection stalls until
// the server closes it. It returns how long the server took to close the
// connection from the end of the headers, or -1 when it had not after
// wait.
func stallOnce(addr, path, auth string, declared int64, wait time.Duration) time.Duration {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return -1
	}
	defer conn.Close()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n%s\r\n", path, addr, declared, auth)
	began := time.Now()
	if _, err := conn.Write([]byte(head)); err != nil {
		return time.Since(began) // refused and closed already
	}
	// An answer within 300 ms means the headers were enough to refuse.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var first [1]byte
	if _, err := conn.Read(first[:]); errors.Is(err, os.ErrDeadlineExceeded) {
		_ = conn.SetDeadline(began.Add(wait))
		chunk := make([]byte, 64<<10)
		for left := declared - 1; left > 0; {
			n := min(left, int64(len(chunk)))
			if _, err := conn.Write(chunk[:n]); err != nil {
				break // answered and closed: the read below sees it
			}
			left -= n
		}
	}
	_ = conn.SetDeadline(began.Add(wait))
	_, err = io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return -1
	}
	return time.Since(began)
}

// loadPerCPU is the one-minute load average per CPU.
func loadPerCPU(t *testing.T) float64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	var load float64
	if _, err := fmt.Sscanf(string(raw), "%f", &load); err != nil {
		t.Fatalf("/proc/loadavg %q: %v", raw, err)
	}
	return load / float64(runtime.NumCPU())
}
