package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// CurrentEventVersion is the eventVersion of the records Cairn writes.
const CurrentEventVersion = "1.11"

// timeLayout is CloudTrail's record time format: UTC, whole seconds.
const timeLayout = "2006-01-02T15:04:05Z"

// FormatTime renders t the way CloudTrail writes eventTime.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// UserIdentity is the caller of an API Cairn audits, written as the record's
// userIdentity. Field order and spelling follow CloudTrail's records.
type UserIdentity struct {
	Type           string          `json:"type"`
	PrincipalID    string          `json:"principalId,omitempty"`
	ARN            string          `json:"arn,omitempty"`
	AccountID      string          `json:"accountId,omitempty"`
	AccessKeyID    string          `json:"accessKeyId,omitempty"`
	UserName       string          `json:"userName,omitempty"`
	SessionContext *SessionContext `json:"sessionContext,omitempty"`
	InvokedBy      string          `json:"invokedBy,omitempty"`
	// IdentityProvider is the issuer of a WebIdentityUser's token.
	IdentityProvider string `json:"identityProvider,omitempty"`
}

// SessionContext describes temporary credentials (AssumedRole and
// FederatedUser callers).
type SessionContext struct {
	SessionIssuer  *SessionIssuer `json:"sessionIssuer,omitempty"`
	SourceIdentity string         `json:"sourceIdentity,omitempty"`
	// CreationDate is when the credentials were issued; zero leaves
	// attributes.creationDate out.
	CreationDate time.Time
	// MFAAuthenticated is written as the string "true"/"false", as
	// CloudTrail does.
	MFAAuthenticated bool
}

// SessionIssuer is the entity the temporary credentials came from.
type SessionIssuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	UserName    string `json:"userName,omitempty"`
}

// MarshalJSON writes sessionContext in CloudTrail's member order, with
// attributes.mfaAuthenticated as a string.
func (s SessionContext) MarshalJSON() ([]byte, error) {
	type attributes struct {
		CreationDate     string `json:"creationDate,omitempty"`
		MFAAuthenticated string `json:"mfaAuthenticated"`
	}
	out := struct {
		SessionIssuer  *SessionIssuer `json:"sessionIssuer,omitempty"`
		Attributes     attributes     `json:"attributes"`
		SourceIdentity string         `json:"sourceIdentity,omitempty"`
	}{SessionIssuer: s.SessionIssuer, SourceIdentity: s.SourceIdentity}
	if !s.CreationDate.IsZero() {
		out.Attributes.CreationDate = FormatTime(s.CreationDate)
	}
	out.Attributes.MFAAuthenticated = "false"
	if s.MFAAuthenticated {
		out.Attributes.MFAAuthenticated = "true"
	}
	return MarshalNoEscape(out)
}

// TLSDetails is the record's tlsDetails.
type TLSDetails struct {
	TLSVersion               string `json:"tlsVersion,omitempty"`
	CipherSuite              string `json:"cipherSuite,omitempty"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader,omitempty"`
	KeyExchange              string `json:"keyExchange,omitempty"`
}

// APICall is one call to Cairn's own API, to be recorded exactly as
// CloudTrail records calls to its API (Cairn audits itself).
type APICall struct {
	Time               time.Time
	Source             string // eventSource, e.g. "cloudtrail.amazonaws.com"
	Name               string // eventName, the operation
	Region             string
	SourceIP           string
	UserAgent          string
	RequestID          string
	EventID            string // a random UUID when empty
	RecipientAccountID string
	ErrorCode          string
	ErrorMessage       string
	ReadOnly           bool
	Identity           UserIdentity
	// RequestParameters and ResponseElements must be a JSON object or
	// null; nil is written as null (CloudTrail's value for "nothing").
	RequestParameters   json.RawMessage
	ResponseElements    json.RawMessage
	AdditionalEventData json.RawMessage // optional; nil leaves it out
	TLS                 *TLSDetails
	Resources           []Resource // written as resources[] {accountId, type, ARN}
	APIVersion          string
	SharedEventID       string
	VPCEndpointID       string
	// EventType is the record's eventType; empty means AwsApiCall. Actions
	// taken in Cairn's web console are AwsConsoleAction, as in CloudTrail.
	EventType string
	// DataEvent marks a data-plane call (an S3 object read or write, say):
	// CloudTrail writes those with managementEvent false and eventCategory
	// Data, and trails and the event history treat them apart.
	DataEvent bool
	// FromConsole marks a call made through Cairn's web console with the
	// console's session, written as sessionCredentialFromConsole "true"
	// as CloudTrail does for calls made from the AWS console.
	FromConsole bool
}

