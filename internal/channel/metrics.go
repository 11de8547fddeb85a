package channel

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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

func (m *metrics) register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.events, m.batchEvents} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
