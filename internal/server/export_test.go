package server

import "context"

// TrimOnce exposes one journal trim to the tests.
func (s *Server) TrimOnce(ctx context.Context) error { return s.trimOnce(ctx) }
