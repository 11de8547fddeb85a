package ingest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/selector"
)

// errNotRecord is returned for a record a row cannot be made of.
var errNotRecord = errors.New("lake: not an event record")

// Conversion walks the record's canonical bytes (event.Record.Raw: compact,
// validated JSON) once, member by member, instead of decoding it into maps:
// every string that needs no unescaping is a substring of one copy of the
// record, so a row costs a handful of allocations however many columns it
// has. Member names are matched case-insensitively, as Lake's lower-cased
// schema does ("ARN" and "arn" in resources both land in arn).
//
// Values are taken as the schema types them:
//   - a string column takes a JSON string's value; any other JSON value
//     (a number, a boolean, an object where a string was expected) is kept
//     as its JSON text rather than dropped; null is NULL;
//   - a map<string,string> column takes an object's members: strings as
//     their value, everything else (objects, arrays, numbers, booleans,
//     null) as compact JSON text, which json_extract and friends read;
//   - a boolean column takes true/false (or their string forms, which some
//     producers write); anything else is NULL;
//   - a timestamp takes CloudTrail's time forms; anything else is NULL.

// source is one record being converted.
type source struct {
	b []byte // the record's compact JSON
	s string // the same bytes as a string: values are substrings of it
	a *arena
	// kb holds the lower-cased member name being matched.
	kb [64]byte
}

// arena hands out the pointers a row's optional columns need from slabs,
// so that a batch of rows costs a few large allocations, not one per
// column. Rows keep their slabs alive; a slab is never reused.
type arena struct {
	strs     []string
	bools    []bool
	ids      slab[UserIdentity]
	contexts slab[SessionContext]
	attrs    slab[SessionAttributes]
	issuers  slab[SessionIssuer]
	tls      slab[TLSDetails]
}

const slabLen = 4096

// slab hands out zeroed values of T from shared backing arrays.
type slab[T any] struct{ free []T }

func (s *slab[T]) get() *T {
	if len(s.free) == 0 {
		s.free = make([]T, 512)
	}
	v := &s.free[0]
	s.free = s.free[1:]
	return v
}

func (a *arena) str(v string) *string {
	if len(a.strs) == cap(a.strs) {
		a.strs = make([]string, 0, slabLen)
	}
	a.strs = append(a.strs, v)
	return &a.strs[len(a.strs)-1]
}

func (a *arena) bool(v bool) *bool {
	if len(a.bools) == cap(a.bools) {
		a.bools = make([]bool, 0, slabLen)
	}
	a.bools = append(a.bools, v)
	return &a.bools[len(a.bools)-1]
}

// eachMember calls fn for every member of the object at b[i:], with the
// member's name (escapes decoded) and the offsets of its value.
func (src *source) eachMember(i int, fn func(name string, vs, ve int)) {
	b := src.b
	if i >= len(b) || b[i] != '{' {
		return
	}
	i++
	if b[i] == '}' {
		return
	}
	for {
		ke := event.SkipString(b, i)
		name := src.unquote(i, ke)
		vs := ke + 1 // past ':'
		ve := event.SkipValue(b, vs)
		fn(name, vs, ve)
		if ve >= len(b) || b[ve] != ',' {
			return
		}
		i = ve + 1
	}
}

// unquote returns the value of the JSON string b[s:e] (quotes included).
func (src *source) unquote(s, e int) string {
	raw := src.b[s:e]
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' {
			var v string
			if json.Unmarshal(raw, &v) != nil {
				return src.s[s+1 : e-1]
			}
			return v
		}
	}
	return src.s[s+1 : e-1]
}

// text is a string column's value: a string's value, another value's
// JSON text, nil for null.
func (src *source) text(vs, ve int) *string {
	switch src.b[vs] {
	case '"':
		return src.a.str(src.unquote(vs, ve))
	case 'n':
		return nil
	}
	return src.a.str(src.s[vs:ve])
}

// plain is text without the pointer, "" for null.
func (src *source) plain(vs, ve int) string {
	switch src.b[vs] {
	case '"':
		return src.unquote(vs, ve)
	case 'n':
		return ""
	}
	return src.s[vs:ve]
}

// boolean reads true/false or their string forms.
func (src *source) boolean(vs, ve int) *bool {
	v := src.s[vs:ve]
	if len(v) > 1 && v[0] == '"' {
		v = v[1 : len(v)-1]
	}
	switch {
	case strings.EqualFold(v, "true"):
		return src.a.bool(true)
	case strings.EqualFold(v, "false"):
		return src.a.bool(false)
	}
	return nil
}

