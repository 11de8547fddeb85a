package selector

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// Limits CloudTrail enforces on a trail's selectors (quota page and model
// docs; none is adjustable).
const (
	MaxSelectors          = 5
	MaxDataResources      = 250
	MaxAdvancedValues     = 500
	MaxSelectorNameLen    = 1000
	MaxFieldLen           = 1000
	MaxOperatorValueLen   = 2048
	codeInvalidSelectors  = "InvalidEventSelectorsException"
	codeInvalidInsightSel = "InvalidInsightSelectorsException"
)

func invalid(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(codeInvalidSelectors, format, args...)
}

// excludableSources are the only management event sources a trail may
// exclude, in basic (ExcludeManagementEventSources) and advanced
// (eventSource NotEquals) selectors alike.
var excludableSources = map[string]bool{
	"kms.amazonaws.com":     true,
	"rdsdata.amazonaws.com": true,
}

var (
	partition = `aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?`
	// S3: every bucket ("arn:aws:s3" or "arn:aws:s3:::"), or a bucket
	// followed by "/" and an optional object key prefix. A bare bucket ARN
	// is refused, as AWS does: the value selects objects, not the bucket.
	s3AllRE    = regexp.MustCompile(`^arn:` + partition + `:s3(?::::?)?$`)
	s3PrefixRE = regexp.MustCompile(`^arn:` + partition + `:s3:::[a-z0-9][a-z0-9._-]{1,254}/.*$`)
	lambdaAll  = regexp.MustCompile(`^arn:` + partition + `:lambda$`)
	lambdaFn   = regexp.MustCompile(`^arn:` + partition + `:lambda:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:function:[A-Za-z0-9_-]{1,140}(?::[A-Za-z0-9$_-]{1,128})?$`)
	dynamoAll  = regexp.MustCompile(`^arn:` + partition + `:dynamodb$`)
	dynamoTbl  = regexp.MustCompile(`^arn:` + partition + `:dynamodb:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:table/[A-Za-z0-9_.-]{3,255}$`)

	fieldRE        = regexp.MustCompile(`^[\w|\d|\.|_]+$`)
	resourceTypeRE = regexp.MustCompile(`^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$`)
	// Network activity sources: AWS keeps adding services, so any
	// "<service>.amazonaws.com" is accepted rather than a list that would
	// go stale and refuse selectors AWS takes.
	serviceSourceRE = regexp.MustCompile(`^[a-z0-9-]+\.amazonaws\.com$`)
)

// isAllResources reports whether a data resource value selects every
// resource of its type; such values do not count toward the 250 limit.
func isAllResources(typ, v string) bool {
	switch typ {
	case TypeS3Object:
		return s3AllRE.MatchString(v)
	case TypeLambdaFunction:
		return lambdaAll.MatchString(v)
	case TypeDynamoDBTable:
		return dynamoAll.MatchString(v)
	}
	return false
}

func validDataValue(typ, v string) bool {
	switch typ {
	case TypeS3Object:
		return s3AllRE.MatchString(v) || s3PrefixRE.MatchString(v)
	case TypeLambdaFunction:
		return lambdaAll.MatchString(v) || lambdaFn.MatchString(v)
	case TypeDynamoDBTable:
		return dynamoAll.MatchString(v) || dynamoTbl.MatchString(v)
	}
	return false
}

// ValidateBasic checks basic event selectors for PutEventSelectors. The
// error is an InvalidEventSelectorsException naming the first problem.
func ValidateBasic(sels []EventSelector) error {
	if len(sels) == 0 || len(sels) > MaxSelectors {
		return invalid("A trail can have 1 to %d event selectors; %d were specified.", MaxSelectors, len(sels))
	}
	total := 0
	for i, s := range sels {
		if rw := s.ReadWriteType; rw != nil && *rw != ReadOnly && *rw != WriteOnly && *rw != All {
			return invalid("Value %s for ReadWriteType in event selector %d is invalid. Valid values are ReadOnly, WriteOnly and All.", *rw, i+1)
		}
		for _, d := range s.DataResources {
			typ := deref(d.Type)
			switch typ {
			case TypeS3Object, TypeLambdaFunction, TypeDynamoDBTable:
			case "":
				return invalid("DataResources in event selector %d must specify a Type.", i+1)
			default:
				return invalid("Value %s for DataResources.Type is invalid. Basic event selectors support %s, %s and %s; use advanced event selectors for other resource types.",
					typ, TypeS3Object, TypeLambdaFunction, TypeDynamoDBTable)
			}
			if len(d.Values) == 0 {
				return invalid("DataResources of type %s in event selector %d must specify at least one value.", typ, i+1)
			}
			for _, v := range d.Values {
				if !validDataValue(typ, v) {
					return invalid("Value %s for DataResources.Values is invalid.", v)
				}
				if !isAllResources(typ, v) {
					total++
				}
			}
		}
		for _, src := range s.ExcludeManagementEventSources {
			if !excludableSources[src] {
				return invalid("Value %s for ExcludeManagementEventSources is invalid. Only kms.amazonaws.com and rdsdata.amazonaws.com can be excluded.", src)
			}
		}
	}
	if total > MaxDataResources {
		return invalid("Specify a valid number of DataResources.Values (0 to %d) for all your selectors", MaxDataResources)
	}
	return nil
}

