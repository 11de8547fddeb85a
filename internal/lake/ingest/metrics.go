package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	metricsreg "github.com/cairn-audit/cairn/internal/metrics"
)

// metrics are the Ingester's Prometheus instruments. Per-store series are
// computed at scrape time from the stores this process ingests, so their
// label values are the IDs of stores Cairn made (a closed set) and a
// dropped store's series disappear with it.
type metrics struct {
	in                *Ingester
	filesWritten      prometheus.Counter
	bytesWritten      prometheus.Counter
	writeErrors       prometheus.Counter
	compactions       prometheus.Counter
	partitionsDropped prometheus.Counter
	skipped           *prometheus.CounterVec

	lag      *prometheus.Desc
	pending  *prometheus.Desc
	ingested *prometheus.Desc
	files    *prometheus.Desc
	bytes    *prometheus.Desc

	registration *metricsreg.Registration
}

func newMetrics(in *Ingester) *metrics {
	m := &metrics{
		in: in,
		filesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_lake_files_written_total",
			Help: "Parquet files written by event data store flushes.",
		}),
		bytesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_lake_bytes_written_total",
			Help: "Bytes of Parquet written to the object store (flushes and compactions).",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_lake_write_errors_total",
			Help: "Flushes that failed and were retried (the events wait in the journal).",
		}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_lake_compactions_total",
			Help: "Merged files written by compaction.",
		}),
		partitionsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_lake_partitions_dropped_total",
			Help: "Day partitions deleted because they were past their store's retention period.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_lake_skipped_events_total",
			Help: "Events a store would have taken but did not, by reason: invalid (not a record a row can be made of), expired (older than the store's retention on arrival), missed (trimmed from the journal before the store read it; should stay 0).",
		}, []string{"reason"}),
		lag: prometheus.NewDesc("cairn_lake_store_lag_entries",
			"Journal entries the event data store has not yet committed: last_seq minus its cursor.", []string{"store"}, nil),
		pending: prometheus.NewDesc("cairn_lake_store_pending_seconds",
			"Age of the oldest event read but not yet written to the store's files (0 when none).", []string{"store"}, nil),
		ingested: prometheus.NewDesc("cairn_lake_store_ingested_events_total",
			"Events written to the store's files by this process.", []string{"store"}, nil),
		files: prometheus.NewDesc("cairn_lake_store_files",
			"The store's Parquet objects (including covered ones awaiting deletion).", []string{"store"}, nil),
		bytes: prometheus.NewDesc("cairn_lake_store_bytes",
			"Bytes of the store's Parquet objects.", []string{"store"}, nil),
	}
	for _, r := range []string{"invalid", "expired", "missed"} {
		m.skipped.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	r, err := metricsreg.Register(reg, m.filesWritten, m.bytesWritten, m.writeErrors, m.compactions, m.partitionsDropped, m.skipped, m)
	if err != nil {
		return err
	}
	m.registration = r
	return nil
}

func (m *metrics) unregister() { m.registration.Unregister() }

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.lag
	ch <- m.pending
	ch <- m.ingested
	ch <- m.files
	ch <- m.bytes
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	in := m.in
	last := in.j.LastSeq()
	now := time.Now()
	in.mu.Lock()
	stores := make([]*store, 0, len(in.stores))
	for _, s := range in.stores {
		stores = append(stores, s)
	}
	in.mu.Unlock()
	for _, s := range stores {
		pos := s.committed.Load()
		lag := uint64(0)
		if last > pos {
			lag = last - pos
		}
		ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(lag), s.id)
		age := 0.0
		if p := s.pendingNanos.Load(); p != 0 {
			age = max(0, now.Sub(time.Unix(0, p)).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, age, s.id)
		ch <- prometheus.MustNewConstMetric(m.ingested, prometheus.CounterValue, float64(s.ingested.Load()), s.id)
		s.filesMu.Lock()
		n, size := len(s.files), int64(0)
		for _, f := range s.files {
			size += f.Size
		}
		s.filesMu.Unlock()
		ch <- prometheus.MustNewConstMetric(m.files, prometheus.GaugeValue, float64(n), s.id)
		ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.GaugeValue, float64(size), s.id)
	}
}
