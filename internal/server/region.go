package server

import (
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/region"
)

// regionGuard refuses requests signed for a region Cairn does not serve
// (see internal/region for why the set is closed) and counts them.
type regionGuard struct {
	set *region.Set
	// refused counts refusals by signing service. The label comes from
	// the handler, never from the request, and the region itself is no
	// label: an attacker choosing regions must not choose time series.
	refused *prometheus.CounterVec
}

// guardedServices are the signing names whose handlers call refuse, the
// whole label set of cairn_unknown_region_refusals_total.
var guardedServices = []string{serviceCloudTrail, serviceCloudTrailData, ImportService}

func newRegionGuard(set *region.Set, reg prometheus.Registerer) *regionGuard {
	g := &regionGuard{
		set: set,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_unknown_region_refusals_total",
			Help: "Requests refused before their body was read because they were signed for a region Cairn does not serve, by signing service.",
		}, []string{"service"}),
	}
	for _, s := range guardedServices {
		g.refused.WithLabelValues(s)
	}
	reg.MustRegister(g.refused)
	return g
}

// refuse returns AWS's error for a credential scoped to an unknown region,
// or nil. It reads only the Authorization header or the presigned query, so
// the handler calls it before reading the body; a request whose signature
// is missing or malformed passes here and is refused by the signature
// check, which says what is wrong with it. Nothing is recorded for a
// refused request: its region is exactly what cannot be trusted, and a
// record filed under it would land where nobody looks.
func (g *regionGuard) refuse(r *http.Request, service string) error {
	scope, ok := awsproto.ClaimedScope(r)
	if !ok || g.set.Known(scope.Region) {
		return nil
	}
	if slices.Contains(guardedServices, service) {
		g.refused.WithLabelValues(service).Inc()
	}
	// AWS's wording, trailing space included.
	return awsproto.Errorf("InvalidSignatureException", "Credential should be scoped to a valid region, not '%s'. ", scope.Region)
}

// served is the region a console action is filed under: the session's
// region when Cairn serves it, else the default region. The console can
// browse regions that only imported records carry; its own sign-out or
// bucket creation there must still land where trails and the picker look.
func (g *regionGuard) served(name string) string {
	if g.set.Known(name) {
		return name
	}
	return region.Default
}

// refuseConsole refuses a console operation in a region Cairn does not
// serve, for the reason refuse refuses an API request signed for one.
func (g *regionGuard) refuseConsole(name string) error {
	if g.set.Known(name) {
		return nil
	}
	return awsproto.Errorf("UnsupportedOperationException",
		"Cairn does not serve region %s: only imported or captured records carry it. Switch to a region Cairn serves to make changes.", name)
}

// consoleRegions are the regions the console always offers: the default
// first, then every region Cairn serves.
func (g *regionGuard) consoleRegions() []string {
	out := []string{region.Default}
	for _, r := range g.set.Names() {
		if r != region.Default {
			out = append(out, r)
		}
	}
	return out
}
