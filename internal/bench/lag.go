package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The event history's gauges on Cairn's /metrics (internal/history).
const (
	metricIndexLag       = "cairn_history_index_lag"
	metricCursorPosition = "cairn_history_cursor_position"
)

const (
	// maxMetricsBody bounds one /metrics answer: Cairn's is tens of
	// kilobytes; anything much larger is not the server this expects.
	maxMetricsBody = 8 << 20
	// LagSlopeWindow is how much of the end of the sending the lag's
	// trend is fitted over.
	LagSlopeWindow = time.Minute
	// growingShare is the slope, as a share of the acknowledged rate,
	// above which the lag counts as growing: the history then falls
	// behind by more than 1% of the intake, 6 s of intake per 10 minutes.
	growingShare = 0.01
	// minTrendWindow is the shortest sending whose lag trend is judged:
	// the history indexes in batches, so over a few seconds the lag
	// swings more than it trends.
	minTrendWindow = 10 * time.Second
)

// lagSample is one scrape of the history's gauges.
type lagSample struct {
	at     time.Time
	lag    float64
	cursor float64
}

// LagWatch follows the event history's index lag (journal entries not yet
// indexed) on a Cairn server's /metrics while a benchmark sends, then how
// long the history takes to catch up once it stops. /metrics is served
// without authentication. Memory is bounded: it keeps the samples of the
// last LagSlopeWindow only, plus running figures.
type LagWatch struct {
	url      string
	hc       *http.Client
	interval time.Duration

	stop chan struct{}
	done chan struct{}

	mu           sync.Mutex
	first        lagSample
	last         lagSample
	window       []lagSample // the last LagSlopeWindow of samples while sending
	max          lagSample
	samples      int
	scrapeErrors int
	firstErr     error
	end          *lagSample // the sample taken when the sending stopped
	caughtUp     *lagSample // the first sample with lag 0 after end
	afterWait    lagSample
}

// WatchLag scrapes metricsURL once (an error when the history's gauges are
// not there) and then every interval until EndSending.
func WatchLag(ctx context.Context, hc *http.Client, metricsURL string, interval time.Duration) (*LagWatch, error) {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	w := &LagWatch{url: metricsURL, hc: hc, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	s, err := w.scrape(ctx)
	if err != nil {
		return nil, err
	}
	w.first, w.last, w.max = s, s, s
	w.window = append(w.window, s)
	w.samples = 1
	go w.poll(ctx)
	return w, nil
}

func (w *LagWatch) poll(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.sample(ctx, func(s lagSample) {
			w.window = append(w.window, s)
			cut := 0
			for cut < len(w.window) && s.at.Sub(w.window[cut].at) > LagSlopeWindow {
				cut++
			}
			w.window = append(w.window[:0], w.window[cut:]...)
		})
	}
}

// sample scrapes once and, under w.mu, counts the sample and hands it to
// then, or notes the scrape's error.
func (w *LagWatch) sample(ctx context.Context, then func(lagSample)) {
	s, err := w.scrape(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.noteError(err)
		return
	}
	w.add(s)
	then(s)
}

// add counts s; the caller holds w.mu.
func (w *LagWatch) add(s lagSample) {
	w.samples++
	w.last = s
	if s.lag > w.max.lag {
		w.max = s
	}
}

// noteError counts a failed scrape; the caller holds w.mu.
func (w *LagWatch) noteError(err error) {
	w.scrapeErrors++
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// Lag is the latest lag seen (for progress lines).
func (w *LagWatch) Lag() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(w.last.lag)
}

// EndSending stops the polling and takes the sample that gives the lag at
// the end of the sending.
func (w *LagWatch) EndSending(ctx context.Context) error {
	close(w.stop)
	<-w.done
	s, err := w.scrape(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.noteError(err)
		return fmt.Errorf("history lag at the end of the sending: %w", err)
	}
	w.add(s)
	w.window = append(w.window, s)
	w.end = &s
	w.afterWait = s
	return nil
}

