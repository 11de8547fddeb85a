// Package s3test runs a real S3 server for tests: versitygw (the version
// go.mod pins) with its posix backend in the test's temporary directory,
// on a random loopback port, checking SigV4 against fixed root
// credentials.
//
// The server runs as a child process, not in the test binary. versitygw
// can be embedded (embedgw.RunVersityGW), but only once per process, and
// its posix backend chdirs the whole process into its root directory and
// resolves buckets relative to the working directory: any other test in
// the same binary that reads testdata/ by a relative path, or calls
// t.Chdir, would break it or be broken by it. A child process has none of
// that, so Start may be called by any number of tests, in parallel, from
// any test binary, each getting a server of its own.
//
// The binary is built once with "go install" into the user cache directory
// (the first build takes a minute or two; later ones are instant). Set
// CAIRN_VERSITYGW to the path of a prebuilt versitygw to skip that.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/objstore/s3"
)

// Fixed root credentials of every test server. They protect nothing; they
// exist so that requests are really signed and really checked.
const (
	AccessKeyID     = "CAIRNTESTACCESSKEY01"
	SecretAccessKey = "cairn-test-secret-key-0123456789abcdefghij"
	Region          = "us-east-1"
)

// versitygwModule is the module whose version go.mod pins.
const versitygwModule = "github.com/versity/versitygw"

// Server is a running versitygw.
type Server struct {
	// Endpoint is the base URL, "http://127.0.0.1:PORT".
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	// Dir is the posix backend's root: bucket B, key K is Dir/B/K (user
	// metadata lives in the files' extended attributes).
	Dir string
	// Log is versitygw's output (printed by Start's cleanup when the
	// test failed).
	Log string
	// PID is versitygw's process ID (for tests that measure its CPU
	// time).
	PID int
}

// Options change how StartWith runs versitygw. The zero value is what
// Start runs.
type Options struct {
	// KeepAlive keeps client connections open between requests
	// (versitygw --keep-alive). By default versitygw closes each
	// connection after one response, which a benchmark would measure as
	// TCP handshakes.
	KeepAlive bool
	// VirtualDomain enables virtual-hosted-style addressing,
	// "<bucket>.<VirtualDomain>" (versitygw --virtual-domain).
	VirtualDomain string
}

// Options are the s3 backend options for this server.
func (s *Server) Options() s3.Options {
	return s3.Options{Endpoint: s.Endpoint, Region: s.Region, AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey}
}

// NewStore returns an objstore backend talking to this server.
func (s *Server) NewStore(t testing.TB) *s3.Store {
	t.Helper()
	st, err := s3.New(context.Background(), s.Options())
	if err != nil {
		t.Fatalf("s3test: new store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// StoreURL is the server as a Cairn store URL (see package stores); the
// credentials go separately (AccessKeyID, SecretAccessKey).
func (s *Server) StoreURL() string {
	return "s3://" + strings.TrimPrefix(s.Endpoint, "http://") + "?region=" + s.Region + "&tls=false"
}

// Env is what a child process such as the AWS CLI (v1.45 and botocore >=
// 1.31 honour AWS_ENDPOINT_URL_S3) needs in its environment to use this
// server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretAccessKey,
		"AWS_DEFAULT_REGION=" + s.Region,
		"AWS_REGION=" + s.Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
	}
}

// Start runs a server for the test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	tmp := t.TempDir() // before our cleanup, so it is removed after the server stops
	dir := filepath.Join(tmp, "root")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	logPath := filepath.Join(tmp, "versitygw.log")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		srv, stop, err := start(bin, dir, logPath, o)
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("s3test: versitygw output:\n%s", tail(logPath, 4096))
				}
			})
			return srv
		}
		lastErr = err
		// Most likely another process took the port between our probe
		// and versitygw's bind: try another one.
	}
	t.Fatalf("s3test: start versitygw: %v\n%s", lastErr, tail(logPath, 4096))
	return nil
}

func start(bin, dir, logPath string, o Options) (*Server, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	addr := "127.0.0.1:" + port
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer logFile.Close() // the child has its own copy
	args := []string{"--port", addr, "--region", Region, "--quiet"}
	if o.KeepAlive {
		args = append(args, "--keep-alive")
	}
	if o.VirtualDomain != "" {
		args = append(args, "--virtual-domain", o.VirtualDomain)
	}
	cmd := exec.Command(bin, append(args, "posix", dir)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(cleanEnv(),
		// Through the environment, not argv, so they do not show in ps.
		"ROOT_ACCESS_KEY_ID="+AccessKeyID,
		"ROOT_SECRET_ACCESS_KEY="+SecretAccessKey,
	)
	exited, err := StartChild(cmd)
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", bin, err)
	}
	stop := func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	}
	endpoint := "http://" + addr
	if err := waitReady(endpoint, exited); err != nil {
		stop()
		return nil, nil, err
	}
	return &Server{
		Endpoint: endpoint, Region: Region,
		AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey,
		Dir: dir, Log: logPath, PID: cmd.Process.Pid,
	}, stop, nil
}

// cleanEnv is the environment minus variables that would configure
// versitygw behind our back.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// waitReady polls until the server answers HTTP (any status: an unsigned
// request is refused, which proves it is serving).
func waitReady(endpoint string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited during startup: %v", err)
		default:
		}
		resp, err := client.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("versitygw did not answer within 20s")
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of a versitygw binary of the pinned version,
// building it on first use (see the package comment).
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = findOrBuild(t) })
	if binErr != nil {
		t.Fatalf("s3test: %v", binErr)
	}
	return binPath
}

func findOrBuild(t testing.TB) (string, error) {
	if p := os.Getenv("CAIRN_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CAIRN_VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("need the go command to build versitygw (or set CAIRN_VERSITYGW): %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// The version comes from go.mod, so the server tests run against is
	// the one the module pins.
	out, err := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Version}}", versitygwModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", versitygwModule, exitDetail(err))
	}
	version := strings.TrimSpace(string(out))
	if version == "" {
		return "", fmt.Errorf("go list -m %s printed no version", versitygwModule)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "cairn-test", "versitygw-"+version)
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("versitygw cache: %w", err)
	}
	// Test binaries of several packages may get here at once: one builds,
	// the others wait for it.
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("versitygw cache: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	gobin, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("versitygw cache: %w", err)
	}
	defer os.RemoveAll(gobin)
	t.Logf("s3test: building versitygw %s into %s (first use only; this takes a minute or two)", version, dir)
	cmd := exec.CommandContext(ctx, goBin, "install", versitygwModule+"/cmd/versitygw@"+version)
	cmd.Dir = os.TempDir() // outside any module: build with versitygw's own go.mod
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install versitygw@%s: %w\n%s", version, err, out)
	}
	if err := os.Rename(filepath.Join(gobin, "versitygw"), bin); err != nil {
		return "", fmt.Errorf("versitygw cache: %w", err)
	}
	return bin, nil
}

func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err
}
