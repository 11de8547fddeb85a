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
	EventVersion                 *string           `parquet:"eventversion,optional,dict"`
	UserIdentity                 *UserIdentity     `parquet:"useridentity,optional"`
	EventTime                    time.Time         `parquet:"eventtime,timestamp(microsecond:local)"`
	EventSource                  *string           `parquet:"eventsource,optional,dict"`
	EventName                    *string           `parquet:"eventname,optional,dict"`
	AWSRegion                    *string           `parquet:"awsregion,optional,dict"`
	SourceIPAddress              *string           `parquet:"sourceipaddress,optional,dict"`
	UserAgent                    *string           `parquet:"useragent,optional,dict"`
	ErrorCode                    *string           `parquet:"errorcode,optional,dict"`
	ErrorMessage                 *string           `parquet:"errormessage,optional,dict"`
	RequestParameters            map[string]string `parquet:"requestparameters,optional"`
	ResponseElements             map[string]string `parquet:"responseelements,optional"`
	AdditionalEventData          map[string]string `parquet:"additionaleventdata,optional"`
	RequestID                    *string           `parquet:"requestid,optional"`
	EventID                      string            `parquet:"eventid"`
	ReadOnly                     *bool             `parquet:"readonly,optional"`
	Resources                    []Resource        `parquet:"resources,optional,list"`
	EventType                    *string           `parquet:"eventtype,optional,dict"`
	APIVersion                   *string           `parquet:"apiversion,optional,dict"`
	ManagementEvent              *bool             `parquet:"managementevent,optional"`
	RecipientAccountID           *string           `parquet:"recipientaccountid,optional,dict"`
	SharedEventID                *string           `parquet:"sharedeventid,optional"`
	Annotation                   *string           `parquet:"annotation,optional,dict"`
	VPCEndpointID                *string           `parquet:"vpcendpointid,optional,dict"`
	VPCEndpointAccountID         *string           `parquet:"vpcendpointaccountid,optional,dict"`
	ServiceEventDetails          map[string]string `parquet:"serviceeventdetails,optional"`
	Addendum                     map[string]string `parquet:"addendum,optional"`
	EdgeDeviceDetails            map[string]string `parquet:"edgedevicedetails,optional"`
	InsightDetails               map[string]string `parquet:"insightdetails,optional"`
	EventCategory                *string           `parquet:"eventcategory,optional,dict"`
	TLSDetails                   *TLSDetails       `parquet:"tlsdetails,optional"`
	SessionCredentialFromConsole *string           `parquet:"sessioncredentialfromconsole,optional,dict"`
	EventJSON                    string            `parquet:"eventjson"`
	EventJSONChecksum            string            `parquet:"eventjsonchecksum"`
}

// UserIdentity is the useridentity struct.
type UserIdentity struct {
	Type             *string         `parquet:"type,optional,dict"`
	PrincipalID      *string         `parquet:"principalid,optional,dict"`
	ARN              *string         `parquet:"arn,optional,dict"`
	AccountID        *string         `parquet:"accountid,optional,dict"`
	AccessKeyID      *string         `parquet:"accesskeyid,optional,dict"`
	UserName         *string         `parquet:"username,optional,dict"`
	SessionContext   *SessionContext `parquet:"sessioncontext,optional"`
	OnBehalfOf       *OnBehalfOf     `parquet:"onbehalfof,optional"`
	InScopeOf        *InScopeOf      `parquet:"inscopeof,optional"`
	InvokedBy        *string         `parquet:"invokedby,optional,dict"`
	IdentityProvider *string         `parquet:"identityprovider,optional,dict"`
}

// SessionContext is useridentity.sessioncontext.
type SessionContext struct {
	Attributes          *SessionAttributes   `parquet:"attributes,optional"`
	SessionIssuer       *SessionIssuer       `parquet:"sessionissuer,optional"`
	WebIDFederationData *WebIDFederationData `parquet:"webidfederationdata,optional"`
	SourceIdentity      *string              `parquet:"sourceidentity,optional,dict"`
	EC2RoleDelivery     *string              `parquet:"ec2roledelivery,optional,dict"`
	EC2IssuedInVPC      *string              `parquet:"ec2issuedinvpc,optional,dict"`
}

// SessionAttributes is useridentity.sessioncontext.attributes.
type SessionAttributes struct {
	CreationDate     *time.Time `parquet:"creationdate,optional,timestamp(microsecond:local)"`
	MFAAuthenticated *string    `parquet:"mfaauthenticated,optional,dict"`
}

