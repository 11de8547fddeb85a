package metrics

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func counter(name string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: name + " help."})
}

// names are the metric families reg exports.
func names(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		out = append(out, mf.GetName())
	}
	return out
}

func TestRegisterAllOrNone(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Another component already exports b.
	other := counter("test_b_total")
	if err := reg.Register(other); err != nil {
		t.Fatal(err)
	}
	a, b, c := counter("test_a_total"), counter("test_b_total"), counter("test_c_total")
	r, err := Register(reg, a, b, c)
	if err == nil {
		t.Fatal("Register succeeded despite a conflicting collector")
	}
	if r != nil {
		t.Errorf("Register returned a Registration with its error: %+v", r)
	}
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("error %v does not wrap prometheus.AlreadyRegisteredError", err)
	} else if are.ExistingCollector != other {
		t.Errorf("AlreadyRegisteredError.ExistingCollector is not the other component's collector")
	}
	if !strings.Contains(err.Error(), "collector 2 of 3 (test_b_total)") {
		t.Errorf("error %q does not name the collector that failed", err)
	}
	// a was registered before b failed: it must have been taken back,
	// which registering it anew shows.
	if err := reg.Register(a); err != nil {
		t.Errorf("the first collector is still registered after the failure: %v", err)
	}
	// c was never reached.
	if err := reg.Register(c); err != nil {
		t.Errorf("the collector after the failing one was registered: %v", err)
	}
	// The failure must not have unregistered the other component's b,
	// which has the same descriptors as the b that failed.
	if reg.Register(counter("test_b_total")) == nil {
		t.Error("the other component's collector was unregistered by the failed Register")
	}
}

func TestUnregisterThenRegisterAgain(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := counter("test_a_total"), counter("test_b_total")
	r, err := Register(reg, a, b)
	if err != nil {
		t.Fatal(err)
	}
	a.Inc()
	if got := names(t, reg); len(got) != 2 {
		t.Fatalf("registry exports %v, want test_a_total and test_b_total", got)
	}
	r.Unregister()
	if got := names(t, reg); len(got) != 0 {
		t.Fatalf("registry still exports %v after Unregister", got)
	}
	// A component reopened in the same process registers the same series
	// again (new instances, or the same ones).
	r2, err := Register(reg, counter("test_a_total"), b)
	if err != nil {
		t.Fatalf("registering again after Unregister: %v", err)
	}
	if got := names(t, reg); len(got) != 2 {
		t.Fatalf("registry exports %v after registering again", got)
	}
	r2.Unregister()
}

func TestNilRegisterer(t *testing.T) {
	a := counter("test_a_total")
	r, err := Register(nil, a, a) // even a duplicate is no error: nothing is registered
	if err != nil {
		t.Fatalf("Register(nil): %v", err)
	}
	if r == nil {
		t.Fatal("Register(nil) returned a nil Registration")
	}
	r.Unregister()
	r.Unregister()
	// Nothing was registered anywhere, so a real registry takes a.
	if err := prometheus.NewRegistry().Register(a); err != nil {
		t.Fatal(err)
	}
}

func TestUnregisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := Register(reg, counter("test_a_total"))
	if err != nil {
		t.Fatal(err)
	}
	r.Unregister()
	// Another component registers the same series in the meantime; the
	// second Unregister must leave it alone.
	next := counter("test_a_total")
	if err := reg.Register(next); err != nil {
		t.Fatal(err)
	}
	r.Unregister()
	if got := names(t, reg); len(got) != 1 {
		t.Errorf("second Unregister removed the other component's collector: registry exports %v", got)
	}
	var nilReg *Registration
	nilReg.Unregister() // must not panic
}

func TestErrorNamesMultiSeriesCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	v := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "test_g", Help: "g."}, func() float64 { return 1 })
	if err := reg.Register(v); err != nil {
		t.Fatal(err)
	}
	multi := multiCollector{
		prometheus.NewDesc("test_g", "g.", nil, nil),
		prometheus.NewDesc("test_h", "h.", nil, nil),
	}
	_, err := Register(reg, multi)
	if err == nil {
		t.Fatal("Register succeeded despite a conflicting descriptor")
	}
	if !strings.Contains(err.Error(), "collector 1 of 1 (test_g and 1 more)") {
		t.Errorf("error %q does not name the collector", err)
	}
}

type multiCollector []*prometheus.Desc

func (m multiCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m {
		ch <- d
	}
}

func (m multiCollector) Collect(chan<- prometheus.Metric) {}
