// Package capture is the contract between Cairn's server and the captures:
// the audit proxies and webhooks that bring in events from systems other
// than Cairn's own API. It sits below both, so a capture package depends on
// the journal and the key store it is lent, never on the server that
// assembles everything (and with it the API, console, delivery and digests).
package capture

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/journal"
)

// A Capture brings in audit events that do not come through Cairn's own
// API: an audit proxy standing in front of another service, or a webhook
// that receives another system's audit log. Captures are built from the
// configuration by their own packages and handed to the server, which
// starts them once the journal is open and stops them before it closes,
// so a capture never runs without a place to make its events durable.
type Capture interface {
	// Name identifies the capture in logs, e.g. "s3 proxy 127.0.0.1:9000".
	Name() string
	// Start binds whatever the capture listens on, mounts any routes it
	// serves on Cairn's own listener, and returns once it is ready; it
	// serves until Close.
	Start(ctx context.Context, env Env) error
	// Close stops taking requests and waits for those in flight, whose
	// events are then durable or refused.
	Close() error
}

// Env is what the server lends its captures.
type Env struct {
	// Journal is where events go: Append makes them durable, Available
	// says whether it accepts writes (fail-closed captures refuse calls
	// when it does not).
	Journal *journal.Journal
	// Keys are Cairn's own access keys, for captures that authenticate
	// their senders with them.
	Keys      *auth.Store
	AccountID string
	Logger    *slog.Logger
	// Registerer takes the capture's metrics; they appear on /metrics.
	Registerer prometheus.Registerer
	// Mux is the router of Cairn's own listener; webhooks add their routes
	// here (Go 1.22 patterns, e.g. "POST /k8s/audit").
	Mux *http.ServeMux
	// TLS says whether Cairn's listener serves HTTPS, for captures that
	// record tlsDetails or set Secure cookies.
	TLS bool
	Now func() time.Time
}
