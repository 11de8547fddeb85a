package k8saudit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairn-audit/cairn/internal/event"
)

// DefaultEventSource is the eventSource of Kubernetes records unless
// configured otherwise.
const DefaultEventSource = "kubernetes.io"

// maxObjectBytes is CloudTrail's limit for requestParameters and
// responseElements: larger values are left out rather than truncated.
const maxObjectBytes = 100 << 10

// Mapper turns audit events into CloudTrail records for one cluster.
type Mapper struct {
	Cluster   string // names the cluster in ARNs and additionalEventData
	Region    string // awsRegion of the records
	AccountID string // recipientAccountId and the account of the ARNs
	Source    string // eventSource; empty means DefaultEventSource
}

// requestParameters is an event's requestParameters: the objectRef's
// fields (what the request was about) and the request's body.
type requestParameters struct {
	RequestURI    string          `json:"requestURI"`
	Path          string          `json:"path,omitempty"` // non-resource requests
	Namespace     string          `json:"namespace,omitempty"`
	Name          string          `json:"name,omitempty"`
	Resource      string          `json:"resource,omitempty"`
	Subresource   string          `json:"subresource,omitempty"`
	APIGroup      string          `json:"apiGroup,omitempty"`
	APIVersion    string          `json:"apiVersion,omitempty"`
	UID           string          `json:"uid,omitempty"`
	RequestObject json.RawMessage `json:"requestObject,omitempty"`
}

// additionalEventData keeps what CloudTrail has no field for.
type additionalEventData struct {
	Cluster               string              `json:"cluster"`
	AuditID               string              `json:"auditID"`
	Stage                 string              `json:"stage"`
	Level                 string              `json:"level,omitempty"`
	Verb                  string              `json:"verb"`
	AuditAPIVersion       string              `json:"auditAPIVersion,omitempty"`
	SourceIPs             []string            `json:"sourceIPs,omitempty"`
	Groups                []string            `json:"groups,omitempty"`
	Extra                 map[string][]string `json:"extra,omitempty"`
	ImpersonatorGroups    []string            `json:"impersonatorGroups,omitempty"`
	ResponseStatusCode    int                 `json:"responseStatusCode,omitempty"`
	Annotations           map[string]string   `json:"annotations,omitempty"`
	RequestObjectOmitted  string              `json:"requestObjectOmitted,omitempty"`
	ResponseObjectOmitted string              `json:"responseObjectOmitted,omitempty"`
	RequestReceivedTime   string              `json:"requestReceivedTimestamp,omitempty"`
	StageTimestamp        string              `json:"stageTimestamp,omitempty"`
	Impersonated          bool                `json:"impersonated,omitempty"`
}

