package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the cairn binary: with
// CAIRN_TEST_AS_CAIRN=1 it runs cairn's main instead of the tests, so the
// tests can start real `cairn serve` child processes and kill them with
// SIGKILL without a separate build step.
func TestMain(m *testing.M) {
	if os.Getenv("CAIRN_TEST_AS_CAIRN") == "1" {
		ctx, stop := signalContext()
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// child is a `cairn serve` running as a separate process.
type child struct {
	cmd    *exec.Cmd
	URL    string
	stderr *lockedBuffer
	done   chan error
}

var servingLine = regexp.MustCompile(`cairn is serving"? url=(\S+)`)

// startCairn runs `cairn serve` with args in a child process and waits
// until it reports its URL.
func startCairn(t *testing.T, dir string, args ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CAIRN_TEST_AS_CAIRN=1")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cairn serve: %v", err)
	}
	c := &child{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			c.stderr.WriteString(line + "\n")
			if m := servingLine.FindStringSubmatch(line); m != nil && !sent {
				urlc <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	select {
	case c.URL = <-urlc:
		return c
	case err := <-c.done:
		t.Fatalf("cairn serve exited before serving: %v\n%s", err, c.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("cairn serve did not start within 20s\n%s", c.stderr.String())
	}
	return nil
}

// kill9 ends the child with SIGKILL, the way a crash or the OOM killer
// would: no shutdown code runs.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	<-c.done
}

// stop sends SIGTERM and expects a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("cairn serve exited with %v after SIGTERM\n%s", err, c.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("cairn serve did not stop within 15s of SIGTERM")
	}
}

// runCairn runs a non-server subcommand in a child process.
func runCairn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := execCairn(t, dir, args...)
	if err != nil {
		t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runCairnFails runs cairn in a child process, expects it to fail and
// returns its output.
func runCairnFails(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := execCairn(t, dir, args...)
	if err == nil {
		t.Fatalf("cairn %s succeeded, want a failure\n%s", strings.Join(args, " "), out)
	}
	return out
}

func execCairn(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CAIRN_TEST_AS_CAIRN=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lockedBuffer collects a child's log lines while tests read them.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
