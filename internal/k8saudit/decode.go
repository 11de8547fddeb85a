// Package k8saudit turns the Kubernetes API server's audit webhook into
// CloudTrail records: it decodes audit.k8s.io/v1 and v1beta1 EventLists,
// maps each audit event to a management event in CloudTrail's record format
// (with Secret data redacted) and serves the webhook endpoint that makes
// them durable in Cairn's journal. The mapping is documented in
// docs/kubernetes-audit.md; the package keeps its own small structs rather
// than importing k8s.io/apiserver, whose dependency tree is larger than
// Cairn itself.
package k8saudit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// The audit API versions the API server's webhook backend sends.
const (
	apiVersionV1      = "audit.k8s.io/v1"
	apiVersionV1beta1 = "audit.k8s.io/v1beta1"
)

// The stages of an audit event (audit.k8s.io Stage).
const (
	StageRequestReceived  = "RequestReceived"
	StageResponseStarted  = "ResponseStarted"
	StageResponseComplete = "ResponseComplete"
	StagePanic            = "Panic"
)

// knownStages are the stages the API server emits.
var knownStages = []string{StageRequestReceived, StageResponseStarted, StageResponseComplete, StagePanic}

// Event is one audit.k8s.io Event, as much of it as the mapping reads.
// v1beta1 differs from v1 only in fields the mapping does not need
// (timestamp, metadata), which are ignored.
type Event struct {
	Kind                     string            `json:"kind"`
	APIVersion               string            `json:"apiVersion"`
	Level                    string            `json:"level"`
	AuditID                  string            `json:"auditID"`
	Stage                    string            `json:"stage"`
	RequestURI               string            `json:"requestURI"`
	Verb                     string            `json:"verb"`
	User                     UserInfo          `json:"user"`
	ImpersonatedUser         *UserInfo         `json:"impersonatedUser"`
	SourceIPs                []string          `json:"sourceIPs"`
	UserAgent                string            `json:"userAgent"`
	ObjectRef                *ObjectReference  `json:"objectRef"`
	ResponseStatus           *Status           `json:"responseStatus"`
	RequestObject            json.RawMessage   `json:"requestObject"`
	ResponseObject           json.RawMessage   `json:"responseObject"`
	RequestReceivedTimestamp *time.Time        `json:"requestReceivedTimestamp"`
	StageTimestamp           *time.Time        `json:"stageTimestamp"`
	Timestamp                *time.Time        `json:"timestamp"` // v1beta1 only
	Annotations              map[string]string `json:"annotations"`
}

// UserInfo is authentication.k8s.io UserInfo.
type UserInfo struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

