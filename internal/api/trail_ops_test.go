package api_test

import (
	"context"
	"testing"
	"time"
)

const (
	mainARN  = "arn:aws:cloudtrail:us-east-1:123456789012:trail/main"
	orgARN   = "arn:aws:cloudtrail:us-west-2:123456789012:trail/everywhere"
	plainARN = "arn:aws:cloudtrail:us-east-1:123456789012:trail/plain"
)

// TestTrailOperationsGolden drives every trail, selector, Insights and tag
// operation through a realistic life cycle and pins each response.
func TestTrailOperationsGolden(t *testing.T) {
	e := newTrailEnv(t)
	tr := &transcript{t: t}
	e.run(tr, []step{
		{"create with every option", east, "CreateTrail", `{"Name":"main","S3BucketName":"cairn-logs","S3KeyPrefix":"audit/prod","SnsTopicName":"trail-topic","IncludeGlobalServiceEvents":true,"IsMultiRegionTrail":false,"EnableLogFileValidation":true,"CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/main:*","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/CloudTrail_CloudWatchLogs_Role","KmsKeyId":"4c5ae5ac-3c13-421e-8335-c7868ef6a769","IsOrganizationTrail":false,"TagsList":[{"Key":"team","Value":"security"},{"Key":"env"}]}`, ""},
		{"create with defaults", east, "CreateTrail", `{"Name":"plain","S3BucketName":"cairn-logs"}`, ""},
		{"create multi-region in another region", west, "CreateTrail", `{"Name":"everywhere","S3BucketName":"cairn-other","IsMultiRegionTrail":true,"SnsTopicName":"arn:aws:sns:us-west-2:123456789012:alerts","KmsKeyId":"alias/cloudtrail"}`, ""},
		{"get by name", east, "GetTrail", `{"Name":"main"}`, ""},
		{"get by ARN", east, "GetTrail", `{"Name":"` + mainARN + `"}`, ""},
		{"get shadow trail by name", east, "GetTrail", `{"Name":"everywhere"}`, ""},
		{"get other region's trail by ARN", west, "GetTrail", `{"Name":"` + plainARN + `"}`, ""},
		{"describe all, shadows by default", east, "DescribeTrails", `{}`, ""},
		{"describe without shadows", east, "DescribeTrails", `{"includeShadowTrails":false}`, ""},
		{"describe by names and ARN", west, "DescribeTrails", `{"trailNameList":["everywhere","main","` + mainARN + `","missing"]}`, ""},
		{"list every region", euWest, "ListTrails", `{}`, ""},
		{"status of a new trail", east, "GetTrailStatus", `{"Name":"main"}`, ""},
		{"start logging", east, "StartLogging", `{"Name":"main"}`, ""},
		{"status while logging", east, "GetTrailStatus", `{"Name":"main"}`, ""},
		{"stop logging", east, "StopLogging", `{"Name":"` + mainARN + `"}`, ""},
		{"status after stop", east, "GetTrailStatus", `{"Name":"` + mainARN + `"}`, ""},
		{"shadow status", euWest, "GetTrailStatus", `{"Name":"everywhere"}`, ""},
		{"update bucket, clear prefix and topic, alias ARN key", east, "UpdateTrail", `{"Name":"main","S3BucketName":"cairn-other","S3KeyPrefix":"","SnsTopicName":"","KmsKeyId":"arn:aws:kms:us-east-1:123456789012:alias/trails"}`, ""},
		{"update turns off CloudWatch Logs and validation", east, "UpdateTrail", `{"Name":"` + mainARN + `","CloudWatchLogsLogGroupArn":"","CloudWatchLogsRoleArn":"","EnableLogFileValidation":false,"KmsKeyId":""}`, ""},
		{"update to multi-region", east, "UpdateTrail", `{"Name":"plain","IsMultiRegionTrail":true}`, ""},
		{"default event selectors", east, "GetEventSelectors", `{"TrailName":"main"}`, ""},
		{"put basic selectors", east, "PutEventSelectors", `{"TrailName":"main","EventSelectors":[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::cairn-data/"]},{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}],"ExcludeManagementEventSources":["kms.amazonaws.com"]},{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb:us-east-1:123456789012:table/Orders"]}]}]}`, ""},
		{"get basic selectors", east, "GetEventSelectors", `{"TrailName":"` + mainARN + `"}`, ""},
		{"get trail shows custom selectors", east, "GetTrail", `{"Name":"main"}`, ""},
		{"put advanced selectors overwrites basic", east, "PutEventSelectors", `{"TrailName":"main","AdvancedEventSelectors":[{"Name":"Log all management events","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},{"Name":"Log PutObject and DeleteObject events for all but one bucket","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"eventName","Equals":["PutObject","DeleteObject"]},{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::cairn-logs/"]}]}]}`, ""},
		{"get advanced selectors", east, "GetEventSelectors", `{"TrailName":"main"}`, ""},
		{"shadow selectors readable elsewhere", euWest, "GetEventSelectors", `{"TrailName":"everywhere"}`, ""},
		{"basic overwrites advanced", east, "PutEventSelectors", `{"TrailName":"main","EventSelectors":[{"ReadWriteType":"WriteOnly","DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]}`, ""},
		{"get selectors after overwrite", east, "GetEventSelectors", `{"TrailName":"main"}`, ""},
		{"put insight selectors", east, "PutInsightSelectors", `{"TrailName":"main","InsightSelectors":[{"InsightType":"ApiCallRateInsight"},{"InsightType":"ApiErrorRateInsight","EventCategories":["Management","Data"]}]}`, ""},
		{"get insight selectors", east, "GetInsightSelectors", `{"TrailName":"main"}`, ""},
		{"get trail shows insights", east, "GetTrail", `{"Name":"main"}`, ""},
		{"disable insights", east, "PutInsightSelectors", `{"TrailName":"main","InsightSelectors":[]}`, ""},
		{"insights now off", east, "GetInsightSelectors", `{"TrailName":"main"}`, "InsightNotEnabledException"},
		{"list tags", east, "ListTags", `{"ResourceIdList":["` + mainARN + `","` + plainARN + `"]}`, ""},
		{"add tags", east, "AddTags", `{"ResourceId":"` + mainARN + `","TagsList":[{"Key":"env","Value":"prod"},{"Key":"owner","Value":"alice"}]}`, ""},
		{"remove tags", east, "RemoveTags", `{"ResourceId":"` + mainARN + `","TagsList":[{"Key":"team"},{"Key":"owner","Value":"not-alice"}]}`, ""},
		{"list tags after changes", east, "ListTags", `{"ResourceIdList":["` + mainARN + `"]}`, ""},
		{"delete by name", east, "DeleteTrail", `{"Name":"main"}`, ""},
		{"delete by ARN", west, "DeleteTrail", `{"Name":"` + orgARN + `"}`, ""},
		{"deleted trail is gone", east, "GetTrail", `{"Name":"main"}`, "TrailNotFoundException"},
		{"its tags are gone", east, "ListTags", `{"ResourceIdList":["` + mainARN + `"]}`, "ResourceNotFoundException"},
		{"list what is left", east, "ListTrails", `{}`, ""},
	})
	tr.check("trail_operations")
}

