package ingest

import (
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/lake"
)

// The row types below are CloudTrail Lake's SQL schemas ("Supported SQL
// schemas for event data stores" in the CloudTrail user guide), column for
// column and in AWS's order, with AWS's lower-case names. Parquet-go
// derives the files' schema from them. Where AWS's published schema has a
// typo (useridentity.inscopeof.credentiaisissuedto, eventdata.errormssage,
// addendum.originalUID) the column is named after the record member it
// holds, lower-cased (credentialsissuedto, errormessage, originaluid),
// because that is what Lake's own lower-casing of the record gives and
// what queries written against the record format expect.
//
// Every column is optional: a member the record does not have is NULL, as
// in Lake, and an empty string stays an empty string. Pointers say which.

// Row is one CloudTrail event (management, data, network activity, and the
// event-record view of Insights events) in an event data store.
type Row struct {
	EventVersion                 *string           `parquet:"eventversion,optional"`
	UserIdentity                 *UserIdentity     `parquet:"useridentity,optional"`
	EventTime                    time.Time         `parquet:"eventtime,timestamp(microsecond:local)"`
	EventSource                  *string           `parquet:"eventsource,optional"`
	EventName                    *string           `parquet:"eventname,optional"`
	AWSRegion                    *string           `parquet:"awsregion,optional"`
	SourceIPAddress              *string           `parquet:"sourceipaddress,optional"`
	UserAgent                    *string           `parquet:"useragent,optional"`
	ErrorCode                    *string           `parquet:"errorcode,optional"`
	ErrorMessage                 *string           `parquet:"errormessage,optional"`
	RequestParameters            map[string]string `parquet:"requestparameters,optional"`
	ResponseElements             map[string]string `parquet:"responseelements,optional"`
	AdditionalEventData          map[string]string `parquet:"additionaleventdata,optional"`
	RequestID                    *string           `parquet:"requestid,optional"`
	EventID                      string            `parquet:"eventid"`
	ReadOnly                     *bool             `parquet:"readonly,optional"`
	Resources                    []Resource        `parquet:"resources,optional,list"`
	EventType                    *string           `parquet:"eventtype,optional"`
	APIVersion                   *string           `parquet:"apiversion,optional"`
	ManagementEvent              *bool             `parquet:"managementevent,optional"`
	RecipientAccountID           *string           `parquet:"recipientaccountid,optional"`
	SharedEventID                *string           `parquet:"sharedeventid,optional"`
	Annotation                   *string           `parquet:"annotation,optional"`
	VPCEndpointID                *string           `parquet:"vpcendpointid,optional"`
	VPCEndpointAccountID         *string           `parquet:"vpcendpointaccountid,optional"`
	ServiceEventDetails          map[string]string `parquet:"serviceeventdetails,optional"`
	Addendum                     map[string]string `parquet:"addendum,optional"`
	EdgeDeviceDetails            map[string]string `parquet:"edgedevicedetails,optional"`
	InsightDetails               map[string]string `parquet:"insightdetails,optional"`
	EventCategory                *string           `parquet:"eventcategory,optional"`
	TLSDetails                   *TLSDetails       `parquet:"tlsdetails,optional"`
	SessionCredentialFromConsole *string           `parquet:"sessioncredentialfromconsole,optional"`
	EventJSON                    string            `parquet:"eventjson"`
	EventJSONChecksum            string            `parquet:"eventjsonchecksum"`
}

// UserIdentity is the useridentity struct.
type UserIdentity struct {
	Type             *string         `parquet:"type,optional"`
	PrincipalID      *string         `parquet:"principalid,optional"`
	ARN              *string         `parquet:"arn,optional"`
	AccountID        *string         `parquet:"accountid,optional"`
	AccessKeyID      *string         `parquet:"accesskeyid,optional"`
	UserName         *string         `parquet:"username,optional"`
	SessionContext   *SessionContext `parquet:"sessioncontext,optional"`
	OnBehalfOf       *OnBehalfOf     `parquet:"onbehalfof,optional"`
	InScopeOf        *InScopeOf      `parquet:"inscopeof,optional"`
	InvokedBy        *string         `parquet:"invokedby,optional"`
	IdentityProvider *string         `parquet:"identityprovider,optional"`
}

// SessionContext is useridentity.sessioncontext.
type SessionContext struct {
	Attributes          *SessionAttributes   `parquet:"attributes,optional"`
	SessionIssuer       *SessionIssuer       `parquet:"sessionissuer,optional"`
	WebIDFederationData *WebIDFederationData `parquet:"webidfederationdata,optional"`
	SourceIdentity      *string              `parquet:"sourceidentity,optional"`
	EC2RoleDelivery     *string              `parquet:"ec2roledelivery,optional"`
	EC2IssuedInVPC      *string              `parquet:"ec2issuedinvpc,optional"`
}