// ObjectReference is audit.k8s.io ObjectReference: what the request was about.
type ObjectReference struct {
	Resource        string `json:"resource"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	UID             string `json:"uid"`
	APIGroup        string `json:"apiGroup"`
	APIVersion      string `json:"apiVersion"`
	ResourceVersion string `json:"resourceVersion"`
	Subresource     string `json:"subresource"`
}

// Status is the part of meta/v1 Status the audit event's responseStatus carries.
type Status struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Code    int    `json:"code"`
}

// Item is one decoded event of a batch with the exact bytes it came as,
// which identify it for deduplication.
type Item struct {
	Event Event
	Raw   json.RawMessage
}

// A DecodeError says which event of a batch is wrong and what is wrong with
// it, so that the operator reading the API server's log (or Cairn's) can
// find it.
type DecodeError struct {
	Index   int    // position in items; -1 for the body as a whole
	AuditID string // when the event got far enough to have one
	Reason  string
}

func (e *DecodeError) Error() string {
	if e.Index < 0 {
		return e.Reason
	}
	id := ""
	if e.AuditID != "" {
		id = fmt.Sprintf(" (auditID %q)", e.AuditID)
	}
	return fmt.Sprintf("items[%d]%s: %s", e.Index, id, e.Reason)
}

// Decode reads a webhook body: an EventList of audit.k8s.io/v1 or v1beta1,
// or a single Event (what `kubectl` tooling and log shippers often post).
// Items may leave out kind and apiVersion (the list's apply); an item that
// says something else is refused. Every item is checked before any is
// returned, so a batch is accepted or refused as a whole.
func Decode(body []byte) ([]Item, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &DecodeError{Index: -1, Reason: "empty body: want an audit.k8s.io EventList"}
	}
	if body[0] != '{' {
		return nil, &DecodeError{Index: -1, Reason: "body is not a JSON object: want an audit.k8s.io EventList"}
	}
	// One pass reads the list and tells a list from a single event.
	var head struct {
		Kind       json.RawMessage   `json:"kind"`
		APIVersion json.RawMessage   `json:"apiVersion"`
		AuditID    json.RawMessage   `json:"auditID"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "items" {
			return nil, &DecodeError{Index: -1, Reason: "EventList: " + jsonReason(err)}
		}
		return nil, &DecodeError{Index: -1, Reason: "body is not valid JSON: " + jsonReason(err)}
	}
	// As for each event (see decodeEvent): exact member names, none twice.
	doc, err := awsproto.CanonicalJSON11(body, reflect.TypeOf(head))
	if err != nil {
		return nil, &DecodeError{Index: -1, Reason: awsproto.AsError(err).Message}
	}
	head.Kind, head.APIVersion, head.AuditID, head.Items = nil, nil, nil, nil
	if err := json.Unmarshal(doc, &head); err != nil {
		return nil, &DecodeError{Index: -1, Reason: "body is not valid JSON: " + jsonReason(err)}
	}
	kind, err := optString(head.Kind, "kind")
	if err != nil {
		return nil, &DecodeError{Index: -1, Reason: err.Error()}
	}
	listVersion, err := optString(head.APIVersion, "apiVersion")
	if err != nil {
		return nil, &DecodeError{Index: -1, Reason: err.Error()}
	}
	if listVersion != "" && listVersion != apiVersionV1 && listVersion != apiVersionV1beta1 {
		return nil, &DecodeError{Index: -1, Reason: fmt.Sprintf("apiVersion %q: want %s or %s", listVersion, apiVersionV1, apiVersionV1beta1)}
	}
	var raws []json.RawMessage
	switch kind {
	case "EventList":
		raws = head.Items
	case "Event":
		raws = []json.RawMessage{body}
	case "":
		if len(head.AuditID) > 0 { // a bare event without kind, as log files hold them
			raws = []json.RawMessage{body}
			break
		}
		return nil, &DecodeError{Index: -1, Reason: `kind missing: want "EventList" (or "Event")`}
	default:
		return nil, &DecodeError{Index: -1, Reason: fmt.Sprintf(`kind %q: want "EventList" (or "Event")`, kind)}
	}
	items := make([]Item, 0, len(raws))
	for i, raw := range raws {
		ev, err := decodeEvent(raw, listVersion)
		if err != nil {
			return nil, &DecodeError{Index: i, AuditID: ev.AuditID, Reason: err.Error()}
		}
		items = append(items, Item{Event: ev, Raw: raw})
	}
	return items, nil
}

