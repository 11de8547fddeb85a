// Package event is Cairn's model of one CloudTrail record: parsing records
// from any eventVersion (1.0 to 1.11) without losing a byte of meaning,
// extracting the fields the event history indexes and filters on, building
// Cairn's own audit records, and reading the file shapes importers meet.
//
// The stored form of a record is its compact JSON (Record.Raw): Cairn gives
// back exactly what came in, key order, unknown fields and number literals
// included. Everything else on Record is a derived, read-only view.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OptBool is a tri-state boolean. CloudTrail's readOnly and managementEvent
// are missing from older records (eventVersion < 1.01 / 1.06 and many 1.04-1.05
// data events), so "unknown" must stay distinct from false.
type OptBool int8

// OptBool values. The zero value is Unknown.
const (
	Unknown OptBool = iota
	False
	True
)

// String returns "true", "false" or "" (unknown). This is the LookupEvents
// wire form: the API's Event.ReadOnly is a string, and an unknown value is
// left out of the response rather than guessed.
func (b OptBool) String() string {
	switch b {
	case True:
		return "true"
	case False:
		return "false"
	}
	return ""
}

// Known reports whether the value was present and understood.
func (b OptBool) Known() bool { return b == True || b == False }

// optBool reads a JSON boolean, tolerating the string forms "true"/"false"
// (any case) that some producers write; anything else is Unknown.
func optBool(v []byte) OptBool {
	switch string(v) {
	case "true":
		return True
	case "false":
		return False
	}
	if s, ok := stringValue(v); ok {
		switch {
		case strings.EqualFold(s, "true"):
			return True
		case strings.EqualFold(s, "false"):
			return False
		}
	}
	return Unknown
}

// Resource is one resource an event refers to.
//
// In Record.Resources it is what CloudTrail's event history (LookupEvents)
// reports: Type is the ResourceType and Name the ResourceName exactly as the
// request or response carried it (a name, an ID or an ARN). ARN is set when
// Name is an ARN. AccountID is only known for entries taken from the record's
// own resources[] array.
type Resource struct {
	Type      string
	Name      string
	ARN       string
	AccountID string
}

// Record is one parsed CloudTrail record: the canonical bytes plus the fields
// Cairn indexes and filters on. A Record is never modified after Parse; its
// fields are safe to share between goroutines.
type Record struct {
	// Raw is the whole record as compact JSON: insignificant whitespace
	// removed, nothing else changed (key order, duplicate keys, unknown
	// fields, escapes and number literals are kept byte for byte).
	Raw json.RawMessage

	EventVersion string
	EventID      string
	// EventTime is the record's eventTime in UTC.
	EventTime       time.Time
	EventName       string
	EventSource     string
	AWSRegion       string
	EventType       string
	EventCategory   string
	ReadOnly        OptBool
	ManagementEvent OptBool

	RecipientAccountID string
	SourceIPAddress    string
	UserAgent          string
	ErrorCode          string

	// AccessKeyID is userIdentity.accessKeyId, LookupEvents' AccessKeyId.
	AccessKeyID string
	// Username is the user name LookupEvents reports; see lookupUsername.
	Username         string
	UserIdentityType string
	UserIdentityARN  string

	// Resources is what LookupEvents reports as Resources and what the
	// ResourceType/ResourceName lookup attributes match; see resources.go.
	Resources []Resource
	// RecordResources is the record's own resources[] array (type, ARN,
	// accountId), in order. Entries without a type get one inferred from
	// the ARN when the ARN's service and resource are known.
	RecordResources []Resource
}

// InvalidRecordError explains why data is not an acceptable CloudTrail
// record. Importers report it per record and go on with the next one.
type InvalidRecordError struct {
	// Field is the offending top-level field, or "" when the record as a
	// whole is bad (not JSON, not an object).
	Field string
	// Reason says what is wrong, for a human.
	Reason string
}

func (e *InvalidRecordError) Error() string {
	if e.Field == "" {
		return "invalid CloudTrail record: " + e.Reason
	}
	return "invalid CloudTrail record: " + e.Field + ": " + e.Reason
}

var errNotObject = errors.New("not a JSON object")

// Parse validates data as one CloudTrail record and returns its parsed view.
//
// Accepted: any JSON object with a parseable string eventTime and a non-empty
// string eventName (Insights records, which carry their subject API in
// insightDetails instead, take eventName/eventSource from there). Fields of an
// unexpected type are kept untouched in Raw; only the extracted view falls
// back to its zero value. Duplicate keys are kept in Raw; the extracted view
// uses the last occurrence, like encoding/json and JavaScript's JSON.parse.
// Strings may contain any escapes and invalid UTF-8 is passed through as is.
//
// Parse never returns a partial Record: either a complete one or an
// *InvalidRecordError. It does not retain data.
func Parse(data []byte) (*Record, error) {
	c := compactor{src: data, dst: make([]byte, 0, len(data))}
	var membersBuf [32]member
	members, err := c.topObject(membersBuf[:0])
	if err != nil {
		if errors.Is(err, errNotObject) {
			return nil, &InvalidRecordError{Reason: "not a JSON object (" + describeStart(data) + ")"}
		}
		return nil, &InvalidRecordError{Reason: err.Error()}
	}
	raw := c.dst
	if cap(raw)-len(raw) > len(raw)/8 {
		// Pretty-printed input: do not keep its whitespace's worth of
		// capacity alive for as long as the Record lives.
		raw = append(make([]byte, 0, len(raw)), raw...)
	}
	r := &Record{Raw: raw}
	if err := r.extract(members); err != nil {
		return nil, err
	}
	return r, nil
}

