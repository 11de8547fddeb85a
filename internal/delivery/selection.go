package delivery

import (
	"bytes"
	"encoding/json"
	"regexp"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/trail"
)

// Selection is everything that decides whether a trail takes an event: its
// regions and its event selectors. It is a value (stored in a delivery
// plan as JSON) so that a batch replayed after a crash is selected exactly
// as it was the first time, even if the trail was changed in between.
type Selection struct {
	HomeRegion    string
	MultiRegion   bool
	IncludeGlobal bool
	// Basic and Advanced are the effective selectors (trail.Selectors):
	// exactly one is non-empty.
	Basic    []selector.EventSelector         `json:",omitempty"`
	Advanced []selector.AdvancedEventSelector `json:",omitempty"`

	// needVpc and needConsole record whether an advanced selector reads
	// vpcEndpointId or sessionCredentialFromConsole, which event.Record
	// does not extract; only then are they looked up in the raw record.
	needVpc, needConsole bool
}

// SelectionOf is the trail's current selection.
func SelectionOf(t *trail.Trail) Selection {
	basic, advanced := t.Selectors()
	s := Selection{
		HomeRegion:    t.HomeRegion,
		MultiRegion:   t.IsMultiRegionTrail,
		IncludeGlobal: t.IncludeGlobalServiceEvents,
		Basic:         basic,
		Advanced:      advanced,
	}
	s.prepare()
	return s
}

// prepare derives the unexported fields; call it after decoding.
func (s *Selection) prepare() {
	s.needVpc, s.needConsole = false, false
	for _, a := range s.Advanced {
		for _, f := range a.FieldSelectors {
			switch f.Field {
			case "vpcEndpointId":
				s.needVpc = true
			case "sessionCredentialFromConsole":
				s.needConsole = true
			}
		}
	}
}

// equal reports whether two selections select the same events.
func (s *Selection) equal(o *Selection) bool {
	a, err1 := json.Marshal(s)
	b, err2 := json.Marshal(o)
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

// globalServiceSources are the services whose calls CloudTrail records as
// "global service events": they are logged in us-east-1 and reach only
// trails with IncludeGlobalServiceEvents (any trail that has it, whatever
// its home region; a multi-region trail always has it).
var globalServiceSources = map[string]bool{
	"iam.amazonaws.com":               true,
	"sts.amazonaws.com":               true, // only calls to the global endpoint are logged in us-east-1
	"cloudfront.amazonaws.com":        true,
	"route53.amazonaws.com":           true,
	"route53domains.amazonaws.com":    true,
	"organizations.amazonaws.com":     true,
	"waf.amazonaws.com":               true,
	"support.amazonaws.com":           true,
	"shield.amazonaws.com":            true,
	"globalaccelerator.amazonaws.com": true,
}

// globalServiceRegion is where CloudTrail logs global service events.
const globalServiceRegion = "us-east-1"

// IsGlobalServiceEvent reports whether r is a global service event: a
// global service's call logged in us-east-1. The same services' calls in
// other regions (regional STS endpoints) are ordinary regional events.
func IsGlobalServiceEvent(r *event.Record) bool {
	return r.AWSRegion == globalServiceRegion && globalServiceSources[r.EventSource]
}

// Selects reports whether a trail with this selection logs r. Insights
// records are never delivered as log events (they have their own files).
func (s *Selection) Selects(r *event.Record) bool {
	if r.Category() == selector.CategoryInsight {
		return false
	}
	if IsGlobalServiceEvent(r) {
		if !s.IncludeGlobal {
			return false
		}
	} else if !s.MultiRegion && r.AWSRegion != s.HomeRegion {
		return false
	}
	ev := s.eventOf(r)
	return selector.Match(s.Basic, s.Advanced, &ev)
}

// EventOf is the selector's view of a record. The selector package
// evaluates a plain struct; this is the adapter from event.Record, plus
// the two fields (vpcEndpointId, sessionCredentialFromConsole) that
// event.Record does not extract and that are read from the raw record.
func EventOf(r *event.Record) selector.Event {
	s := Selection{needVpc: true, needConsole: true}
	return s.eventOf(r)
}

func (s *Selection) eventOf(r *event.Record) selector.Event {
	ev := selector.Event{
		EventCategory:   r.Category(),
		ReadOnly:        r.ReadOnly.String(),
		EventSource:     r.EventSource,
		EventName:       r.EventName,
		EventType:       r.EventType,
		ErrorCode:       r.ErrorCode,
		UserIdentityARN: r.UserIdentityARN,
	}
	if s.needVpc {
		ev.VpcEndpointID = rawString(r.Field("vpcEndpointId"))
	}
	if s.needConsole {
		ev.SessionCredentialFromConsole = rawString(r.Field("sessionCredentialFromConsole"))
	}
	if len(r.RecordResources) > 0 {
		ev.Resources = make([]selector.Resource, len(r.RecordResources))
		for i, res := range r.RecordResources {
			ev.Resources[i] = selector.Resource{Type: res.Type, ARN: res.ARN}
		}
	}
	return ev
}

// rawString decodes a JSON string value; anything else (absent, another
// type) is "". sessionCredentialFromConsole is a string in records, but a
// bare boolean is read as its text too.
func rawString(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	switch string(v) {
	case "true", "false":
		return string(v)
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// regionRE is what a region must look like to become a key component;
// anything else (a producer's free text in awsRegion) is filed under the
// trail's home region rather than written into object keys.
var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// fileRegion is the region folder a selected record goes to: the region
// where it happened (global service events are in us-east-1).
func (s *Selection) fileRegion(r *event.Record) string {
	if regionRE.MatchString(r.AWSRegion) {
		return r.AWSRegion
	}
	return s.HomeRegion
}
