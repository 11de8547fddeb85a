package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseLagMetrics(t *testing.T) {
	text := `# HELP cairn_history_index_lag Journal entries not yet indexed.
# TYPE cairn_history_index_lag gauge
cairn_history_index_lag 12345
# HELP cairn_history_cursor_position Last journal sequence number indexed.
# TYPE cairn_history_cursor_position gauge
cairn_history_cursor_position 9.87654321e+08
cairn_history_index_lag_other{x="1"} 7
cairn_history_skipped_entries_total{reason="invalid"} 3
`
	s, err := parseLagMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s.lag != 12345 || s.cursor != 987654321 {
		t.Errorf("lag %v cursor %v", s.lag, s.cursor)
	}
	if _, err := parseLagMetrics(strings.NewReader("cairn_history_index_lag 1\n")); err == nil {
		t.Error("no cursor gauge: no error")
	}
	if _, err := parseLagMetrics(strings.NewReader("cairn_history_index_lag x\ncairn_history_cursor_position 1\n")); err == nil {
		t.Error("bad value: no error")
	}
	big := text + strings.Repeat("# padding padding padding padding padding padding padding\n", maxMetricsBody/50)
	if _, err := parseLagMetrics(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("answer over %d bytes: %v", maxMetricsBody, err)
	}
}

func TestLagSlope(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var s []lagSample
	for i := range 40 {
		// 500 entries/s, with a sawtooth of ±300 as batches land.
		saw := float64(i%2*600 - 300)
		s = append(s, lagSample{at: t0.Add(time.Duration(i) * 250 * time.Millisecond), lag: 1000 + 125*float64(i) + saw})
	}
	perSec, span := slope(s)
	if math.Abs(perSec-500) > 20 || span != 9.75 {
		t.Errorf("slope %.1f/s over %.2fs, want about 500/s over 9.75s", perSec, span)
	}
	if p, _ := slope(s[:2]); p != 0 {
		t.Errorf("two samples give slope %v, want 0 (too few)", p)
	}
}
