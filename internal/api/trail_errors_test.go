package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// trailFixture creates the trails the error tests run against: "main" in
// us-east-1 with CloudWatch Logs, and the multi-region "everywhere" whose
// home is us-west-2.
func trailFixture(t *testing.T) *trailEnv {
	e := newTrailEnv(t)
	e.ok(east, "CreateTrail", `{"Name":"main","S3BucketName":"cairn-logs","CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:ct:*","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/ct"}`)
	e.ok(west, "CreateTrail", `{"Name":"everywhere","S3BucketName":"cairn-logs","IsMultiRegionTrail":true}`)
	return e
}

func tagsJSON(n int, keyf string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"Key":"`+keyf+`","Value":"v"}`, i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func arnList(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"` + mainARN + `"`
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestTrailErrors covers every modeled error the trail, selector, Insights
// and tag operations can produce in Cairn, with the exact wire code, status
// and message pinned by the golden file. None of these calls may change
// anything, which the test checks at the end.
func TestTrailErrors(t *testing.T) {
	e := trailFixture(t)
	before := snapshotTrails(e)
	long := strings.Repeat("a", 129)
	const otherAccountARN = "arn:aws:cloudtrail:us-east-1:210987654321:trail/main"
	const wrongRegionARN = "arn:aws:cloudtrail:eu-west-1:123456789012:trail/main"
	const badARN = "arn:aws:cloudtrail:us-east-1:123456789012:main"
	steps := []step{
		// CreateTrail
		{"create: Name missing", east, "CreateTrail", `{"S3BucketName":"cairn-logs"}`, "ValidationException"},
		{"create: bucket missing", east, "CreateTrail", `{"Name":"new"}`, "ValidationException"},
		{"create: malformed JSON", east, "CreateTrail", `{"Name":`, "SerializationException"},
		{"create: Name of the wrong type", east, "CreateTrail", `{"Name":5,"S3BucketName":"cairn-logs"}`, "SerializationException"},
		{"create: name too short", east, "CreateTrail", `{"Name":"ab","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: name too long", east, "CreateTrail", `{"Name":"` + long + `","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: name starts with a dash", east, "CreateTrail", `{"Name":"-abc","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: name ends with a period", east, "CreateTrail", `{"Name":"abc.","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: name with a space", east, "CreateTrail", `{"Name":"my trail","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: adjacent dashes", east, "CreateTrail", `{"Name":"my--trail","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: dash then underscore", east, "CreateTrail", `{"Name":"my-_trail","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: IP-shaped name", east, "CreateTrail", `{"Name":"192.168.5.4","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: ARN as the name", east, "CreateTrail", `{"Name":"` + mainARN + `","S3BucketName":"cairn-logs"}`, "InvalidTrailNameException"},
		{"create: name taken", east, "CreateTrail", `{"Name":"main","S3BucketName":"cairn-logs"}`, "TrailAlreadyExistsException"},
		{"create: name of a shadow trail", east, "CreateTrail", `{"Name":"everywhere","S3BucketName":"cairn-logs"}`, "TrailAlreadyExistsException"},
		{"create: multi-region name taken elsewhere", euWest, "CreateTrail", `{"Name":"main","S3BucketName":"cairn-logs","IsMultiRegionTrail":true}`, "TrailAlreadyExistsException"},
		{"create: bucket name with upper case", east, "CreateTrail", `{"Name":"new","S3BucketName":"Cairn_Logs"}`, "InvalidS3BucketNameException"},
		{"create: bucket name too short", east, "CreateTrail", `{"Name":"new","S3BucketName":"ab"}`, "InvalidS3BucketNameException"},
		{"create: bucket does not exist", east, "CreateTrail", `{"Name":"new","S3BucketName":"no-such-bucket"}`, "S3BucketDoesNotExistException"},
		{"create: prefix too long", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","S3KeyPrefix":"` + strings.Repeat("p", 201) + `"}`, "InvalidS3PrefixException"},
		{"create: prefix with a brace", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","S3KeyPrefix":"a{b"}`, "InvalidS3PrefixException"},
		{"create: topic name with a space", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","SnsTopicName":"my topic"}`, "InvalidSnsTopicNameException"},
		{"create: topic name too long", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","SnsTopicName":"` + strings.Repeat("t", 257) + `"}`, "InvalidSnsTopicNameException"},
		{"create: malformed topic ARN", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","SnsTopicName":"arn:aws:sns:us-east-1:1234:topic"}`, "InvalidSnsTopicNameException"},
		{"create: KMS key of no known form", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","KmsKeyId":"my-key"}`, "InvalidKmsKeyIdException"},
		{"create: AWS managed key alias", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","KmsKeyId":"alias/aws/s3"}`, "InvalidKmsKeyIdException"},
		{"create: KMS ARN of another service", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","KmsKeyId":"arn:aws:s3:us-east-1:123456789012:key/4c5ae5ac-3c13-421e-8335-c7868ef6a769"}`, "InvalidKmsKeyIdException"},
		{"create: log group without role", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:ct:*"}`, "InvalidParameterCombinationException"},
		{"create: role without log group", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/ct"}`, "InvalidParameterCombinationException"},
		{"create: malformed log group ARN", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:ct","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/ct"}`, "InvalidCloudWatchLogsLogGroupArnException"},
		{"create: malformed role ARN", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:ct:*","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:user/ct"}`, "InvalidCloudWatchLogsRoleArnException"},
		{"create: organization trail", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","IsOrganizationTrail":true}`, "OrganizationsNotInUseException"},
		{"create: multi-region without global events", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","IsMultiRegionTrail":true,"IncludeGlobalServiceEvents":false}`, "InvalidParameterCombinationException"},
		{"create: 51 tags", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","TagsList":` + tagsJSON(51, "k%d") + `}`, "TagsLimitExceededException"},
		{"create: aws: tag", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","TagsList":[{"Key":"aws:owner","Value":"x"}]}`, "InvalidTagParameterException"},
		{"create: empty tag key", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","TagsList":[{"Key":""}]}`, "InvalidTagParameterException"},
		{"create: tag key too long", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","TagsList":[{"Key":"` + long + `"}]}`, "InvalidTagParameterException"},
		{"create: tag value too long", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","TagsList":[{"Key":"k","Value":"` + strings.Repeat("v", 257) + `"}]}`, "InvalidTagParameterException"},
		{"create: duplicate tag keys", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","TagsList":[{"Key":"k","Value":"1"},{"Key":"k","Value":"2"}]}`, "InvalidTagParameterException"},
		{"create: tag key with a forbidden character", east, "CreateTrail", `{"Name":"new","S3BucketName":"cairn-logs","TagsList":[{"Key":"a*b"}]}`, "InvalidTagParameterException"},

		// UpdateTrail
		{"update: Name missing", east, "UpdateTrail", `{"S3BucketName":"cairn-logs"}`, "ValidationException"},
		{"update: unknown trail", east, "UpdateTrail", `{"Name":"nope","S3KeyPrefix":"x"}`, "TrailNotFoundException"},
		{"update: invalid name", east, "UpdateTrail", `{"Name":"a b c"}`, "InvalidTrailNameException"},
		{"update: malformed ARN", east, "UpdateTrail", `{"Name":"` + badARN + `"}`, "CloudTrailARNInvalidException"},
		{"update: ARN of another account", east, "UpdateTrail", `{"Name":"` + otherAccountARN + `"}`, "TrailNotFoundException"},
		{"update: shadow trail", east, "UpdateTrail", `{"Name":"everywhere","S3KeyPrefix":"x"}`, "InvalidHomeRegionException"},
		{"update: home-region ARN from elsewhere", east, "UpdateTrail", `{"Name":"` + orgARN + `","S3KeyPrefix":"x"}`, "InvalidHomeRegionException"},
		{"update: single-region trail from elsewhere", west, "UpdateTrail", `{"Name":"` + mainARN + `","S3KeyPrefix":"x"}`, "InvalidHomeRegionException"},
		{"update: missing trail beats missing bucket", east, "UpdateTrail", `{"Name":"nope","S3BucketName":"no-such-bucket"}`, "TrailNotFoundException"},
		{"update: bucket does not exist", east, "UpdateTrail", `{"Name":"main","S3BucketName":"no-such-bucket"}`, "S3BucketDoesNotExistException"},
		{"update: empty bucket name", east, "UpdateTrail", `{"Name":"main","S3BucketName":""}`, "InvalidS3BucketNameException"},
		{"update: prefix with a control character", east, "UpdateTrail", `{"Name":"main","S3KeyPrefix":"a\u0001"}`, "InvalidS3PrefixException"},
		{"update: bad topic", east, "UpdateTrail", `{"Name":"main","SnsTopicName":"a/b"}`, "InvalidSnsTopicNameException"},
		{"update: bad key", east, "UpdateTrail", `{"Name":"main","KmsKeyId":"key/abc"}`, "InvalidKmsKeyIdException"},
		{"update: clearing only the role", east, "UpdateTrail", `{"Name":"main","CloudWatchLogsRoleArn":""}`, "InvalidParameterCombinationException"},
		{"update: bad log group", east, "UpdateTrail", `{"Name":"main","CloudWatchLogsLogGroupArn":"log-group"}`, "InvalidCloudWatchLogsLogGroupArnException"},
		{"update: bad role", east, "UpdateTrail", `{"Name":"main","CloudWatchLogsRoleArn":"role"}`, "InvalidCloudWatchLogsRoleArnException"},
		{"update: organization trail", east, "UpdateTrail", `{"Name":"main","IsOrganizationTrail":true}`, "OrganizationsNotInUseException"},
		{"update: multi-region without global events", west, "UpdateTrail", `{"Name":"everywhere","IncludeGlobalServiceEvents":false}`, "InvalidParameterCombinationException"},

		// DeleteTrail
		{"delete: Name missing", east, "DeleteTrail", `{}`, "ValidationException"},
		{"delete: unknown trail", east, "DeleteTrail", `{"Name":"nope"}`, "TrailNotFoundException"},
		{"delete: invalid name", east, "DeleteTrail", `{"Name":"x"}`, "InvalidTrailNameException"},
		{"delete: malformed ARN", east, "DeleteTrail", `{"Name":"arn:aws:cloudtrail:us-east-1"}`, "CloudTrailARNInvalidException"},
		{"delete: shadow trail", euWest, "DeleteTrail", `{"Name":"everywhere"}`, "InvalidHomeRegionException"},

		// GetTrail
		{"get: Name missing", east, "GetTrail", `{}`, "ValidationException"},
		{"get: unknown trail", east, "GetTrail", `{"Name":"nope"}`, "TrailNotFoundException"},
		{"get: single-region trail by name elsewhere", west, "GetTrail", `{"Name":"main"}`, "TrailNotFoundException"},
		{"get: invalid name", east, "GetTrail", `{"Name":"ab"}`, "InvalidTrailNameException"},
		{"get: ARN of another service", east, "GetTrail", `{"Name":"arn:aws:s3:::cairn-logs"}`, "CloudTrailARNInvalidException"},
		{"get: ARN of another resource type", east, "GetTrail", `{"Name":"arn:aws:cloudtrail:us-east-1:123456789012:channel/abc"}`, "CloudTrailARNInvalidException"},
		{"get: ARN in a region without the trail", east, "GetTrail", `{"Name":"` + wrongRegionARN + `"}`, "TrailNotFoundException"},
		{"get: ARN of another account", east, "GetTrail", `{"Name":"` + otherAccountARN + `"}`, "TrailNotFoundException"},

		// DescribeTrails, ListTrails
		{"describe: invalid name", east, "DescribeTrails", `{"trailNameList":["main","-x-"]}`, "InvalidTrailNameException"},
		{"describe: malformed ARN", east, "DescribeTrails", `{"trailNameList":["` + badARN + `"]}`, "CloudTrailARNInvalidException"},
		{"describe: list of the wrong type", east, "DescribeTrails", `{"trailNameList":"main"}`, "SerializationException"},
		{"list: forged token", east, "ListTrails", `{"NextToken":"not-a-token"}`, "InvalidNextTokenException"},

		// GetTrailStatus, StartLogging, StopLogging
		{"status: unknown trail by name", east, "GetTrailStatus", `{"Name":"nope"}`, "TrailNotFoundException"},
		{"status: unknown trail by ARN", east, "GetTrailStatus", `{"Name":"` + wrongRegionARN + `"}`, "TrailNotFoundException"},
		{"status: invalid name", east, "GetTrailStatus", `{"Name":"a..b"}`, "InvalidTrailNameException"},
		{"status: malformed ARN", east, "GetTrailStatus", `{"Name":"` + badARN + `"}`, "CloudTrailARNInvalidException"},
		{"start: Name missing", east, "StartLogging", `{}`, "ValidationException"},
		{"start: unknown trail", east, "StartLogging", `{"Name":"nope"}`, "TrailNotFoundException"},
		{"start: shadow trail", east, "StartLogging", `{"Name":"everywhere"}`, "InvalidHomeRegionException"},
		{"start: invalid name", east, "StartLogging", `{"Name":"_main"}`, "InvalidTrailNameException"},
		{"start: malformed ARN", east, "StartLogging", `{"Name":"` + badARN + `"}`, "CloudTrailARNInvalidException"},
		{"stop: unknown trail", east, "StopLogging", `{"Name":"nope"}`, "TrailNotFoundException"},
		{"stop: shadow trail", east, "StopLogging", `{"Name":"` + orgARN + `"}`, "InvalidHomeRegionException"},
		{"stop: invalid name", east, "StopLogging", `{"Name":"main_"}`, "InvalidTrailNameException"},
		{"stop: malformed ARN", east, "StopLogging", `{"Name":"` + badARN + `"}`, "CloudTrailARNInvalidException"},

		// PutEventSelectors, GetEventSelectors
		{"put selectors: TrailName missing", east, "PutEventSelectors", `{"EventSelectors":[{}]}`, "ValidationException"},
		{"put selectors: both kinds", east, "PutEventSelectors", `{"TrailName":"main","EventSelectors":[{}],"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]}`, "InvalidParameterCombinationException"},
		{"put selectors: neither kind", east, "PutEventSelectors", `{"TrailName":"main"}`, "InvalidParameterCombinationException"},
		{"put selectors: unknown trail", east, "PutEventSelectors", `{"TrailName":"nope","EventSelectors":[{}]}`, "TrailNotFoundException"},
		{"put selectors: shadow trail", east, "PutEventSelectors", `{"TrailName":"everywhere","EventSelectors":[{}]}`, "InvalidHomeRegionException"},
		{"put selectors: invalid name", east, "PutEventSelectors", `{"TrailName":"no","EventSelectors":[{}]}`, "InvalidTrailNameException"},
		{"put selectors: malformed ARN", east, "PutEventSelectors", `{"TrailName":"` + badARN + `","EventSelectors":[{}]}`, "CloudTrailARNInvalidException"},
		{"put selectors: empty basic list", east, "PutEventSelectors", `{"TrailName":"main","EventSelectors":[]}`, "InvalidEventSelectorsException"},
		{"put selectors: bad ReadWriteType", east, "PutEventSelectors", `{"TrailName":"main","EventSelectors":[{"ReadWriteType":"read-only"}]}`, "InvalidEventSelectorsException"},
		{"put selectors: advanced without eventCategory", east, "PutEventSelectors", `{"TrailName":"main","AdvancedEventSelectors":[{"Name":"x","FieldSelectors":[{"Field":"readOnly","Equals":["true"]}]}]}`, "InvalidEventSelectorsException"},
		{"put selectors: FieldSelectors of the wrong type", east, "PutEventSelectors", `{"TrailName":"main","AdvancedEventSelectors":[{"FieldSelectors":{}}]}`, "SerializationException"},
		{"get selectors: TrailName missing", east, "GetEventSelectors", `{}`, "ValidationException"},
		{"get selectors: unknown trail", east, "GetEventSelectors", `{"TrailName":"nope"}`, "TrailNotFoundException"},
		{"get selectors: invalid name", east, "GetEventSelectors", `{"TrailName":"n"}`, "InvalidTrailNameException"},
		{"get selectors: malformed ARN", east, "GetEventSelectors", `{"TrailName":"` + badARN + `"}`, "CloudTrailARNInvalidException"},

		// PutInsightSelectors, GetInsightSelectors
		{"put insights: TrailName and EventDataStore", east, "PutInsightSelectors", `{"TrailName":"main","EventDataStore":"eds","InsightSelectors":[]}`, "InvalidParameterCombinationException"},
		{"put insights: TrailName and InsightsDestination", east, "PutInsightSelectors", `{"TrailName":"main","InsightsDestination":"eds","InsightSelectors":[]}`, "InvalidParameterCombinationException"},
		{"put insights: event data store", east, "PutInsightSelectors", `{"EventDataStore":"eds","InsightsDestination":"eds2","InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`, "UnsupportedOperationException"},
		{"put insights: neither", east, "PutInsightSelectors", `{"InsightSelectors":[]}`, "InvalidParameterCombinationException"},
		{"put insights: InsightSelectors missing", east, "PutInsightSelectors", `{"TrailName":"main"}`, "ValidationException"},
		{"put insights: unknown trail", east, "PutInsightSelectors", `{"TrailName":"nope","InsightSelectors":[]}`, "TrailNotFoundException"},
		{"put insights: shadow trail", east, "PutInsightSelectors", `{"TrailName":"everywhere","InsightSelectors":[]}`, "InvalidHomeRegionException"},
		{"put insights: invalid name", east, "PutInsightSelectors", `{"TrailName":"1.2.3.4","InsightSelectors":[]}`, "InvalidTrailNameException"},
		{"put insights: malformed ARN", east, "PutInsightSelectors", `{"TrailName":"` + badARN + `","InsightSelectors":[]}`, "CloudTrailARNInvalidException"},
		{"put insights: unknown type", east, "PutInsightSelectors", `{"TrailName":"main","InsightSelectors":[{"InsightType":"ApiRateInsight"}]}`, "InvalidInsightSelectorsException"},
		{"put insights: unknown category", east, "PutInsightSelectors", `{"TrailName":"main","InsightSelectors":[{"InsightType":"ApiCallRateInsight","EventCategories":["NetworkActivity"]}]}`, "InvalidInsightSelectorsException"},
		{"put insights: data events not logged", east, "PutInsightSelectors", `{"TrailName":"main","InsightSelectors":[{"InsightType":"ApiCallRateInsight","EventCategories":["Data"]}]}`, "InvalidInsightSelectorsException"},
		{"get insights: not enabled", east, "GetInsightSelectors", `{"TrailName":"main"}`, "InsightNotEnabledException"},
		{"get insights: shadow not enabled", east, "GetInsightSelectors", `{"TrailName":"everywhere"}`, "InsightNotEnabledException"},
		{"get insights: event data store", east, "GetInsightSelectors", `{"EventDataStore":"eds"}`, "UnsupportedOperationException"},
		{"get insights: both", east, "GetInsightSelectors", `{"TrailName":"main","EventDataStore":"eds"}`, "InvalidParameterCombinationException"},
		{"get insights: neither", east, "GetInsightSelectors", `{}`, "InvalidParameterCombinationException"},
		{"get insights: unknown trail", east, "GetInsightSelectors", `{"TrailName":"nope"}`, "TrailNotFoundException"},
		{"get insights: invalid name", east, "GetInsightSelectors", `{"TrailName":"a"}`, "InvalidTrailNameException"},
		{"get insights: malformed ARN", east, "GetInsightSelectors", `{"TrailName":"` + badARN + `"}`, "CloudTrailARNInvalidException"},

		// AddTags, RemoveTags, ListTags
		{"add tags: ResourceId missing", east, "AddTags", `{"TagsList":[{"Key":"k"}]}`, "ValidationException"},
		{"add tags: TagsList missing", east, "AddTags", `{"ResourceId":"` + mainARN + `"}`, "ValidationException"},
		{"add tags: unknown trail", east, "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:trail/nope","TagsList":[{"Key":"k"}]}`, "ResourceNotFoundException"},
		{"add tags: a name, not an ARN", east, "AddTags", `{"ResourceId":"main","TagsList":[{"Key":"k"}]}`, "CloudTrailARNInvalidException"},
		{"add tags: ARN of another service", east, "AddTags", `{"ResourceId":"arn:aws:s3:::cairn-logs","TagsList":[{"Key":"k"}]}`, "CloudTrailARNInvalidException"},
		{"add tags: ARN without a resource ID", east, "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:trail","TagsList":[{"Key":"k"}]}`, "CloudTrailARNInvalidException"},
		{"add tags: ARN in another region", west, "AddTags", `{"ResourceId":"` + mainARN + `","TagsList":[{"Key":"k"}]}`, "CloudTrailARNInvalidException"},
		{"add tags: ARN of another account", east, "AddTags", `{"ResourceId":"` + otherAccountARN + `","TagsList":[{"Key":"k"}]}`, "CloudTrailARNInvalidException"},
		{"add tags: invalid trail name in the ARN", east, "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:trail/a","TagsList":[{"Key":"k"}]}`, "CloudTrailARNInvalidException"},
		{"add tags: unsupported resource type", east, "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:query/abc","TagsList":[{"Key":"k"}]}`, "ResourceTypeNotSupportedException"},
		{"add tags: type Cairn does not implement", east, "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:dashboard/d1","TagsList":[{"Key":"k"}]}`, "ResourceNotFoundException"},
		{"add tags: more than 50", east, "AddTags", `{"ResourceId":"` + mainARN + `","TagsList":` + tagsJSON(51, "k%d") + `}`, "TagsLimitExceededException"},
		{"add tags: aws: prefix", east, "AddTags", `{"ResourceId":"` + mainARN + `","TagsList":[{"Key":"AWS:x"}]}`, "InvalidTagParameterException"},
		{"remove tags: unknown trail", east, "RemoveTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:trail/nope","TagsList":[{"Key":"k"}]}`, "ResourceNotFoundException"},
		{"remove tags: TagsList missing", east, "RemoveTags", `{"ResourceId":"` + mainARN + `"}`, "ValidationException"},
		{"remove tags: empty key", east, "RemoveTags", `{"ResourceId":"` + mainARN + `","TagsList":[{"Key":""}]}`, "InvalidTagParameterException"},
		{"remove tags: unsupported resource type", east, "RemoveTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:import/abc","TagsList":[{"Key":"k"}]}`, "ResourceTypeNotSupportedException"},
		{"list tags: ResourceIdList missing", east, "ListTags", `{}`, "ValidationException"},
		{"list tags: 21 resources", east, "ListTags", `{"ResourceIdList":` + arnList(21) + `}`, "InvalidParameterException"},
		{"list tags: a token Cairn never issued", east, "ListTags", `{"ResourceIdList":["` + mainARN + `"],"NextToken":"abc"}`, "InvalidTokenException"},
		{"list tags: one unknown resource", east, "ListTags", `{"ResourceIdList":["` + mainARN + `","arn:aws:cloudtrail:us-east-1:123456789012:trail/nope"]}`, "ResourceNotFoundException"},
		{"list tags: malformed ARN", east, "ListTags", `{"ResourceIdList":["trail/main"]}`, "CloudTrailARNInvalidException"},
	}
	tr := &transcript{t: t}
	e.run(tr, steps)
	tr.check("trail_errors")

	if after := snapshotTrails(e); after != before {
		t.Errorf("failed calls changed state:\nbefore %s\nafter  %s", before, after)
	}
	// 20 resources is the documented maximum and works.
	e.ok(east, "ListTags", `{"ResourceIdList":`+arnList(20)+`}`)
}

// snapshotTrails captures everything the API can observe about the
// fixture's trails.
func snapshotTrails(e *trailEnv) string {
	var b strings.Builder
	b.Write(e.ok(east, "DescribeTrails", `{}`))
	b.Write(e.ok(east, "ListTrails", `{}`))
	for _, n := range []string{mainARN, orgARN} {
		b.Write(e.ok(east, "GetTrailStatus", `{"Name":"`+n+`"}`))
		b.Write(e.ok(east, "GetEventSelectors", `{"TrailName":"`+n+`"}`))
	}
	b.Write(e.ok(east, "ListTags", `{"ResourceIdList":["`+mainARN+`"]}`))
	return b.String()
}
