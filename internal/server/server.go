// Package server assembles Cairn: it opens the state store, the journal, the
// key store and the object store, wires the CloudTrail operations, and
// serves them over HTTP with SigV4 authentication. Every call that passes
// authentication is recorded in the journal as CloudTrail records its own
// API calls, before the caller sees the answer.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/capture"
	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/delivery/notify"
	"github.com/cairn-audit/cairn/internal/digest"
	"github.com/cairn-audit/cairn/internal/history"
	"github.com/cairn-audit/cairn/internal/journal"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/stores"
	"github.com/cairn-audit/cairn/internal/ratelog"
	"github.com/cairn-audit/cairn/internal/region"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
	"github.com/cairn-audit/cairn/internal/trail"
)

// Config is everything `cairn serve` can be told.
type Config struct {
	Listen    string // host:port; defaults to 127.0.0.1:4747
	DataDir   string
	AccountID string
	// Store is the object store URL (file://DIR or s3://HOST:PORT?...);
	// empty means file://<DataDir>/buckets.
	Store             string
	S3AccessKeyID     string
	S3SecretAccessKey string
	TLSCert, TLSKey   string
	// HistoryRetention is how long events stay in the event history; zero
	// means CloudTrail's 90 days.
	HistoryRetention time.Duration
	// HistoryDataEvents keeps data events in the event history too (a
	// Cairn extension; CloudTrail keeps only management events there).
	HistoryDataEvents bool
	// DeliveryInterval is how long a trail batches events before writing a
	// log file (1 s to 15 min); zero means CloudTrail's usual minute.
	DeliveryInterval time.Duration
	// Topics are the notification topics trails may name in SnsTopicName.
	Topics notify.Topics
	// DigestInterval is the time one digest file covers (1 min to 24 h);
	// zero means CloudTrail's hour.
	DigestInterval time.Duration
	// KeyRotation is how long a digest-signing key signs before the next
	// takes over; zero means 30 days.
	KeyRotation time.Duration
	// JournalFS is the filesystem under the journal; nil means the real
	// one. Fault-injection tests put a failing disk here.
	JournalFS vfs.FS
	// PprofListen, when set, serves Go's profiling endpoints under
	// /debug/pprof/ on their own listener at this address, which must be a
	// loopback one (see listenPprof); never on the main listener.
	PprofListen string
	// JournalReserve is the free space the journal keeps on its
	// filesystem: below it, calls are refused (503) and /healthz says so,
	// before the storage engine can meet a full disk. Zero means 256 MiB;
	// negative turns the check off.
	JournalReserve int64
	// JournalHoldLimit is how many journal entries one trail's delivery
	// may hold back from trimming (a trail whose delivery keeps failing);
	// past it the journal is trimmed anyway and the trail records a gap.
	// Zero means 10,000,000; negative means no limit.
	JournalHoldLimit int64
	// DiskProbeInterval is how often the free space is checked while
	// nothing is written; zero means two seconds.
	DiskProbeInterval time.Duration
	// Captures are the audit proxies and webhooks that bring in events
	// from other systems; the server starts and stops them.
	Captures []capture.Capture
	Logger   *slog.Logger
	Version  string
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time

	// Regions are private region names requests may be signed for, on
	// top of AWS's own (see internal/region).
	Regions []string
	// BodyTimeout is how long a client has to send a request body once
	// its headers are in; zero means DefaultBodyTimeout. BodyBudget is
	// the memory all request bodies in flight may hold together; zero
	// means DefaultBodyBudget. See intake.go.
	BodyTimeout time.Duration
	BodyBudget  int64
}

// refusalLogInterval: a failure every call repeats is logged once per this.
const refusalLogInterval = 10 * time.Second