// WaitCaughtUp polls until the lag is 0 or timeout has passed since the
// sending ended (EndSending first). Not catching up in time is a result,
// not an error; an error means the context ended.
func (w *LagWatch) WaitCaughtUp(ctx context.Context, timeout time.Duration) error {
	w.mu.Lock()
	end := w.end
	w.mu.Unlock()
	if end == nil {
		return errors.New("WaitCaughtUp before EndSending")
	}
	if end.lag == 0 {
		w.mu.Lock()
		w.caughtUp = end
		w.mu.Unlock()
		return nil
	}
	if timeout <= 0 {
		return nil
	}
	deadline := end.at.Add(timeout)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the history to catch up: %w", ctx.Err())
		case <-t.C:
		}
		w.sample(ctx, func(s lagSample) {
			w.afterWait = s
			if s.lag == 0 {
				w.caughtUp = &s
			}
		})
		w.mu.Lock()
		done := w.caughtUp != nil || !time.Now().Before(deadline)
		w.mu.Unlock()
		if done {
			return nil
		}
	}
}

// LagReport is what a LagWatch saw. Lags are journal entries: one per
// event, plus the server's own audit records (one per request at most).
type LagReport struct {
	Samples      int    `json:"samples"`
	ScrapeErrors int    `json:"scrape_errors,omitempty"`
	FirstError   string `json:"first_scrape_error,omitempty"`
	// AtEnd is the lag when the sending stopped; AtEndSec is that lag in
	// seconds of intake (divided by the acknowledged rate).
	AtEnd    int64   `json:"lag_at_end"`
	AtEndSec float64 `json:"lag_at_end_s"`
	// Max is the largest lag seen, MaxAtSec when (seconds after the start).
	Max      int64   `json:"lag_max"`
	MaxSec   float64 `json:"lag_max_s"`
	MaxAtSec float64 `json:"lag_max_at_s"`
	// SlopePerSec is the least-squares trend of the lag (entries/s) over
	// the last SlopeWindowSec of the sending; Growing says it exceeds 1%
	// of the acknowledged rate, nil when the sending lasted less than
	// minTrendWindow (too short to tell).
	SlopePerSec    float64 `json:"lag_slope_per_s"`
	SlopeWindowSec float64 `json:"lag_slope_window_s"`
	Growing        *bool   `json:"lag_growing"`
	// CatchUpSec is how long after the sending stopped the lag first read
	// 0; nil when it did not within CatchUpTimeoutSec (then LagAfterWait
	// is what was left).
	CatchUpSec        *float64 `json:"catch_up_s"`
	CatchUpTimeoutSec float64  `json:"catch_up_timeout_s"`
	LagAfterWait      int64    `json:"lag_after_wait"`
	// IndexedPerSec is the history's cursor advance per second while
	// sending; IndexedPerSecToCatchUp from the start until it caught up.
	IndexedPerSec          float64 `json:"indexed_per_s"`
	IndexedPerSecToCatchUp float64 `json:"indexed_per_s_to_catch_up,omitempty"`
	// The history's cursor (journal sequence number) at the start, at the
	// end of the sending and when it caught up (0 when it did not).
	CursorStart    int64 `json:"cursor_start"`
	CursorEnd      int64 `json:"cursor_end"`
	CursorCaughtUp int64 `json:"cursor_caught_up,omitempty"`
}

