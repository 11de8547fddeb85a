package selector

import (
	"encoding/json"
	"testing"
)

// decodeBasic and decodeAdvanced read selectors from the JSON a client
// sends, so the cases read like PutEventSelectors requests.
func decodeBasic(t *testing.T, s string) []EventSelector {
	t.Helper()
	var out []EventSelector
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("decode basic selectors: %v", err)
	}
	return out
}

func decodeAdvanced(t *testing.T, s string) []AdvancedEventSelector {
	t.Helper()
	var out []AdvancedEventSelector
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("decode advanced selectors: %v", err)
	}
	return out
}

var (
	mgmtRead   = Event{EventCategory: "Management", ReadOnly: "true", EventSource: "ec2.amazonaws.com", EventName: "DescribeInstances"}
	mgmtWrite  = Event{EventCategory: "Management", ReadOnly: "false", EventSource: "ec2.amazonaws.com", EventName: "RunInstances"}
	mgmtOld    = Event{ReadOnly: "", EventSource: "iam.amazonaws.com", EventName: "CreateUser"}
	kmsRead    = Event{EventCategory: "Management", ReadOnly: "true", EventSource: "kms.amazonaws.com", EventName: "Decrypt"}
	rdsData    = Event{EventCategory: "Management", ReadOnly: "false", EventSource: "rdsdata.amazonaws.com", EventName: "ExecuteStatement"}
	s3PutLogs  = Event{EventCategory: "Data", ReadOnly: "false", EventSource: "s3.amazonaws.com", EventName: "PutObject", Resources: []Resource{{"AWS::S3::Object", "arn:aws:s3:::logs/2024/a.txt"}, {"AWS::S3::Bucket", "arn:aws:s3:::logs"}}}
	s3GetLogs  = Event{EventCategory: "Data", ReadOnly: "true", EventSource: "s3.amazonaws.com", EventName: "GetObject", Resources: []Resource{{"AWS::S3::Object", "arn:aws:s3:::logs/2024/a.txt"}, {"AWS::S3::Bucket", "arn:aws:s3:::logs"}}}
	s3PutOther = Event{EventCategory: "Data", ReadOnly: "false", EventSource: "s3.amazonaws.com", EventName: "PutObject", Resources: []Resource{{"AWS::S3::Object", "arn:aws:s3:::other/x"}, {"AWS::S3::Bucket", "arn:aws:s3:::other"}}}
	lambdaHW   = Event{EventCategory: "Data", ReadOnly: "false", EventSource: "lambda.amazonaws.com", EventName: "Invoke", Resources: []Resource{{"AWS::Lambda::Function", "arn:aws:lambda:us-west-2:111111111111:function:helloworld"}}}
	lambdaHW2  = Event{EventCategory: "Data", ReadOnly: "false", EventSource: "lambda.amazonaws.com", EventName: "Invoke", Resources: []Resource{{"AWS::Lambda::Function", "arn:aws:lambda:us-west-2:111111111111:function:helloworld2"}}}
	lambdaHWv1 = Event{EventCategory: "Data", ReadOnly: "false", EventSource: "lambda.amazonaws.com", EventName: "Invoke", Resources: []Resource{{"AWS::Lambda::Function", "arn:aws:lambda:us-west-2:111111111111:function:helloworld:1"}}}
	ddbGet     = Event{EventCategory: "Data", ReadOnly: "true", EventSource: "dynamodb.amazonaws.com", EventName: "GetItem", Resources: []Resource{{"AWS::DynamoDB::Table", "arn:aws:dynamodb:us-east-1:111111111111:table/Orders"}}}
	snsPublish = Event{EventCategory: "Data", ReadOnly: "false", EventSource: "sns.amazonaws.com", EventName: "Publish", Resources: []Resource{{"AWS::SNS::Topic", "arn:aws:sns:us-east-1:111111111111:myTopic"}}}
	vpceDenied = Event{EventCategory: "NetworkActivity", EventSource: "kms.amazonaws.com", EventName: "Decrypt", ErrorCode: "VpceAccessDenied", VpcEndpointID: "vpce-123"}
	vpceOK     = Event{EventCategory: "NetworkActivity", EventSource: "kms.amazonaws.com", EventName: "Decrypt", VpcEndpointID: "vpce-456"}
	insight    = Event{EventCategory: "Insight", EventSource: "ec2.amazonaws.com", EventName: "RunInstances"}
)