// wireRecord fixes the member order of Cairn-written records to AWS's
// (reference §3.1, "Field order").
type wireRecord struct {
	EventVersion        string          `json:"eventVersion"`
	UserIdentity        UserIdentity    `json:"userIdentity"`
	EventTime           string          `json:"eventTime"`
	EventSource         string          `json:"eventSource"`
	EventName           string          `json:"eventName"`
	AWSRegion           string          `json:"awsRegion"`
	SourceIPAddress     string          `json:"sourceIPAddress"`
	UserAgent           string          `json:"userAgent,omitempty"`
	ErrorCode           string          `json:"errorCode,omitempty"`
	ErrorMessage        string          `json:"errorMessage,omitempty"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	RequestID           string          `json:"requestID,omitempty"`
	EventID             string          `json:"eventID"`
	ReadOnly            bool            `json:"readOnly"`
	Resources           []wireResource  `json:"resources,omitempty"`
	EventType           string          `json:"eventType"`
	APIVersion          string          `json:"apiVersion,omitempty"`
	ManagementEvent     bool            `json:"managementEvent"`
	RecipientAccountID  string          `json:"recipientAccountId"`
	SharedEventID       string          `json:"sharedEventID,omitempty"`
	VPCEndpointID       string          `json:"vpcEndpointId,omitempty"`
	EventCategory       string          `json:"eventCategory"`
	TLSDetails          *TLSDetails     `json:"tlsDetails,omitempty"`
	// FromConsole is a string in CloudTrail's records, not a boolean.
	FromConsole string `json:"sessionCredentialFromConsole,omitempty"`
}

type wireResource struct {
	AccountID string `json:"accountId,omitempty"`
	Type      string `json:"type,omitempty"`
	ARN       string `json:"ARN"`
}

var jsonNull = json.RawMessage("null")

// Record builds the CloudTrail record for the call: eventVersion 1.11,
// eventType AwsApiCall unless told otherwise, managementEvent and
// eventCategory from DataEvent,
// members in AWS's order, times as YYYY-MM-DDTHH:MM:SSZ, and no longer
// than MaxRecordBytes (see FitRecord). The result is parsed back, so it
// carries the same view as any imported record.
func (c APICall) Record() (*Record, error) {
	var missing []string
	if c.Time.IsZero() {
		missing = append(missing, "Time")
	}
	if c.Source == "" {
		missing = append(missing, "Source")
	}
	if c.Name == "" {
		missing = append(missing, "Name")
	}
	if c.Region == "" {
		missing = append(missing, "Region")
	}
	if c.Identity.Type == "" {
		missing = append(missing, "Identity.Type")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("building the audit record of %s %s: missing %v", c.Source, c.Name, missing)
	}
	eventType, management, category := c.EventType, true, "Management"
	if eventType == "" {
		eventType = "AwsApiCall"
	}
	if c.DataEvent {
		management, category = false, "Data"
	}
	w := wireRecord{
		EventVersion:        CurrentEventVersion,
		UserIdentity:        c.Identity,
		EventTime:           FormatTime(c.Time),
		EventSource:         c.Source,
		EventName:           c.Name,
		AWSRegion:           c.Region,
		SourceIPAddress:     c.SourceIP,
		UserAgent:           c.UserAgent,
		ErrorCode:           c.ErrorCode,
		ErrorMessage:        c.ErrorMessage,
		RequestParameters:   orNull(c.RequestParameters),
		ResponseElements:    orNull(c.ResponseElements),
		AdditionalEventData: c.AdditionalEventData,
		RequestID:           c.RequestID,
		EventID:             c.EventID,
		ReadOnly:            c.ReadOnly,
		EventType:           eventType,
		APIVersion:          c.APIVersion,
		ManagementEvent:     management,
		RecipientAccountID:  c.RecipientAccountID,
		SharedEventID:       c.SharedEventID,
		VPCEndpointID:       c.VPCEndpointID,
		EventCategory:       category,
		TLSDetails:          c.TLS,
	}
	if c.FromConsole {
		w.FromConsole = "true"
	}
	for _, name := range []struct {
		field string
		v     json.RawMessage
	}{{"RequestParameters", w.RequestParameters}, {"ResponseElements", w.ResponseElements}} {
		if err := objectOrNull(name.v); err != nil {
			return nil, fmt.Errorf("building the audit record of %s %s: %s: %w", c.Source, c.Name, name.field, err)
		}
	}
	if w.EventID == "" {
		id, err := uuid.NewRandom()
		if err != nil {
			return nil, fmt.Errorf("building the audit record of %s %s: generating eventID: %w", c.Source, c.Name, err)
		}
		w.EventID = id.String()
	}
	for _, r := range c.Resources {
		w.Resources = append(w.Resources, wireResource{AccountID: r.AccountID, Type: r.Type, ARN: r.ARN})
	}
	b, err := MarshalNoEscape(w)
	if err != nil {
		return nil, fmt.Errorf("building the audit record of %s %s: %w", c.Source, c.Name, err)
	}
	// A legal call must be recorded however large its parameters: a record
	// over the journal's entry limit gives up its largest members instead
	// of being refused (FitRecord says how, and the marker says what).
	if b, err = FitRecord(b, MaxRecordBytes); err != nil {
		return nil, fmt.Errorf("building the audit record of %s %s: %w", c.Source, c.Name, err)
	}
	rec, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("building the audit record of %s %s: the result does not parse: %w", c.Source, c.Name, err)
	}
	return rec, nil
}

func orNull(v json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(v)) == 0 {
		return jsonNull
	}
	return v
}

// objectOrNull checks that v is a JSON object or null, the only shapes
// CloudTrail writes for requestParameters/responseElements.
func objectOrNull(v json.RawMessage) error {
	t := bytes.TrimSpace(v)
	if bytes.Equal(t, jsonNull) {
		return nil
	}
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return errors.New("not a JSON object or null")
	}
	return nil
}

// MarshalNoEscape is json.Marshal without HTML escaping: records keep "<",
// ">" and "&" as they were sent, as CloudTrail's records do.
func MarshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
