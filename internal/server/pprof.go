package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"
)

// Go's profiling endpoints reveal the server's internals (goroutine stacks
// with request data, heap contents by allocation site, the command line)
// and cost CPU on demand (a 30 s CPU profile, a trace). They are therefore
// never on the main listener, where any network client would reach them
// without a signature: they get a listener of their own, and that listener
// must be on a loopback address, so only someone already on the machine
// (or holding an SSH tunnel to it) can profile. A separate loopback
// listener was chosen over an admin SigV4 signature because profiling
// tools (go tool pprof, curl) cannot sign requests, and because a bug in
// the signature path would then expose the profiles again; a listener that
// only the machine can reach needs no code to be right.
type pprofServer struct {
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
	once sync.Once
}

// listenPprof opens the profiling listener at addr and refuses any address
// that is not loopback (checked on the bound address, so a host name that
// resolves elsewhere is refused too).
func listenPprof(addr string, log *slog.Logger) (*pprofServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof %q: want HOST:PORT on a loopback address, such as 127.0.0.1:6060: %w", addr, err)
	}
	if host == "" {
		return nil, fmt.Errorf("--pprof %q: an empty host listens on every interface; profiles are only served on a loopback address, such as 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: listen on %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("--pprof %q: %s is not a loopback address; profiles are only served on loopback (reach them from elsewhere through an SSH tunnel)", addr, ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return &pprofServer{
		ln:  ln,
		log: log,
		srv: &http.Server{
			Handler:           loopbackHostOnly(mux),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}, nil
}

// loopbackHostOnly refuses a request whose Host is not a loopback address
// or localhost. A loopback listener alone does not keep a web page out: a
// page the operator opens can rebind its own name to 127.0.0.1 and read
// heap and goroutine dumps (request data) or start CPU profiles; such a
// request carries the page's host name, which this refuses.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); !(strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()) {
			http.Error(w, "profiling endpoints answer only requests addressed to a loopback host", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// start serves until close.
func (p *pprofServer) start() {
	p.log.Info("profiling endpoints are serving", "url", "http://"+p.ln.Addr().String()+"/debug/pprof/")
	go func() {
		if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Warn("profiling listener stopped", "err", err)
		}
	}()
}

// close stops the listener and any profile being written. It is safe to
// call more than once and without start.
func (p *pprofServer) close() error {
	var err error
	p.once.Do(func() {
		err = p.srv.Close()
		_ = p.ln.Close()
	})
	return err
}

// PprofAddr is the address of the profiling listener, "" when there is none.
func (s *Server) PprofAddr() string {
	if s.pprofSrv == nil {
		return ""
	}
	return s.pprofSrv.ln.Addr().String()
}
