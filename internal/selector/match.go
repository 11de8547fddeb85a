package selector

import "strings"

// Event is the view of one record that selectors evaluate. It is a plain
// struct rather than an interface so that delivery fills it once per record
// and evaluates every trail's selectors against it without allocations.
type Event struct {
	// EventCategory is Management, Data, NetworkActivity or Insight. Empty
	// means Management: records older than eventVersion 1.07 have no
	// eventCategory and were all management events.
	EventCategory string
	// ReadOnly is "true", "false" or "" when the record does not say; it is
	// compared as text because advanced selectors hold it as text.
	ReadOnly                     string
	EventSource                  string
	EventName                    string
	EventType                    string
	ErrorCode                    string
	VpcEndpointID                string
	UserIdentityARN              string
	SessionCredentialFromConsole string
	// Resources is the record's resources[] array.
	Resources []Resource
}

// Resource is one entry of a record's resources[] array.
type Resource struct {
	Type string
	ARN  string
}

func (e *Event) category() string {
	if e.EventCategory == "" {
		return CategoryManagement
	}
	return e.EventCategory
}

// Match reports whether a trail with these selectors logs ev. A trail has
// either basic or advanced selectors; with neither it has the default
// selection (all management events). Selectors are OR-ed.
func Match(basic []EventSelector, advanced []AdvancedEventSelector, ev *Event) bool {
	if len(advanced) > 0 {
		for i := range advanced {
			if advanced[i].Matches(ev) {
				return true
			}
		}
		return false
	}
	if len(basic) == 0 {
		basic = Default()
	}
	for i := range basic {
		if basic[i].Matches(ev) {
			return true
		}
	}
	return false
}

// Matches reports whether a basic selector selects ev: management events by
// read/write type, IncludeManagementEvents and excluded sources; data
// events of the three basic resource types by ARN prefix. Network activity
// and Insights events are never selected by basic selectors.
func (s *EventSelector) Matches(ev *Event) bool {
	if !readWriteMatches(deref(s.ReadWriteType), ev.ReadOnly) {
		return false
	}
	switch ev.category() {
	case CategoryManagement:
		if s.IncludeManagementEvents != nil && !*s.IncludeManagementEvents {
			return false
		}
		for _, src := range s.ExcludeManagementEventSources {
			if ev.EventSource == src {
				return false
			}
		}
		return true
	case CategoryData:
		for _, d := range s.DataResources {
			typ := deref(d.Type)
			for _, r := range ev.Resources {
				if r.Type != typ {
					continue
				}
				for _, v := range d.Values {
					if dataValueMatches(typ, v, r.ARN) {
						return true
					}
				}
			}
		}
	}
	return false
}

// readWriteMatches applies ReadWriteType; an absent type means All. A
// record whose readOnly is unknown only matches All, since guessing could
// put write events in a read-only trail or the reverse.
func readWriteMatches(rw, readOnly string) bool {
	switch rw {
	case ReadOnly:
		return readOnly == "true"
	case WriteOnly:
		return readOnly == "false"
	}
	return true
}

// dataValueMatches applies one DataResources value to a resource ARN. S3
// values are plain prefixes; Lambda function and DynamoDB table ARNs are
// exact (AWS: "helloworld" does not select "helloworld2"), except that a
// function's qualified ARN (version or alias) and a table's sub-resources
// (indexes, streams) belong to it.
func dataValueMatches(typ, value, arn string) bool {
	if isAllResources(typ, value) {
		return strings.HasPrefix(arn, strings.TrimRight(value, ":")+":")
	}
	switch typ {
	case TypeLambdaFunction:
		return arn == value || strings.HasPrefix(arn, value+":")
	case TypeDynamoDBTable:
		return arn == value || strings.HasPrefix(arn, value+"/")
	}
	return strings.HasPrefix(arn, value)
}

// Matches reports whether every field condition of the selector holds for
// ev. Conditions on resources.type and resources.ARN must hold for one and
// the same resource of the record, so that "S3 objects except those under
// bucket X" does not match an object in X because the record also names
// the bucket.
func (s *AdvancedEventSelector) Matches(ev *Event) bool {
	var resourceConds []*FieldSelector
	for i := range s.FieldSelectors {
		f := &s.FieldSelectors[i]
		switch f.Field {
		case "resources.type", "resources.ARN":
			resourceConds = append(resourceConds, f)
			continue
		}
		have, known := scalarField(ev, f.Field)
		if !known {
			// A field Cairn cannot read from a record: no event can
			// satisfy a condition on it.
			return false
		}
		if !f.holds(have) {
			return false
		}
	}
	if len(resourceConds) == 0 {
		return true
	}
	resources := ev.Resources
	if len(resources) == 0 {
		// No resources: conditions see empty values, so exclusions hold
		// and inclusions fail.
		resources = []Resource{{}}
	}
	for _, r := range resources {
		ok := true
		for _, f := range resourceConds {
			v := r.ARN
			if f.Field == "resources.type" {
				v = r.Type
			}
			if !f.holds(v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func scalarField(ev *Event, field string) (string, bool) {
	switch field {
	case "eventCategory":
		return ev.category(), true
	case "readOnly":
		return ev.ReadOnly, true
	case "eventSource":
		return ev.EventSource, true
	case "eventName":
		return ev.EventName, true
	case "eventType":
		return ev.EventType, true
	case "errorCode":
		return ev.ErrorCode, true
	case "vpcEndpointId":
		return ev.VpcEndpointID, true
	case "userIdentity.arn":
		return ev.UserIdentityARN, true
	case "sessionCredentialFromConsole":
		return ev.SessionCredentialFromConsole, true
	}
	return "", false
}

// holds applies one field selector to a value: every present operator must
// hold (AND); a positive operator holds when any of its values matches
// (OR); a negative operator holds when none of its values matches.
func (f *FieldSelector) holds(have string) bool {
	for _, op := range usedOperators(f) {
		hit := false
		for _, want := range op.values {
			if op.match(have, want) {
				hit = true
				break
			}
		}
		if hit == op.negative {
			return false
		}
	}
	return true
}