// SessionAttributes is useridentity.sessioncontext.attributes.
type SessionAttributes struct {
	CreationDate     *time.Time `parquet:"creationdate,optional,timestamp(microsecond:local)"`
	MFAAuthenticated *string    `parquet:"mfaauthenticated,optional"`
}

// SessionIssuer is useridentity.sessioncontext.sessionissuer.
type SessionIssuer struct {
	Type        *string `parquet:"type,optional"`
	PrincipalID *string `parquet:"principalid,optional"`
	ARN         *string `parquet:"arn,optional"`
	AccountID   *string `parquet:"accountid,optional"`
	UserName    *string `parquet:"username,optional"`
}

// WebIDFederationData is useridentity.sessioncontext.webidfederationdata.
type WebIDFederationData struct {
	FederatedProvider *string           `parquet:"federatedprovider,optional"`
	Attributes        map[string]string `parquet:"attributes,optional"`
}

// OnBehalfOf is useridentity.onbehalfof (IAM Identity Center callers).
type OnBehalfOf struct {
	UserID           *string `parquet:"userid,optional"`
	IdentityStoreARN *string `parquet:"identitystorearn,optional"`
}

// InScopeOf is useridentity.inscopeof.
type InScopeOf struct {
	SourceARN           *string `parquet:"sourcearn,optional"`
	SourceAccount       *string `parquet:"sourceaccount,optional"`
	IssuerType          *string `parquet:"issuertype,optional"`
	CredentialsIssuedTo *string `parquet:"credentialsissuedto,optional"`
}

// Resource is one element of the resources array.
type Resource struct {
	AccountID *string `parquet:"accountid,optional"`
	Type      *string `parquet:"type,optional"`
	ARN       *string `parquet:"arn,optional"`
	ARNPrefix *string `parquet:"arnprefix,optional"`
}

// TLSDetails is the tlsdetails struct.
type TLSDetails struct {
	TLSVersion               *string `parquet:"tlsversion,optional"`
	CipherSuite              *string `parquet:"ciphersuite,optional"`
	ClientProvidedHostHeader *string `parquet:"clientprovidedhostheader,optional"`
}

// AuditRow is one ActivityAuditLog event (a PutAuditEvents event from a
// channel) in an event data store: Lake's schema for non-AWS events.
type AuditRow struct {
	EventVersion       *string        `parquet:"eventversion,optional"`
	EventCategory      *string        `parquet:"eventcategory,optional"`
	EventType          *string        `parquet:"eventtype,optional"`
	EventID            string         `parquet:"eventid"`
	EventTime          time.Time      `parquet:"eventtime,timestamp(microsecond:local)"`
	AWSRegion          *string        `parquet:"awsregion,optional"`
	RecipientAccountID *string        `parquet:"recipientaccountid,optional"`
	Addendum           *AuditAddendum `parquet:"addendum,optional"`
	Metadata           *AuditMetadata `parquet:"metadata,optional"`
	EventData          *AuditData     `parquet:"eventdata,optional"`
}

// AuditAddendum is the addendum struct of an ActivityAuditLog event.
type AuditAddendum struct {
	Reason          *string `parquet:"reason,optional"`
	UpdatedFields   *string `parquet:"updatedfields,optional"`
	OriginalUID     *string `parquet:"originaluid,optional"`
	OriginalEventID *string `parquet:"originaleventid,optional"`
}

// AuditMetadata is what CloudTrail adds about the channel.
type AuditMetadata struct {
	IngestionTime *string `parquet:"ingestiontime,optional"`
	ChannelARN    *string `parquet:"channelarn,optional"`
}

// AuditData is eventdata: the caller's event as sent to PutAuditEvents.
type AuditData struct {
	Version             *string           `parquet:"version,optional"`
	UserIdentity        *AuditIdentity    `parquet:"useridentity,optional"`
	UserAgent           *string           `parquet:"useragent,optional"`
	EventSource         *string           `parquet:"eventsource,optional"`
	EventName           *string           `parquet:"eventname,optional"`
	EventTime           *string           `parquet:"eventtime,optional"`
	UID                 *string           `parquet:"uid,optional"`
	RequestParameters   map[string]string `parquet:"requestparameters,optional"`
	ResponseElements    map[string]string `parquet:"responseelements,optional"`
	ErrorCode           *string           `parquet:"errorcode,optional"`
	ErrorMessage        *string           `parquet:"errormessage,optional"`
	SourceIPAddress     *string           `parquet:"sourceipaddress,optional"`
	RecipientAccountID  *string           `parquet:"recipientaccountid,optional"`
	AdditionalEventData map[string]string `parquet:"additionaleventdata,optional"`
}

// AuditIdentity is eventdata.useridentity.
type AuditIdentity struct {
	Type        *string           `parquet:"type,optional"`
	PrincipalID *string           `parquet:"principalid,optional"`
	Details     map[string]string `parquet:"details,optional"`
}

// Schema kinds: which row type a store's files hold.
const (
	kindEvents = iota // Row
	kindAudit         // AuditRow
)

