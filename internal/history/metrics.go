package history

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	metricsreg "github.com/cairn-audit/cairn/internal/metrics"
)

// metrics are the history's Prometheus instruments. They always exist; they
// are exported only when Options.Registerer is set.
type metrics struct {
	indexed     prometheus.Counter
	skipped     *prometheus.CounterVec
	missed      prometheus.Counter
	indexErrors prometheus.Counter
	expired     prometheus.Counter
	lookups     *prometheus.HistogramVec

	registration *metricsreg.Registration
}

func newMetrics() *metrics {
	return &metrics{
		indexed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_history_indexed_events_total",
			Help: "Events added to the event history index.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_history_skipped_entries_total",
			Help: "Journal entries not indexed, by reason: invalid (not a CloudTrail record), data_event (IncludeDataEvents is off), excluded (not an event history category), no_region, expired (older than the retention on arrival), duplicate (eventID already indexed in its region).",
		}, []string{"reason"}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_history_missed_entries_total",
			Help: "Journal entries trimmed before the history indexed them (should stay 0).",
		}),
		indexErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_history_index_errors_total",
			Help: "Indexing attempts that failed on a storage error and were retried.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_history_expired_events_total",
			Help: "Events deleted by the retention sweep.",
		}),
		lookups: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_history_lookup_duration_seconds",
			Help:    "LookupEvents latency inside the history, by plan: time (no attribute), event_id, attribute (one attribute index), intersection (several).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"plan"}),
	}
}

// register exports the instruments and the gauges computed at scrape time.
func (m *metrics) register(reg prometheus.Registerer, h *History) error {
	if reg == nil {
		return nil
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_history_index_lag",
		Help: "Journal entries not yet indexed: the journal's last sequence number minus the history cursor.",
	}, func() float64 {
		last, pos := h.j.LastSeq(), h.cursor.Load()
		if last > pos {
			return float64(last - pos)
		}
		return 0
	})
	position := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_history_cursor_position",
		Help: "Last journal sequence number indexed (visible to lookups).",
	}, func() float64 { return float64(h.cursor.Load()) })
	r, err := metricsreg.Register(reg, m.indexed, m.skipped, m.missed, m.indexErrors, m.expired, m.lookups, lag, position)
	if err != nil {
		return fmt.Errorf("registering history metrics: %w", err)
	}
	m.registration = r
	return nil
}

// unregister removes the instruments so a history reopened in the same
// process can register again.
func (m *metrics) unregister() {
	m.registration.Unregister()
}

// pebbleLogger routes Pebble's logs to slog; its chatter goes to Debug.
// Fatalf keeps Pebble's contract (never return) by panicking after logging.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble", "fatal", true)
	panic("history database: " + msg)
}