// EventID is the eventID of an audit event's record: a UUID (version 8,
// RFC 9562) derived from the auditID, the stage and the event's bytes.
// It is not the auditID itself because one request yields several events
// (one per stage) and API servers have been seen reusing auditIDs for
// different requests; it is derived rather than random so that a batch the
// API server sends again produces the same eventIDs, which is what the
// webhook deduplicates on and what a reader can deduplicate on after a
// restart.
func EventID(it *Item) string {
	h := sha256.New()
	h.Write([]byte(it.Event.AuditID))
	h.Write([]byte{0})
	h.Write([]byte(it.Event.Stage))
	h.Write([]byte{0})
	h.Write(compactOrSelf(it.Raw))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// compactOrSelf strips insignificant whitespace so that a re-indented
// retry of the same event has the same eventID.
func compactOrSelf(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// source is the records' eventSource.
func (m *Mapper) source() string {
	if m.Source == "" {
		return DefaultEventSource
	}
	return m.Source
}

// Map builds the record of one audit event. The event must have come from
// Decode.
func (m *Mapper) Map(it *Item) (*event.Record, error) {
	ev := &it.Event
	src := m.source()
	ref := ev.ObjectRef
	if ref != nil && ref.Resource == "" {
		ref = nil
	}
	call := event.APICall{
		Time:               ev.eventTime(),
		Source:             src,
		Name:               EventName(ev.Verb, ref),
		Region:             m.Region,
		UserAgent:          truncate(ev.UserAgent, 1024),
		RequestID:          ev.AuditID,
		EventID:            EventID(it),
		RecipientAccountID: m.AccountID,
		ReadOnly:           isReadOnly(ev.Verb, ref),
		Identity:           m.identity(ev),
		APIVersion:         apiVersionOf(ref),
	}
	// The last source IP, the API server's own peer: the ones before it
	// come from X-Forwarded-For / X-Real-Ip, which any client can write
	// ("All but the last IP can be arbitrarily set by the client", the
	// audit API says). All of them are in additionalEventData.sourceIPs.
	if n := len(ev.SourceIPs); n > 0 {
		call.SourceIP = ev.SourceIPs[n-1]
	}
	call.ErrorCode, call.ErrorMessage = errorOf(ev)

	secret := ref != nil && ref.Resource == "secrets" && ref.APIGroup == ""
	extra := additionalEventData{
		Cluster: m.Cluster, AuditID: ev.AuditID, Stage: ev.Stage, Level: ev.Level, Verb: ev.Verb,
		AuditAPIVersion: ev.APIVersion, SourceIPs: ev.SourceIPs, Groups: ev.User.Groups, Extra: ev.User.Extra,
		Annotations: redactAnnotations(ev.Annotations, secret),
	}
	if ev.ImpersonatedUser != nil {
		extra.Groups = ev.ImpersonatedUser.Groups
		extra.Extra = ev.ImpersonatedUser.Extra
		extra.ImpersonatorGroups = ev.User.Groups
		extra.Impersonated = true
	}
	if ev.ResponseStatus != nil {
		extra.ResponseStatusCode = ev.ResponseStatus.Code
	}
	if ev.RequestReceivedTimestamp != nil {
		extra.RequestReceivedTime = ev.RequestReceivedTimestamp.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	if ev.StageTimestamp != nil {
		extra.StageTimestamp = ev.StageTimestamp.UTC().Format("2006-01-02T15:04:05.000000Z")
	}

	reqObj, err := redact(ev.RequestObject, secret)
	if err != nil {
		return nil, fmt.Errorf("requestObject: %w", err)
	}
	if len(reqObj) > maxObjectBytes {
		extra.RequestObjectOmitted = fmt.Sprintf("%d bytes, over CloudTrail's %d KB limit", len(reqObj), maxObjectBytes>>10)
		reqObj = nil
	}
	params := requestParameters{RequestURI: ev.RequestURI, RequestObject: reqObj}
	if ref != nil {
		params.Namespace, params.Name, params.Resource, params.Subresource = ref.Namespace, ref.Name, ref.Resource, ref.Subresource
		params.APIGroup, params.APIVersion, params.UID = ref.APIGroup, ref.APIVersion, ref.UID
	} else {
		params.Path, _, _ = strings.Cut(ev.RequestURI, "?")
	}
	if call.RequestParameters, err = marshal(params); err != nil {
		return nil, fmt.Errorf("requestParameters: %w", err)
	}
	respObj, err := redact(ev.ResponseObject, secret)
	if err != nil {
		return nil, fmt.Errorf("responseObject: %w", err)
	}
	if len(respObj) > maxObjectBytes {
		extra.ResponseObjectOmitted = fmt.Sprintf("%d bytes, over CloudTrail's %d KB limit", len(respObj), maxObjectBytes>>10)
		respObj = nil
	}
	if len(respObj) > 0 && respObj[0] != '{' { // a redacted non-Secret body
		respObj, _ = marshal(map[string]json.RawMessage{"responseObject": respObj})
	}
	call.ResponseElements = respObj
	if call.AdditionalEventData, err = marshal(extra); err != nil {
		return nil, fmt.Errorf("additionalEventData: %w", err)
	}
	if ref != nil {
		call.Resources = []event.Resource{m.resource(ev, ref)}
	}
	rec, err := call.Record()
	if err != nil {
		return nil, fmt.Errorf("building the record: %w", err)
	}
	return rec, nil
}

// identity is the record's userIdentity: the effective user (the
// impersonated one when the request impersonated), with the user who
// authenticated as the session issuer.
func (m *Mapper) identity(ev *Event) event.UserIdentity {
	if ev.ImpersonatedUser == nil {
		return m.userIdentity(&ev.User)
	}
	id := m.userIdentity(ev.ImpersonatedUser)
	real := m.userIdentity(&ev.User)
	id.SessionContext = &event.SessionContext{SessionIssuer: &event.SessionIssuer{
		Type: real.Type, PrincipalID: real.PrincipalID, ARN: real.ARN, AccountID: real.AccountID, UserName: real.UserName,
	}}
	return id
}

// userIdentity maps a Kubernetes user: service accounts
// (system:serviceaccount:<namespace>:<name>), whose tokens are OIDC tokens
// the cluster issues, are WebIdentityUser; every other user (certificates,
// OIDC, tokens, nodes, system:anonymous) is Unknown, CloudTrail's type for
// identities AWS did not issue. userName is the Kubernetes username either
// way, so LookupEvents' Username is what kubectl and RBAC call the user.
func (m *Mapper) userIdentity(u *UserInfo) event.UserIdentity {
	id := event.UserIdentity{Type: "Unknown", PrincipalID: u.UID, AccountID: m.AccountID, UserName: u.Username}
	if rest, ok := strings.CutPrefix(u.Username, "system:serviceaccount:"); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok && ns != "" && name != "" {
			id.Type = "WebIdentityUser"
			id.ARN = m.arn("serviceaccount/" + ns + "/" + name)
			return id
		}
	}
	id.ARN = m.arn("user/" + u.Username)
	return id
}

// arn names something in this cluster: arn:cairn:kubernetes:<region>:<account>:cluster/<cluster>/<rest>.
func (m *Mapper) arn(rest string) string {
	return "arn:cairn:kubernetes:" + m.Region + ":" + m.AccountID + ":cluster/" + m.Cluster + "/" + rest
}

// resource is the record's resources[] entry: type
// Kubernetes::<API group, "Core" for the core group>::<Kind> and an ARN
// whose resource part follows the API path ("namespaces/default/pods/web",
// "clusterroles.rbac.authorization.k8s.io/admin"); without a name (list,
// create before the name is known) it names the collection.
func (m *Mapper) resource(ev *Event, ref *ObjectReference) event.Resource {
	kind, _ := kindWords(ref.Resource)
	group := ref.APIGroup
	if group == "" {
		group = "Core"
	}
	name := ref.Name
	if name == "" && (ev.Verb == "create" || ev.Verb == "update") {
		name = objectName(ev.ResponseObject)
		if name == "" {
			name = objectName(ev.RequestObject)
		}
	}
	res := ref.Resource
	if ref.APIGroup != "" {
		res += "." + ref.APIGroup
	}
	var path string
	switch {
	case ref.Resource == "namespaces" && ref.APIGroup == "":
		path = "namespaces"
	case ref.Namespace != "":
		path = "namespaces/" + ref.Namespace + "/" + res
	default:
		path = res
	}
	if name != "" {
		path += "/" + name
	}
	return event.Resource{Type: "Kubernetes::" + group + "::" + kind, ARN: m.arn(path), AccountID: m.AccountID}
}

// objectName is metadata.name of an object body, "" when it has none.
func objectName(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var o struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return ""
	}
	return o.Metadata.Name
}

// apiVersionOf is the record's apiVersion: the Kubernetes API version the
// request used ("apps/v1", "v1").
func apiVersionOf(ref *ObjectReference) string {
	if ref == nil || ref.APIVersion == "" {
		return ""
	}
	if ref.APIGroup == "" {
		return ref.APIVersion
	}
	return ref.APIGroup + "/" + ref.APIVersion
}

// errorOf maps a failed response: the Status reason ("Forbidden",
// "NotFound", "AlreadyExists") as errorCode, its message as errorMessage.
// A Panic stage is always an error: the API server crashed handling it.
func errorOf(ev *Event) (code, message string) {
	s := ev.ResponseStatus
	if s != nil && s.Code >= 400 {
		code = s.Reason
		if code == "" {
			code = reasonForCode(s.Code)
		}
		return code, truncate(s.Message, 1024)
	}
	if ev.Stage == StagePanic {
		msg := "the API server panicked while handling the request"
		if s != nil && s.Message != "" {
			msg = s.Message
		}
		return "InternalError", truncate(msg, 1024)
	}
	return "", ""
}

// reasonForCode is meta/v1 StatusReason for a code when the Status has none.
func reasonForCode(code int) string {
	switch code {
	case 400:
		return "BadRequest"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "NotFound"
	case 405:
		return "MethodNotAllowed"
	case 406:
		return "NotAcceptable"
	case 409:
		return "Conflict"
	case 410:
		return "Expired"
	case 413:
		return "RequestEntityTooLarge"
	case 415:
		return "UnsupportedMediaType"
	case 422:
		return "Invalid"
	case 429:
		return "TooManyRequests"
	case 500:
		return "InternalError"
	case 503:
		return "ServiceUnavailable"
	case 504:
		return "Timeout"
	}
	if t := http.StatusText(code); t != "" {
		return strings.ReplaceAll(t, " ", "")
	}
	return fmt.Sprintf("HTTP%d", code)
}

// truncate cuts s to at most n bytes on a UTF-8 boundary (CloudTrail
// truncates userAgent, errorMessage and errorCode at 1 KB).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// marshal is json.Marshal without HTML escaping, as CloudTrail writes
// '<', '>' and '&' literally.
func marshal(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
