package bench

import (
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
)

// maxTrackedValues bounds the distinct values a Tracker counts per key:
// some attributes (the access keys STS hands out, assumed-role IDs) are
// unique per event, and a 10-million-event fill must not keep them all.
// Values first seen after the bound is reached are not counted.
const maxTrackedValues = 50_000

// eventIDSample is how many eventIDs a Tracker keeps (reservoir sampling).
const eventIDSample = 1000

// Tracker counts the LookupEvents attribute values of generated records,
// exactly as Cairn's event history extracts them (it parses each record
// with event.Parse), so that lookup benchmarks query values that exist and
// know how many events each matches. It is safe for concurrent use.
type Tracker struct {
	mu       sync.Mutex
	counts   map[string]map[string]int
	eventIDs []string
	seen     int
	rng      *rand.Rand
	records  int
	oldest   time.Time
	newest   time.Time
}

// NewTracker returns an empty Tracker; seed drives its eventID sampling.
func NewTracker(seed uint64) *Tracker {
	t := &Tracker{counts: map[string]map[string]int{}, rng: rand.New(rand.NewPCG(seed, 7))}
	for _, k := range event.AttributeKeys() {
		if k != event.AttrEventID {
			t.counts[k] = map[string]int{}
		}
	}
	return t
}

// Observe counts the attribute values of one record (for example one
// LookupEvents returned). Records that do not parse are ignored.
func (t *Tracker) Observe(raw []byte) { t.observe(raw) }

func (t *Tracker) observe(raw []byte) {
	rec, err := event.Parse(raw)
	if err != nil {
		return // the generator's records always parse; the tests prove it
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.records++
	if t.oldest.IsZero() || rec.EventTime.Before(t.oldest) {
		t.oldest = rec.EventTime
	}
	if rec.EventTime.After(t.newest) {
		t.newest = rec.EventTime
	}
	for k, m := range t.counts {
		for _, v := range rec.AttributeValues(k) {
			if _, ok := m[v]; ok || len(m) < maxTrackedValues {
				m[v]++
			}
		}
	}
	if rec.EventID != "00000000-0000-4000-8000-000000000000" { // not a placeholder of Fill's
		t.sampleID(rec.EventID)
	}
}

// addEventIDs samples eventIDs the server assigned (PutAuditEvents).
func (t *Tracker) addEventIDs(ids []string) {
	if len(ids) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		t.sampleID(id)
	}
}

// sampleID keeps a uniform sample of eventIDs (reservoir sampling); the
// caller holds t.mu.
func (t *Tracker) sampleID(id string) {
	t.seen++
	if len(t.eventIDs) < eventIDSample {
		t.eventIDs = append(t.eventIDs, id)
	} else if j := t.rng.IntN(t.seen); j < eventIDSample {
		t.eventIDs[j] = id
	}
}

// Records is the number of records observed.
func (t *Tracker) Records() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.records
}

// TimeRange is the oldest and newest eventTime observed.
func (t *Tracker) TimeRange() (oldest, newest time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.oldest, t.newest
}

// Probe is an attribute value and how many observed records carry it.
type Probe struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Probes returns, per LookupEvents attribute key, the values a lookup
// benchmark should query: the most frequent value, one of median
// frequency and the rarest, so that both hot and selective lookups are
// measured. EventId gets sampled eventIDs (each matches one event).
func (t *Tracker) Probes() map[string][]Probe {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string][]Probe{}
	for k, m := range t.counts {
		vals := make([]Probe, 0, len(m))
		for v, n := range m {
			vals = append(vals, Probe{v, n})
		}
		sort.Slice(vals, func(i, j int) bool {
			if vals[i].Count != vals[j].Count {
				return vals[i].Count > vals[j].Count
			}
			return vals[i].Value < vals[j].Value
		})
		var pick []Probe
		for _, i := range []int{0, len(vals) / 2, len(vals) - 1} {
			if i >= 0 && i < len(vals) && (len(pick) == 0 || pick[len(pick)-1] != vals[i]) {
				pick = append(pick, vals[i])
			}
		}
		out[k] = pick
	}
	ids := make([]Probe, 0, len(t.eventIDs))
	for _, id := range t.eventIDs {
		ids = append(ids, Probe{id, 1})
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Value < ids[j].Value })
	out[event.AttrEventID] = ids
	return out
}