// fieldsByCategory lists the fields a trail's advanced selector may use for
// each event category (reference §6.2). Fields that only event data stores
// accept (eventType, userIdentity.arn, sessionCredentialFromConsole,
// eventName on management events) are refused on trails, as AWS does.
var fieldsByCategory = map[string]map[string]bool{
	CategoryManagement: {
		"eventCategory": true, "readOnly": true, "eventSource": true,
	},
	CategoryData: {
		"eventCategory": true, "readOnly": true, "eventName": true,
		"resources.type": true, "resources.ARN": true,
	},
	CategoryNetworkActivity: {
		"eventCategory": true, "eventSource": true, "eventName": true,
		"errorCode": true, "vpcEndpointId": true,
	},
}

// operator is one operator list of a field selector, named as on the wire.
type operator struct {
	name   string
	values []string
	// negative operators exclude matching events; positive ones include.
	negative bool
	match    func(have, want string) bool
}

func operators(f *FieldSelector) []operator {
	return []operator{
		{"Equals", f.Equals, false, func(h, w string) bool { return h == w }},
		{"StartsWith", f.StartsWith, false, strings.HasPrefix},
		{"EndsWith", f.EndsWith, false, strings.HasSuffix},
		{"NotEquals", f.NotEquals, true, func(h, w string) bool { return h == w }},
		{"NotStartsWith", f.NotStartsWith, true, strings.HasPrefix},
		{"NotEndsWith", f.NotEndsWith, true, strings.HasSuffix},
	}
}

// usedOperators lists the operators present in f (nil lists are absent;
// an empty non-nil list is present and refused by validation).
func usedOperators(f *FieldSelector) []operator {
	var used []operator
	for _, op := range operators(f) {
		if op.values != nil {
			used = append(used, op)
		}
	}
	return used
}

// ValidateAdvanced checks advanced event selectors for a trail's
// PutEventSelectors. The error is an InvalidEventSelectorsException.
func ValidateAdvanced(sels []AdvancedEventSelector) error {
	return validateAdvancedFor(trailRules, sels)
}

// rules are what differs between a trail's advanced selectors and an
// event data store's: the resource named in messages, the fields each
// category may use, and whether management events' eventSource is
// limited to excluding kms and rdsdata (trails) or free (stores).
type rules struct {
	// noun is "trail" or "event data store"; article is its "a"/"an".
	noun, article string
	fields        map[string]map[string]bool
	// categories lists the valid eventCategory values for messages.
	categories string
	// freeManagementSource lets management and data selectors use any
	// operator on eventSource.
	freeManagementSource bool
}

var trailRules = rules{noun: "trail", article: "a", fields: fieldsByCategory, categories: "Management, Data and NetworkActivity"}

func validateAdvancedFor(r rules, sels []AdvancedEventSelector) error {
	if len(sels) == 0 || len(sels) > MaxSelectors {
		return invalid("%s %s can have 1 to %d advanced event selectors; %d were specified.", capitalize(r.article), r.noun, MaxSelectors, len(sels))
	}
	total := 0
	for i := range sels {
		n, err := validateAdvancedOne(r, i+1, &sels[i])
		if err != nil {
			return err
		}
		total += n
	}
	if total > MaxAdvancedValues {
		return invalid("Advanced event selectors can have at most %d values across all conditions; %d were specified.", MaxAdvancedValues, total)
	}
	return nil
}

// selectorLabel names a selector in messages the way a user recognises it.
func selectorLabel(idx int, s *AdvancedEventSelector) string {
	if s.Name != nil && *s.Name != "" {
		return "advanced event selector " + quote(*s.Name)
	}
	return "advanced event selector " + strconv.Itoa(idx)
}