func TestMatchBasic(t *testing.T) {
	cases := []struct {
		name string
		sels string // "" = no selectors: the default selection
		ev   Event
		want bool
	}{
		{"default logs management read", "", mgmtRead, true},
		{"default logs management write", "", mgmtWrite, true},
		{"default logs records without eventCategory", "", mgmtOld, true},
		{"default logs no data events", "", s3PutLogs, false},
		{"default logs no network activity", "", vpceDenied, false},
		{"default logs no insights", "", insight, false},
		{"ReadOnly takes reads", `[{"ReadWriteType":"ReadOnly"}]`, mgmtRead, true},
		{"ReadOnly skips writes", `[{"ReadWriteType":"ReadOnly"}]`, mgmtWrite, false},
		{"ReadOnly skips unknown readOnly", `[{"ReadWriteType":"ReadOnly"}]`, mgmtOld, false},
		{"WriteOnly takes writes", `[{"ReadWriteType":"WriteOnly"}]`, mgmtWrite, true},
		{"WriteOnly skips reads", `[{"ReadWriteType":"WriteOnly"}]`, mgmtRead, false},
		{"IncludeManagementEvents false", `[{"IncludeManagementEvents":false}]`, mgmtWrite, false},
		{"exclude kms", `[{"ExcludeManagementEventSources":["kms.amazonaws.com"]}]`, kmsRead, false},
		{"exclude kms keeps others", `[{"ExcludeManagementEventSources":["kms.amazonaws.com"]}]`, rdsData, true},
		{"exclude rdsdata", `[{"ExcludeManagementEventSources":["rdsdata.amazonaws.com"]}]`, rdsData, false},
		{"all s3", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, s3PutOther, true},
		{"all s3 with colons", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::"]}]}]`, s3PutOther, true},
		{"one bucket", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/"]}]}]`, s3PutLogs, true},
		{"one bucket skips another", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/"]}]}]`, s3PutOther, false},
		{"object prefix", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/2024/"]}]}]`, s3PutLogs, true},
		{"object prefix miss", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/2023/"]}]}]`, s3PutLogs, false},
		{"data selector still logs management", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, mgmtWrite, true},
		{"data only selector", `[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, mgmtWrite, false},
		{"read-only data selector skips writes", `[{"ReadWriteType":"ReadOnly","DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, s3PutLogs, false},
		{"read-only data selector takes reads", `[{"ReadWriteType":"ReadOnly","DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, s3GetLogs, true},
		{"all lambda", `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]`, lambdaHW, true},
		{"exact lambda", `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:111111111111:function:helloworld"]}]}]`, lambdaHW, true},
		{"exact lambda is not a prefix", `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:111111111111:function:helloworld"]}]}]`, lambdaHW2, false},
		{"lambda version belongs to function", `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:111111111111:function:helloworld"]}]}]`, lambdaHWv1, true},
		{"lambda selector skips s3", `[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]`, s3PutLogs, false},
		{"all dynamodb", `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb"]}]}]`, ddbGet, true},
		{"one table", `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb:us-east-1:111111111111:table/Orders"]}]}]`, ddbGet, true},
		{"other table", `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb:us-east-1:111111111111:table/Users"]}]}]`, ddbGet, false},
		{"basic never takes other data types", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, snsPublish, false},
		{"basic never takes network activity", `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, vpceDenied, false},
		{"selectors are OR-ed", `[{"ReadWriteType":"ReadOnly"},{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/"]}]}]`, s3PutLogs, true},
		{"OR-ed selectors, neither", `[{"ReadWriteType":"ReadOnly"},{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/"]}]}]`, mgmtWrite, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sels []EventSelector
			if c.sels != "" {
				sels = decodeBasic(t, c.sels)
				if err := ValidateBasic(sels); err != nil {
					t.Fatalf("case selectors are invalid: %v", err)
				}
			}
			ev := c.ev
			if got := Match(sels, nil, &ev); got != c.want {
				t.Errorf("Match = %v, want %v", got, c.want)
			}
			// Normalizing (what is stored) must not change the outcome.
			if got := Match(Normalize(sels), nil, &ev); got != c.want {
				t.Errorf("Match(Normalize) = %v, want %v", got, c.want)
			}
		})
	}
}

func TestMatchAdvanced(t *testing.T) {
	const allMgmt = `{"Name":"mgmt","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}`
	const s3ButLogs = `{"Name":"s3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"eventName","Equals":["PutObject","DeleteObject"]},{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::logs/"]}]}`
	cases := []struct {
		name string
		sels string
		ev   Event
		want bool
	}{
		{"all management", "[" + allMgmt + "]", mgmtWrite, true},
		{"all management, old record", "[" + allMgmt + "]", mgmtOld, true},
		{"all management skips data", "[" + allMgmt + "]", s3PutLogs, false},
		{"write management", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]`, mgmtWrite, true},
		{"write management skips reads", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]`, mgmtRead, false},
		{"readOnly condition fails on unknown", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]`, mgmtOld, false},
		{"exclude kms", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}]}]`, kmsRead, false},
		{"exclude kms keeps ec2", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}]}]`, mgmtRead, true},
		{"NotEquals list excludes any value", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com","rdsdata.amazonaws.com"]}]}]`, rdsData, false},
		{"names OR-ed, except bucket: other bucket put", "[" + s3ButLogs + "]", s3PutOther, true},
		{"except bucket: excluded bucket", "[" + s3ButLogs + "]", s3PutLogs, false},
		{"except bucket: wrong event name", "[" + s3ButLogs + "]", s3GetLogs, false},
		{"resource conditions bind to one resource", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","NotEquals":["arn:aws:s3:::logs/2024/a.txt"]}]}]`, s3PutLogs, false},
		{"StartsWith ARN", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::logs/"]}]}]`, s3PutLogs, true},
		{"EndsWith ARN", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","EndsWith":[".txt"]}]}]`, s3GetLogs, true},
		{"NotEndsWith ARN", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","NotEndsWith":[".txt"]}]}]`, s3GetLogs, false},
		{"StartsWith and NotStartsWith AND-ed", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::logs/"],"NotStartsWith":["arn:aws:s3:::logs/2024/"]}]}]`, s3PutLogs, false},
		{"other data type", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::SNS::Topic"]},{"Field":"eventName","Equals":["Publish"]}]}]`, snsPublish, true},
		{"type selects only its type", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::SNS::Topic"]}]}]`, s3PutLogs, false},
		{"network activity denied", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]},{"Field":"errorCode","Equals":["VpceAccessDenied"]}]}]`, vpceDenied, true},
		{"network activity allowed is not denied", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]},{"Field":"errorCode","Equals":["VpceAccessDenied"]}]}]`, vpceOK, false},
		{"network activity by endpoint", `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]},{"Field":"vpcEndpointId","NotEquals":["vpce-123"]}]}]`, vpceOK, true},
		{"selectors OR-ed", "[" + allMgmt + "," + s3ButLogs + "]", s3PutOther, true},
		{"advanced never takes insights", "[" + allMgmt + "]", insight, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sels := decodeAdvanced(t, c.sels)
			if err := ValidateAdvanced(sels); err != nil {
				t.Fatalf("case selectors are invalid: %v", err)
			}
			ev := c.ev
			if got := Match(nil, sels, &ev); got != c.want {
				t.Errorf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

// Event data store fields are not valid on trails, but evaluation supports
// them so that Lake can reuse it.
func TestMatchEventDataStoreFields(t *testing.T) {
	sel := AdvancedEventSelector{FieldSelectors: []FieldSelector{
		{Field: "eventCategory", Equals: []string{"Management"}},
		{Field: "userIdentity.arn", StartsWith: []string{"arn:aws:iam::111111111111:role/"}},
		{Field: "eventType", Equals: []string{"AwsApiCall"}},
	}}
	ev := Event{EventCategory: "Management", EventType: "AwsApiCall", UserIdentityARN: "arn:aws:iam::111111111111:role/admin"}
	if !sel.Matches(&ev) {
		t.Error("selector on userIdentity.arn and eventType should match")
	}
	ev.UserIdentityARN = "arn:aws:iam::111111111111:user/bob"
	if sel.Matches(&ev) {
		t.Error("selector should not match a user")
	}
	unknown := AdvancedEventSelector{FieldSelectors: []FieldSelector{{Field: "eventCategory", Equals: []string{"Management"}}, {Field: "noSuchField", NotEquals: []string{"x"}}}}
	if unknown.Matches(&ev) {
		t.Error("a condition on an unknown field must not match")
	}
}
