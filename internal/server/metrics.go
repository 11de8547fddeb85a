package server

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	audit    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_api_requests_total",
			Help: "API requests by service, operation and outcome (the error code, or OK).",
		}, []string{"service", "operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_api_request_duration_seconds",
			Help:    "API request latency, from the first byte read to the response written.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"service", "operation"}),
		audit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_audit_records_total",
			Help: "Records of Cairn's own API calls written to the journal, by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.latency, m.audit)
	return m
}
