package bench

import "time"

// renderRecord writes g.c as a CloudTrail record, members in AWS's order.
func (g *Generator) renderRecord(b []byte) []byte {
	c := &g.c
	b = append(b, `{"eventVersion":"`...)
	b = append(b, c.version...)
	b = append(b, `","userIdentity":`...)
	b = g.appendIdentity(b, c.who, c.t)
	b = append(b, `,"eventTime":`...)
	b = appendTime(b, c.t)
	b = member(b, "eventSource", c.op.source)
	b = member(b, "eventName", c.op.name)
	b = member(b, "awsRegion", g.opts.Region)
	b = member(b, "sourceIPAddress", c.sourceIP)
	b = member(b, "userAgent", c.userAgent)
	if c.errCode != "" {
		b = member(b, "errorCode", c.errCode)
		b = member(b, "errorMessage", c.errMsg)
	}
	b = key(b, "requestParameters")
	b = appendRawOrNull(b, c.req)
	b = key(b, "responseElements")
	b = appendRawOrNull(b, c.resp)
	if c.extra != nil {
		b = key(b, "additionalEventData")
		b = append(b, c.extra...)
	}
	if c.requestID != "" {
		b = member(b, "requestID", c.requestID)
	}
	b = member(b, "eventID", c.eventID)
	b = key(b, "readOnly")
	b = appendBool(b, c.op.readOnly)
	if len(c.resources) > 0 {
		b = append(b, `,"resources":[`...)
		for i, r := range c.resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"accountId":`...)
			b = appendString(b, g.opts.AccountID)
			b = append(b, `,"type":`...)
			b = appendString(b, r.typ)
			b = append(b, `,"ARN":`...)
			b = appendString(b, r.arn)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = member(b, "eventType", c.eventType)
	b = append(b, `,"managementEvent":true`...)
	b = member(b, "recipientAccountId", g.opts.AccountID)
	b = append(b, `,"eventCategory":"Management"`...)
	if c.who.typ != "AWSService" {
		b = append(b, `,"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"`...)
		b = append(b, serviceName(c.op.source)...)
		b = append(b, '.')
		b = append(b, g.opts.Region...)
		b = append(b, `.amazonaws.com"}`...)
		if c.userAgent == "console.amazonaws.com" && c.version != "1.08" {
			b = append(b, `,"sessionCredentialFromConsole":"true"`...)
		}
	}
	return append(b, '}')
}

func appendRawOrNull(b, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return append(b, v...)
}

// appendIdentity writes a record's userIdentity (reference §3.2).
func (g *Generator) appendIdentity(b []byte, p *principal, t time.Time) []byte {
	acct := g.opts.AccountID
	b = append(b, `{"type":`...)
	b = appendString(b, p.typ)
	switch p.typ {
	case "AWSService":
		return append(member(b, "invokedBy", p.invokedBy), '}')
	case "AWSAccount":
		b = member(b, "principalId", p.principalID)
		b = member(b, "accountId", p.userName)
		return append(b, '}')
	}
	b = member(b, "principalId", p.principalID)
	b = member(b, "arn", p.arn)
	b = member(b, "accountId", acct)
	b = member(b, "accessKeyId", p.accessKey)
	switch p.typ {
	case "IAMUser":
		b = member(b, "userName", p.userName)
	case "AssumedRole":
		b = append(b, `,"sessionContext":{"sessionIssuer":{"type":"Role"`...)
		b = member(b, "principalId", p.issuer.principalID)
		b = member(b, "arn", p.issuer.arn)
		b = member(b, "accountId", acct)
		b = member(b, "userName", p.issuer.userName)
		b = append(b, `},"webIdFederationData":{},"attributes":{"creationDate":`...)
		b = appendTime(b, t.Add(-time.Duration(t.Unix()%3600)*time.Second))
		b = append(b, `,"mfaAuthenticated":`...)
		b = appendString(b, boolString(p.mfa))
		b = append(b, `}}`...)
	case "Root", "FederatedUser":
		b = append(b, `,"sessionContext":{`...)
		if p.typ == "FederatedUser" {
			b = append(b, `"sessionIssuer":{"type":"IAMUser","principalId":"AIDAEXAMPLEFEDERATOR1","arn":"arn:aws:iam::`...)
			b = append(b, acct...)
			b = append(b, `:user/federation-broker","accountId":`...)
			b = appendString(b, acct)
			b = append(b, `,"userName":"federation-broker"},`...)
		}
		b = append(b, `"attributes":{"creationDate":`...)
		b = appendTime(b, t.Add(-time.Duration(t.Unix()%1800)*time.Second))
		b = append(b, `,"mfaAuthenticated":`...)
		b = appendString(b, boolString(p.mfa))
		b = append(b, `}}`...)
	}
	return append(b, '}')
}

func boolString(v bool) string {
	if v {
		return "true"
	}
	return "false"
}

// maxEventDataErrorMessage is PutAuditEvents' errorMessage limit.
const maxEventDataErrorMessage = 256

// renderEventData writes g.c as PutAuditEvents eventData (reference §2.2):
// the caller's own view of the event, with the event's own ID as UID. The
// full CloudTrail-style identity goes to userIdentity.details and what has
// no eventData member (request ID, readOnly, TLS details, the additional
// data) to additionalEventData, as integrations that forward AWS-shaped
// events do, so eventData is about as large as the record it stands for.
func (g *Generator) renderEventData(b []byte) []byte {
	c := &g.c
	p := c.who
	b = append(b, `{"version":"1.0","userIdentity":{"type":`...)
	b = appendString(b, p.typ)
	b = member(b, "principalId", p.principalID)
	b = append(b, `,"details":`...)
	b = g.appendIdentity(b, p, c.t)
	b = append(b, '}')
	b = member(b, "userAgent", c.userAgent)
	b = member(b, "eventSource", c.op.source)
	b = member(b, "eventName", c.op.name)
	b = key(b, "eventTime")
	b = appendTime(b, c.t)
	b = member(b, "UID", c.eventID)
	if c.req != nil {
		b = key(b, "requestParameters")
		b = append(b, c.req...)
	}
	if c.resp != nil {
		b = key(b, "responseElements")
		b = append(b, c.resp...)
	}
	if c.errCode != "" {
		b = member(b, "errorCode", c.errCode)
		msg := c.errMsg
		if len(msg) > maxEventDataErrorMessage {
			msg = msg[:maxEventDataErrorMessage]
		}
		b = member(b, "errorMessage", msg)
	}
	if p.typ != "AWSService" { // service principals call from host names, not IPs
		b = member(b, "sourceIPAddress", c.sourceIP)
	}
	b = member(b, "recipientAccountId", g.opts.AccountID)
	b = append(b, `,"additionalEventData":{"readOnly":`...)
	b = appendBool(b, c.op.readOnly)
	if c.requestID != "" {
		b = member(b, "requestID", c.requestID)
	}
	b = member(b, "awsRegion", g.opts.Region)
	b = append(b, `,"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"`...)
	b = append(b, serviceName(c.op.source)...)
	b = append(b, '.')
	b = append(b, g.opts.Region...)
	b = append(b, `.amazonaws.com"}`...)
	if len(c.extra) > 2 {
		b = append(b, ',')
		b = append(b, c.extra[1:]...) // the additional data's members
	} else {
		b = append(b, '}')
	}
	return append(b, '}')
}
