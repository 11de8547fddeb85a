package server

import (
	"context"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/state"
)

// purgeInterval is how often stores whose seven days in PENDING_DELETION
// are over are removed. AWS gives no finer promise than "after seven
// days"; an hour late is well within it.
const purgeInterval = 10 * time.Minute

// lakeParts is CloudTrail Lake's share of the server: the event data
// store service and the worker that purges deleted stores.
type lakeParts struct {
	svc    *lake.Service
	cancel context.CancelFunc
	done   sync.WaitGroup
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
// channel.Options.EventDataStores.
func (s *Server) openLake() {
	s.lake.svc = lake.New(s.state, s.cfg.AccountID, s.cfg.Now,
		lake.WithLogger(s.log),
		lake.WithChannels(channelIndex{s}))
	ctx, cancel := context.WithCancel(context.Background())
	s.lake.cancel = cancel
	// The first pass runs before Open returns, so that a store whose
	// seven days ended while Cairn was down is gone before anyone asks.
	s.purgeOnce(ctx)
	s.lake.done.Add(1)
	go func() {
		defer s.lake.done.Done()
		s.purgeStores(ctx)
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
	return api.EventDataStoreOperations(s.lake.svc)
}

// closeLake stops the purge worker; Close calls it before the state store
// closes.
func (s *Server) closeLake() {
	if s.lake.cancel != nil {
		s.lake.cancel()
		s.lake.done.Wait()
	}
}

// Lake is the event data store service (for tests and the engines).
func (s *Server) Lake() *lake.Service { return s.lake.svc }