// stringMap is a map<string,string> column: nil unless the value is an
// object.
func (src *source) stringMap(vs, ve int) map[string]string {
	if src.b[vs] != '{' {
		return nil
	}
	m := make(map[string]string, 4)
	src.eachMember(vs, func(name string, s, e int) {
		if src.b[s] == '"' {
			m[name] = src.unquote(s, e)
		} else {
			m[name] = src.s[s:e]
		}
	})
	return m
}

// timestamp reads a CloudTrail time (RFC 3339 or the basic form
// 20131102T010628Z older session attributes carry).
func (src *source) timestamp(vs, ve int) *time.Time {
	if src.b[vs] != '"' {
		return nil
	}
	v := src.unquote(vs, ve)
	t, err := event.ParseTime(v)
	if err != nil {
		if t, err = time.Parse("20060102T150405Z", v); err != nil {
			return nil
		}
	}
	t = t.UTC().Truncate(time.Microsecond)
	return &t
}

// lower returns name in lower case for a switch on member names. It does
// not allocate: the result may live in src.kb, so it is only valid until
// the next call (the switch has been decided by then).
func (src *source) lower(name string) string {
	upper := false
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return name
	}
	if len(name) > len(src.kb) {
		return strings.ToLower(name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		src.kb[i] = c
	}
	return unsafe.String(&src.kb[0], len(name))
}

