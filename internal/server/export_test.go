package server

import (
	"context"

	"github.com/cairn-audit/cairn/internal/api"
)

// TrimOnce exposes one journal trim to the tests.
func (s *Server) TrimOnce(ctx context.Context) error { return s.trimOnce(ctx) }

// Registry exposes the server's operations to the tests.
func (s *Server) Registry() *api.Registry { return s.registry }

// LowerFirst is how the record spells an input member's name.
func LowerFirst(name string) string { return lowerFirst(name) }