// describeStart names the JSON type data begins with, for error messages.
func describeStart(data []byte) string {
	for _, b := range data {
		if isWS(b) {
			continue
		}
		switch {
		case b == '[':
			return "an array"
		case b == '"':
			return "a string"
		case b == 't' || b == 'f':
			return "a boolean"
		case b == 'n':
			return "null"
		case b == '-' || (b >= '0' && b <= '9'):
			return "a number"
		}
		return fmt.Sprintf("starts with %q", b)
	}
	return "empty"
}

// The string members of a record's view, by slot: extract gathers their
// raw values first and then makes all the strings with one allocation
// (makeStrings) instead of one each. A record's view has a dozen or more,
// and the history parses every event it indexes.
const (
	sEventVersion = iota
	sEventID
	sEventSource
	sAWSRegion
	sEventType
	sEventCategory
	sRecipientAccountID
	sSourceIPAddress
	sUserAgent
	sErrorCode
	sIDType // userIdentity's, from here on (parseIdentity)
	sIDPrincipalID
	sIDARN
	sIDAccountID
	sIDAccessKeyID
	sIDUserName
	sIDInvokedBy
	sIDOnBehalfOf
	nStringSlots
)

// makeStrings returns the values of the compact JSON strings in vals
// (str's value: "" for a missing or non-string value) as slices of one
// string.
func makeStrings(vals *[nStringSlots][]byte) (out [nStringSlots]string) {
	var stack [512]byte
	buf := stack[:0]
	var ends [nStringSlots]int
	for i, v := range vals {
		if len(v) >= 2 && v[0] == '"' {
			if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 {
				buf = append(buf, inner...)
			} else {
				buf = append(buf, unescape(inner)...)
			}
		}
		ends[i] = len(buf)
	}
	if len(buf) == 0 {
		return out
	}
	all := string(buf)
	start := 0
	for i, end := range ends {
		out[i] = all[start:end]
		start = end
	}
	return out
}

// extract fills the view from the top-level members of the compact object.
func (r *Record) extract(members []member) error {
	raw := r.Raw
	var eventTime, eventName, userIdentity, reqParams, respElems, resources, insight []byte
	var vals [nStringSlots][]byte
	for _, m := range members {
		k := raw[m.key.start:m.key.end]
		v := raw[m.val.start:m.val.end]
		if containsBackslash(k) {
			k = []byte(unescape(k))
		}
		switch string(k) {
		case "eventVersion":
			vals[sEventVersion] = v
		case "eventID":
			vals[sEventID] = v
		case "eventTime":
			eventTime = v
		case "eventName":
			eventName = v
		case "eventSource":
			vals[sEventSource] = v
		case "awsRegion":
			vals[sAWSRegion] = v
		case "eventType":
			vals[sEventType] = v
		case "eventCategory":
			vals[sEventCategory] = v
		case "readOnly":
			r.ReadOnly = optBool(v)
		case "managementEvent":
			r.ManagementEvent = optBool(v)
		case "recipientAccountId":
			vals[sRecipientAccountID] = v
		case "sourceIPAddress":
			vals[sSourceIPAddress] = v
		case "userAgent":
			vals[sUserAgent] = v
		case "errorCode":
			vals[sErrorCode] = v
		case "userIdentity":
			userIdentity = v
		case "requestParameters":
			reqParams = v
		case "responseElements":
			respElems = v
		case "resources":
			resources = v
		case "insightDetails":
			insight = v
		}
	}
	present := parseIdentity(userIdentity, &vals)
	strs := makeStrings(&vals)
	r.EventVersion, r.EventID, r.EventSource, r.AWSRegion = strs[sEventVersion], strs[sEventID], strs[sEventSource], strs[sAWSRegion]
	r.EventType, r.EventCategory, r.RecipientAccountID = strs[sEventType], strs[sEventCategory], strs[sRecipientAccountID]
	r.SourceIPAddress, r.UserAgent, r.ErrorCode = strs[sSourceIPAddress], strs[sUserAgent], strs[sErrorCode]
	id := identity{
		present: present, typ: strs[sIDType], principalID: strs[sIDPrincipalID], arn: strs[sIDARN], accountID: strs[sIDAccountID],
		accessKeyID: strs[sIDAccessKeyID], userName: strs[sIDUserName], invokedBy: strs[sIDInvokedBy], onBehalfOf: strs[sIDOnBehalfOf],
	}

	// eventName: required. Insights records have none at top level; their
	// subject API lives in insightDetails, which is also what LookupEvents
	// with EventCategory=insight filters on.
	if eventName == nil && insight != nil && r.EventType == "AwsCloudTrailInsight" {
		eventName = getMember(insight, "eventName")
		if r.EventSource == "" {
			r.EventSource = str(getMember(insight, "eventSource"))
		}
	}
	if eventName == nil {
		return &InvalidRecordError{Field: "eventName", Reason: "missing"}
	}
	name, ok := stringValue(eventName)
	if !ok {
		return &InvalidRecordError{Field: "eventName", Reason: "not a string: " + truncate(eventName)}
	}
	if name == "" {
		return &InvalidRecordError{Field: "eventName", Reason: "empty"}
	}
	r.EventName = name

	if eventTime == nil {
		return &InvalidRecordError{Field: "eventTime", Reason: "missing"}
	}
	ts, ok := stringValue(eventTime)
	if !ok {
		return &InvalidRecordError{Field: "eventTime", Reason: "not a string: " + truncate(eventTime)}
	}
	t, err := ParseTime(ts)
	if err != nil {
		return &InvalidRecordError{Field: "eventTime", Reason: err.Error()}
	}
	r.EventTime = t

	r.AccessKeyID = id.accessKeyID
	r.UserIdentityType = id.typ
	r.UserIdentityARN = id.arn
	r.Username = lookupUsername(&id)
	if r.Username == "" && r.EventCategory == "ActivityAuditLog" {
		// Channel events (PutAuditEvents) carry an application's own
		// principal IDs ("alice"), not AWS-shaped ones: that ID is the
		// user name people look them up by.
		r.Username = id.principalID
	}

	r.RecordResources = recordResources(resources)
	r.Resources = lookupResources(r.EventSource, r.EventName, reqParams, respElems, r.RecordResources)
	return nil
}

func containsBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// truncate shortens a raw value for an error message.
func truncate(v []byte) string {
	const max = 64
	if len(v) > max {
		return string(v[:max]) + "..."
	}
	return string(v)
}

// ParseTime parses a CloudTrail timestamp and returns it in UTC.
//
// CloudTrail writes `2006-01-02T15:04:05Z` (every record in the Stratus and
// flaws2 datasets has exactly that form). Other producers and re-exports add
// fractional seconds or a numeric offset (`+00:00`); RFC 3339 covers all of
// them, so that is what is accepted. A time without a zone is rejected rather
// than guessed.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time %q", s)
	}
	return t.UTC(), nil
}

// Canonical returns the compact JSON stored in the journal. It is Raw; the
// method exists so callers do not depend on how the view is laid out.
func (r *Record) Canonical() []byte { return r.Raw }

// Field returns the raw compact JSON value of a top-level field (the last one
// if the key is duplicated), or nil when the record has no such field.
func (r *Record) Field(name string) json.RawMessage {
	v := getMember(r.Raw, name)
	if v == nil {
		return nil
	}
	return json.RawMessage(v)
}

// Version splits an eventVersion "<major>.<minor>" into numbers. CloudTrail
// advises comparing major with == and minor numerically, so "1.10" is newer
// than "1.09" (a string or float comparison gets that wrong).
func Version(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || ma < 0 || mi < 0 {
		return 0, 0, false
	}
	return ma, mi, true
}

// VersionAtLeast reports whether the record's eventVersion has the given
// major version and at least the given minor version. Records without a
// parseable eventVersion report false.
func (r *Record) VersionAtLeast(major, minor int) bool {
	ma, mi, ok := Version(r.EventVersion)
	return ok && ma == major && mi >= minor
}

// Category returns the record's eventCategory ("Management", "Data",
// "Insight", "NetworkActivity", ...), inferring it for records older than
// eventVersion 1.07, which have none. Event history (LookupEvents) holds
// management events only, so the inference matters for imported history.
//
// Inference, in order: an Insights eventType is "Insight"; a known
// managementEvent (1.06+) decides Management/Data; otherwise the only data
// events CloudTrail logged before 1.07 were S3 object-level calls (their
// resources[] name an AWS::S3::Object, as in every flaws2 GetObject and
// ListObjects record) and Lambda Invoke, which are "Data"; all else is
// "Management".
func (r *Record) Category() string {
	if r.EventCategory != "" {
		return r.EventCategory
	}
	if r.EventType == "AwsCloudTrailInsight" {
		return "Insight"
	}
	switch r.ManagementEvent {
	case True:
		return "Management"
	case False:
		return "Data"
	}
	if r.EventSource == "lambda.amazonaws.com" && r.EventName == "Invoke" {
		return "Data"
	}
	for _, res := range r.RecordResources {
		if res.Type == "AWS::S3::Object" {
			return "Data"
		}
	}
	return "Management"
}

// IsManagementEvent reports whether the record belongs in event history;
// see Category.
func (r *Record) IsManagementEvent() bool { return r.Category() == "Management" }
