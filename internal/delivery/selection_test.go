package delivery

import (
	"encoding/json"
	"testing"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/trail"
)

// TestSelection runs records (as JSON, through event.Parse, as the
// deliverer sees them) against trails with CloudTrail's region rules and
// basic and advanced selectors.
func TestSelection(t *testing.T) {
	var (
		mgmtWrite   = rec{Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "RunInstances", ReadOnly: "false"}
		mgmtRead    = rec{Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "DescribeInstances", ReadOnly: "true"}
		mgmtNoRO    = rec{Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "DescribeInstances"}
		mgmtWest    = rec{Region: "us-west-2", Source: "ec2.amazonaws.com", Name: "RunInstances", ReadOnly: "false"}
		iamGlobal   = rec{Region: "us-east-1", Source: "iam.amazonaws.com", Name: "CreateUser", ReadOnly: "false"}
		stsRegional = rec{Region: "eu-west-1", Source: "sts.amazonaws.com", Name: "AssumeRole", ReadOnly: "false"}
		cfGlobal    = rec{Region: "us-east-1", Source: "cloudfront.amazonaws.com", Name: "CreateDistribution", ReadOnly: "false"}
		kmsRead     = rec{Region: "us-east-1", Source: "kms.amazonaws.com", Name: "Decrypt", ReadOnly: "true"}
		s3Get       = rec{Region: "us-east-1", Source: "s3.amazonaws.com", Name: "GetObject", ReadOnly: "true", Category: "Data",
			Resources: [][2]string{{"AWS::S3::Object", "arn:aws:s3:::logs/2024/a.txt"}, {"AWS::S3::Bucket", "arn:aws:s3:::logs"}}}
		s3PutOther = rec{Region: "us-east-1", Source: "s3.amazonaws.com", Name: "PutObject", ReadOnly: "false", Category: "Data",
			Resources: [][2]string{{"AWS::S3::Object", "arn:aws:s3:::other/x"}, {"AWS::S3::Bucket", "arn:aws:s3:::other"}}}
		lambdaInvoke = rec{Region: "us-east-1", Source: "lambda.amazonaws.com", Name: "Invoke", ReadOnly: "false", Category: "Data",
			Resources: [][2]string{{"AWS::Lambda::Function", "arn:aws:lambda:us-east-1:123456789012:function:hello"}}}
		lambdaOther = rec{Region: "us-east-1", Source: "lambda.amazonaws.com", Name: "Invoke", ReadOnly: "false", Category: "Data",
			Resources: [][2]string{{"AWS::Lambda::Function", "arn:aws:lambda:us-east-1:123456789012:function:hello2"}}}
		ddbPut = rec{Region: "us-east-1", Source: "dynamodb.amazonaws.com", Name: "PutItem", ReadOnly: "false", Category: "Data",
			Resources: [][2]string{{"AWS::DynamoDB::Table", "arn:aws:dynamodb:us-east-1:123456789012:table/Orders"}}}
		vpceDenied = rec{Region: "us-east-1", Source: "kms.amazonaws.com", Name: "Decrypt", Category: "NetworkActivity", VPCE: "vpce-0123", ErrorCode: "VpceAccessDenied"}
		insightRec = rec{Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "RunInstances", Category: "Insight"}
		channelRec = rec{Region: "us-east-1", Source: "payments.example.com", Name: "Refund", Category: "ActivityAuditLog"}
		consoleRec = rec{Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "RunInstances", ReadOnly: "false", Console: true}
	)
	single := func(region string, global bool) trail.Trail {
		return trail.Trail{Name: "t", HomeRegion: region, AccountID: testAccount, IncludeGlobalServiceEvents: global}
	}
	multi := trail.Trail{Name: "m", HomeRegion: "eu-west-1", AccountID: testAccount, IsMultiRegionTrail: true, IncludeGlobalServiceEvents: true}
	basic := func(tr trail.Trail, js string) trail.Trail {
		var sels []selector.EventSelector
		if err := json.Unmarshal([]byte(js), &sels); err != nil {
			t.Fatal(err)
		}
		if err := selector.ValidateBasic(sels); err != nil {
			t.Fatalf("selectors %s: %v", js, err)
		}
		tr.EventSelectors = selector.Normalize(sels)
		return tr
	}
	advanced := func(tr trail.Trail, js string, validate bool) trail.Trail {
		var sels []selector.AdvancedEventSelector
		if err := json.Unmarshal([]byte(js), &sels); err != nil {
			t.Fatal(err)
		}
		if validate {
			if err := selector.ValidateAdvanced(sels); err != nil {
				t.Fatalf("selectors %s: %v", js, err)
			}
		}
		tr.AdvancedEventSelectors = sels
		return tr
	}
	east := single("us-east-1", true)
	const s3Logs = `[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/"]}]}]`
	cases := []struct {
		name  string
		trail trail.Trail
		rec   rec
		want  bool
	}{
		// Regions and global service events.
		{"home-region management write", east, mgmtWrite, true},
		{"home-region management read", east, mgmtRead, true},
		{"single-region trail skips other regions", east, mgmtWest, false},
		{"multi-region trail takes other regions", multi, mgmtWest, true},
		{"multi-region trail takes global events", multi, iamGlobal, true},
		{"global event reaches a trail in another home region", single("eu-west-1", true), iamGlobal, true},
		{"global event needs IncludeGlobalServiceEvents", single("eu-west-1", false), iamGlobal, false},
		{"global event skipped even in us-east-1 without the flag", single("us-east-1", false), iamGlobal, false},
		{"cloudfront is global", single("ap-south-1", true), cfGlobal, true},
		{"regional sts is not global", single("eu-west-1", false), stsRegional, true},
		{"regional sts stays in its region", single("us-east-1", true), stsRegional, false},
		{"non-global us-east-1 event without the flag", single("us-east-1", false), mgmtWrite, true},
		// Basic selectors.
		{"ReadOnly takes reads", basic(east, `[{"ReadWriteType":"ReadOnly"}]`), mgmtRead, true},
		{"ReadOnly skips writes", basic(east, `[{"ReadWriteType":"ReadOnly"}]`), mgmtWrite, false},
		{"ReadOnly skips records without readOnly", basic(east, `[{"ReadWriteType":"ReadOnly"}]`), mgmtNoRO, false},
		{"WriteOnly takes writes", basic(east, `[{"ReadWriteType":"WriteOnly"}]`), mgmtWrite, true},
		{"WriteOnly skips reads", basic(east, `[{"ReadWriteType":"WriteOnly"}]`), mgmtRead, false},
		{"default takes no data events", east, s3Get, false},
		{"S3 DataResources takes the bucket's objects", basic(east, s3Logs), s3Get, true},
		{"S3 DataResources skips other buckets", basic(east, s3Logs), s3PutOther, false},
		{"IncludeManagementEvents false", basic(east, s3Logs), mgmtWrite, false},
		{"Lambda function exact", basic(east, `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-east-1:123456789012:function:hello"]}]}]`), lambdaInvoke, true},
		{"Lambda function is not a prefix", basic(east, `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-east-1:123456789012:function:hello"]}]}]`), lambdaOther, false},
		{"DynamoDB all tables", basic(east, `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb"]}]}]`), ddbPut, true},
		{"ExcludeManagementEventSources kms", basic(east, `[{"ExcludeManagementEventSources":["kms.amazonaws.com"]}]`), kmsRead, false},
		{"ExcludeManagementEventSources keeps others", basic(east, `[{"ExcludeManagementEventSources":["kms.amazonaws.com"]}]`), mgmtRead, true},
		{"basic never takes network activity", basic(east, `[{"ReadWriteType":"All"}]`), vpceDenied, false},
		// Advanced selectors (reference §6.2).
		{"advanced management, kms excluded", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}]}]`, true), kmsRead, false},
		{"advanced management, others kept", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}]}]`, true), mgmtWrite, true},
		{"advanced management write only", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]`, true), mgmtRead, false},
		{"advanced S3 by ARN prefix", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::logs/"]}]}]`, true), s3Get, true},
		{"advanced S3 NotStartsWith", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::logs/"]}]}]`, true), s3Get, false},
		{"advanced S3 NotStartsWith other bucket", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::logs/"]}]}]`, true), s3PutOther, true},
		{"advanced eventName NotEquals", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"eventName","NotEquals":["GetObject"]}]}]`, true), s3Get, false},
		{"advanced eventName EndsWith", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"eventName","EndsWith":["Object"]}]}]`, true), s3PutOther, true},
		{"advanced resources.ARN EndsWith", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::Lambda::Function"]},{"Field":"resources.ARN","EndsWith":[":hello"]}]}]`, true), lambdaInvoke, true},
		{"advanced resources.ARN NotEndsWith", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::Lambda::Function"]},{"Field":"resources.ARN","NotEndsWith":[":hello"]}]}]`, true), lambdaInvoke, false},
		{"advanced network activity by errorCode", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]},{"Field":"errorCode","Equals":["VpceAccessDenied"]}]}]`, true), vpceDenied, true},
		{"advanced network activity by vpcEndpointId", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]},{"Field":"vpcEndpointId","StartsWith":["vpce-01"]}]}]`, true), vpceDenied, true},
		{"advanced sessionCredentialFromConsole (event data store field)", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"sessionCredentialFromConsole","Equals":["true"]}]}]`, false), consoleRec, true},
		{"advanced sessionCredentialFromConsole absent", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"sessionCredentialFromConsole","Equals":["true"]}]}]`, false), mgmtWrite, false},
		{"advanced selectors are OR-ed", advanced(east, `[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["true"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::DynamoDB::Table"]}]}]`, true), ddbPut, true},
		// Never in trail log files.
		{"insights records", multi, insightRec, false},
		{"channel (PutAuditEvents) records", multi, channelRec, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := event.Parse(c.rec.json(1))
			if err != nil {
				t.Fatal(err)
			}
			sel := SelectionOf(&c.trail)
			if got := sel.Selects(r); got != c.want {
				t.Errorf("Selects = %v, want %v", got, c.want)
			}
			// The selection survives the trip through a stored plan.
			raw, err := json.Marshal(sel)
			if err != nil {
				t.Fatal(err)
			}
			var back Selection
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			back.prepare()
			if got := back.Selects(r); got != c.want {
				t.Errorf("after a JSON round trip Selects = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFileRegion(t *testing.T) {
	sel := Selection{HomeRegion: "eu-west-1"}
	for region, want := range map[string]string{
		"us-west-2": "us-west-2",
		"us east 1": "eu-west-1",
		"../../etc": "eu-west-1",
		"US-EAST-1": "eu-west-1",
	} {
		r, err := event.Parse(rec{Region: region}.json(1))
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.fileRegion(r); got != want {
			t.Errorf("fileRegion(%q) = %q, want %q", region, got, want)
		}
	}
}