// TestTrailStatusDelivery pins GetTrailStatus once delivery has recorded
// its attempts through the methods the delivery package calls.
func TestTrailStatusDelivery(t *testing.T) {
	e := newTrailEnv(t)
	ctx := context.Background()
	e.ok(east, "CreateTrail", `{"Name":"main","S3BucketName":"cairn-logs","SnsTopicName":"t"}`)
	e.ok(east, "StartLogging", `{"Name":"main"}`)
	base := e.now
	steps := []struct {
		name string
		fn   func(context.Context, string, time.Time, string) error
		at   time.Duration
		err  string
	}{
		{"delivery ok", e.svc.RecordDelivery, 5 * time.Minute, ""},
		{"delivery failed", e.svc.RecordDelivery, 10 * time.Minute, "AccessDenied"},
		{"notification ok", e.svc.RecordNotification, 5*time.Minute + 500*time.Millisecond, ""},
		{"notification failed", e.svc.RecordNotification, 10 * time.Minute, "AuthorizationError"},
		{"digest ok", e.svc.RecordDigestDelivery, time.Hour, ""},
		{"cloudwatch ok", e.svc.RecordCloudWatchLogsDelivery, 6 * time.Minute, ""},
	}
	for _, s := range steps {
		if err := s.fn(ctx, mainARN, base.Add(s.at), s.err); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	tr := &transcript{t: t}
	e.run(tr, []step{{"status after deliveries", east, "GetTrailStatus", `{"Name":"main"}`, ""}})
	if err := e.svc.RecordDelivery(ctx, mainARN, base.Add(15*time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	e.run(tr, []step{{"a successful delivery clears the error", east, "GetTrailStatus", `{"Name":"main"}`, ""}})
	tr.check("trail_status_delivery")

	if err := e.svc.RecordDelivery(ctx, "arn:aws:cloudtrail:us-east-1:123456789012:trail/gone", base, ""); err == nil {
		t.Error("RecordDelivery for a missing trail succeeded")
	}
}
