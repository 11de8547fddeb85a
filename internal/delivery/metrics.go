package delivery

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	metricsreg "github.com/cairn-audit/cairn/internal/metrics"
)

// metrics are the cairn_delivery_* series. Lag is computed when scraped
// from the live deliverers, so a deleted or drained trail's lag series
// disappears instead of going stale.
type metrics struct {
	m             *Manager
	files         *prometheus.CounterVec
	batches       *prometheus.CounterVec
	records       *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	attempts      *prometheus.CounterVec
	notifications *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	lagDesc       *prometheus.Desc
	oldestDesc    *prometheus.Desc

	// registration is Run's, atomic because Run marks the manager stopped
	// before its deferred unregister runs, so the next Run's register can
	// overlap it.
	registration atomic.Pointer[metricsreg.Registration]
}

func newMetrics(m *Manager) *metrics {
	return &metrics{
		m: m,
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_delivery_files_total",
			Help: "Log files delivered, per trail.",
		}, []string{"trail"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_delivery_records_total",
			Help: "Records delivered in log files, per trail.",
		}, []string{"trail"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_delivery_batches_total",
			Help: "Batches delivered (each one or more log files, one per region), per trail.",
		}, []string{"trail"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_delivery_bytes_total",
			Help: "Compressed log file bytes delivered, per trail.",
		}, []string{"trail"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_delivery_attempts_total",
			Help: "Log file delivery attempts, per trail and result (success, or the error GetTrailStatus shows).",
		}, []string{"trail", "result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_delivery_notifications_total",
			Help: "Notification attempts, per trail and result (success, or the error GetTrailStatus shows).",
		}, []string{"trail", "result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_delivery_skipped_entries_total",
			Help: "Journal entries trimmed before the trail delivered them, because its delivery held more than the journal hold limit (--journal-hold-limit); each is a gap in the trail's log files.",
		}, []string{"trail"}),
		lagDesc: prometheus.NewDesc("cairn_delivery_lag_entries",
			"Journal entries captured for the trail that its delivery has not looked at yet (journal last sequence minus the trail's cursor, within its logging windows).",
			[]string{"trail"}, nil),
		oldestDesc: prometheus.NewDesc("cairn_delivery_oldest_undelivered_seconds",
			"How long the oldest selected event not yet in a delivered log file has waited since delivery read it; 0 when none waits.",
			[]string{"trail"}, nil),
	}
}

func (x *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{x.files, x.batches, x.records, x.bytes, x.attempts, x.notifications, x.skipped, x}
}

func (x *metrics) register(r prometheus.Registerer) error {
	reg, err := metricsreg.Register(r, x.collectors()...)
	if err != nil {
		return fmt.Errorf("delivery: register metrics: %w", err)
	}
	x.registration.Store(reg)
	return nil
}

// unregister removes what register registered, so that the manager can Run
// again on the same registry. It takes the registerer only because Run
// passes it; the Registration knows where it registered.
func (x *metrics) unregister(prometheus.Registerer) {
	x.registration.Swap(nil).Unregister()
}

// Describe implements prometheus.Collector for the lag gauges.
func (x *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- x.lagDesc
	ch <- x.oldestDesc
}

// Collect implements prometheus.Collector for the lag gauges.
func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	for arn, d := range x.m.snapshot() {
		l := d.lag()
		ch <- prometheus.MustNewConstMetric(x.lagDesc, prometheus.GaugeValue, float64(l.Entries), arn)
		ch <- prometheus.MustNewConstMetric(x.oldestDesc, prometheus.GaugeValue, l.Oldest.Seconds(), arn)
	}
}

func (x *metrics) delivered(arn string, files, records int, bytes int64) {
	x.files.WithLabelValues(arn).Add(float64(files))
	x.batches.WithLabelValues(arn).Inc()
	x.records.WithLabelValues(arn).Add(float64(records))
	x.bytes.WithLabelValues(arn).Add(float64(bytes))
}

func result(code string) string {
	if code == "" {
		return "success"
	}
	return code
}

func (x *metrics) attempt(arn, code string) { x.attempts.WithLabelValues(arn, result(code)).Inc() }

func (x *metrics) notification(arn, code string) {
	x.notifications.WithLabelValues(arn, result(code)).Inc()
}

// forget drops a deleted trail's series.
func (x *metrics) forget(arn string) {
	l := prometheus.Labels{"trail": arn}
	for _, v := range []*prometheus.CounterVec{x.files, x.batches, x.records, x.bytes, x.attempts, x.notifications, x.skipped} {
		v.DeletePartialMatch(l)
	}
}
