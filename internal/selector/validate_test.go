package selector

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

func TestValidateBasic(t *testing.T) {
	manyValues := func(n int) string {
		vs := make([]string, n)
		for i := range vs {
			vs[i] = fmt.Sprintf("%q", fmt.Sprintf("arn:aws:s3:::bucket-%d/", i))
		}
		return strings.Join(vs, ",")
	}
	cases := []struct {
		name    string
		sels    string
		wantErr string // substring of the message; "" = valid
	}{
		{"default-like", `[{"ReadWriteType":"All","IncludeManagementEvents":true}]`, ""},
		{"empty selector takes defaults", `[{}]`, ""},
		{"five", `[{},{},{},{},{}]`, ""},
		{"none", `[]`, "1 to 5 event selectors; 0"},
		{"six", `[{},{},{},{},{},{}]`, "1 to 5 event selectors; 6"},
		{"bad ReadWriteType", `[{"ReadWriteType":"read-only"}]`, "Value read-only for ReadWriteType"},
		{"s3 bucket", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::my-bucket/"]}]}]`, ""},
		{"s3 prefix", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::my-bucket/logs/x"]}]}]`, ""},
		{"s3 all", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, ""},
		{"s3 bare bucket", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::my-bucket"]}]}]`, "Value arn:aws:s3:::my-bucket for DataResources.Values is invalid"},
		{"s3 value for lambda", `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:s3"]}]}]`, "Value arn:aws:s3 for DataResources.Values is invalid."},
		{"lambda function", `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:111111111111:function:hello"]}]}]`, ""},
		{"lambda all", `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]`, ""},
		{"dynamodb table", `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb:us-east-1:111111111111:table/Orders"]}]}]`, ""},
		{"dynamodb bad", `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb:us-east-1:111111111111:Orders"]}]}]`, "Value arn:aws:dynamodb:us-east-1:111111111111:Orders for DataResources.Values is invalid."},
		{"advanced-only type", `[{"DataResources":[{"Type":"AWS::SNS::Topic","Values":["arn:aws:sns"]}]}]`, "Value AWS::SNS::Topic for DataResources.Type is invalid"},
		{"missing type", `[{"DataResources":[{"Values":["arn:aws:s3"]}]}]`, "must specify a Type"},
		{"no values", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":[]}]}]`, "at least one value"},
		{"250 data resources", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":[` + manyValues(250) + `]}]}]`, ""},
		{"251 data resources", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":[` + manyValues(200) + `]}]},{"DataResources":[{"Type":"AWS::S3::Object","Values":[` + manyValues(51) + `]}]}]`, "Specify a valid number of DataResources.Values (0 to 250) for all your selectors"},
		{"exclude kms and rdsdata", `[{"ExcludeManagementEventSources":["kms.amazonaws.com","rdsdata.amazonaws.com"]}]`, ""},
		{"exclude ec2", `[{"ExcludeManagementEventSources":["ec2.amazonaws.com"]}]`, "Value ec2.amazonaws.com for ExcludeManagementEventSources is invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkErr(t, ValidateBasic(decodeBasic(t, c.sels)), "InvalidEventSelectorsException", c.wantErr)
		})
	}
}

func checkErr(t *testing.T, err error, code, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %s containing %q", code, want)
	}
	if !awsproto.IsCode(err, code) {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if !strings.Contains(awsproto.AsError(err).Message, want) {
		t.Fatalf("message %q does not contain %q", awsproto.AsError(err).Message, want)
	}
}

func TestValidateAdvanced(t *testing.T) {
	mgmt := `{"Field":"eventCategory","Equals":["Management"]}`
	data := `{"Field":"eventCategory","Equals":["Data"]}`
	s3 := `{"Field":"resources.type","Equals":["AWS::S3::Object"]}`
	net := `{"Field":"eventCategory","Equals":["NetworkActivity"]}`
	sel := func(fields ...string) string { return `{"FieldSelectors":[` + strings.Join(fields, ",") + `]}` }
	list := func(sels ...string) string { return "[" + strings.Join(sels, ",") + "]" }
	values := func(n int) string {
		vs := make([]string, n)
		for i := range vs {
			vs[i] = fmt.Sprintf(`"arn:aws:s3:::b/%d"`, i)
		}
		return strings.Join(vs, ",")
	}
	cases := []struct {
		name    string
		sels    string
		wantErr string
	}{
		{"management", list(sel(mgmt)), ""},
		{"management write only", list(sel(mgmt, `{"Field":"readOnly","Equals":["false"]}`)), ""},
		{"management exclude kms", list(sel(mgmt, `{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}`)), ""},
		{"data s3", list(sel(data, s3)), ""},
		{"data with names and arns", list(sel(data, s3, `{"Field":"eventName","Equals":["PutObject"]}`, `{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::b/"],"NotEndsWith":[".tmp"]}`)), ""},
		{"data other type", list(sel(data, `{"Field":"resources.type","Equals":["AWS::SNS::Topic"]}`)), ""},
		{"network activity", list(sel(net, `{"Field":"eventSource","Equals":["kms.amazonaws.com"]}`, `{"Field":"errorCode","Equals":["VpceAccessDenied"]}`, `{"Field":"vpcEndpointId","StartsWith":["vpce-"]}`)), ""},
		{"named", `[{"Name":"n","FieldSelectors":[` + mgmt + `]}]`, ""},
		{"five", list(sel(mgmt), sel(mgmt), sel(mgmt), sel(mgmt), sel(mgmt)), ""},
		{"none", `[]`, "1 to 5 advanced event selectors; 0"},
		{"six", list(sel(mgmt), sel(mgmt), sel(mgmt), sel(mgmt), sel(mgmt), sel(mgmt)), "1 to 5 advanced event selectors; 6"},
		{"name too long", `[{"Name":"` + strings.Repeat("n", 1001) + `","FieldSelectors":[` + mgmt + `]}]`, "longer than 1000"},
		{"no field selectors", `[{"Name":"empty","FieldSelectors":[]}]`, `"empty" has no field selectors`},
		{"no eventCategory", list(sel(`{"Field":"readOnly","Equals":["true"]}`)), "must contain the eventCategory field"},
		{"eventCategory StartsWith", list(sel(`{"Field":"eventCategory","StartsWith":["Man"]}`)), "eventCategory in the advanced event selector 1 must use the Equals operator"},
		{"eventCategory two values", list(sel(`{"Field":"eventCategory","Equals":["Management","Data"]}`)), "exactly one value"},
		{"eventCategory Insight", list(sel(`{"Field":"eventCategory","Equals":["Insight"]}`)), "Value Insight for field eventCategory"},
		{"bad field name", list(sel(mgmt, `{"Field":"event-name","Equals":["x"]}`)), `Field "event-name"`},
		{"unknown field", list(sel(mgmt, `{"Field":"userName","Equals":["x"]}`)), "Field userName is not supported"},
		{"eventName on management", list(sel(mgmt, `{"Field":"eventName","Equals":["x"]}`)), "Field eventName is not supported in a trail's advanced event selector for Management events"},
		{"userIdentity.arn on trail", list(sel(data, s3, `{"Field":"userIdentity.arn","Equals":["x"]}`)), "Field userIdentity.arn is not supported"},
		{"duplicate field", list(sel(mgmt, `{"Field":"readOnly","Equals":["true"]}`, `{"Field":"readOnly","Equals":["false"]}`)), "appears more than once"},
		{"no operator", list(sel(mgmt, `{"Field":"readOnly"}`)), "has no operator"},
		{"empty operator list", list(sel(mgmt, `{"Field":"readOnly","Equals":[]}`)), "at least one value"},
		{"empty value", list(sel(data, s3, `{"Field":"eventName","Equals":[""]}`)), "1 to 2048 characters"},
		{"long value", list(sel(data, s3, `{"Field":"eventName","Equals":["`+strings.Repeat("x", 2049)+`"]}`)), "1 to 2048 characters"},
		{"readOnly yes", list(sel(mgmt, `{"Field":"readOnly","Equals":["yes"]}`)), "value true or false"},
		{"readOnly NotEquals", list(sel(mgmt, `{"Field":"readOnly","NotEquals":["true"]}`)), "value true or false"},
		{"data without type", list(sel(data)), "must contain the resources.type field"},
		{"type on management", list(sel(mgmt, s3)), "Field resources.type is not supported"},
		{"type StartsWith", list(sel(data, `{"Field":"resources.type","StartsWith":["AWS::S3"]}`)), "resources.type in the advanced event selector 1 must use the Equals operator"},
		{"two types", list(sel(data, `{"Field":"resources.type","Equals":["AWS::S3::Object","AWS::SNS::Topic"]}`)), "exactly one resource type"},
		{"bad type", list(sel(data, `{"Field":"resources.type","Equals":["S3Object"]}`)), "not a valid resource type"},
		{"management eventSource Equals", list(sel(mgmt, `{"Field":"eventSource","Equals":["kms.amazonaws.com"]}`)), "can only use NotEquals"},
		{"management eventSource ec2", list(sel(mgmt, `{"Field":"eventSource","NotEquals":["ec2.amazonaws.com"]}`)), "Value ec2.amazonaws.com for field eventSource"},
		{"network without source", list(sel(net)), "must contain the eventSource field"},
		{"network source NotEquals", list(sel(net, `{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}`)), "must use the Equals operator for NetworkActivity"},
		{"network bad source", list(sel(net, `{"Field":"eventSource","Equals":["kms"]}`)), "not a valid event source"},
		{"network errorCode", list(sel(net, `{"Field":"eventSource","Equals":["kms.amazonaws.com"]}`, `{"Field":"errorCode","Equals":["AccessDenied"]}`)), "value VpceAccessDenied"},
		{"500 values", list(sel(data, s3, `{"Field":"resources.ARN","StartsWith":[`+values(498)+`]}`)), ""},
		{"501 values", list(sel(data, s3, `{"Field":"resources.ARN","StartsWith":[`+values(250)+`]}`), sel(data, s3, `{"Field":"resources.ARN","StartsWith":[`+values(247)+`]}`)), "at most 500 values across all conditions; 501"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkErr(t, ValidateAdvanced(decodeAdvanced(t, c.sels)), "InvalidEventSelectorsException", c.wantErr)
		})
	}
}

func TestValidateInsight(t *testing.T) {
	typ := func(s string) *string { return &s }
	cases := []struct {
		name    string
		sels    []InsightSelector
		wantErr string
	}{
		{"empty disables", nil, ""},
		{"both types", []InsightSelector{{InsightType: typ("ApiCallRateInsight")}, {InsightType: typ("ApiErrorRateInsight"), EventCategories: []string{"Management", "Data"}}}, ""},
		{"missing type", []InsightSelector{{}}, "must specify an InsightType"},
		{"bad type", []InsightSelector{{InsightType: typ("ApiRate")}}, "Value ApiRate for InsightType is invalid"},
		{"duplicate type", []InsightSelector{{InsightType: typ("ApiCallRateInsight")}, {InsightType: typ("ApiCallRateInsight")}}, "more than once"},
		{"bad category", []InsightSelector{{InsightType: typ("ApiCallRateInsight"), EventCategories: []string{"Insight"}}}, "Value Insight for EventCategories"},
		{"duplicate category", []InsightSelector{{InsightType: typ("ApiCallRateInsight"), EventCategories: []string{"Data", "Data"}}}, "Event category Data is specified more than once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkErr(t, ValidateInsight(c.sels), "InvalidInsightSelectorsException", c.wantErr)
		})
	}
}

func TestInsightPrerequisites(t *testing.T) {
	typ := func(s string) *string { return &s }
	callRate := []InsightSelector{{InsightType: typ(ApiCallRateInsight)}}
	errorRate := []InsightSelector{{InsightType: typ(ApiErrorRateInsight), EventCategories: []string{"Management"}}}
	dataRate := []InsightSelector{{InsightType: typ(ApiErrorRateInsight), EventCategories: []string{"Data"}}}
	cases := []struct {
		name     string
		basic    string
		advanced string
		sels     []InsightSelector
		wantErr  string
	}{
		{"default selection, call rate", "", "", callRate, ""},
		{"read-only trail, call rate", `[{"ReadWriteType":"ReadOnly"}]`, "", callRate, "must log write management events"},
		{"read-only trail, error rate", `[{"ReadWriteType":"ReadOnly"}]`, "", errorRate, ""},
		{"data-only trail, error rate", `[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, "", errorRate, "must log read or write management events"},
		{"data-only trail, data insights", `[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, "", dataRate, ""},
		{"default selection, data insights", "", "", dataRate, "must log read or write data events"},
		{"advanced read-only management, call rate", "", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["true"]}]}]`, callRate, "must log write management events"},
		{"advanced write management, call rate", "", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]`, callRate, ""},
		{"advanced data, data insights", "", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::SNS::Topic"]}]}]`, dataRate, ""},
		{"turning Insights off needs nothing", `[{"IncludeManagementEvents":false}]`, "", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var basic []EventSelector
			var advanced []AdvancedEventSelector
			if c.basic != "" {
				basic = decodeBasic(t, c.basic)
			}
			if c.advanced != "" {
				advanced = decodeAdvanced(t, c.advanced)
			}
			checkErr(t, CheckInsightPrerequisites(c.sels, CoverageOf(basic, advanced)), "InvalidInsightSelectorsException", c.wantErr)
		})
	}
}
