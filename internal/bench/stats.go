package bench

import (
	"slices"
	"time"
)

// Latencies collects request durations. It keeps every sample: a
// benchmark makes at most a few hundred thousand requests, and exact
// percentiles are worth a few megabytes. Not safe for concurrent use;
// each worker keeps its own and they are merged at the end.
type Latencies struct {
	d []time.Duration
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) { l.d = append(l.d, d) }

// Merge adds o's samples to l.
func (l *Latencies) Merge(o *Latencies) { l.d = append(l.d, o.d...) }

// Summary is the distribution of a set of durations, in milliseconds for
// JSON output.
type Summary struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary computes the distribution (nearest-rank percentiles).
func (l *Latencies) Summary() Summary {
	n := len(l.d)
	if n == 0 {
		return Summary{}
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	rank := func(p float64) float64 {
		i := int(p*float64(n)+0.999999) - 1
		i = max(0, min(i, n-1))
		return ms(s[i])
	}
	return Summary{Count: n, Mean: ms(sum / time.Duration(n)), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: ms(s[n-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
