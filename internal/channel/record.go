package channel

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/event"
)

// Per-event errorCodes of PutAuditEvents' failed[] entries (reference §2.1).
const (
	CodeFieldTooLong     = "FieldTooLong"
	CodeFieldNotFound    = "FieldNotFound"
	CodeInvalidChecksum  = "InvalidChecksum"
	CodeInvalidData      = "InvalidData"
	CodeInvalidRecipient = "InvalidRecipient"
)

// eventData limits (reference §2.2). String limits count characters; object
// limits count the bytes of the member's compact JSON.
const (
	maxVersionLen       = 256
	maxIdentityTypeLen  = 128
	maxPrincipalIDLen   = 1024
	maxUserAgentLen     = 1024
	maxEventSourceLen   = 1024
	maxEventNameLen     = 1024
	maxUIDLen           = 1024
	maxErrorCodeLen     = 256
	maxErrorMessageLen  = 256
	maxParametersBytes  = 100 << 10 // requestParameters, responseElements
	maxAdditionalBytes  = 28 << 10  // additionalEventData
	maxFailedMessageLen = 1024      // ResultErrorEntry.errorMessage
	// MaxRecordBytes is the largest record one event may become. It is the
	// journal's entry limit (journal.MaxEntrySize): an event that fits a
	// 1 MB request can still outgrow it once the lifted copies of its
	// requestParameters and responseElements are added, and it must fail
	// alone rather than take the whole batch's Append down with it.
	MaxRecordBytes = 1 << 20
)

// Record layout constants: what CloudTrail adds to a channel event.
const (
	EventCategoryActivityAuditLog = "ActivityAuditLog"
	EventTypeActivityLog          = "ActivityLog"
)

// EventError is why one audit event was rejected: a failed[] entry's
// errorCode and errorMessage.
type EventError struct {
	Code    string
	Message string
}

func (e *EventError) Error() string { return e.Code + ": " + e.Message }

