package selector

import (
	"slices"
	"testing"
)

func TestValidateEventDataStore(t *testing.T) {
	cases := []struct {
		name    string
		sels    string
		wantErr string // substring of the message; "" = valid
	}{
		{"default management", `[{"Name":"Default management events","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]`, ""},
		{"management by user and name", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"userIdentity.arn","StartsWith":["arn:aws:iam::111122223333:role/"]},{"Field":"eventName","NotEquals":["GetObject"]},{"Field":"eventType","Equals":["AwsApiCall"]}]}]`, ""},
		{"management any eventSource operator", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","Equals":["ec2.amazonaws.com"]}]}]`, ""},
		{"console sessions", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"sessionCredentialFromConsole","Equals":["true"]}]}]`, ""},
		{"console sessions StartsWith", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"sessionCredentialFromConsole","StartsWith":["t"]}]}]`, "can only use the Equals and NotEquals operators"},
		{"management and data mixed", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"eventSource","NotEquals":["x.amazonaws.com"]}]}]`, ""},
		{"data needs resources.type", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]}]}]`, "must contain the resources.type field"},
		{"network activity", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]}]}]`, ""},
		{"network activity eventSource StartsWith", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","StartsWith":["kms"]}]}]`, "must use the Equals operator for NetworkActivity"},
		{"activity audit log", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]}]`, ""},
		{"config items", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ConfigurationItem"]}]}]`, ""},
		{"insight", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Insight"]}]}]`, ""},
		{"evidence", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Evidence"]}]}]`, ""},
		{"audit log with a field", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]},{"Field":"eventName","Equals":["x"]}]}]`, "Field eventName is not supported in an event data store's advanced event selector for ActivityAuditLog events"},
		{"audit log mixed with management", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]`, "cannot select other event categories; its selectors select ActivityAuditLog and Management"},
		{"config mixed with insight", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ConfigurationItem"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Insight"]}]}]`, "cannot select other event categories"},
		{"unknown category", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Custom"]}]}]`, "is invalid for an event data store. Valid values are Management, Data, NetworkActivity, Insight, ConfigurationItem, Evidence and ActivityAuditLog."},
		{"six selectors", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]`, "An event data store can have 1 to 5 advanced event selectors; 6 were specified."},
		{"none", `[]`, "1 to 5 advanced event selectors; 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkErr(t, ValidateEventDataStore(decodeAdvanced(t, c.sels)), "InvalidEventSelectorsException", c.wantErr)
		})
	}
}

// TestValidateAdvancedTrailUnchanged pins that the store-only fields and
// categories stay refused on trails.
func TestValidateAdvancedTrailUnchanged(t *testing.T) {
	for _, c := range []struct{ sels, want string }{
		{`[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]}]`, "is invalid for a trail. Valid values are Management, Data and NetworkActivity."},
		{`[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"userIdentity.arn","Equals":["x"]}]}]`, "Field userIdentity.arn is not supported in a trail's advanced event selector for Management events."},
		{`[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","Equals":["ec2.amazonaws.com"]}]}]`, "can only use NotEquals"},
	} {
		checkErr(t, ValidateAdvanced(decodeAdvanced(t, c.sels)), "InvalidEventSelectorsException", c.want)
	}
}

func TestCategories(t *testing.T) {
	sels := decodeAdvanced(t, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}]}]`)
	if got := Categories(sels); !slices.Equal(got, []string{"Data", "Management"}) {
		t.Fatalf("Categories = %v", got)
	}
}
