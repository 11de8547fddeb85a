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
