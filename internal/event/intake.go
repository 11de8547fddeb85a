package event

import (
	"fmt"
	"time"
)

// Bounds on the eventTime of a record Cairn takes in from outside (imports
// and PutAuditEvents). Parse accepts any RFC 3339 time, which is right for
// reading what is already stored; records arriving from a caller are
// checked against these bounds too (CheckIntakeTime), because a time
// outside them is never a real event's and breaks whatever consumes it:
// the SDKs carry times as int64 nanoseconds (year 9999 came back as 1816),
// the event history's positions hold UnixNano's range (1677-2262), and a
// far-future event would sit at the top of every lookup forever.
var (
	// EarliestEventTime is the first day any CloudTrail record can carry:
	// CloudTrail launched in November 2013, so AWS's own records cannot be
	// older, and an application's audit events sent through a channel are
	// events of today, not of before the service existed.
	EarliestEventTime = time.Date(2013, time.November, 1, 0, 0, 0, 0, time.UTC)
)

// MaxEventTimeSkew is how far in the future of the receiving server's
// clock an eventTime may be: a record describes something that already
// happened, so only clock skew between producer and Cairn can put it
// ahead. Fifteen minutes is three times SigV4's own allowed skew.
const MaxEventTimeSkew = 15 * time.Minute

// CheckIntakeTime refuses an eventTime outside [EarliestEventTime,
// now+MaxEventTimeSkew] with an *InvalidRecordError naming eventTime.
func CheckIntakeTime(t, now time.Time) error {
	if t.Before(EarliestEventTime) {
		return &InvalidRecordError{Field: "eventTime", Reason: fmt.Sprintf("%s is before %s, when CloudTrail began: no record can be older",
			t.UTC().Format(time.RFC3339), EarliestEventTime.Format("2006-01-02"))}
	}
	if limit := now.Add(MaxEventTimeSkew); t.After(limit) {
		return &InvalidRecordError{Field: "eventTime", Reason: fmt.Sprintf("%s is in the future (more than %s after the server's clock, %s)",
			t.UTC().Format(time.RFC3339), MaxEventTimeSkew, now.UTC().Format(time.RFC3339))}
	}
	return nil
}

// CheckImportable refuses a parsed record that Cairn would accept but then
// silently lose: it must have an eventTime within CheckIntakeTime's bounds
// and a non-empty string awsRegion, because the event history files every
// event under its region (a record without one is never indexed) and a
// trail decides by region whether to deliver it. Other fields that look
// required are not: eventID is absent from every record before eventVersion
// 1.01, and a record without eventSource or recipientAccountId is still
// indexed and delivered (trails write under their own account).
func CheckImportable(r *Record, now time.Time) error {
	if err := CheckIntakeTime(r.EventTime, now); err != nil {
		return err
	}
	if r.AWSRegion == "" {
		v := r.Field("awsRegion")
		switch {
		case v == nil:
			return &InvalidRecordError{Field: "awsRegion", Reason: "missing (the event history and trails file every event under its region)"}
		case len(v) > 0 && v[0] != '"':
			return &InvalidRecordError{Field: "awsRegion", Reason: "not a string: " + truncate(v)}
		default:
			return &InvalidRecordError{Field: "awsRegion", Reason: "empty (the event history and trails file every event under its region)"}
		}
	}
	return nil
}
