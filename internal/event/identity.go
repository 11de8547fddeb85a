package event

import "strings"

// identity holds the userIdentity sub-fields the extracted view needs.
type identity struct {
	present     bool
	typ         string
	principalID string
	arn         string
	accountID   string
	accessKeyID string
	userName    string
	invokedBy   string
	onBehalfOf  string // onBehalfOf.userId (IAM Identity Center)
}

// parseIdentity puts the raw values of userIdentity's members into their
// slots of vals and reports whether there is a userIdentity object at all
// (Insights records have none).
func parseIdentity(v []byte, vals *[nStringSlots][]byte) (present bool) {
	if len(v) == 0 || v[0] != '{' {
		return false
	}
	eachMember(v, func(k, val []byte) bool {
		if containsBackslash(k) {
			k = []byte(unescape(k))
		}
		switch string(k) {
		case "type":
			vals[sIDType] = val
		case "principalId":
			vals[sIDPrincipalID] = val
		case "arn":
			vals[sIDARN] = val
		case "accountId":
			vals[sIDAccountID] = val
		case "accessKeyId":
			vals[sIDAccessKeyID] = val
		case "userName":
			vals[sIDUserName] = val
		case "invokedBy":
			vals[sIDInvokedBy] = val
		case "onBehalfOf":
			vals[sIDOnBehalfOf] = getMember(val, "userId")
		}
		return true
	})
	return true
}

// lookupUsername is the Username LookupEvents shows for a record.
//
// What real CloudTrail event history returns (checked against published
// `aws cloudtrail lookup-events` output, 2023-2026):
//
//   - IAMUser: userIdentity.userName ("daniel.austin.admin").
//   - AssumedRole: the role session name, i.e. the part of principalId after
//     ':' ("AROA...:adl-ec2-instance-age-12h-alert" -> "adl-ec2-instance-age-12h-alert",
//     also when invokedBy is set: "resource-explorer-2"), which is also the
//     last segment of the assumed-role ARN.
//   - AWSService (userIdentity is just {type, invokedBy}): no Username at all;
//     the event history leaves the field out (KMS Decrypt invoked by
//     cloudfront.amazonaws.com, AssumeRole invoked by resource-explorer-2).
//     Cairn does the same and returns "".
//   - Root: "root" (the console's event history shows "root"; userName may
//     hold the account alias, which the event history does not use).
//   - FederatedUser: the federated user's name, principalId "<acct>:<name>"
//     or ARN ".../federated-user/<name>".
//
// For the other types (SAMLUser, WebIdentityUser, IdentityCenterUser,
// Directory, Role, AWSAccount, Unknown) Cairn uses userName when present, then
// onBehalfOf.userId, then the session part of principalId, then the last ARN
// segment. A record without userIdentity has no Username.
func lookupUsername(id *identity) string {
	if !id.present {
		return ""
	}
	switch id.typ {
	case "IAMUser":
		if id.userName != "" {
			return id.userName
		}
		return lastARNSegment(id.arn)
	case "Root":
		return "root"
	case "AssumedRole", "FederatedUser":
		if s := afterColon(id.principalID); s != "" {
			return s
		}
		return lastARNSegment(id.arn)
	case "AWSService":
		return ""
	}
	if id.userName != "" {
		return id.userName
	}
	if id.onBehalfOf != "" {
		return id.onBehalfOf
	}
	if s := afterColon(id.principalID); s != "" {
		return s
	}
	return lastARNSegment(id.arn)
}

// afterColon returns what follows the first ':' of a principal ID
// ("AROAEXAMPLE:session" -> "session"); "" when there is none.
func afterColon(p string) string {
	_, s, ok := strings.Cut(p, ":")
	if !ok {
		return ""
	}
	return s
}

// lastARNSegment returns the part of an ARN's resource after the last '/'
// ("arn:aws:iam::1:user/path/bob" -> "bob"), or "" for a non-ARN.
func lastARNSegment(arn string) string {
	if !strings.HasPrefix(arn, "arn:") {
		return ""
	}
	if i := strings.LastIndexByte(arn, '/'); i >= 0 {
		return arn[i+1:]
	}
	return ""
}