// kindOf is the schema of a store of this category.
func kindOf(category string) int {
	if category == lake.CategoryActivityAuditLog {
		return kindAudit
	}
	return kindEvents
}

// Column lists in DuckDB's type syntax, in the files' column order. They
// are kept by hand next to the row types; TestColumnsMatchFiles checks
// them against what DuckDB's rules make of the Parquet schema.
const (
	duckMap = "MAP(VARCHAR, VARCHAR)"

	eventColumns = "eventversion VARCHAR, " +
		"useridentity STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, accesskeyid VARCHAR, username VARCHAR, " +
		"sessioncontext STRUCT(attributes STRUCT(creationdate TIMESTAMP, mfaauthenticated VARCHAR), " +
		"sessionissuer STRUCT(type VARCHAR, principalid VARCHAR, arn VARCHAR, accountid VARCHAR, username VARCHAR), " +
		"webidfederationdata STRUCT(federatedprovider VARCHAR, attributes " + duckMap + "), " +
		"sourceidentity VARCHAR, ec2roledelivery VARCHAR, ec2issuedinvpc VARCHAR), " +
		"onbehalfof STRUCT(userid VARCHAR, identitystorearn VARCHAR), " +
		"inscopeof STRUCT(sourcearn VARCHAR, sourceaccount VARCHAR, issuertype VARCHAR, credentialsissuedto VARCHAR), " +
		"invokedby VARCHAR, identityprovider VARCHAR), " +
		"eventtime TIMESTAMP, eventsource VARCHAR, eventname VARCHAR, awsregion VARCHAR, sourceipaddress VARCHAR, " +
		"useragent VARCHAR, errorcode VARCHAR, errormessage VARCHAR, " +
		"requestparameters " + duckMap + ", responseelements " + duckMap + ", additionaleventdata " + duckMap + ", " +
		"requestid VARCHAR, eventid VARCHAR, readonly BOOLEAN, " +
		"resources STRUCT(accountid VARCHAR, type VARCHAR, arn VARCHAR, arnprefix VARCHAR)[], " +
		"eventtype VARCHAR, apiversion VARCHAR, managementevent BOOLEAN, recipientaccountid VARCHAR, " +
		"sharedeventid VARCHAR, annotation VARCHAR, vpcendpointid VARCHAR, vpcendpointaccountid VARCHAR, " +
		"serviceeventdetails " + duckMap + ", addendum " + duckMap + ", edgedevicedetails " + duckMap + ", insightdetails " + duckMap + ", " +
		"eventcategory VARCHAR, " +
		"tlsdetails STRUCT(tlsversion VARCHAR, ciphersuite VARCHAR, clientprovidedhostheader VARCHAR), " +
		"sessioncredentialfromconsole VARCHAR, eventjson VARCHAR, eventjsonchecksum VARCHAR"

	auditColumns = "eventversion VARCHAR, eventcategory VARCHAR, eventtype VARCHAR, eventid VARCHAR, " +
		"eventtime TIMESTAMP, awsregion VARCHAR, recipientaccountid VARCHAR, " +
		"addendum STRUCT(reason VARCHAR, updatedfields VARCHAR, originaluid VARCHAR, originaleventid VARCHAR), " +
		"metadata STRUCT(ingestiontime VARCHAR, channelarn VARCHAR), " +
		"eventdata STRUCT(version VARCHAR, useridentity STRUCT(type VARCHAR, principalid VARCHAR, details " + duckMap + "), " +
		"useragent VARCHAR, eventsource VARCHAR, eventname VARCHAR, eventtime VARCHAR, uid VARCHAR, " +
		"requestparameters " + duckMap + ", responseelements " + duckMap + ", errorcode VARCHAR, errormessage VARCHAR, " +
		"sourceipaddress VARCHAR, recipientaccountid VARCHAR, additionaleventdata " + duckMap + ")"
)

// Columns returns the columns of a store of the given category (one of
// lake's Category constants) in DuckDB's type syntax, in the files' order:
// "eventversion VARCHAR, useridentity STRUCT(...), ...". The query engine
// gives it to an empty store, which has no file to take a schema from, so
// that a query over it fails or succeeds exactly as over a store with
// files. ActivityAuditLog stores have the non-AWS event schema; every
// other category the CloudTrail event schema.
func Columns(category string) string {
	if kindOf(category) == kindAudit {
		return auditColumns
	}
	return eventColumns
}

// ColumnNames returns the top-level column names of Columns(category).
func ColumnNames(category string) []string {
	var names []string
	depth := 0
	start := true
	cols := Columns(category)
	for i := 0; i < len(cols); i++ {
		switch c := cols[i]; {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			start = true
		case start && c != ' ':
			end := strings.IndexByte(cols[i:], ' ')
			names = append(names, cols[i:i+end])
			i += end
			start = false
		}
	}
	return names
}