// SessionIssuer is useridentity.sessioncontext.sessionissuer.
type SessionIssuer struct {
	Type        *string `parquet:"type,optional,dict"`
	PrincipalID *string `parquet:"principalid,optional,dict"`
	ARN         *string `parquet:"arn,optional,dict"`
	AccountID   *string `parquet:"accountid,optional,dict"`
	UserName    *string `parquet:"username,optional,dict"`
}

// WebIDFederationData is useridentity.sessioncontext.webidfederationdata.
type WebIDFederationData struct {
	FederatedProvider *string           `parquet:"federatedprovider,optional,dict"`
	Attributes        map[string]string `parquet:"attributes,optional"`
}

// OnBehalfOf is useridentity.onbehalfof (IAM Identity Center callers).
type OnBehalfOf struct {
	UserID           *string `parquet:"userid,optional,dict"`
	IdentityStoreARN *string `parquet:"identitystorearn,optional,dict"`
}

// InScopeOf is useridentity.inscopeof.
type InScopeOf struct {
	SourceARN           *string `parquet:"sourcearn,optional,dict"`
	SourceAccount       *string `parquet:"sourceaccount,optional,dict"`
	IssuerType          *string `parquet:"issuertype,optional,dict"`
	CredentialsIssuedTo *string `parquet:"credentialsissuedto,optional,dict"`
}

// Resource is one element of the resources array.
type Resource struct {
	AccountID *string `parquet:"accountid,optional,dict"`
	Type      *string `parquet:"type,optional,dict"`
	ARN       *string `parquet:"arn,optional,dict"`
	ARNPrefix *string `parquet:"arnprefix,optional,dict"`
}

// TLSDetails is the tlsdetails struct.
type TLSDetails struct {
	TLSVersion               *string `parquet:"tlsversion,optional,dict"`
	CipherSuite              *string `parquet:"ciphersuite,optional,dict"`
	ClientProvidedHostHeader *string `parquet:"clientprovidedhostheader,optional,dict"`
}

// AuditRow is one ActivityAuditLog event (a PutAuditEvents event from a
// channel) in an event data store: Lake's schema for non-AWS events.
type AuditRow struct {
	EventVersion       *string        `parquet:"eventversion,optional,dict"`
	EventCategory      *string        `parquet:"eventcategory,optional,dict"`
	EventType          *string        `parquet:"eventtype,optional,dict"`
	EventID            string         `parquet:"eventid"`
	EventTime          time.Time      `parquet:"eventtime,timestamp(microsecond:local)"`
	AWSRegion          *string        `parquet:"awsregion,optional,dict"`
	RecipientAccountID *string        `parquet:"recipientaccountid,optional,dict"`
	Addendum           *AuditAddendum `parquet:"addendum,optional"`
	Metadata           *AuditMetadata `parquet:"metadata,optional"`
	EventData          *AuditData     `parquet:"eventdata,optional"`
}

// AuditAddendum is the addendum struct of an ActivityAuditLog event.
type AuditAddendum struct {
	Reason          *string `parquet:"reason,optional,dict"`
	UpdatedFields   *string `parquet:"updatedfields,optional,dict"`
	OriginalUID     *string `parquet:"originaluid,optional"`
	OriginalEventID *string `parquet:"originaleventid,optional"`
}

// AuditMetadata is what CloudTrail adds about the channel.
type AuditMetadata struct {
	IngestionTime *string `parquet:"ingestiontime,optional,dict"`
	ChannelARN    *string `parquet:"channelarn,optional,dict"`
}

// AuditData is eventdata: the caller's event as sent to PutAuditEvents.
type AuditData struct {
	Version             *string           `parquet:"version,optional,dict"`
	UserIdentity        *AuditIdentity    `parquet:"useridentity,optional"`
	UserAgent           *string           `parquet:"useragent,optional,dict"`
	EventSource         *string           `parquet:"eventsource,optional,dict"`
	EventName           *string           `parquet:"eventname,optional,dict"`
	EventTime           *string           `parquet:"eventtime,optional"`
	UID                 *string           `parquet:"uid,optional,dict"`
	RequestParameters   map[string]string `parquet:"requestparameters,optional"`
	ResponseElements    map[string]string `parquet:"responseelements,optional"`
	ErrorCode           *string           `parquet:"errorcode,optional,dict"`
	ErrorMessage        *string           `parquet:"errormessage,optional,dict"`
	SourceIPAddress     *string           `parquet:"sourceipaddress,optional,dict"`
	RecipientAccountID  *string           `parquet:"recipientaccountid,optional,dict"`
	AdditionalEventData map[string]string `parquet:"additionaleventdata,optional"`
}

// AuditIdentity is eventdata.useridentity.
type AuditIdentity struct {
	Type        *string           `parquet:"type,optional,dict"`
	PrincipalID *string           `parquet:"principalid,optional,dict"`
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
