package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/history"
)

// LookupOperations returns LookupEvents, backed by the event history.
//
// Deviation from CloudTrail, documented for users: several
// LookupAttributes are AND-ed (CloudTrail accepts a single attribute and
// silently ignores any others). Requests CloudTrail accepts are answered the
// same way; see history.Query.
func LookupOperations(h *history.History) []Operation {
	l := lookupHandler{h: h}
	return []Operation{
		Op("LookupEvents", true, l.lookupEvents),
	}
}

type lookupHandler struct{ h *history.History }

// lookupEventsInput is LookupEventsRequest.
type lookupEventsInput struct {
	LookupAttributes []lookupAttributeInput `json:"LookupAttributes"`
	StartTime        *awsproto.Timestamp    `json:"StartTime"`
	EndTime          *awsproto.Timestamp    `json:"EndTime"`
	EventCategory    *string                `json:"EventCategory"`
	MaxResults       *int32                 `json:"MaxResults"`
	NextToken        *string                `json:"NextToken"`
}

type lookupAttributeInput struct {
	AttributeKey   *string `json:"AttributeKey"`
	AttributeValue *string `json:"AttributeValue"`
}

// lookupEventsOutput is LookupEventsResponse. Events is always present
// (an empty page is "Events": []); NextToken only when there is more.
type lookupEventsOutput struct {
	Events    []lookupEvent `json:"Events"`
	NextToken *string       `json:"NextToken,omitempty"`
}

// lookupEvent is the Event shape, members in the order AWS writes them.
// ReadOnly is a string on this API ("true"/"false"), left out when the
// record does not say; Resources is always present.
type lookupEvent struct {
	EventID         string                 `json:"EventId,omitempty"`
	EventName       string                 `json:"EventName,omitempty"`
	ReadOnly        string                 `json:"ReadOnly,omitempty"`
	AccessKeyID     string                 `json:"AccessKeyId,omitempty"`
	EventTime       *awsproto.Timestamp    `json:"EventTime,omitempty"`
	EventSource     string                 `json:"EventSource,omitempty"`
	Username        string                 `json:"Username,omitempty"`
	Resources       []event.LookupResource `json:"Resources"`
	CloudTrailEvent string                 `json:"CloudTrailEvent,omitempty"`
	// CairnProvenance is a Cairn extension, present only on events that
	// came in through `cairn import` (CloudTrailEvent stays the imported
	// bytes); native events have exactly AWS's shape. SDKs ignore members
	// they do not know.
	CairnProvenance *importProvenance `json:"CairnProvenance,omitempty"`
}

// importProvenance is event.ImportProvenance on the wire.
type importProvenance struct {
	Source       string              `json:"Source"` // always "import"
	ImportID     string              `json:"ImportId"`
	ImportTime   *awsproto.Timestamp `json:"ImportTime,omitempty"`
	AccessKeyID  string              `json:"AccessKeyId,omitempty"`
	PrincipalARN string              `json:"PrincipalArn,omitempty"`
	Records      int                 `json:"Records"`
	SHA256       string              `json:"Sha256"`
}

func wireProvenance(p *event.ImportProvenance) *importProvenance {
	if p == nil {
		return nil
	}
	return &importProvenance{Source: "import", ImportID: p.ImportID, ImportTime: awsproto.NewTimestamp(p.ImportTime),
		AccessKeyID: p.AccessKeyID, PrincipalARN: p.PrincipalARN, Records: p.Records, SHA256: p.SHA256}
}

func (l lookupHandler) lookupEvents(ctx context.Context, req *Request, in *lookupEventsInput) (*lookupEventsOutput, error) {
	q := history.Query{Region: req.Region}
	for i, a := range in.LookupAttributes {
		if a.AttributeKey == nil || a.AttributeValue == nil {
			member := "attributeKey"
			if a.AttributeKey != nil {
				member = "attributeValue"
			}
			return nil, awsproto.Errorf("ValidationException",
				"1 validation error detected: Value null at 'lookupAttributes.%d.member.%s' failed to satisfy constraint: Member must not be null", i+1, member)
		}
		q.Attributes = append(q.Attributes, history.Attribute{Key: *a.AttributeKey, Value: *a.AttributeValue})
	}
	if in.StartTime != nil {
		q.StartTime = in.StartTime.Time
	}
	if in.EndTime != nil {
		q.EndTime = in.EndTime.Time
	}
	if in.EventCategory != nil {
		if *in.EventCategory == "" {
			return nil, awsproto.Errorf("InvalidEventCategoryException", "EventCategory %q is not valid; the only valid value is %q.", "", history.CategoryInsight)
		}
		q.Category = *in.EventCategory
	}
	if in.MaxResults != nil {
		// history treats 0 as "default"; on the wire an explicit 0 is out
		// of the 1-50 range like any other.
		if *in.MaxResults < 1 {
			return nil, awsproto.Errorf("InvalidMaxResultsException", "MaxResults must be between 1 and %d, got %d.", history.MaxMaxResults, *in.MaxResults)
		}
		q.MaxResults = int(*in.MaxResults)
	}
	if in.NextToken != nil {
		q.NextToken = *in.NextToken
	}
	page, err := l.h.Lookup(ctx, q)
	if err != nil {
		var ae *awsproto.Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, awsproto.Internal(fmt.Errorf("LookupEvents in %s: %w", req.Region, err))
	}
	out := &lookupEventsOutput{Events: make([]lookupEvent, 0, len(page.Events))}
	for _, ev := range page.Events {
		res := ev.Resources
		if res == nil {
			res = []event.LookupResource{}
		}
		out.Events = append(out.Events, lookupEvent{
			EventID:         ev.EventID,
			EventName:       ev.EventName,
			ReadOnly:        ev.ReadOnly,
			AccessKeyID:     ev.AccessKeyID,
			EventTime:       awsproto.NewTimestamp(ev.EventTime),
			EventSource:     ev.EventSource,
			Username:        ev.Username,
			Resources:       res,
			CloudTrailEvent: ev.CloudTrailEvent,
			CairnProvenance: wireProvenance(ev.Import),
		})
	}
	if page.NextToken != "" {
		out.NextToken = &page.NextToken
	}
	return out, nil
}
