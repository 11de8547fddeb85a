package selector

import "github.com/cairn-audit/cairn/internal/awsproto"

// Insights types.
const (
	ApiCallRateInsight  = "ApiCallRateInsight"
	ApiErrorRateInsight = "ApiErrorRateInsight"
)

// InsightSelector turns on one Insights type for the given source event
// categories (Management, Data). EventCategories is kept exactly as the
// caller sent it, absent included, because GetInsightSelectors echoes it.
type InsightSelector struct {
	InsightType     *string  `json:"InsightType,omitempty"`
	EventCategories []string `json:"EventCategories,omitempty"`
}

// ValidateInsight checks the selectors of PutInsightSelectors. An empty list
// is valid: it turns Insights off.
func ValidateInsight(sels []InsightSelector) error {
	seen := map[string]bool{}
	for _, s := range sels {
		typ := deref(s.InsightType)
		switch typ {
		case ApiCallRateInsight, ApiErrorRateInsight:
		case "":
			return awsproto.Errorf(codeInvalidInsightSel, "Each Insights selector must specify an InsightType: ApiCallRateInsight or ApiErrorRateInsight.")
		default:
			return awsproto.Errorf(codeInvalidInsightSel, "Value %s for InsightType is invalid. Valid values are ApiCallRateInsight and ApiErrorRateInsight.", typ)
		}
		if seen[typ] {
			return awsproto.Errorf(codeInvalidInsightSel, "InsightType %s is specified more than once.", typ)
		}
		seen[typ] = true
		cats := map[string]bool{}
		for _, c := range s.EventCategories {
			if c != CategoryManagement && c != CategoryData {
				return awsproto.Errorf(codeInvalidInsightSel, "Value %s for EventCategories is invalid. Valid values are Management and Data.", c)
			}
			if cats[c] {
				return awsproto.Errorf(codeInvalidInsightSel, "Event category %s is specified more than once for InsightType %s.", c, typ)
			}
			cats[c] = true
		}
	}
	return nil
}

// Coverage is what a trail's selectors log, as far as Insights cares.
type Coverage struct {
	// WriteManagement: some write management events are logged.
	WriteManagement bool
	// Management: some management events (read or write) are logged.
	Management bool
	// Data: some data events are logged.
	Data bool
}

// CoverageOf summarises selectors (basic or advanced; neither means the
// default selection) for the Insights prerequisites.
func CoverageOf(basic []EventSelector, advanced []AdvancedEventSelector) Coverage {
	var c Coverage
	if len(advanced) > 0 {
		for i := range advanced {
			var category, readOnly []string
			for _, f := range advanced[i].FieldSelectors {
				switch f.Field {
				case "eventCategory":
					category = f.Equals
				case "readOnly":
					readOnly = f.Equals
				}
			}
			for _, cat := range category {
				switch cat {
				case CategoryManagement:
					c.Management = true
					if len(readOnly) != 1 || readOnly[0] != "true" {
						c.WriteManagement = true
					}
				case CategoryData:
					c.Data = true
				}
			}
		}
		return c
	}
	if len(basic) == 0 {
		basic = Default()
	}
	for _, s := range basic {
		if s.IncludeManagementEvents == nil || *s.IncludeManagementEvents {
			c.Management = true
			if rw := deref(s.ReadWriteType); rw != ReadOnly {
				c.WriteManagement = true
			}
		}
		if len(s.DataResources) > 0 {
			c.Data = true
		}
	}
	return c
}

// CheckInsightPrerequisites applies CloudTrail's rule that Insights can
// only analyse events the trail logs: API call rate on management events
// needs write management events, API error rate needs management events,
// and either type on data events needs data events. An absent
// EventCategories means Management.
func CheckInsightPrerequisites(sels []InsightSelector, c Coverage) error {
	for _, s := range sels {
		typ := deref(s.InsightType)
		cats := s.EventCategories
		if len(cats) == 0 {
			cats = []string{CategoryManagement}
		}
		for _, cat := range cats {
			switch {
			case cat == CategoryManagement && typ == ApiCallRateInsight && !c.WriteManagement:
				return awsproto.Errorf(codeInvalidInsightSel, "To log Insights events on the API call rate of management events, the trail must log write management events. Update the trail's event selectors first.")
			case cat == CategoryManagement && !c.Management:
				return awsproto.Errorf(codeInvalidInsightSel, "To log Insights events on the API error rate of management events, the trail must log read or write management events. Update the trail's event selectors first.")
			case cat == CategoryData && !c.Data:
				return awsproto.Errorf(codeInvalidInsightSel, "To log Insights events on data events, the trail must log read or write data events. Update the trail's event selectors first.")
			}
		}
	}
	return nil
}