// decodeEvent decodes and checks one item; the returned event carries the
// auditID even on error when it could be read, for the error message.
func decodeEvent(raw json.RawMessage, listVersion string) (Event, error) {
	var ev Event
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return ev, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(t, &ev); err != nil {
		// Salvage the auditID for the message when only another field is wrong.
		var id struct {
			AuditID string `json:"auditID"`
		}
		_ = json.Unmarshal(t, &id)
		ev = Event{AuditID: id.AuditID}
		return ev, errors.New(jsonReason(err))
	}
	// encoding/json matches member names without regard to case and lets
	// the last duplicate win, so {"verb":"get","Verb":"delete"} would be
	// recorded as a delete that a case-sensitive reader of the event (the
	// API server's own decoder is one) sees as a get. Members match
	// exactly, and one given twice refuses the event.
	doc, err := awsproto.CanonicalJSON11(t, reflect.TypeFor[Event]())
	if err != nil {
		return Event{AuditID: ev.AuditID}, errors.New(awsproto.AsError(err).Message)
	}
	ev = Event{}
	if err := json.Unmarshal(doc, &ev); err != nil {
		return Event{}, errors.New(jsonReason(err))
	}
	if ev.Kind != "" && ev.Kind != "Event" {
		return ev, fmt.Errorf(`kind %q: want "Event"`, ev.Kind)
	}
	if ev.APIVersion == "" {
		ev.APIVersion = listVersion
	}
	if ev.APIVersion != "" && ev.APIVersion != apiVersionV1 && ev.APIVersion != apiVersionV1beta1 {
		return ev, fmt.Errorf("apiVersion %q: want %s or %s", ev.APIVersion, apiVersionV1, apiVersionV1beta1)
	}
	var missing []string
	if ev.AuditID == "" {
		missing = append(missing, "auditID")
	}
	if ev.Stage == "" {
		missing = append(missing, "stage")
	}
	if ev.Verb == "" {
		missing = append(missing, "verb")
	}
	if ev.RequestURI == "" {
		missing = append(missing, "requestURI")
	}
	if ev.User.Username == "" {
		missing = append(missing, "user.username")
	}
	if ev.eventTime().IsZero() {
		missing = append(missing, "stageTimestamp (or requestReceivedTimestamp)")
	}
	if len(missing) > 0 {
		return ev, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if !isKnownStage(ev.Stage) {
		return ev, fmt.Errorf("stage %q: want one of %s", ev.Stage, strings.Join(knownStages, ", "))
	}
	if !isToken(ev.Verb, false) {
		return ev, fmt.Errorf("verb %q: want lowercase letters", ev.Verb)
	}
	if ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username == "" {
		return ev, errors.New("impersonatedUser without username")
	}
	if r := ev.ObjectRef; r != nil {
		if r.Resource != "" && !isToken(r.Resource, true) {
			return ev, fmt.Errorf("objectRef.resource %q: want a lowercase resource name", r.Resource)
		}
		if r.Subresource != "" && !isToken(r.Subresource, true) {
			return ev, fmt.Errorf("objectRef.subresource %q: want a lowercase subresource name", r.Subresource)
		}
	}
	// A patch request's requestObject is the patch as sent: a JSON Patch
	// (kubectl patch --type=json) is an array, and refusing it would make
	// the API server drop the whole batch.
	if v := bytes.TrimSpace(ev.RequestObject); len(v) > 0 && v[0] != '{' && v[0] != '[' && !bytes.Equal(v, []byte("null")) {
		return ev, errors.New("requestObject: want a JSON object (or a JSON Patch array)")
	}
	if v := bytes.TrimSpace(ev.ResponseObject); len(v) > 0 && v[0] != '{' && !bytes.Equal(v, []byte("null")) {
		return ev, errors.New("responseObject: want a JSON object")
	}
	return ev, nil
}

// eventTime is when the event's stage was reached: stageTimestamp, which for
// ResponseComplete is when the response was sent (CloudTrail's eventTime is
// the completion time too); older API servers only set the request's times.
func (ev *Event) eventTime() time.Time {
	for _, t := range []*time.Time{ev.StageTimestamp, ev.RequestReceivedTimestamp, ev.Timestamp} {
		if t != nil && !t.IsZero() {
			return *t
		}
	}
	return time.Time{}
}

func isKnownStage(s string) bool {
	for _, k := range knownStages {
		if s == k {
			return true
		}
	}
	return false
}

// isToken accepts verbs (lowercase letters) and resource names (lowercase
// letters, digits, '-' and '.'), the shapes Kubernetes allows; anything
// else would make an unreadable eventName.
func isToken(s string, resource bool) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
		case resource && (c >= '0' && c <= '9' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// optString reads a member that must be a string when present.
func optString(v json.RawMessage, name string) (string, error) {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%s: want a string, got %s", name, jsonKind(v))
	}
	return s, nil
}

// jsonReason rewrites encoding/json's errors into "field: want X, got Y".
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Sprintf("%s: want %s, got a JSON %s", field, goTypeName(te.Type.String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	return err.Error()
}

func goTypeName(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "int":
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map[") || strings.HasPrefix(t, "k8saudit.") || strings.HasPrefix(t, "*k8saudit."):
		return "an object"
	case t == "time.Time" || t == "*time.Time":
		return "an RFC 3339 time"
	}
	return t
}

func jsonKind(v json.RawMessage) string {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
