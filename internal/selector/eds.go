package selector

// Event categories only event data stores select (reference §6.2): AWS
// Config configuration items, Audit Manager evidence, events from outside
// AWS sent to a channel (ActivityAuditLog), and Insights events (the
// destination store of a source store's Insights).
const (
	CategoryConfigurationItem = "ConfigurationItem"
	CategoryEvidence          = "Evidence"
	CategoryActivityAuditLog  = "ActivityAuditLog"
)

// edsFieldsByCategory is fieldsByCategory for event data stores: the
// trail's fields plus eventName, eventType, userIdentity.arn and
// sessionCredentialFromConsole on management and data events, and the
// store-only categories, which take nothing but eventCategory.
var edsFieldsByCategory = map[string]map[string]bool{
	CategoryManagement: {
		"eventCategory": true, "readOnly": true, "eventSource": true, "eventName": true,
		"eventType": true, "userIdentity.arn": true, "sessionCredentialFromConsole": true,
	},
	CategoryData: {
		"eventCategory": true, "readOnly": true, "eventSource": true, "eventName": true,
		"eventType": true, "userIdentity.arn": true, "sessionCredentialFromConsole": true,
		"resources.type": true, "resources.ARN": true,
	},
	CategoryNetworkActivity:   fieldsByCategory[CategoryNetworkActivity],
	CategoryInsight:           {"eventCategory": true},
	CategoryConfigurationItem: {"eventCategory": true},
	CategoryEvidence:          {"eventCategory": true},
	CategoryActivityAuditLog:  {"eventCategory": true},
}

var edsRules = rules{
	noun:                 "event data store",
	article:              "an",
	fields:               edsFieldsByCategory,
	categories:           "Management, Data, NetworkActivity, Insight, ConfigurationItem, Evidence and ActivityAuditLog",
	freeManagementSource: true,
}

// IsCloudTrailCategory reports whether category holds CloudTrail's own
// records (Management, Data, NetworkActivity). A store may mix these; every
// other category must be a store's only one.
func IsCloudTrailCategory(category string) bool {
	switch category {
	case CategoryManagement, CategoryData, CategoryNetworkActivity:
		return true
	}
	return false
}

// ValidateEventDataStore checks the advanced event selectors of
// CreateEventDataStore and UpdateEventDataStore: the trail rules with the
// fields and categories only stores have, and one family of events per
// store, since a store has one schema: CloudTrail records (Management,
// Data and NetworkActivity, which may be mixed) or exactly one of Insight,
// ConfigurationItem, Evidence and ActivityAuditLog. The error is an
// InvalidEventSelectorsException.
func ValidateEventDataStore(sels []AdvancedEventSelector) error {
	if err := validateAdvancedFor(edsRules, sels); err != nil {
		return err
	}
	cats := Categories(sels)
	for _, c := range cats {
		if !IsCloudTrailCategory(c) && len(cats) > 1 {
			return invalid("An event data store that selects %s events cannot select other event categories; its selectors select %s. Create one event data store for each.", c, joinAnd(cats))
		}
	}
	return nil
}

// Categories lists the distinct eventCategory values of selectors, in the
// order they first appear. Selectors must have been validated.
func Categories(sels []AdvancedEventSelector) []string {
	var out []string
	for i := range sels {
		for j := range sels[i].FieldSelectors {
			f := &sels[i].FieldSelectors[j]
			if f.Field != "eventCategory" || len(f.Equals) != 1 {
				continue
			}
			seen := false
			for _, c := range out {
				seen = seen || c == f.Equals[0]
			}
			if !seen {
				out = append(out, f.Equals[0])
			}
		}
	}
	return out
}

func joinAnd(list []string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	}
	s := list[0]
	for _, v := range list[1 : len(list)-1] {
		s += ", " + v
	}
	return s + " and " + list[len(list)-1]
}