// Server is a running Cairn.
type Server struct {
	cfg      Config
	log      *slog.Logger
	state    *state.Store
	keys     *auth.Store
	journal  *journal.Journal
	store    objstore.Store
	trails   *trail.Service
	history  *history.History
	delivery *delivery.Manager
	digests  *digest.Writer
	signing  *digest.Keys
	channels *channel.Service
	lake     lakeParts
	registry *api.Registry
	regions  *regionGuard
	metrics  *metrics
	promReg  *prometheus.Registry
	bodies   *bodyBudget
	// refusals logs the errors every request repeats while the journal
	// refuses writes, once per interval with a count, not once per call.
	refusals *ratelog.Limiter

	httpSrv  *http.Server
	listener net.Listener
	pprofSrv *pprofServer // nil unless Config.PprofListen
	// started are the captures running, in the order they started.
	started []capture.Capture

	// bgCancel stops the background workers (history indexing, channel
	// status flushing) that Open starts; bg waits for them.
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Open prepares a server: it opens every store under cfg.DataDir, creates
// the first admin key when there is none, and binds the listener, so that
// when Open returns the address is known and clients may connect.
func Open(ctx context.Context, cfg Config) (s *Server, err error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4747"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = datadir.Default
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if !awsproto.ValidAccountID(cfg.AccountID) {
		return nil, fmt.Errorf("account id %q must be 12 digits", cfg.AccountID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	regions, err := region.NewSet(cfg.Regions)
	if err != nil {
		return nil, fmt.Errorf("--regions: %w", err)
	}
	if cfg.BodyTimeout, err = bodyTimeoutOrDefault(cfg.BodyTimeout); err != nil {
		return nil, err
	}
	if cfg.BodyBudget <= 0 {
		cfg.BodyBudget = DefaultBodyBudget
	}
	if err := datadir.Ensure(cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}
	if cfg.Store == "" {
		u, err := datadir.StoreURL(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.Store = u
	}

	s = &Server{cfg: cfg, log: cfg.Logger, promReg: prometheus.NewRegistry(), refusals: ratelog.New(cfg.Logger, refusalLogInterval, nil)}
	// Every failure below returns nil, so close what was opened through a
	// second name.
	opened := s
	defer func() {
		if err != nil {
			_ = opened.Close()
		}
	}()
	s.promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.promReg)
	s.regions = newRegionGuard(regions, s.promReg)
	s.bodies = newBodyBudget(cfg.BodyBudget, s.promReg)

	if s.state, err = state.Open(ctx, datadir.Path(cfg.DataDir, datadir.State), state.Options{Logger: s.log, FS: datadir.FS(nil)}); err != nil {
		return nil, err
	}
	if s.journal, err = journal.Open(ctx, datadir.Path(cfg.DataDir, datadir.Journal), journal.Options{Logger: s.log, Registerer: s.promReg, FS: datadir.FS(cfg.JournalFS),
		MinFreeBytes: cfg.JournalReserve, SpaceProbeInterval: cfg.DiskProbeInterval}); err != nil {
		return nil, err
	}
	if s.keys, err = auth.Open(cfg.DataDir); err != nil {
		return nil, err
	}
	created, err := s.keys.EnsureAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("created the first admin access key", "credentials_file", datadir.Path(cfg.DataDir, datadir.Credentials), "profile", "cairn")
	}
	if s.store, err = stores.Open(ctx, cfg.Store, stores.Options{AccessKeyID: cfg.S3AccessKeyID, SecretAccessKey: cfg.S3SecretAccessKey}); err != nil {
		return nil, err
	}
	s.trails = trail.New(s.state, s.store, cfg.AccountID, cfg.Now,
		trail.WithLogger(s.log),
		trail.WithTopicCheck(cfg.Topics.Exists),
		trail.WithChangeHook(func(ctx context.Context) {
			// Without this the manager notices the change at its next poll.
			if err := s.delivery.TrailChanged(ctx); err != nil {
				s.log.Warn("delivery has not applied a trail change yet; its next poll will", "err", err)
			}
		}))
	if s.signing, err = digest.OpenKeys(cfg.DataDir, s.state, digest.KeyOptions{Rotation: cfg.KeyRotation, Clock: cfg.Now, Logger: s.log}); err != nil {
		return nil, err
	}
	if s.digests, err = digest.NewWriter(s.state, s.trails, s.store, s.signing, digest.Options{Interval: cfg.DigestInterval, Clock: cfg.Now, Logger: s.log}); err != nil {
		return nil, err
	}
	if s.delivery, err = delivery.NewManager(s.journal, s.state, s.trails, s.store, delivery.Options{
		Interval:   cfg.DeliveryInterval,
		Logger:     s.log,
		Registerer: s.promReg,
		Clock:      cfg.Now,
		Topics:     cfg.Topics,
		// Digests list each log file before the trail's cursor moves past
		// it, so a crash can neither lose a file from the chain nor list
		// it twice.
		OnLogFiles: s.digests.Record,
	}); err != nil {
		return nil, err
	}
	s.openLake()
	if s.channels, err = channel.New(s.state, cfg.AccountID, channel.Options{Now: cfg.Now, Logger: s.log, Registerer: s.promReg, EventDataStores: s.lake.svc,
		OnChange: s.lakeChanged}); err != nil {
		return nil, err
	}
	if s.history, err = history.Open(ctx, datadir.Path(cfg.DataDir, datadir.History), s.journal, history.Options{
		Logger:            s.log,
		FS:                datadir.FS(nil),
		Registerer:        s.promReg,
		Retention:         cfg.HistoryRetention,
		IncludeDataEvents: cfg.HistoryDataEvents,
		// The cache must hold the index's bloom filters, which every
		// indexed event's duplicate check reads: at 32 MB they were
		// evicted and read from disk again for each batch, and indexing
		// ran at half the rate (a 60 s ingest burst took 199 s to index
		// instead of 68 s). The records are no longer in this database,
		// so the server stays within 512 MB (430 MB peak in the burst).
		CacheSize: 128 << 20,
	}); err != nil {
		return nil, err
	}
	if err := s.openLakeEngines(ctx); err != nil {
		return nil, err
	}
	tagging := tags.NewService(s.state, cfg.AccountID, map[string]tags.Resolver{
		tags.TypeTrail:          s.trails,
		tags.TypeChannel:        s.channels,
		tags.TypeEventDataStore: s.lake.svc,
		tags.TypeDashboard:      s.lake.dashboards,
	})
	if s.registry, err = api.NewRegistry(
		api.TrailOperations(s.trails),
		api.TagOperations(tagging),
		api.LookupOperations(s.history),
		api.ChannelOperations(s.channels),
		api.PublicKeyOperations(s.signing),
		s.lakeOperations(),
	); err != nil {
		return nil, err
	}
	if err := s.startBackground(); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.listener = ln
	if cfg.PprofListen != "" {
		if s.pprofSrv, err = listenPprof(cfg.PprofListen, s.log); err != nil {
			return nil, err
		}
	}
	mux, err := s.routes()
	if err != nil {
		return nil, err
	}
	if err := s.startCaptures(ctx, mux); err != nil {
		return nil, err
	}
	s.httpSrv = &http.Server{
		Handler:           s.withBodyDeadline(mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS key pair: %w", err)
		}
		s.httpSrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the base URL clients use.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + s.Addr()
}

// Keys is the access-key store (for tests and the console).
func (s *Server) Keys() *auth.Store { return s.keys }

// ObjectStore is the store trails deliver to.
func (s *Server) ObjectStore() objstore.Store { return s.store }

// Journal is the event journal.
func (s *Server) Journal() *journal.Journal { return s.journal }

// Serve answers requests until ctx is cancelled, then shuts down
// gracefully: in-flight requests finish (up to 10 s) before stores close.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLSCert != "" {
			err = s.httpSrv.ServeTLS(s.listener, "", "")
		} else {
			err = s.httpSrv.Serve(s.listener)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	if s.pprofSrv != nil {
		s.pprofSrv.start()
		defer func() { _ = s.pprofSrv.close() }()
	}
	s.log.Info("cairn is serving", "url", s.URL(), "data_dir", s.cfg.DataDir, "account_id", s.cfg.AccountID, "store", s.cfg.Store)
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return <-errc
}

// Close releases every store. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.listener != nil {
			_ = s.listener.Close()
		}
		if s.pprofSrv != nil {
			_ = s.pprofSrv.close()
		}
		// Captures append to the journal: they stop before it closes.
		errs = append(errs, s.closeCaptures())
		if s.bgCancel != nil {
			s.bgCancel()
			s.bg.Wait()
		}
		s.closeLake()
		if s.channels != nil {
			// Persist the channels' ingestion status while the store is open.
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, s.channels.Flush(flushCtx))
			cancel()
		}
		if s.history != nil {
			// Before the journal: the history mirrors its cursor into it.
			errs = append(errs, s.history.Close())
		}
		if s.journal != nil {
			errs = append(errs, s.journal.Close())
		}
		if s.state != nil {
			errs = append(errs, s.state.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// startBackground starts the workers that run for the server's lifetime.
func (s *Server) startBackground() error {
	ctx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	if err := s.history.Start(ctx); err != nil {
		return err
	}
	s.startLake()
	s.bg.Add(4)
	go func() {
		defer s.bg.Done()
		s.trimJournal(ctx)
	}()
	go func() {
		defer s.bg.Done()
		if err := s.digests.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("digest writing stopped", "err", err)
		}
	}()
	go func() {
		defer s.bg.Done()
		if err := s.delivery.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("trail delivery stopped", "err", err)
		}
	}()
	go func() {
		defer s.bg.Done()
		_ = s.channels.Run(ctx) // ends only when ctx does
	}()
	return nil
}

// History is the event history (for tests and the console).
func (s *Server) History() *history.History { return s.history }

func (s *Server) routes() (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.promReg, promhttp.HandlerOpts{Registry: s.promReg}))
	mux.HandleFunc("POST /{$}", s.handleJSON11)
	mux.HandleFunc("POST /PutAuditEvents", s.putAuditEventsHandler(s.channels))
	mux.HandleFunc("POST "+ImportPath, s.handleImport)
	if err := s.mountConsole(mux); err != nil {
		return nil, fmt.Errorf("mount the web console: %w", err)
	}
	return mux, nil
}

// handleHealth says whether Cairn can take events: when the journal
// refuses writes every audited call is refused too, so the server is not
// healthy even though it answers.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.journal.Available(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "journal unavailable: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
