// Package selector holds CloudTrail's event selectors: the basic
// EventSelector and the AdvancedEventSelector that decide which events a
// trail logs, and the InsightSelector that turns on Insights. It validates
// them with CloudTrail's rules and limits (so PutEventSelectors fails the
// same way it fails on AWS) and evaluates them against events (so delivery
// writes exactly the events AWS would).
//
// The types carry the wire member names as JSON tags, so the API layer
// decodes requests straight into them and the state store persists them in
// the same shape clients see.
package selector

// Read/write types of a basic event selector.
const (
	ReadOnly  = "ReadOnly"
	WriteOnly = "WriteOnly"
	All       = "All"
)

// Event categories that appear in records and in advanced selectors.
const (
	CategoryManagement      = "Management"
	CategoryData            = "Data"
	CategoryNetworkActivity = "NetworkActivity"
	CategoryInsight         = "Insight"
)

// Basic data resource types: the only ones basic selectors accept. Every
// other type needs advanced selectors, as on AWS.
const (
	TypeS3Object       = "AWS::S3::Object"
	TypeLambdaFunction = "AWS::Lambda::Function"
	TypeDynamoDBTable  = "AWS::DynamoDB::Table"
)

// EventSelector is a basic event selector. Optional members are pointers
// so that validation can tell "absent" (take the default) from an explicit
// value; Normalize fills the defaults before a selector is stored, and
// stored selectors always carry every member, as GetEventSelectors returns.
type EventSelector struct {
	ReadWriteType                 *string        `json:"ReadWriteType,omitempty"`
	IncludeManagementEvents       *bool          `json:"IncludeManagementEvents,omitempty"`
	DataResources                 []DataResource `json:"DataResources"`
	ExcludeManagementEventSources []string       `json:"ExcludeManagementEventSources"`
}

// DataResource selects data events of one resource type by ARN prefix.
type DataResource struct {
	Type   *string  `json:"Type,omitempty"`
	Values []string `json:"Values"`
}

// AdvancedEventSelector is a named set of field conditions, all of which an
// event must meet.
type AdvancedEventSelector struct {
	Name           *string         `json:"Name,omitempty"`
	FieldSelectors []FieldSelector `json:"FieldSelectors"`
}

// FieldSelector is one condition on one record field. Absent operators are
// nil and stay absent on the wire.
type FieldSelector struct {
	Field         string   `json:"Field"`
	Equals        []string `json:"Equals,omitempty"`
	StartsWith    []string `json:"StartsWith,omitempty"`
	EndsWith      []string `json:"EndsWith,omitempty"`
	NotEquals     []string `json:"NotEquals,omitempty"`
	NotStartsWith []string `json:"NotStartsWith,omitempty"`
	NotEndsWith   []string `json:"NotEndsWith,omitempty"`
}

// Default is the selection of a trail nobody called PutEventSelectors on:
// every read and write management event, no data events. It is what
// GetEventSelectors reports for a new trail.
func Default() []EventSelector {
	return []EventSelector{{
		ReadWriteType:                 ptr(All),
		IncludeManagementEvents:       ptr(true),
		DataResources:                 []DataResource{},
		ExcludeManagementEventSources: []string{},
	}}
}

// Normalize returns copies of basic selectors with every default filled in
// and every list non-nil, the form CloudTrail stores and returns.
func Normalize(sels []EventSelector) []EventSelector {
	out := make([]EventSelector, len(sels))
	for i, s := range sels {
		n := EventSelector{
			ReadWriteType:                 s.ReadWriteType,
			IncludeManagementEvents:       s.IncludeManagementEvents,
			DataResources:                 make([]DataResource, 0, len(s.DataResources)),
			ExcludeManagementEventSources: append([]string{}, s.ExcludeManagementEventSources...),
		}
		if n.ReadWriteType == nil {
			n.ReadWriteType = ptr(All)
		}
		if n.IncludeManagementEvents == nil {
			n.IncludeManagementEvents = ptr(true)
		}
		for _, d := range s.DataResources {
			n.DataResources = append(n.DataResources, DataResource{Type: d.Type, Values: append([]string{}, d.Values...)})
		}
		out[i] = n
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
