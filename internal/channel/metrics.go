package channel

import (
	"github.com/prometheus/client_golang/prometheus"

	metricsreg "github.com/cairn-audit/cairn/internal/metrics"
)

// metrics are the channel service's instruments. They exist whether or not
// they are registered, so the hot path never checks.
type metrics struct {
	// events counts PutAuditEvents entries by outcome: "accepted", or the
	// per-event errorCode reported in failed[], or "journal_error" for
	// events that passed validation but whose batch the journal refused.
	events *prometheus.CounterVec
	// batchEvents is the number of events per PutAuditEvents request.
	batchEvents prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_channel_events_total",
			Help: "Events received through PutAuditEvents, by result: accepted, a per-event error code (FieldTooLong, InvalidChecksum, ...), or journal_error.",
		}, []string{"result"}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_channel_batch_events",
			Help:    "Events per PutAuditEvents request that reached event validation.",
			Buckets: []float64{1, 5, 10, 25, 50, 75, 100},
		}),
	}
}

// register exports the instruments; New fails if either cannot be
// registered. The Registration is not kept because the service has no Close:
// it lives as long as the registry it was given (the server's).
func (m *metrics) register(reg prometheus.Registerer) error {
	_, err := metricsreg.Register(reg, m.events, m.batchEvents)
	return err
}