func eventErr(code, format string, args ...any) *EventError {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxFailedMessageLen {
		msg = msg[:maxFailedMessageLen]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	return &EventError{Code: code, Message: msg}
}

// Envelope is what CloudTrail knows about an event besides its eventData:
// the stored Lake envelope of reference §2.3.
type Envelope struct {
	// EventID is the CloudTrail-assigned UUID returned in successful[].
	EventID string
	// Region is the region of the PutAuditEvents call (awsRegion).
	Region string
	// AccountID is the channel owner, who must be the recipientAccountId.
	AccountID string
	// ChannelARN goes to metadata.channelARN.
	ChannelARN string
	// IngestionTime goes to metadata.ingestionTime.
	IngestionTime time.Time
}

// BuildRecord validates one event's eventData (and its checksum, when the
// caller sent one) the way CloudTrail does, and returns the journal entry
// for it: one compact JSON object that is at the same time
//
//   - a CloudTrail record that event.Parse accepts, so the event reaches
//     event history and trails like any other (a Cairn extension: on AWS
//     channel events only reach event data stores), and
//   - the stored Lake envelope of reference §2.3, so that Lake can later give
//     back exactly what CloudTrail Lake shows.
//
// Members, in this order (AWS's record order, envelope members where they
// fit):
//
//	eventVersion        event.CurrentEventVersion (the record format version;
//	                    the caller's eventData.version stays in eventData)
//	userIdentity        {type, principalId, details} from eventData.userIdentity
//	eventTime           eventData.eventTime normalized to YYYY-MM-DDTHH:MM:SSZ
//	eventSource         from eventData
//	eventName           from eventData
//	awsRegion           env.Region
//	sourceIPAddress     from eventData, when present
//	userAgent           from eventData, when present
//	errorCode           from eventData, when present
//	errorMessage        from eventData, when present
//	requestParameters   from eventData, null when absent (as in CloudTrail records)
//	responseElements    from eventData, null when absent
//	additionalEventData from eventData, when present
//	eventID             env.EventID
//	eventType           "ActivityLog"
//	recipientAccountId  env.AccountID (equal to eventData.recipientAccountId)
//	eventCategory       "ActivityAuditLog"
//	metadata            {ingestionTime, channelARN}
//	eventData           the caller's eventData, every member as sent (compacted)
//
// readOnly and managementEvent are left out: nothing in eventData says
// whether the action changed anything, and these are not management events.
// Values lifted from eventData are copied as raw JSON, so escapes and
// number literals stay byte for byte what the caller sent.
func BuildRecord(eventData []byte, checksum *string, env *Envelope) ([]byte, *EventError) {
	var rb recordBuilder
	return rb.build(eventData, checksum, env)
}

// recordBuilder builds the records of one request into shared buffers: a
// request's records all go to one journal Append and die together, so
// they are carved out of one arena instead of being allocated one by one,
// and the compact eventData of each event is made in a reused scratch
// buffer. The zero value is ready to use and allocates as it goes.
type recordBuilder struct {
	scratch []byte // the compact eventData of the event being built
	arena   []byte // the records built so far, back to back
	spans   []event.Member
	members [32]member
	// tail caches envelopeTail for the envelope fields it was made of,
	// which are the same for every event of a request.
	tail        []byte
	tailAt      time.Time
	tailAccount string
	tailChannel string
	// reference makes build validate as it did before the fast path
	// existed, with encoding/json's Compact and the record parser; the
	// tests compare the two.
	reference bool
}

// build is BuildRecord into the builder's arena. The returned record is a
// full slice expression of the arena, so appending to it never overwrites
// the next record.
func (rb *recordBuilder) build(eventData []byte, checksum *string, env *Envelope) ([]byte, *EventError) {
	return rb.buildFrom(eventData, nil, false, checksum, env)
}

// buildEvent is build for a decoded event, which the decoder may have
// compacted already.
func (rb *recordBuilder) buildEvent(e *AuditEvent, env *Envelope) ([]byte, *EventError) {
	return rb.buildFrom(e.EventData, e.spans, e.compacted, e.EventDataChecksum, env)
}

// buildFrom is build; when compacted, eventData is already compact and
// valid (compactData) with the top-level members spans, and is not
// compacted again. (A compacted eventData never has a checksum: that is
// over the string as sent.)
func (rb *recordBuilder) buildFrom(eventData []byte, spans []event.Member, compacted bool, checksum *string, env *Envelope) ([]byte, *EventError) {
	if checksum != nil {
		if err := verifyChecksum(eventData, *checksum); err != nil {
			return nil, err
		}
	}
	// One validating pass makes eventData compact; everything after it
	// walks compact JSON, and object sizes are simply lengths. The event
	// package's compactor gives byte for byte what json.Compact gives, in
	// a fraction of its time, and refuses the nesting that the record
	// parser would refuse once eventData is embedded in the record. What
	// it refuses goes through json.Compact and the record parser as it
	// always did, so that the rejection reads the same.
	mustParse := false
	var (
		compact []byte
		m       members
		ok      bool
	)
	switch {
	case rb.reference:
	case compacted:
		compact = eventData
		m, ok = membersAt(rb.members[:0], compact, spans)
	default:
		compact, rb.spans, ok = event.AppendCompactObject(rb.scratch[:0], eventData, event.MaxEmbedDepth, rb.spans[:0])
		if ok {
			m, ok = membersAt(rb.members[:0], compact, rb.spans)
			rb.scratch = compact
		}
	}
	if !ok {
		compact, ok = compactJSON(rb.scratch[:0], eventData)
		if !ok {
			return nil, eventErr(CodeInvalidData, "eventData is not a JSON object.")
		}
		rb.scratch = compact
		mustParse = true
		if m, ok = splitObject(rb.members[:0], compact); !ok {
			return nil, eventErr(CodeInvalidData, "eventData is not a JSON object.")
		}
	}
	f := fields{m: m}
	f.str("version", true, maxVersionLen)
	identity := f.identity()
	userAgent := f.str("userAgent", false, maxUserAgentLen)
	source := f.str("eventSource", true, maxEventSourceLen)
	name := f.str("eventName", true, maxEventNameLen)
	eventTime, eventTimeText := f.time("eventTime")
	f.str("UID", true, maxUIDLen)
	reqParams := f.object("requestParameters", maxParametersBytes)
	respElems := f.object("responseElements", maxParametersBytes)
	errCode := f.str("errorCode", false, maxErrorCodeLen)
	errMsg := f.str("errorMessage", false, maxErrorMessageLen)
	sourceIP := f.ip("sourceIPAddress")
	recipient := f.str("recipientAccountId", true, 0)
	additional := f.object("additionalEventData", maxAdditionalBytes)
	if f.err != nil {
		return nil, f.err
	}
	if string(recipient.val) != env.AccountID {
		return nil, eventErr(CodeInvalidRecipient, "recipientAccountId %q is not the channel owner's account, %s.", recipient.val, env.AccountID)
	}
	if err := event.CheckIntakeTime(eventTime, env.IngestionTime); err != nil {
		// Outside the times any real event has (and the SDKs and the event
		// history can carry): refused like any other bad value.
		reason := err.Error()
		if ie, ok := err.(*event.InvalidRecordError); ok {
			reason = ie.Reason
		}
		return nil, eventErr(CodeInvalidData, "Field eventTime is out of range: %s.", reason)
	}
	if y := eventTime.Year(); y < 0 || y > 9999 {
		// An offset moved the time out of the four-digit years RFC 3339
		// has; the record parser words the refusal.
		mustParse = true
	}

	start := len(rb.arena)
	b := slices.Grow(rb.arena, maxRecordSize(len(compact), env))
	b = append(b, `{"eventVersion":"`+event.CurrentEventVersion+`","userIdentity":{"type":`...)
	b = append(b, identity.typ...)
	b = append(b, `,"principalId":`...)
	b = append(b, identity.principalID...)
	if identity.details != nil {
		b = append(b, `,"details":`...)
		b = append(b, identity.details...)
	}
	b = append(b, `},"eventTime":"`...)
	if eventTimeText != nil {
		b = append(b, eventTimeText...) // already in the record's form
	} else {
		b = eventTime.UTC().AppendFormat(b, recordTimeLayout)
	}
	b = append(b, `","eventSource":`...)
	b = append(b, source.raw...)
	b = append(b, `,"eventName":`...)
	b = append(b, name.raw...)
	b = append(b, `,"awsRegion":`...)
	b = appendString(b, env.Region)
	b = appendMember(b, "sourceIPAddress", sourceIP)
	b = appendMember(b, "userAgent", userAgent.raw)
	b = appendMember(b, "errorCode", errCode.raw)
	b = appendMember(b, "errorMessage", errMsg.raw)
	b = append(b, `,"requestParameters":`...)
	b = appendOrNull(b, reqParams)
	b = append(b, `,"responseElements":`...)
	b = appendOrNull(b, respElems)
	b = appendMember(b, "additionalEventData", additional)
	b = append(b, `,"eventID":`...)
	b = appendString(b, env.EventID)
	b = append(b, rb.envelopeTail(env)...)
	b = append(b, compact...)
	b = append(b, '}')
	rec := b[start:len(b):len(b)]

	// The record is canonical by construction: compact, valid JSON (every
	// piece is either Cairn's own or a member of the validated eventData),
	// a non-empty string eventName and an eventTime of four-digit year,
	// nested no deeper than the parser allows. event.Parse accepts it and
	// gives back the same bytes, so it is only run when one of those
	// premises does not hold, to word the refusal.
	if mustParse {
		parsed, err := event.Parse(rec)
		if err != nil {
			return nil, eventErr(CodeInvalidData, "eventData cannot be stored as a CloudTrail record: %v", err)
		}
		rec = parsed.Raw
	}
	if len(rec) > MaxRecordBytes {
		return nil, eventErr(CodeFieldTooLong, "The event is %d bytes long as a stored record; the limit is %d bytes. Make eventData smaller.", len(rec), MaxRecordBytes)
	}
	rb.arena = b
	return rec, nil
}

// envelopeTail returns the part of the record between the eventID and
// eventData, which is the same for every event of a request: eventType,
// recipientAccountId, eventCategory and metadata, up to "eventData":. It
// is written again only when env differs from the previous call's.
func (rb *recordBuilder) envelopeTail(env *Envelope) []byte {
	if rb.tail == nil || !env.IngestionTime.Equal(rb.tailAt) || env.AccountID != rb.tailAccount || env.ChannelARN != rb.tailChannel {
		rb.tailAt, rb.tailAccount, rb.tailChannel = env.IngestionTime, env.AccountID, env.ChannelARN
		b := append(rb.tail[:0], `,"eventType":"`+EventTypeActivityLog+`","recipientAccountId":`...)
		b = appendString(b, env.AccountID)
		b = append(b, `,"eventCategory":"`+EventCategoryActivityAuditLog+`","metadata":{"ingestionTime":"`...)
		b = env.IngestionTime.UTC().AppendFormat(b, recordTimeLayout)
		b = append(b, `","channelARN":`...)
		b = appendString(b, env.ChannelARN)
		rb.tail = append(b, `},"eventData":`...)
	}
	return rb.tail
}

// recordOverhead bounds the bytes a record adds to its eventData besides
// the envelope's strings and the lifted members: member names, the two
// times and the constant values.
const recordOverhead = 640

// maxRecordSize bounds the size of the record of a compact eventData of n
// bytes: everything lifted out of eventData is a distinct member of it, so
// the copies add at most n more.
func maxRecordSize(n int, env *Envelope) int {
	return 2*n + recordOverhead + len(env.Region) + len(env.EventID) + len(env.AccountID) + len(env.ChannelARN)
}

// verifyChecksum compares eventDataChecksum with base64(sha256(eventData)).
func verifyChecksum(eventData []byte, checksum string) *EventError {
	want := sha256.Sum256(eventData)
	// The usual form, padded standard base64, is compared without
	// decoding (and without allocating); anything else is decoded as
	// before.
	var enc [44]byte
	if base64.StdEncoding.Encode(enc[:], want[:]); string(enc[:]) == checksum {
		return nil
	}
	got, err := base64.StdEncoding.DecodeString(checksum)
	if err != nil {
		got, err = base64.RawStdEncoding.DecodeString(checksum)
	}
	if err != nil || !bytes.Equal(got, want[:]) {
		return eventErr(CodeInvalidChecksum, "eventDataChecksum does not match eventData: it must be the base64-encoded SHA-256 digest of the eventData string.")
	}
	return nil
}

// fields reads eventData members, remembering the first problem so that
// BuildRecord reads as a list of rules.
type fields struct {
	m   members
	err *EventError
}

type strValue struct {
	raw json.RawMessage // the JSON string token, nil when absent
	val []byte          // its value, unescaped; may alias raw
}

func isNull(v json.RawMessage) bool { return v == nil || string(v) == "null" }

func (f *fields) fail(code, format string, args ...any) {
	if f.err == nil {
		f.err = eventErr(code, format, args...)
	}
}

// str reads a string member; max 0 means unlimited. A required member
// that is missing, null or empty is FieldNotFound.
func (f *fields) str(name string, required bool, max int) strValue {
	return f.strIn(f.m, name, name, required, max)
}

func (f *fields) strIn(m members, name, path string, required bool, max int) strValue {
	if f.err != nil {
		return strValue{}
	}
	raw := m.get(name)
	if isNull(raw) {
		if required {
			f.fail(CodeFieldNotFound, "Required field %s is missing from eventData.", path)
		}
		return strValue{}
	}
	s, ok := stringValue(raw)
	if !ok {
		f.fail(CodeInvalidData, "Field %s must be a string.", path)
		return strValue{}
	}
	if required && len(s) == 0 {
		f.fail(CodeFieldNotFound, "Required field %s is empty.", path)
		return strValue{}
	}
	// A string is never longer in characters than in bytes.
	if max > 0 && len(s) > max {
		if n := utf8.RuneCount(s); n > max {
			f.fail(CodeFieldTooLong, "Field %s is %d characters long; the limit is %d.", path, n, max)
			return strValue{}
		}
	}
	return strValue{raw: raw, val: s}
}

type identityValue struct {
	typ, principalID, details json.RawMessage
}

func (f *fields) identity() identityValue {
	if f.err != nil {
		return identityValue{}
	}
	raw := f.m.get("userIdentity")
	if isNull(raw) {
		f.fail(CodeFieldNotFound, "Required field userIdentity is missing from eventData.")
		return identityValue{}
	}
	var buf [8]member
	m, ok := splitObject(buf[:0], raw)
	if !ok {
		f.fail(CodeInvalidData, "Field userIdentity must be an object.")
		return identityValue{}
	}
	typ := f.strIn(m, "type", "userIdentity.type", true, maxIdentityTypeLen)
	pid := f.strIn(m, "principalId", "userIdentity.principalId", true, maxPrincipalIDLen)
	details := json.RawMessage(m.get("details"))
	if f.err == nil && !isNull(details) && details[0] != '{' {
		f.fail(CodeInvalidData, "Field userIdentity.details must be an object.")
	}
	if isNull(details) {
		details = nil
	}
	return identityValue{typ: typ.raw, principalID: pid.raw, details: details}
}

// object reads an optional object member of at most max compact bytes.
// Larger ones are rejected, not truncated (reference §2.2).
func (f *fields) object(name string, max int) json.RawMessage {
	if f.err != nil {
		return nil
	}
	raw := json.RawMessage(f.m.get(name))
	if isNull(raw) {
		return nil
	}
	if raw[0] != '{' {
		f.fail(CodeInvalidData, "Field %s must be an object.", name)
		return nil
	}
	if len(raw) > max {
		f.fail(CodeFieldTooLong, "Field %s is %d bytes long; the limit is %d bytes.", name, len(raw), max)
		return nil
	}
	return raw
}

// time reads a required time member. text is the member's value when it
// already has the record's form (recordTimeLayout), so that the record can
// copy it instead of formatting the time again; nil otherwise.
func (f *fields) time(name string) (t time.Time, text []byte) {
	v := f.str(name, true, 0)
	if f.err != nil {
		return time.Time{}, nil
	}
	if t, ok := parseRecordTime(v.val); ok {
		return t, v.val
	}
	t, ok := ParseEventTime(string(v.val))
	if !ok {
		f.fail(CodeInvalidData, "Field %s %q is not a UTC time of the form yyyy-MM-ddTHH:mm:ss (a Z suffix, fractional seconds or an offset are accepted).", name, v.val)
	}
	return t, nil
}

// recordTimeLayout is the form of a record's times.
const recordTimeLayout = "2006-01-02T15:04:05Z"

// parseRecordTime parses s when it is in recordTimeLayout, the form nearly
// every producer sends, with a day of the month that every month has (1
// to 28); ok false means "not sure: ask ParseEventTime", which accepts
// everything this does with the same result, and more.
func parseRecordTime(s []byte) (t time.Time, ok bool) {
	if len(s) != len(recordTimeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 28 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

func (f *fields) ip(name string) json.RawMessage {
	v := f.str(name, false, 0)
	if f.err != nil || v.raw == nil {
		return nil
	}
	if validIPv4(v.val) {
		return v.raw
	}
	if _, err := netip.ParseAddr(string(v.val)); err != nil {
		f.fail(CodeInvalidData, "Field %s %q is not an IPv4 or IPv6 address.", name, v.val)
		return nil
	}
	return v.raw
}

// validIPv4 reports whether s is a dotted-quad IPv4 address as
// netip.ParseAddr accepts it (four decimal fields of 0-255, no leading
// zeros), without the string netip.ParseAddr needs. false means "ask
// netip.ParseAddr", which also knows IPv6.
func validIPv4(s []byte) bool {
	fields, val, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || fields == 4 {
				return false
			}
			fields++
			val, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || digits > 0 && val == 0 {
			return false // not a digit, or a leading zero
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return false
		}
	}
	return fields == 4
}

// eventTimeLayouts are the forms PutAuditEvents takes: CloudTrail's
// documented yyyy-MM-ddTHH:mm:ss (UTC implied), the same with the usual Z,
// and RFC 3339 with fractional seconds or a numeric offset, which
// applications' loggers write.
var eventTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

// ParseEventTime parses eventData.eventTime and returns it in UTC, whole
// seconds (CloudTrail's record times have no fraction).
func ParseEventTime(s string) (time.Time, bool) {
	for _, layout := range eventTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Second), true
		}
	}
	return time.Time{}, false
}

func appendMember(b []byte, name string, raw json.RawMessage) []byte {
	if raw == nil {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return append(b, raw...)
}

func appendOrNull(b []byte, raw json.RawMessage) []byte {
	if raw == nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

// appendString appends s as a JSON string. The values are Cairn's own
// (region from the SigV4 scope, ARNs, UUIDs), so the slow path is rare.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
