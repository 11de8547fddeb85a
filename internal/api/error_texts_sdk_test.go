package api_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// Where the texts come from. Tools match on error messages, so where
// CloudTrail's own text is known Cairn uses it word for word (Cairn's
// hints go to the log and docs/); where it is not known, Cairn's text
// stays and the table says so rather than invent one.
const (
	srcCairn = "Cairn's: CloudTrail's text not known"
	// moto copies CloudTrail's texts (moto 5.2.1, moto/cloudtrail/
	// exceptions.py and models.py).
	srcMoto = "moto/cloudtrail (copied from CloudTrail)"
)

// TestCloudTrailErrorTexts is the table of the modeled CloudTrail errors
// Cairn returns, driven through the real SDK against a real server: error
// code and scenario → the exact message, with where the text comes from.
func TestCloudTrailErrorTexts(t *testing.T) {
	e := startSDK(t)
	ctx := servertest.Context(t)
	acct := e.acct
	mainARN := e.arn(east, "main")
	res(e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("main"), S3BucketName: aws.String(sdkBucket)})).must(t, "CreateTrail main")
	res(e.west.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("global"), S3BucketName: aws.String(sdkBucket), IsMultiRegionTrail: aws.Bool(true)})).must(t, "CreateTrail global")

	create := func(mod func(*cloudtrail.CreateTrailInput)) func() error {
		return func() error {
			in := &cloudtrail.CreateTrailInput{Name: aws.String("fresh"), S3BucketName: aws.String(sdkBucket)}
			mod(in)
			_, err := e.east.CreateTrail(ctx, in)
			return err
		}
	}
	putSelectors := func(sels []types.EventSelector) func() error {
		return func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("main"), EventSelectors: sels})
			return err
		}
	}
	addTags := func(c *cloudtrail.Client, arn string, tags []types.Tag) func() error {
		return func() error {
			_, err := c.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(arn), TagsList: tags})
			return err
		}
	}
	lookup := func(in *cloudtrail.LookupEventsInput) func() error {
		return func() error { _, err := e.east.LookupEvents(ctx, in); return err }
	}
	manyValues := make([]string, 251)
	for i := range manyValues {
		manyValues[i] = fmt.Sprintf("arn:aws:s3:::bucket-%03d/", i)
	}
	epoch := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)

	table := []struct {
		code, scenario string
		call           func() error
		message        string
		source         string
	}{
		{"TrailNotFoundException", "GetTrail of a trail that does not exist",
			func() error {
				_, err := e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("nope")})
				return err
			},
			"Unknown trail: nope for the user: " + acct, "AWS, quoted in aws/aws-sdk-go-v2#1957 and ankane/s3tk#18; " + srcMoto},
		{"TrailAlreadyExistsException", "CreateTrail with a name in use",
			create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("main") }),
			"Trail main already exists for customer: " + acct, "AWS, quoted in trussworks/terraform-aws-cloudtrail#238"},
		{"InvalidTrailNameException", "CreateTrail with a 2-character name",
			create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("ab") }),
			"Trail name too short. Minimum allowed length: 3 characters. Specified name length: 2 characters.", srcMoto},
		{"InvalidTrailNameException", "CreateTrail with a 129-character name",
			create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String(strings.Repeat("a", 129)) }),
			"Trail name too long. Maximum allowed length: 128 characters. Specified name length: 129 characters.", srcMoto},
		{"InvalidTrailNameException", "CreateTrail with a name starting with '-'",
			create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("-abc") }),
			"Trail name must starts with a letter or number.", srcMoto},
		{"InvalidTrailNameException", "CreateTrail with a name ending with '-'",
			create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("abc-") }),
			"Trail name must ends with a letter or number.", srcMoto},
		{"InvalidTrailNameException", "CreateTrail with a space in the name",
			create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("a b c") }),
			"Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_).", srcMoto},
		{"InvalidTrailNameException", "CreateTrail with adjacent special characters",
			create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("a--b") }),
			"Trail name cannot contain adjacent periods (.), hyphens (-), or underscores (_): a--b", srcCairn},
		{"S3BucketDoesNotExistException", "CreateTrail with a bucket that does not exist",
			create(func(in *cloudtrail.CreateTrailInput) { in.S3BucketName = aws.String("no-such-bucket") }),
			"S3 bucket no-such-bucket does not exist!", srcMoto},
		{"InsufficientSnsTopicPolicyException", "CreateTrail with a topic no [[topics]] entry declares",
			create(func(in *cloudtrail.CreateTrailInput) { in.SnsTopicName = aws.String("nobody-listens") }),
			"SNS Topic does not exist or the topic policy is incorrect!", "AWS, quoted in issue 12; " + srcMoto},
		{"InvalidParameterCombinationException", "CreateTrail multi-Region without global service events",
			create(func(in *cloudtrail.CreateTrailInput) {
				in.IsMultiRegionTrail, in.IncludeGlobalServiceEvents = aws.Bool(true), aws.Bool(false)
			}),
			"Multi-Region trail must include global service events.", "AWS, quoted in cloudconformity/auto-remediate#3; " + srcMoto},
		{"InvalidParameterCombinationException", "CreateTrail with a log group and no role",
			create(func(in *cloudtrail.CreateTrailInput) {
				in.CloudWatchLogsLogGroupArn = aws.String("arn:aws:logs:us-east-1:" + acct + ":log-group:g:*")
			}),
			"You must specify both CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn, or neither.", srcCairn},
		{"TagsLimitExceededException", "CreateTrail with 51 tags",
			create(func(in *cloudtrail.CreateTrailInput) { in.TagsList = numberedTags(0, 51) }),
			"The number of tags on the resource would be 51; the limit is 50 tags per resource.", srcCairn},
		{"InvalidTagParameterException", "AddTags with an aws: key",
			addTags(e.east, mainARN, []types.Tag{{Key: aws.String("aws:k")}}),
			`Tag key "aws:k" is invalid: the aws: prefix is reserved for AWS use.`, srcCairn},
		{"CloudTrailARNInvalidException", "AddTags with a us-east-1 ARN from us-west-2",
			addTags(e.west, mainARN, []types.Tag{{Key: aws.String("k")}}),
			"Region in ARN is wrong, you can only access resources in region us-west-2.", "AWS, quoted in aws/aws-sdk-java#1309"},
		{"ResourceNotFoundException", "AddTags to a trail that does not exist",
			addTags(e.east, e.arn(east, "nope"), []types.Tag{{Key: aws.String("k")}}),
			"Resource " + e.arn(east, "nope") + " does not exist.", srcCairn},
		{"InvalidEventSelectorsException", "PutEventSelectors with a bare bucket ARN",
			putSelectors([]types.EventSelector{{DataResources: []types.DataResource{{Type: aws.String("AWS::S3::Object"), Values: []string{"arn:aws:s3:::my-bucket"}}}}}),
			"Value arn:aws:s3:::my-bucket for DataResources.Values is invalid.", "AWS, quoted in aws/aws-cdk#3450 and aws-samples/aws-security-reference-architecture-examples#335"},
		{"InvalidEventSelectorsException", "PutEventSelectors with 251 data resources",
			putSelectors([]types.EventSelector{{DataResources: []types.DataResource{{Type: aws.String("AWS::S3::Object"), Values: manyValues}}}}),
			"Specify a valid number of DataResources.Values (0 to 250) for all your selectors", "AWS, quoted in aws-solutions/aws-crr-monitor#7"},
		{"InvalidHomeRegionException", "UpdateTrail of a multi-Region trail outside its home region",
			func() error {
				_, err := e.east.UpdateTrail(ctx, &cloudtrail.UpdateTrailInput{Name: aws.String("global")})
				return err
			},
			"The trail " + e.arn(west, "global") + " can only be changed in its home region, us-west-2; this request was made in us-east-1.", srcCairn},
		{"InsightNotEnabledException", "GetInsightSelectors of a trail without Insights",
			func() error {
				_, err := e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("main")})
				return err
			},
			"Trail " + mainARN + " does not have Insights enabled. Edit the trail settings to enable Insights, and then try the operation again.", srcCairn},
		{"InvalidNextTokenException", "LookupEvents with a token Cairn did not issue",
			lookup(&cloudtrail.LookupEventsInput{NextToken: aws.String("bad")}),
			"Invalid NextToken: pass it back unchanged, with the same parameters as the request that returned it.", srcCairn},
		{"InvalidMaxResultsException", "LookupEvents with MaxResults 0",
			lookup(&cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)}),
			"MaxResults must be between 1 and 50, got 0.", srcCairn},
		{"InvalidTimeRangeException", "LookupEvents with EndTime before StartTime",
			lookup(&cloudtrail.LookupEventsInput{StartTime: aws.Time(epoch.Add(time.Hour)), EndTime: aws.Time(epoch)}),
			"Start time (2026-01-02T01:00:00Z) must be earlier than or equal to end time (2026-01-02T00:00:00Z).", srcCairn},
		{"InvalidNextTokenException", "ListTrails with a token Cairn did not issue",
			func() error {
				_, err := e.east.ListTrails(ctx, &cloudtrail.ListTrailsInput{NextToken: aws.String("not-a-token")})
				return err
			},
			"The NextToken is not valid. Use the NextToken from the previous ListTrails response.", srcCairn},
		{"InvalidTokenException", "ListTags with a NextToken",
			func() error {
				_, err := e.east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{mainARN}, NextToken: aws.String("abc")})
				return err
			},
			"The NextToken is not valid: ListTags returns every requested resource in one response.", srcCairn},
		{"InvalidS3BucketNameException", "CreateTrail with an upper-case bucket name",
			create(func(in *cloudtrail.CreateTrailInput) { in.S3BucketName = aws.String("Bad_Bucket") }),
			"Invalid S3 bucket name Bad_Bucket: bucket names may contain only lower-case letters, digits, '.' and '-'.", srcCairn},
		{"InvalidS3PrefixException", "CreateTrail with a 201-character prefix",
			create(func(in *cloudtrail.CreateTrailInput) { in.S3KeyPrefix = aws.String(strings.Repeat("p", 201)) }),
			"The S3 key prefix is 201 characters long; the maximum length is 200 characters.", srcCairn},
		{"InvalidSnsTopicNameException", "CreateTrail with a space in the topic name",
			create(func(in *cloudtrail.CreateTrailInput) { in.SnsTopicName = aws.String("no spaces") }),
			"SNS topic name no spaces is not valid. Specify a topic name (letters, numbers, hyphens and underscores, up to 256 characters) or a topic ARN such as arn:aws:sns:us-east-1:" + acct + ":MyTopic.", srcCairn},
		{"InvalidKmsKeyIdException", "CreateTrail with a key ID that is none",
			create(func(in *cloudtrail.CreateTrailInput) { in.KmsKeyId = aws.String("not-a-key") }),
			"Invalid KmsKeyId not-a-key. Specify a key ID, an alias name prefixed by alias/ (not an AWS managed key alias), a key ARN or an alias ARN.", srcCairn},
		{"InvalidCloudWatchLogsLogGroupArnException", "CreateTrail with a log group that is not an ARN",
			create(func(in *cloudtrail.CreateTrailInput) {
				in.CloudWatchLogsLogGroupArn, in.CloudWatchLogsRoleArn = aws.String("group"), aws.String("arn:aws:iam::"+acct+":role/r")
			}),
			"CloudWatch Logs log group ARN group is not valid. Specify a log group ARN such as arn:aws:logs:us-east-2:123456789012:log-group:CloudTrail/logs:*.", srcCairn},
		{"InvalidCloudWatchLogsRoleArnException", "CreateTrail with a role that is not an ARN",
			create(func(in *cloudtrail.CreateTrailInput) {
				in.CloudWatchLogsLogGroupArn, in.CloudWatchLogsRoleArn = aws.String("arn:aws:logs:us-east-1:"+acct+":log-group:g:*"), aws.String("role")
			}),
			"CloudWatch Logs role ARN role is not valid. Specify a role ARN such as arn:aws:iam::123456789012:role/CloudTrail_CloudWatchLogs_Role.", srcCairn},
		{"OrganizationsNotInUseException", "CreateTrail of an organization trail",
			create(func(in *cloudtrail.CreateTrailInput) { in.IsOrganizationTrail = aws.Bool(true) }),
			"This account is not a member of an organization. Cairn does not implement AWS Organizations, so organization trails cannot be created; set IsOrganizationTrail to false.", srcCairn},
		{"CloudTrailARNInvalidException", "UpdateTrail with an ARN without trail/",
			func() error {
				_, err := e.east.UpdateTrail(ctx, &cloudtrail.UpdateTrailInput{Name: aws.String("arn:aws:cloudtrail:us-east-1:" + acct + ":main")})
				return err
			},
			"Invalid trail ARN: arn:aws:cloudtrail:us-east-1:" + acct + ":main. The format of a trail ARN is arn:aws:cloudtrail:us-east-2:123456789012:trail/MyTrail.", srcCairn},
		{"ResourceTypeNotSupportedException", "AddTags to a query ARN",
			addTags(e.east, "arn:aws:cloudtrail:us-east-1:"+acct+":query/q", []types.Tag{{Key: aws.String("k")}}),
			"Resource type query is not supported. Tags can be added to trails, event data stores, channels and dashboards.", srcCairn},
		{"InvalidEventSelectorsException", "PutEventSelectors with six selectors",
			putSelectors(make([]types.EventSelector, 6)),
			"A trail can have 1 to 5 event selectors; 6 were specified.", srcCairn},
		{"InvalidInsightSelectorsException", "PutInsightSelectors with an unknown type",
			func() error {
				_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("main"), InsightSelectors: []types.InsightSelector{{InsightType: "Nope"}}})
				return err
			},
			"Value Nope for InsightType is invalid. Valid values are ApiCallRateInsight and ApiErrorRateInsight.", srcCairn},
		{"InvalidLookupAttributesException", "LookupEvents with an unknown attribute key",
			lookup(&cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{AttributeKey: "Nope", AttributeValue: aws.String("x")}}}),
			`Lookup attribute key "Nope" is not valid. Valid keys are EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId.`, srcCairn},
		{"InvalidEventCategoryException", "LookupEvents with an unknown category",
			lookup(&cloudtrail.LookupEventsInput{EventCategory: "nope"}),
			`EventCategory "nope" is not valid; the only valid value is "insight".`, srcCairn},
		{"InvalidTimeRangeException", "ListPublicKeys with EndTime before StartTime",
			func() error {
				_, err := e.east.ListPublicKeys(ctx, &cloudtrail.ListPublicKeysInput{StartTime: aws.Time(epoch.Add(time.Hour)), EndTime: aws.Time(epoch)})
				return err
			},
			"Occurs if the timestamp values are invalid. Either the start time occurs after the end time, or the time range is outside the range of possible values.", "the model's description of the exception"},
		{"InvalidTokenException", "ListPublicKeys with a NextToken",
			func() error {
				_, err := e.east.ListPublicKeys(ctx, &cloudtrail.ListPublicKeysInput{NextToken: aws.String("t")})
				return err
			},
			"Reserved for future use.", "the model's description of NextToken"},
		{"AccessDeniedException", "CreateTrail with a read-only key",
			func() error {
				_, err := e.h.ReadOnly.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("ro"), S3BucketName: aws.String(sdkBucket)})
				return err
			},
			"User: arn:aws:iam::" + acct + ":user/auditor is not authorized to perform: cloudtrail:CreateTrail because the access key is read-only", "IAM's \"User: X is not authorized to perform: Y\" with Cairn's reason"},
		{"ChannelNotFoundException", "GetChannel of a channel that does not exist",
			func() error {
				_, err := e.east.GetChannel(ctx, &cloudtrail.GetChannelInput{Channel: aws.String("arn:aws:cloudtrail:us-east-1:" + acct + ":channel/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c")})
				return err
			},
			"Channel arn:aws:cloudtrail:us-east-1:" + acct + ":channel/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c not found for the account " + acct + ".", srcCairn},
		{"ChannelARNInvalidException", "GetChannel with a malformed channel",
			func() error {
				_, err := e.east.GetChannel(ctx, &cloudtrail.GetChannelInput{Channel: aws.String("x")})
				return err
			},
			`Channel "x" is not valid: give the channel ARN (arn:aws:cloudtrail:<region>:<account-id>:channel/<uuid>) or the channel's UUID.`, srcCairn},
		{"InvalidSourceException", "CreateChannel from a partner source",
			func() error {
				_, err := e.east.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("partner"), Source: aws.String("Okta"),
					Destinations: []types.Destination{{Type: types.DestinationTypeEventDataStore, Location: aws.String("arn:aws:cloudtrail:us-east-1:" + acct + ":eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c")}}})
				return err
			},
			`Source "Okta" is not supported: Cairn's channels take events from your own applications, source "Custom".`, srcCairn},
		{"EventDataStoreNotFoundException", "GetEventDataStore of a store that does not exist",
			func() error {
				_, err := e.east.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String("0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c")})
				return err
			},
			"The event data store was not found.", "CloudTrail's, as the AWS SDK for JavaScript printed it (aws-samples/iam-identity-center-team#202)"},
		{"EventDataStoreARNInvalidException", "GetEventDataStore with a trail ARN",
			func() error {
				_, err := e.east.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(mainARN)})
				return err
			},
			"The specified event data store ARN is not valid or does not map to an event data store in your account: \"" + mainARN + "\". Give the event data store's ARN (arn:aws:cloudtrail:<region>:<account-id>:eventdatastore/<id>) or its ID.", srcCairn},
	}
	for _, row := range table {
		t.Run(row.code+"/"+row.scenario, func(t *testing.T) {
			err := row.call()
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want %s", err, row.code)
			}
			if ae.ErrorCode() != row.code || ae.ErrorMessage() != row.message {
				t.Errorf("got %s %q\nwant %s %q (%s)", ae.ErrorCode(), ae.ErrorMessage(), row.code, row.message, row.source)
			}
		})
	}
}