func validateAdvancedOne(r rules, idx int, s *AdvancedEventSelector) (int, error) {
	label := selectorLabel(idx, s)
	if s.Name != nil && utf8.RuneCountInString(*s.Name) > MaxSelectorNameLen {
		return 0, invalid("The name of advanced event selector %d is longer than %d characters.", idx, MaxSelectorNameLen)
	}
	if len(s.FieldSelectors) == 0 {
		return 0, invalid("The %s has no field selectors; at least the eventCategory field is required.", label)
	}
	seen := map[string]bool{}
	values := 0
	category := ""
	for j := range s.FieldSelectors {
		f := &s.FieldSelectors[j]
		if f.Field == "" || len(f.Field) > MaxFieldLen || !fieldRE.MatchString(f.Field) {
			return 0, invalid("Field %s in the %s is not valid.", quote(f.Field), label)
		}
		if seen[f.Field] {
			return 0, invalid("Field %s appears more than once in the %s; put all its conditions in one field selector.", f.Field, label)
		}
		seen[f.Field] = true
		used := usedOperators(f)
		if len(used) == 0 {
			return 0, invalid("Field selector %s in the %s has no operator; specify at least one of Equals, StartsWith, EndsWith, NotEquals, NotStartsWith or NotEndsWith.", f.Field, label)
		}
		for _, op := range used {
			if len(op.values) == 0 {
				return 0, invalid("Operator %s of field %s in the %s must have at least one value.", op.name, f.Field, label)
			}
			for _, v := range op.values {
				if v == "" || utf8.RuneCountInString(v) > MaxOperatorValueLen {
					return 0, invalid("Values of field %s in the %s must be 1 to %d characters long.", f.Field, label, MaxOperatorValueLen)
				}
			}
			values += len(op.values)
		}
		if f.Field == "eventCategory" {
			if len(used) != 1 || used[0].name != "Equals" || len(f.Equals) != 1 {
				return 0, invalid("Field eventCategory in the %s must use the Equals operator with exactly one value.", label)
			}
			category = f.Equals[0]
			if r.fields[category] == nil {
				return 0, invalid("Value %s for field eventCategory in the %s is invalid for %s %s. Valid values are %s.", category, label, r.article, r.noun, r.categories)
			}
		}
	}
	if category == "" {
		return 0, invalid("The %s must contain the eventCategory field.", label)
	}
	allowed := r.fields[category]
	for j := range s.FieldSelectors {
		f := &s.FieldSelectors[j]
		if !allowed[f.Field] {
			return 0, invalid("Field %s is not supported in %s %s's advanced event selector for %s events.", f.Field, r.article, r.noun, category)
		}
		if err := validateFieldRule(r, label, category, f); err != nil {
			return 0, err
		}
	}
	switch category {
	case CategoryData:
		if !seen["resources.type"] {
			return 0, invalid("The %s selects Data events and must contain the resources.type field.", label)
		}
	case CategoryNetworkActivity:
		if !seen["eventSource"] {
			return 0, invalid("The %s selects NetworkActivity events and must contain the eventSource field.", label)
		}
	}
	return values, nil
}

// validateFieldRule applies the per-field operator and value rules.
func validateFieldRule(r rules, label, category string, f *FieldSelector) error {
	used := usedOperators(f)
	equalsOnly := func() bool { return len(used) == 1 && used[0].name == "Equals" }
	switch f.Field {
	case "readOnly":
		if !equalsOnly() || len(f.Equals) != 1 || (f.Equals[0] != "true" && f.Equals[0] != "false") {
			return invalid("Field readOnly in the %s must use the Equals operator with the value true or false.", label)
		}
	case "resources.type":
		if !equalsOnly() || len(f.Equals) != 1 {
			return invalid("Field resources.type in the %s must use the Equals operator with exactly one resource type.", label)
		}
		if !resourceTypeRE.MatchString(f.Equals[0]) {
			return invalid("Value %s for field resources.type in the %s is not a valid resource type.", f.Equals[0], label)
		}
	case "eventSource":
		if r.freeManagementSource && category != CategoryNetworkActivity {
			return nil
		}
		if category == CategoryManagement {
			if len(used) != 1 || used[0].name != "NotEquals" {
				return invalid("Field eventSource in a trail's management event selector (%s) can only use NotEquals, with kms.amazonaws.com or rdsdata.amazonaws.com.", label)
			}
			for _, v := range f.NotEquals {
				if !excludableSources[v] {
					return invalid("Value %s for field eventSource in the %s is invalid. Only kms.amazonaws.com and rdsdata.amazonaws.com can be excluded.", v, label)
				}
			}
			return nil
		}
		if !equalsOnly() {
			return invalid("Field eventSource in the %s must use the Equals operator for NetworkActivity events.", label)
		}
		for _, v := range f.Equals {
			if !serviceSourceRE.MatchString(v) {
				return invalid("Value %s for field eventSource in the %s is not a valid event source.", v, label)
			}
		}
	case "sessionCredentialFromConsole":
		for _, op := range used {
			if op.name != "Equals" && op.name != "NotEquals" {
				return invalid("Field sessionCredentialFromConsole in the %s can only use the Equals and NotEquals operators.", label)
			}
		}
	case "errorCode":
		if !equalsOnly() || len(f.Equals) != 1 || f.Equals[0] != "VpceAccessDenied" {
			return invalid("Field errorCode in the %s must use the Equals operator with the value VpceAccessDenied.", label)
		}
	}
	return nil
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func quote(s string) string { return `"` + s + `"` }