// Checksum is eventjsonchecksum: the base64 (standard, padded) SHA-256 of
// the eventjson column's bytes. AWS documents the column but not how its
// value is made; Cairn uses the convention CloudTrail uses for
// PutAuditEvents' eventDataChecksum, so that
// `printf %s "$eventjson" | openssl dgst -binary -sha256 | base64` checks
// it.
func Checksum(eventJSON []byte) string {
	sum := sha256.Sum256(eventJSON)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// makeRow converts a CloudTrail record (its compact JSON in src, what
// selection read of it in h) into a Row. The row's strings share src.s.
func makeRow(src *source, h *header) (Row, error) {
	if h.eventID == "" {
		return Row{}, errNotRecord
	}
	a := src.a
	// Timestamps are stored to the microsecond (CloudTrail writes whole
	// seconds); finer digits of other producers are dropped.
	row := Row{EventTime: h.eventTime.Truncate(time.Microsecond), EventID: h.eventID, EventJSON: src.s, EventJSONChecksum: Checksum(src.b)}
	src.eachMember(0, func(name string, vs, ve int) {
		switch src.lower(name) {
		case "eventversion":
			row.EventVersion = src.text(vs, ve)
		case "useridentity":
			row.UserIdentity = src.userIdentity(vs)
		case "eventsource":
			row.EventSource = src.text(vs, ve)
		case "eventname":
			row.EventName = src.text(vs, ve)
		case "awsregion":
			row.AWSRegion = src.text(vs, ve)
		case "sourceipaddress":
			row.SourceIPAddress = src.text(vs, ve)
		case "useragent":
			row.UserAgent = src.text(vs, ve)
		case "errorcode":
			row.ErrorCode = src.text(vs, ve)
		case "errormessage":
			row.ErrorMessage = src.text(vs, ve)
		case "requestparameters":
			row.RequestParameters = src.stringMap(vs, ve)
		case "responseelements":
			row.ResponseElements = src.stringMap(vs, ve)
		case "additionaleventdata":
			row.AdditionalEventData = src.stringMap(vs, ve)
		case "requestid":
			row.RequestID = src.text(vs, ve)
		case "readonly":
			row.ReadOnly = src.boolean(vs, ve)
		case "resources":
			row.Resources = src.resources(vs)
		case "eventtype":
			row.EventType = src.text(vs, ve)
		case "apiversion":
			row.APIVersion = src.text(vs, ve)
		case "managementevent":
			row.ManagementEvent = src.boolean(vs, ve)
		case "recipientaccountid":
			row.RecipientAccountID = src.text(vs, ve)
		case "sharedeventid":
			row.SharedEventID = src.text(vs, ve)
		case "annotation":
			row.Annotation = src.text(vs, ve)
		case "vpcendpointid":
			row.VPCEndpointID = src.text(vs, ve)
		case "vpcendpointaccountid":
			row.VPCEndpointAccountID = src.text(vs, ve)
		case "serviceeventdetails":
			row.ServiceEventDetails = src.stringMap(vs, ve)
		case "addendum":
			row.Addendum = src.stringMap(vs, ve)
		case "edgedevicedetails":
			row.EdgeDeviceDetails = src.stringMap(vs, ve)
		case "insightdetails":
			row.InsightDetails = src.stringMap(vs, ve)
		case "eventcategory":
			row.EventCategory = src.text(vs, ve)
		case "tlsdetails":
			row.TLSDetails = src.tlsDetails(vs)
		case "sessioncredentialfromconsole":
			row.SessionCredentialFromConsole = src.text(vs, ve)
		}
	})
	if row.EventCategory == nil {
		// Records older than eventVersion 1.07 have no eventCategory; Lake
		// stores the category the store selected them by, which is the one
		// the record is inferred to have.
		row.EventCategory = a.str(h.category)
	}
	return row, nil
}

func (src *source) userIdentity(vs int) *UserIdentity {
	if src.b[vs] != '{' {
		return nil
	}
	u := src.a.ids.get()
	src.eachMember(vs, func(name string, s, e int) {
		switch src.lower(name) {
		case "type":
			u.Type = src.text(s, e)
		case "principalid":
			u.PrincipalID = src.text(s, e)
		case "arn":
			u.ARN = src.text(s, e)
		case "accountid":
			u.AccountID = src.text(s, e)
		case "accesskeyid":
			u.AccessKeyID = src.text(s, e)
		case "username":
			u.UserName = src.text(s, e)
		case "sessioncontext":
			u.SessionContext = src.sessionContext(s)
		case "onbehalfof":
			if src.b[s] == '{' {
				o := &OnBehalfOf{}
				src.eachMember(s, func(name string, s, e int) {
					switch src.lower(name) {
					case "userid":
						o.UserID = src.text(s, e)
					case "identitystorearn":
						o.IdentityStoreARN = src.text(s, e)
					}
				})
				u.OnBehalfOf = o
			}
		case "inscopeof":
			if src.b[s] == '{' {
				o := &InScopeOf{}
				src.eachMember(s, func(name string, s, e int) {
					switch src.lower(name) {
					case "sourcearn":
						o.SourceARN = src.text(s, e)
					case "sourceaccount":
						o.SourceAccount = src.text(s, e)
					case "issuertype":
						o.IssuerType = src.text(s, e)
					case "credentialsissuedto":
						o.CredentialsIssuedTo = src.text(s, e)
					}
				})
				u.InScopeOf = o
			}
		case "invokedby":
			u.InvokedBy = src.text(s, e)
		case "identityprovider":
			u.IdentityProvider = src.text(s, e)
		}
	})
	return u
}

func (src *source) sessionContext(vs int) *SessionContext {
	if src.b[vs] != '{' {
		return nil
	}
	c := src.a.contexts.get()
	src.eachMember(vs, func(name string, s, e int) {
		switch src.lower(name) {
		case "attributes":
			if src.b[s] == '{' {
				a := src.a.attrs.get()
				src.eachMember(s, func(name string, s, e int) {
					switch src.lower(name) {
					case "creationdate":
						a.CreationDate = src.timestamp(s, e)
					case "mfaauthenticated":
						a.MFAAuthenticated = src.text(s, e)
					}
				})
				c.Attributes = a
			}
		case "sessionissuer":
			if src.b[s] == '{' {
				i := src.a.issuers.get()
				src.eachMember(s, func(name string, s, e int) {
					switch src.lower(name) {
					case "type":
						i.Type = src.text(s, e)
					case "principalid":
						i.PrincipalID = src.text(s, e)
					case "arn":
						i.ARN = src.text(s, e)
					case "accountid":
						i.AccountID = src.text(s, e)
					case "username":
						i.UserName = src.text(s, e)
					}
				})
				c.SessionIssuer = i
			}
		case "webidfederationdata":
			if src.b[s] == '{' {
				w := &WebIDFederationData{}
				src.eachMember(s, func(name string, s, e int) {
					switch src.lower(name) {
					case "federatedprovider":
						w.FederatedProvider = src.text(s, e)
					case "attributes":
						w.Attributes = src.stringMap(s, e)
					}
				})
				c.WebIDFederationData = w
			}
		case "sourceidentity":
			c.SourceIdentity = src.text(s, e)
		case "ec2roledelivery":
			c.EC2RoleDelivery = src.text(s, e)
		case "ec2issuedinvpc":
			c.EC2IssuedInVPC = src.text(s, e)
		}
	})
	return c
}

func (src *source) resources(vs int) []Resource {
	b := src.b
	if b[vs] != '[' {
		return nil
	}
	out := []Resource{}
	i := vs + 1
	if b[i] == ']' {
		return out
	}
	for {
		e := event.SkipValue(b, i)
		if b[i] == '{' {
			var r Resource
			src.eachMember(i, func(name string, s, e int) {
				switch src.lower(name) {
				case "accountid":
					r.AccountID = src.text(s, e)
				case "type":
					r.Type = src.text(s, e)
				case "arn":
					r.ARN = src.text(s, e)
				case "arnprefix":
					r.ARNPrefix = src.text(s, e)
				}
			})
			out = append(out, r)
		}
		if e >= len(b) || b[e] != ',' {
			return out
		}
		i = e + 1
	}
}

func (src *source) tlsDetails(vs int) *TLSDetails {
	if src.b[vs] != '{' {
		return nil
	}
	t := src.a.tls.get()
	src.eachMember(vs, func(name string, s, e int) {
		switch src.lower(name) {
		case "tlsversion":
			t.TLSVersion = src.text(s, e)
		case "ciphersuite":
			t.CipherSuite = src.text(s, e)
		case "clientprovidedhostheader":
			t.ClientProvidedHostHeader = src.text(s, e)
		}
	})
	return t
}

// makeAuditRow converts a channel event (the stored envelope of reference
// §2.3, see internal/channel.BuildRecord) into an AuditRow. The members
// CloudTrail lifts out of eventData into the record (userIdentity,
// requestParameters, ...) are read from eventData itself, which is the
// caller's event as sent.
func makeAuditRow(src *source, h *header) (AuditRow, error) {
	if h.eventID == "" {
		return AuditRow{}, errNotRecord
	}
	row := AuditRow{EventTime: h.eventTime.Truncate(time.Microsecond), EventID: h.eventID}
	src.eachMember(0, func(name string, vs, ve int) {
		switch src.lower(name) {
		case "eventversion":
			row.EventVersion = src.text(vs, ve)
		case "eventcategory":
			row.EventCategory = src.text(vs, ve)
		case "eventtype":
			row.EventType = src.text(vs, ve)
		case "awsregion":
			row.AWSRegion = src.text(vs, ve)
		case "recipientaccountid":
			row.RecipientAccountID = src.text(vs, ve)
		case "addendum":
			if src.b[vs] == '{' {
				ad := &AuditAddendum{}
				src.eachMember(vs, func(name string, s, e int) {
					switch src.lower(name) {
					case "reason":
						ad.Reason = src.text(s, e)
					case "updatedfields":
						ad.UpdatedFields = src.text(s, e)
					case "originaluid":
						ad.OriginalUID = src.text(s, e)
					case "originaleventid":
						ad.OriginalEventID = src.text(s, e)
					}
				})
				row.Addendum = ad
			}
		case "metadata":
			if src.b[vs] == '{' {
				md := &AuditMetadata{}
				src.eachMember(vs, func(name string, s, e int) {
					switch src.lower(name) {
					case "ingestiontime":
						md.IngestionTime = src.text(s, e)
					case "channelarn":
						md.ChannelARN = src.text(s, e)
					}
				})
				row.Metadata = md
			}
		case "eventdata":
			row.EventData = src.auditData(vs)
		}
	})
	return row, nil
}

func (src *source) auditData(vs int) *AuditData {
	if src.b[vs] != '{' {
		return nil
	}
	d := &AuditData{}
	src.eachMember(vs, func(name string, s, e int) {
		switch src.lower(name) {
		case "version":
			d.Version = src.text(s, e)
		case "useridentity":
			if src.b[s] == '{' {
				u := &AuditIdentity{}
				src.eachMember(s, func(name string, s, e int) {
					switch src.lower(name) {
					case "type":
						u.Type = src.text(s, e)
					case "principalid":
						u.PrincipalID = src.text(s, e)
					case "details":
						u.Details = src.stringMap(s, e)
					}
				})
				d.UserIdentity = u
			}
		case "useragent":
			d.UserAgent = src.text(s, e)
		case "eventsource":
			d.EventSource = src.text(s, e)
		case "eventname":
			d.EventName = src.text(s, e)
		case "eventtime":
			d.EventTime = src.text(s, e)
		case "uid":
			d.UID = src.text(s, e)
		case "requestparameters":
			d.RequestParameters = src.stringMap(s, e)
		case "responseelements":
			d.ResponseElements = src.stringMap(s, e)
		case "errorcode":
			d.ErrorCode = src.text(s, e)
		case "errormessage":
			d.ErrorMessage = src.text(s, e)
		case "sourceipaddress":
			d.SourceIPAddress = src.text(s, e)
		case "recipientaccountid":
			d.RecipientAccountID = src.text(s, e)
		case "additionaleventdata":
			d.AdditionalEventData = src.stringMap(s, e)
		}
	})
	return d
}

// header is what selection needs of a record, read in one pass over its
// top-level members.
type header struct {
	eventTime time.Time
	eventID   string
	category  string
	region    string
	ev        selector.Event
	channel   string // metadata.channelARN of a channel event
}

// newSource prepares a journal entry for conversion: one string copy of
// it that every value of its rows is a substring of.
func newSource(raw []byte, a *arena) *source {
	return &source{b: raw, s: string(raw), a: a}
}

// readHeader reads the record's header. Records without eventCategory
// (eventVersion before 1.07) go through event.Parse, whose inference of
// the category (and of resource types from ARNs) the rest of Cairn
// shares. ok is false for an entry that is not a record (it is not
// ingested, as event.Parse would refuse it).
func readHeader(src *source) (h header, ok bool) {
	defer func() {
		if recover() != nil {
			// Not compact valid JSON (the journal only holds records Cairn
			// validated, so this is corruption): let the parser judge.
			h, ok = parseHeader(src.b)
		}
	}()
	b := src.b
	if len(b) < 2 || b[0] != '{' {
		return parseHeader(b)
	}
	var timeText string
	var haveName bool
	src.eachMember(0, func(name string, vs, ve int) {
		switch name {
		case "eventTime":
			timeText = src.plain(vs, ve)
		case "eventID":
			h.eventID = src.plain(vs, ve)
		case "eventCategory":
			h.category = src.plain(vs, ve)
		case "awsRegion":
			h.region = src.plain(vs, ve)
		case "eventSource":
			h.ev.EventSource = src.plain(vs, ve)
		case "eventName":
			h.ev.EventName = src.plain(vs, ve)
			haveName = b[vs] == '"' && ve-vs > 2
		case "eventType":
			h.ev.EventType = src.plain(vs, ve)
		case "errorCode":
			h.ev.ErrorCode = src.plain(vs, ve)
		case "readOnly":
			h.ev.ReadOnly = ""
			if v := src.boolean(vs, ve); v != nil {
				h.ev.ReadOnly = strconv.FormatBool(*v)
			}
		case "vpcEndpointId":
			h.ev.VpcEndpointID = src.plain(vs, ve)
		case "sessionCredentialFromConsole":
			h.ev.SessionCredentialFromConsole = src.plain(vs, ve)
		case "userIdentity":
			h.ev.UserIdentityARN = ""
			src.eachMember(vs, func(name string, s, e int) {
				if name == "arn" {
					h.ev.UserIdentityARN = src.plain(s, e)
				}
			})
		case "resources":
			h.ev.Resources = h.ev.Resources[:0]
			for _, r := range src.resources(vs) {
				var res selector.Resource
				if r.Type != nil {
					res.Type = *r.Type
				}
				if r.ARN != nil {
					res.ARN = *r.ARN
				}
				h.ev.Resources = append(h.ev.Resources, res)
			}
		case "metadata":
			src.eachMember(vs, func(name string, s, e int) {
				if name == "channelARN" {
					h.channel = src.plain(s, e)
				}
			})
		}
	})
	t, err := event.ParseTime(timeText)
	if h.category == "" || !haveName || err != nil || h.eventID == "" {
		return parseHeader(b)
	}
	h.eventTime = t
	h.ev.EventCategory = h.category
	return h, true
}

// parseHeader is readHeader through event.Parse.
func parseHeader(raw []byte) (header, bool) {
	r, err := event.Parse(raw)
	if err != nil {
		return header{}, false
	}
	h := header{eventTime: r.EventTime, eventID: r.EventID, category: r.Category(), region: r.AWSRegion}
	h.ev = selector.Event{
		EventCategory:   h.category,
		ReadOnly:        r.ReadOnly.String(),
		EventSource:     r.EventSource,
		EventName:       r.EventName,
		EventType:       r.EventType,
		ErrorCode:       r.ErrorCode,
		UserIdentityARN: r.UserIdentityARN,
	}
	for _, res := range r.RecordResources {
		h.ev.Resources = append(h.ev.Resources, selector.Resource{Type: res.Type, ARN: res.ARN})
	}
	h.ev.VpcEndpointID = rawString(r.Field("vpcEndpointId"))
	h.ev.SessionCredentialFromConsole = rawString(r.Field("sessionCredentialFromConsole"))
	var md struct {
		ChannelARN string `json:"channelARN"`
	}
	if json.Unmarshal(r.Field("metadata"), &md) == nil {
		h.channel = md.ChannelARN
	}
	return h, true
}

// rawString decodes a JSON string value ("" for anything else); a bare
// boolean is read as its text.
func rawString(v json.RawMessage) string {
	switch string(v) {
	case "":
		return ""
	case "true", "false":
		return string(v)
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}