// Report summarises the watch; ackRate is the acknowledged events/s of the
// run, which turns lags into seconds of intake.
func (w *LagWatch) Report(ackRate float64, catchUpTimeout time.Duration) *LagReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &LagReport{Samples: w.samples, ScrapeErrors: w.scrapeErrors, Max: int64(w.max.lag),
		MaxAtSec: w.max.at.Sub(w.first.at).Seconds(), CatchUpTimeoutSec: catchUpTimeout.Seconds()}
	if w.firstErr != nil {
		r.FirstError = w.firstErr.Error()
	}
	end := w.last
	if w.end != nil {
		end = *w.end
	}
	r.AtEnd = int64(end.lag)
	r.CursorStart, r.CursorEnd = int64(w.first.cursor), int64(end.cursor)
	if ackRate > 0 {
		r.AtEndSec = end.lag / ackRate
		r.MaxSec = w.max.lag / ackRate
	}
	if d := end.at.Sub(w.first.at).Seconds(); d > 0 {
		r.IndexedPerSec = (end.cursor - w.first.cursor) / d
	}
	r.SlopePerSec, r.SlopeWindowSec = slope(w.window)
	if r.SlopeWindowSec >= minTrendWindow.Seconds() {
		g := r.SlopePerSec > growingShare*ackRate
		r.Growing = &g
	}
	r.LagAfterWait = int64(w.afterWait.lag)
	if w.caughtUp != nil {
		d := w.caughtUp.at.Sub(end.at).Seconds()
		r.CatchUpSec = &d
		r.LagAfterWait = 0
		r.CursorCaughtUp = int64(w.caughtUp.cursor)
		if t := w.caughtUp.at.Sub(w.first.at).Seconds(); t > 0 {
			r.IndexedPerSecToCatchUp = (w.caughtUp.cursor - w.first.cursor) / t
		}
	}
	return r
}

// slope fits lag = a + b·t to the samples by least squares and returns b
// (per second) and the time the samples span.
func slope(s []lagSample) (perSec, span float64) {
	if len(s) < 3 {
		return 0, 0
	}
	t0 := s[0].at
	var n, st, sl, stt, stl float64
	for _, x := range s {
		t := x.at.Sub(t0).Seconds()
		n++
		st += t
		sl += x.lag
		stt += t * t
		stl += t * x.lag
	}
	den := n*stt - st*st
	if den == 0 {
		return 0, 0
	}
	return (n*stl - st*sl) / den, s[len(s)-1].at.Sub(t0).Seconds()
}

// HistoryLag reads the event history's index lag (journal entries not yet
// indexed) and cursor position once from a Cairn server's /metrics.
func HistoryLag(ctx context.Context, hc *http.Client, metricsURL string) (lag, cursor int64, err error) {
	s, err := (&LagWatch{url: metricsURL, hc: hc}).scrape(ctx)
	return int64(s.lag), int64(s.cursor), err
}

// scrape reads the two gauges from one /metrics answer.
func (w *LagWatch) scrape(ctx context.Context) (lagSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return lagSample{}, fmt.Errorf("scrape %s: %w", w.url, err)
	}
	// The plain text format, whatever else the server could negotiate.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := w.hc.Do(req)
	if err != nil {
		return lagSample{}, fmt.Errorf("scrape %s: %w", w.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return lagSample{}, fmt.Errorf("scrape %s: HTTP %d", w.url, resp.StatusCode)
	}
	s, err := parseLagMetrics(io.LimitReader(resp.Body, maxMetricsBody+1))
	if err != nil {
		return lagSample{}, fmt.Errorf("scrape %s: %w", w.url, err)
	}
	s.at = time.Now()
	return s, nil
}

// parseLagMetrics finds the history's gauges in Prometheus text format. It
// reads at most maxMetricsBody bytes (the caller passes one byte more to
// tell a longer answer from one that fits).
func parseLagMetrics(r io.Reader) (lagSample, error) {
	var s lagSample
	var haveLag, haveCursor bool
	cr := &countingReader{r: r}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		var dst *float64
		switch name {
		case metricIndexLag:
			dst, haveLag = &s.lag, true
		case metricCursorPosition:
			dst, haveCursor = &s.cursor, true
		default:
			continue
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return s, fmt.Errorf("%s: value %q: %w", name, val, err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read the metrics: %w", err)
	}
	if cr.n > maxMetricsBody {
		return s, fmt.Errorf("the metrics answer is larger than %d bytes", maxMetricsBody)
	}
	if !haveLag || !haveCursor {
		return s, fmt.Errorf("no %s or %s: not a Cairn server with an event history", metricIndexLag, metricCursorPosition)
	}
	return s, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
