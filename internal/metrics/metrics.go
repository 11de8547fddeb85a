// Package metrics holds what Cairn's components share about exporting
// Prometheus collectors. Each component registers several collectors on the
// registerer it is given and must leave that registry as it found it both
// when registration fails halfway and when the component is closed, so that
// the component can be opened again in the same process (tests, a restarted
// component) without "duplicate metrics collector registration attempted".
package metrics

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Registration is collectors registered together on one registry: all or
// none, and removed together. It remembers exactly which collectors it
// registered because prometheus.Registerer.Unregister removes whichever
// registered collector has the same descriptors: unregistering a collector
// that was never registered, such as the one that just failed with a
// conflict, would remove the other component's collector it conflicted with.
type Registration struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
}

// Register registers every collector on reg, or none: when one fails, those
// registered before it are unregistered again, so that a component that
// fails to start leaves no half of its series behind to block its next
// attempt. A nil reg registers nothing and returns a Registration whose
// Unregister does nothing, because components take a nil Registerer to mean
// that their metrics are not exported, and they update their instruments
// either way.
//
// The error names the collector that failed but not the component: the
// caller adds that, as in fmt.Errorf("registering journal metrics: %w", err).
// It wraps the registry's error, so errors.As finds a
// prometheus.AlreadyRegisteredError.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) (*Registration, error) {
	r := &Registration{reg: reg}
	if reg == nil {
		return r, nil
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			r.Unregister()
			return nil, fmt.Errorf("registering collector %d of %d (%s): %w", i+1, len(cs), describe(c), err)
		}
		r.collectors = append(r.collectors, c)
	}
	return r, nil
}

// Unregister removes what Register registered, so that the component can
// register the same series again. It is safe on a nil *Registration and when
// called twice, because components call it from Close and from their
// failure paths without tracking whether registration happened; the second
// call must not remove collectors that another component registered since.
// It is not safe for concurrent use.
func (r *Registration) Unregister() {
	if r == nil {
		return
	}
	for _, c := range r.collectors {
		r.reg.Unregister(c)
	}
	r.collectors = nil
}

// describe names a collector in an error by the first series it describes,
// since prometheus.AlreadyRegisteredError's message names none. A collector
// describes itself only through Desc.String, whose first field is the
// quoted fully-qualified name; anything else falls back to the whole
// string.
func describe(c prometheus.Collector) string {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var first *prometheus.Desc
	more := 0
	for d := range ch {
		if first == nil {
			first = d
		} else {
			more++
		}
	}
	if first == nil {
		return "no series"
	}
	name := first.String()
	if rest, ok := strings.CutPrefix(name, "Desc{fqName: "); ok {
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			if u, err := strconv.Unquote(q); err == nil {
				name = u
			}
		}
	}
	if more > 0 {
		name += fmt.Sprintf(" and %d more", more)
	}
	return name
}
