package event

import (
	"slices"
	"time"
)

// The eight LookupEvents attribute keys, spelled as on the wire.
const (
	AttrEventID      = "EventId"
	AttrEventName    = "EventName"
	AttrReadOnly     = "ReadOnly"
	AttrUsername     = "Username"
	AttrResourceType = "ResourceType"
	AttrResourceName = "ResourceName"
	AttrEventSource  = "EventSource"
	AttrAccessKeyID  = "AccessKeyId"
)

// AttributeKeys returns the eight LookupEvents attribute keys in the order
// the API documentation lists them. The slice is fresh; callers may modify it.
func AttributeKeys() []string {
	return []string{AttrEventID, AttrEventName, AttrReadOnly, AttrUsername,
		AttrResourceType, AttrResourceName, AttrEventSource, AttrAccessKeyID}
}

// IsAttributeKey reports whether key is one of the eight LookupEvents keys
// (exact, case-sensitive: the API rejects "eventname" as InvalidLookupAttributes).
func IsAttributeKey(key string) bool {
	switch key {
	case AttrEventID, AttrEventName, AttrReadOnly, AttrUsername,
		AttrResourceType, AttrResourceName, AttrEventSource, AttrAccessKeyID:
		return true
	}
	return false
}

// AttributeValues returns the values a record has for a LookupEvents
// attribute key, for the history index. A record matches a lookup attribute
// when the attribute's value equals one of these exactly: CloudTrail's
// matching is exact and case-sensitive (no prefix, no wildcard, no case
// folding), and Cairn does the same.
//
// ResourceType and ResourceName are multi-valued (one per resource, no
// duplicates). ReadOnly is "true" or "false", or nothing when the record does
// not say. Empty values are never returned, so an event without an access key
// cannot be found with AccessKeyId="" (the API requires 1-2000 characters
// anyway). An unknown key returns nil.
func (r *Record) AttributeValues(key string) []string {
	one := func(s string) []string {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	switch key {
	case AttrEventID:
		return one(r.EventID)
	case AttrEventName:
		return one(r.EventName)
	case AttrReadOnly:
		return one(r.ReadOnly.String())
	case AttrUsername:
		return one(r.Username)
	case AttrEventSource:
		return one(r.EventSource)
	case AttrAccessKeyID:
		return one(r.AccessKeyID)
	case AttrResourceType, AttrResourceName:
		var out []string
		for _, res := range r.Resources {
			v := res.Type
			if key == AttrResourceName {
				v = res.Name
			}
			if v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
		return out
	}
	return nil
}

// MatchAttribute reports whether the record matches one LookupEvents
// attribute: value equals one of AttributeValues(key), exactly.
func (r *Record) MatchAttribute(key, value string) bool {
	return value != "" && slices.Contains(r.AttributeValues(key), value)
}

// LookupResource is one entry of LookupEvents' Event.Resources.
type LookupResource struct {
	ResourceType string `json:"ResourceType,omitempty"`
	ResourceName string `json:"ResourceName,omitempty"`
}

// LookupEvent is the LookupEvents Event shape. EventTime is a time.Time:
// the JSON 1.1 wire form is epoch seconds, which the API layer writes; the
// json tags here name the wire members but marshalling EventTime is the API
// layer's job. Empty strings mean "leave the member out".
type LookupEvent struct {
	EventID         string           `json:"EventId,omitempty"`
	EventName       string           `json:"EventName,omitempty"`
	ReadOnly        string           `json:"ReadOnly,omitempty"`
	AccessKeyID     string           `json:"AccessKeyId,omitempty"`
	EventTime       time.Time        `json:"-"`
	EventSource     string           `json:"EventSource,omitempty"`
	Username        string           `json:"Username,omitempty"`
	Resources       []LookupResource `json:"Resources"`
	CloudTrailEvent string           `json:"CloudTrailEvent,omitempty"`
	// Import is set for a record that came in through an import (see
	// ImportHeader); nil for every record Cairn wrote itself.
	Import *ImportProvenance `json:"-"`
}

// LookupEvent returns the record as LookupEvents reports it. Resources is
// never nil (AWS sends "Resources": [] when there are none), and
// CloudTrailEvent is the canonical JSON as a string.
func (r *Record) LookupEvent() LookupEvent {
	ev := LookupEvent{
		EventID:         r.EventID,
		EventName:       r.EventName,
		ReadOnly:        r.ReadOnly.String(),
		AccessKeyID:     r.AccessKeyID,
		EventTime:       r.EventTime,
		EventSource:     r.EventSource,
		Username:        r.Username,
		Resources:       make([]LookupResource, 0, len(r.Resources)),
		CloudTrailEvent: string(r.Raw),
	}
	for _, res := range r.Resources {
		ev.Resources = append(ev.Resources, LookupResource{ResourceType: res.Type, ResourceName: res.Name})
	}
	return ev
}
