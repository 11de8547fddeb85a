package server

import (
	"context"
	"fmt"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/console"
)

// TrimOnce exposes one journal trim to the tests.
func (s *Server) TrimOnce(ctx context.Context) error { return s.trimOnce(ctx) }

// Registry exposes the server's operations to the tests.
func (s *Server) Registry() *api.Registry { return s.registry }

// LowerFirst is how the record spells an input member's name.
func LowerFirst(name string) string { return lowerFirst(name) }

// ConsoleCall is a console change for the key accessKeyID, through the
// console's backend (the same audited call as the JSON 1.1 handler).
func (s *Server) ConsoleCall(ctx context.Context, accessKeyID, operation string, body []byte) ([]byte, error) {
	b := consoleBackend{s}
	caller, ok, err := b.Caller(ctx, accessKeyID)
	if err != nil || !ok {
		return nil, fmt.Errorf("console caller %s: found %v: %w", accessKeyID, ok, err)
	}
	return b.Call(ctx, console.Call{Caller: caller, Region: "us-east-1", Operation: operation, Body: body,
		Meta: console.Meta{SourceIP: "127.0.0.1", UserAgent: "invoke-test"}})
}
