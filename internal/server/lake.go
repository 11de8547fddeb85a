package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/lake/dashboards"
	"github.com/cairn-audit/cairn/internal/lake/imports"
	"github.com/cairn-audit/cairn/internal/lake/ingest"
	"github.com/cairn-audit/cairn/internal/query"
	"github.com/cairn-audit/cairn/internal/state"
)

// purgeInterval is how often stores whose seven days in PENDING_DELETION
// are over are removed. AWS gives no finer promise than "after seven
// days"; an hour late is well within it.
const purgeInterval = 10 * time.Minute

// lakeParts is CloudTrail Lake's share of the server: the event data
// store service, the ingestion of the journal into the stores' Parquet
// files, the query engine and service, dashboards, and the workers that
// purge deleted stores and run dashboard schedules.
type lakeParts struct {
	svc        *lake.Service
	ingest     *ingest.Ingester
	engine     *query.Engine
	queries    *query.Service
	dashboards *dashboards.Service
	imports    *imports.Service
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

// channelIndex hands the lake service the channel service, which is
// created after it (the channel service checks destinations with the
// lake service): the lookup happens at call time.
type channelIndex struct{ s *Server }

func (c channelIndex) ChannelsByStore(ctx context.Context, r state.Reader) (map[string][]string, error) {
	if c.s.channels == nil {
		return nil, nil
	}
	return c.s.channels.ChannelsByStore(ctx, r)
}

// openLake creates the event data store service and starts purging; Open
// calls it before creating the channel service, which takes it as
// channel.Options.EventDataStores. The ingestion, query engine and
// dashboards come after the journal and object store, in openLakeEngines.
func (s *Server) openLake() {
	s.lake.svc = lake.New(s.state, s.cfg.AccountID, s.cfg.Now,
		lake.WithLogger(s.log),
		lake.WithChannels(channelIndex{s}),
		// Ingestion picks up a new, stopped or deleted store at once
		// instead of at its next poll.
		lake.WithChangeHook(s.lakeChanged),
		// A purged store's files and cursor go before its record does.
		lake.WithPurgeHook(func(ctx context.Context, spec lake.Spec) error {
			if s.lake.ingest == nil {
				return errors.New("the ingestion is not open yet")
			}
			return s.lake.ingest.Drop(ctx, spec.ID)
		}))
}

// lakeChanged tells the ingestion that stores or channels changed: it
// reads the stores' configuration again before it takes any journal entry
// written after this call.
func (s *Server) lakeChanged(context.Context) {
	if s.lake.ingest != nil {
		s.lake.ingest.Reload()
	}
}

// openLakeEngines opens the ingestion, the query engine and service and
// the dashboards, then runs the first purge of deleted stores.
func (s *Server) openLakeEngines(ctx context.Context) error {
	var err error
	if s.lake.ingest, err = ingest.New(ctx, ingest.Options{
		Journal:    s.journal,
		Store:      s.store,
		Specs:      s.lake.svc.Specs,
		CacheDir:   datadir.Path(s.cfg.DataDir, datadir.LakeCache),
		Now:        s.cfg.Now,
		Logger:     s.log,
		Registerer: s.promReg,
	}); err != nil {
		return fmt.Errorf("open the event data stores' ingestion: %w", err)
	}
	if s.lake.engine, err = query.NewEngine(ctx, lakeCatalog{svc: s.lake.svc, ingest: s.lake.ingest}, query.Limits{}); err != nil {
		return fmt.Errorf("open the Lake query engine: %w", err)
	}
	s.lake.dashboards = dashboards.New(s.state, dashboardQueries{s}, s.cfg.AccountID, dashboards.Options{Clock: s.cfg.Now, Logger: s.log})
	if s.lake.queries, err = query.NewService(ctx, query.Options{
		Engine:  s.lake.engine,
		State:   s.state,
		Dir:     datadir.Path(s.cfg.DataDir, datadir.LakeResults),
		Objects: s.store,
		Aliases: s.lake.dashboards,
		Now:     s.cfg.Now,
		Logger:  s.log,
	}); err != nil {
		return fmt.Errorf("open the Lake query service: %w", err)
	}
	// Imports read trail log files from the object store trails deliver
	// to and write through the ingestion.
	s.lake.imports = imports.New(s.state, s.lake.svc, s.store, s.lake.ingest, s.cfg.AccountID,
		imports.Options{Clock: s.cfg.Now, Logger: s.log})
	// The first pass runs before Open returns, so that a store whose
	// seven days ended while Cairn was down is gone before anyone asks.
	s.purgeOnce(ctx)
	return nil
}

// startLake starts ingestion, the purge worker, dashboard schedules and
// imports.
func (s *Server) startLake() {
	ctx, cancel := context.WithCancel(context.Background())
	s.lake.cancel = cancel
	s.lake.done.Add(4)
	go func() {
		defer s.lake.done.Done()
		if err := s.lake.ingest.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("event data store ingestion stopped", "err", err)
		}
	}()
	go func() {
		defer s.lake.done.Done()
		s.purgeStores(ctx)
	}()
	go func() {
		defer s.lake.done.Done()
		s.lake.dashboards.RunSchedules(ctx, time.Minute)
	}()
	go func() {
		defer s.lake.done.Done()
		if err := s.lake.imports.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("Lake imports stopped", "err", err)
		}
	}()
}

