package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/history"
)

const (
	// chartSpan and chartBucket shape the events-per-minute chart.
	chartSpan   = 3 * time.Hour
	chartBucket = time.Minute
	// chartCacheFor keeps the dashboard cheap when it is reloaded often
	// under steady ingest; with no new journal entries the chart is reused
	// for up to chartIdleFor, since only the minutes have moved on.
	chartCacheFor = 5 * time.Second
	chartIdleFor  = time.Minute
)

type chartData struct {
	// Times are Unix seconds of each minute's start; Counts its events.
	Times  []int64 `json:"t"`
	Counts []int   `json:"n"`
	From   int64   `json:"from"`
	Total  int     `json:"total"`
}

type chartCache struct {
	mu   sync.Mutex
	data map[string]cachedChart
}

type cachedChart struct {
	at      time.Time
	lastSeq uint64
	d       chartData
}

func (c *Console) chart(ctx context.Context, region string, lastSeq uint64) (chartData, error) {
	now := c.now()
	c.charts.mu.Lock()
	if cc, ok := c.charts.data[region]; ok && (now.Sub(cc.at) < chartCacheFor || cc.lastSeq == lastSeq && now.Sub(cc.at) < chartIdleFor) {
		c.charts.mu.Unlock()
		return cc.d, nil
	}
	c.charts.mu.Unlock()

	end := now.Truncate(chartBucket).Add(chartBucket)
	start := end.Add(-chartSpan)
	n := int(chartSpan / chartBucket)
	d := chartData{Times: make([]int64, n), Counts: make([]int, n), From: start.Unix()}
	for i := range n {
		d.Times[i] = start.Add(time.Duration(i) * chartBucket).Unix()
	}
	counts, err := c.be.Count(ctx, region, start, end, chartBucket)
	if err != nil {
		return d, err
	}
	for i, k := range counts {
		d.Counts[i] = k
		d.Total += k
	}
	c.charts.mu.Lock()
	c.charts.data[region] = cachedChart{at: now, lastSeq: lastSeq, d: d}
	c.charts.mu.Unlock()
	return d, nil
}

type consumerLag struct {
	Name     string
	Position uint64
	Lag      uint64
}

type dashboardData struct {
	Trails      []trailRow
	Logging     int
	Failing     int
	Chart       chartData
	ChartErr    string
	Recent      []row
	Consumers   []consumerLag
	LastSeq     uint64
	Now         time.Time
	Region      string
	PerMinute   int
	EventsLink  string
	MaxLag      uint64
	ReadOnlyKey bool
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	region := s.Region()
	d := dashboardData{Now: c.now(), Region: region, ReadOnlyKey: s.ReadOnly()}
	all, err := c.be.Trails(r.Context())
	if err != nil {
		c.log.Error("console: list trails for the dashboard", "err", err)
	}
	d.Trails = trailRows(all)
	for _, t := range all {
		if t.Status.IsLogging {
			d.Logging++
		}
		if t.Status.LatestDeliveryError != "" {
			d.Failing++
		}
	}
	js := c.be.Journal()
	if d.Chart, err = c.chart(r.Context(), region, js.LastSeq); err != nil {
		c.log.Error("console: events-per-minute chart", "err", err)
		d.ChartErr = "The chart could not be computed."
	}
	if k := len(d.Chart.Counts); k > 0 {
		d.PerMinute = d.Chart.Counts[k-1]
	}
	if p, err := c.be.Lookup(r.Context(), history.Query{Region: region, MaxResults: 10}); err == nil {
		for _, e := range p.Events {
			d.Recent = append(d.Recent, toRow(e))
		}
	} else {
		c.log.Error("console: newest events for the dashboard", "err", err)
	}
	d.LastSeq = js.LastSeq
	for name, pos := range js.Cursors {
		lag := uint64(0)
		if js.LastSeq > pos {
			lag = js.LastSeq - pos
		}
		d.Consumers = append(d.Consumers, consumerLag{Name: name, Position: pos, Lag: lag})
		d.MaxLag = max(d.MaxLag, lag)
	}
	slices.SortFunc(d.Consumers, func(a, b consumerLag) int { return strings.Compare(a.Name, b.Name) })
	c.render(w, r, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "dashboard", Data: d})
}
