package journal

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	metricsreg "github.com/cairn-audit/cairn/internal/metrics"
)

// metrics are the journal's Prometheus instruments. They always exist (the
// committer updates them unconditionally); they are only exported when
// Options.Registerer is set.
type metrics struct {
	appends          prometheus.Counter
	entries          prometheus.Counter
	bytes            prometheus.Counter
	refused          prometheus.Counter
	writeFailures    prometheus.Counter
	reopens          prometheus.Counter
	backgroundErrors prometheus.Counter
	syncSeconds      prometheus.Histogram
	groupEntries     prometheus.Histogram

	registration *metricsreg.Registration
}

func newMetrics() *metrics {
	return &metrics{
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_appends_total",
			Help: "Append calls acknowledged (their entries are durable).",
		}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_entries_total",
			Help: "Entries acknowledged.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_bytes_total",
			Help: "Entry bytes acknowledged.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_refused_appends_total",
			Help: "Append calls refused because the journal was unavailable (storage fault or low disk space).",
		}),
		writeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_write_failures_total",
			Help: "Synced commits that failed; each one takes the journal offline until it has reopened its storage.",
		}),
		reopens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_reopens_total",
			Help: "Times the journal reopened its storage after a write failure and resumed accepting appends.",
		}),
		backgroundErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_background_errors_total",
			Help: "Errors in storage flushes and compactions (retried by the storage engine).",
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_journal_sync_seconds",
			Help:    "Latency of one group commit: write and fsync of a batch shared by all appends pending at that moment.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		groupEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_journal_group_entries",
			Help:    "Entries made durable by one fsync (group commit size).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
	}
}

// register exports the instruments and the state collector on reg.
func (m *metrics) register(reg prometheus.Registerer, state prometheus.Collector) error {
	r, err := metricsreg.Register(reg,
		m.appends, m.entries, m.bytes, m.refused, m.writeFailures, m.reopens,
		m.backgroundErrors, m.syncSeconds, m.groupEntries, state)
	if err != nil {
		return fmt.Errorf("registering journal metrics: %w", err)
	}
	m.registration = r
	return nil
}

// unregister removes the instruments so that a journal reopened in the same
// process (tests, or a restart of the component) can register again.
func (m *metrics) unregister() {
	m.registration.Unregister()
}

// stateCollector reports gauges computed at scrape time from the journal's
// state, including one series per cursor, whose set changes at run time.
type stateCollector struct {
	j         *Journal
	lastSeq   *prometheus.Desc
	firstSeq  *prometheus.Desc
	available *prometheus.Desc
	stalled   *prometheus.Desc
	position  *prometheus.Desc
	lag       *prometheus.Desc
}

func newStateCollector(j *Journal) *stateCollector {
	return &stateCollector{
		j: j,
		lastSeq: prometheus.NewDesc("cairn_journal_last_seq",
			"Sequence number of the last durable entry (the durable frontier).", nil, nil),
		firstSeq: prometheus.NewDesc("cairn_journal_first_seq",
			"Lowest sequence number not removed by Trim.", nil, nil),
		available: prometheus.NewDesc("cairn_journal_available",
			"1 while the journal accepts appends, 0 while it fails closed (storage fault or low disk space).", nil, nil),
		stalled: prometheus.NewDesc("cairn_journal_write_stalled",
			"1 while the storage engine stalls writes waiting for flushes or compactions.", nil, nil),
		position: prometheus.NewDesc("cairn_journal_cursor_position",
			"Last sequence number a consumer has durably committed.", []string{"cursor"}, nil),
		lag: prometheus.NewDesc("cairn_journal_cursor_lag",
			"Entries a consumer still has to process: last_seq minus the cursor position.", []string{"cursor"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSeq
	ch <- c.firstSeq
	ch <- c.available
	ch <- c.stalled
	ch <- c.position
	ch <- c.lag
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	j := c.j
	last := j.LastSeq()
	ch <- prometheus.MustNewConstMetric(c.lastSeq, prometheus.GaugeValue, float64(last))
	ch <- prometheus.MustNewConstMetric(c.firstSeq, prometheus.GaugeValue, float64(j.FirstSeq()))
	ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, boolGauge(j.Available() == nil))
	ch <- prometheus.MustNewConstMetric(c.stalled, prometheus.GaugeValue, boolGauge(j.stalled.Load()))
	for name, pos := range j.Cursors() {
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(pos), name)
		lag := uint64(0)
		if last > pos {
			lag = last - pos
		}
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag), name)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