// purgeStores removes stores past their pending deletion every
// purgeInterval, until ctx ends.
func (s *Server) purgeStores(ctx context.Context) {
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.purgeOnce(ctx)
	}
}

func (s *Server) purgeOnce(ctx context.Context) {
	if n, err := s.lake.svc.Purge(ctx, s.cfg.Now().UTC()); err != nil && ctx.Err() == nil {
		s.log.Warn("could not remove every event data store past its pending deletion; the next pass retries", "removed", n, "err", err)
	}
}

// lakeOperations are the Lake operations for the registry.
func (s *Server) lakeOperations() []api.Operation {
	ops := api.EventDataStoreOperations(s.lake.svc)
	ops = append(ops, api.QueryOperations(s.lake.queries)...)
	ops = append(ops, api.DashboardOperations(s.lake.dashboards)...)
	ops = append(ops, api.ImportOperations(s.lake.imports)...)
	return ops
}

// closeLake stops the workers, running queries and the engine; Close
// calls it after the other background workers stopped and before the
// journal and state store close (ingestion commits its cursors in the
// journal, queries their records in the state store).
func (s *Server) closeLake() {
	if s.lake.cancel != nil {
		s.lake.cancel()
		s.lake.done.Wait()
	}
	if s.lake.queries != nil {
		if err := s.lake.queries.Close(); err != nil {
			s.log.Warn("close the Lake query service", "err", err)
		}
	}
	if s.lake.engine != nil {
		if err := s.lake.engine.Close(); err != nil {
			s.log.Warn("close the Lake query engine", "err", err)
		}
	}
	if s.lake.ingest != nil {
		if err := s.lake.ingest.Close(); err != nil {
			s.log.Warn("close the event data stores' ingestion", "err", err)
		}
	}
}

// Lake is the event data store service (for tests and the engines).
func (s *Server) Lake() *lake.Service { return s.lake.svc }

// LakeIngest is the stores' ingestion (for tests).
func (s *Server) LakeIngest() *ingest.Ingester { return s.lake.ingest }

// lakeCatalog is the query engine's view of the stores: the store service
// resolves table references, the ingestion lists their files.
type lakeCatalog struct {
	svc    *lake.Service
	ingest *ingest.Ingester
}

func (c lakeCatalog) Lookup(ctx context.Context, region, account, ref string) (lake.Spec, bool, error) {
	if account != c.svc.AccountID() {
		return lake.Spec{}, false, nil
	}
	spec, err := c.svc.Resolve(ctx, region, ref)
	if err != nil {
		// A name that is no store (or not even a store's form, such as a
		// path) is the engine's to refuse, as it refuses any other table.
		var ae *awsproto.Error
		if errors.As(err, &ae) && (ae.Code == "EventDataStoreNotFoundException" || ae.Code == "EventDataStoreARNInvalidException") {
			return lake.Spec{}, false, nil
		}
		return lake.Spec{}, false, err
	}
	return spec, true, nil
}

func (c lakeCatalog) Files(ctx context.Context, id string) ([]string, error) {
	return c.ingest.Files(ctx, id)
}

func (c lakeCatalog) Columns(category string) []query.Column {
	return splitColumns(ingest.Columns(category))
}

// splitColumns cuts a DuckDB column list ("a VARCHAR, b STRUCT(x INT, y
// INT)") at its top-level commas.
func splitColumns(list string) []query.Column {
	var out []query.Column
	depth, start := 0, 0
	add := func(part string) {
		part = strings.TrimSpace(part)
		if name, typ, ok := strings.Cut(part, " "); ok {
			out = append(out, query.Column{Name: name, Type: strings.TrimSpace(typ)})
		}
	}
	for i := 0; i < len(list); i++ {
		switch list[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				add(list[start:i])
				start = i + 1
			}
		}
	}
	add(list[start:])
	return out
}

// dashboardQueries lets dashboards check and start widget queries through
// the query service, in the server's account.
type dashboardQueries struct{ s *Server }

func (d dashboardQueries) Check(ctx context.Context, region, stmt string) error {
	_, err := d.s.lake.engine.Check(ctx, region, d.s.cfg.AccountID, stmt)
	return err
}

func (d dashboardQueries) Start(ctx context.Context, region, stmt string) (string, error) {
	rec, err := d.s.lake.queries.Start(ctx, query.StartInput{Region: region, AccountID: d.s.cfg.AccountID, Statement: stmt})
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}
