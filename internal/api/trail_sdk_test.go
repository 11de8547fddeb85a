package api_test

import (
	"errors"
	"fmt"
	"github.com/cairn-audit/cairn/internal/delivery/notify"
	"github.com/cairn-audit/cairn/internal/server"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// These tests drive the trail, selector, Insights and tag operations
// through a real Cairn server with the real aws-sdk-go-v2 CloudTrail
// client: SigV4, JSON 1.1 framing, the SDK's deserializers and its typed
// errors all take part, as they do for users.

const sdkBucket = "sdk-logs"

type sdkEnv struct {
	h    *servertest.Harness
	east *cloudtrail.Client
	west *cloudtrail.Client
	eu   *cloudtrail.Client
	acct string
}

func startSDK(t *testing.T) *sdkEnv {
	// The notification topic the tests name; its receiver is never reached
	// because no trail here delivers anything.
	topics, err := notify.NewTopics(notify.Topic{Name: "trail-topic", URL: "http://127.0.0.1:9/hook", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.Topics = topics }})
	h.CreateBucket(t, sdkBucket)
	h.CreateBucket(t, "sdk-other")
	e := &sdkEnv{
		h:    h,
		east: h.CloudTrail,
		west: h.Client(h.AdminKeyID, h.AdminSecret, west),
		eu:   h.Client(h.AdminKeyID, h.AdminSecret, euWest),
	}
	ctx := servertest.Context(t)
	out, err := e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("probe"), S3BucketName: aws.String(sdkBucket)})
	if err != nil {
		t.Fatalf("create probe trail: %v", err)
	}
	e.acct = strings.Split(aws.ToString(out.TrailARN), ":")[4]
	if _, err := e.east.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String("probe")}); err != nil {
		t.Fatalf("delete probe trail: %v", err)
	}
	return e
}

func (e *sdkEnv) arn(region, name string) string {
	return fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", region, e.acct, name)
}

// result carries a call's two results so that tests can write
// res(client.Op(ctx, in)).must(t, "Op").
type result[T any] struct {
	v   T
	err error
}

func res[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T, what string) T {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	return r.v
}

var statusTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestTrailSDKLifecycle(t *testing.T) {
	e := startSDK(t)
	ctx := servertest.Context(t)
	mainARN := e.arn(east, "main")

	created := res(e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{
		Name:                      aws.String("main"),
		S3BucketName:              aws.String(sdkBucket),
		S3KeyPrefix:               aws.String("audit"),
		SnsTopicName:              aws.String("trail-topic"),
		EnableLogFileValidation:   aws.Bool(true),
		CloudWatchLogsLogGroupArn: aws.String("arn:aws:logs:us-east-1:" + e.acct + ":log-group:ct:*"),
		CloudWatchLogsRoleArn:     aws.String("arn:aws:iam::" + e.acct + ":role/ct"),
		KmsKeyId:                  aws.String("4c5ae5ac-3c13-421e-8335-c7868ef6a769"),
		TagsList:                  []types.Tag{{Key: aws.String("team"), Value: aws.String("sec")}},
	})).must(t, "CreateTrail")
	if aws.ToString(created.TrailARN) != mainARN ||
		aws.ToString(created.SnsTopicARN) != "arn:aws:sns:us-east-1:"+e.acct+":trail-topic" ||
		aws.ToString(created.KmsKeyId) != "arn:aws:kms:us-east-1:"+e.acct+":key/4c5ae5ac-3c13-421e-8335-c7868ef6a769" ||
		!aws.ToBool(created.IncludeGlobalServiceEvents) || aws.ToBool(created.IsMultiRegionTrail) ||
		!aws.ToBool(created.LogFileValidationEnabled) || aws.ToBool(created.IsOrganizationTrail) {
		t.Errorf("CreateTrail output %+v", created)
	}
	res(e.west.CreateTrail(ctx, &cloudtrail.CreateTrailInput{
		Name: aws.String("global"), S3BucketName: aws.String("sdk-other"), IsMultiRegionTrail: aws.Bool(true),
	})).must(t, "CreateTrail multi-region")

	got := res(e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("main")})).must(t, "GetTrail")
	if tr := got.Trail; aws.ToString(tr.HomeRegion) != east || aws.ToString(tr.S3KeyPrefix) != "audit" || aws.ToBool(tr.HasCustomEventSelectors) || aws.ToBool(tr.HasInsightSelectors) {
		t.Errorf("GetTrail = %+v", tr)
	}
	shadow := res(e.eu.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("global")})).must(t, "GetTrail shadow")
	if aws.ToString(shadow.Trail.HomeRegion) != west {
		t.Errorf("shadow trail home region %q", aws.ToString(shadow.Trail.HomeRegion))
	}

	desc := res(e.east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})).must(t, "DescribeTrails")
	if len(desc.TrailList) != 2 {
		t.Errorf("DescribeTrails with shadows: %d trails", len(desc.TrailList))
	}
	desc = res(e.east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(false)})).must(t, "DescribeTrails")
	if len(desc.TrailList) != 1 || aws.ToString(desc.TrailList[0].Name) != "main" {
		t.Errorf("DescribeTrails without shadows: %+v", desc.TrailList)
	}
	desc = res(e.west.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{TrailNameList: []string{mainARN}})).must(t, "DescribeTrails by ARN")
	if len(desc.TrailList) != 1 {
		t.Errorf("DescribeTrails by ARN from another region: %+v", desc.TrailList)
	}

	var listed []string
	for p := cloudtrail.NewListTrailsPaginator(e.eu, &cloudtrail.ListTrailsInput{}); p.HasMorePages(); {
		page := res(p.NextPage(ctx)).must(t, "ListTrails")
		for _, tr := range page.Trails {
			listed = append(listed, aws.ToString(tr.HomeRegion)+"/"+aws.ToString(tr.Name))
		}
	}
	if strings.Join(listed, ",") != "us-east-1/main,us-west-2/global" {
		t.Errorf("ListTrails = %v", listed)
	}

	st := res(e.east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("main")})).must(t, "GetTrailStatus")
	if aws.ToBool(st.IsLogging) || st.StartLoggingTime != nil || aws.ToString(st.TimeLoggingStarted) != "" {
		t.Errorf("new trail status %+v", st)
	}
	res(e.east.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("main")})).must(t, "StartLogging")
	st = res(e.east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(mainARN)})).must(t, "GetTrailStatus")
	if !aws.ToBool(st.IsLogging) || st.StartLoggingTime == nil || !statusTimeRE.MatchString(aws.ToString(st.TimeLoggingStarted)) {
		t.Errorf("logging trail status %+v", st)
	}
	res(e.east.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String(mainARN)})).must(t, "StopLogging")
	st = res(e.east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("main")})).must(t, "GetTrailStatus")
	if aws.ToBool(st.IsLogging) || st.StopLoggingTime == nil || !statusTimeRE.MatchString(aws.ToString(st.TimeLoggingStopped)) {
		t.Errorf("stopped trail status %+v", st)
	}

	upd := res(e.east.UpdateTrail(ctx, &cloudtrail.UpdateTrailInput{
		Name: aws.String("main"), S3BucketName: aws.String("sdk-other"), S3KeyPrefix: aws.String(""), KmsKeyId: aws.String("alias/trails"),
	})).must(t, "UpdateTrail")
	if aws.ToString(upd.S3BucketName) != "sdk-other" || upd.S3KeyPrefix != nil || aws.ToString(upd.KmsKeyId) != "arn:aws:kms:us-east-1:"+e.acct+":alias/trails" {
		t.Errorf("UpdateTrail = %+v", upd)
	}

	sel := res(e.east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("main")})).must(t, "GetEventSelectors")
	if len(sel.EventSelectors) != 1 || sel.EventSelectors[0].ReadWriteType != types.ReadWriteTypeAll || !aws.ToBool(sel.EventSelectors[0].IncludeManagementEvents) || sel.AdvancedEventSelectors != nil {
		t.Errorf("default selectors %+v", sel)
	}
	putSel := res(e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{
		TrailName: aws.String("main"),
		EventSelectors: []types.EventSelector{{
			ReadWriteType: types.ReadWriteTypeWriteOnly,
			DataResources: []types.DataResource{{Type: aws.String("AWS::S3::Object"), Values: []string{"arn:aws:s3:::sdk-data/"}}},
		}},
	})).must(t, "PutEventSelectors basic")
	if aws.ToString(putSel.TrailARN) != mainARN || len(putSel.EventSelectors) != 1 || !aws.ToBool(putSel.EventSelectors[0].IncludeManagementEvents) {
		t.Errorf("PutEventSelectors basic = %+v", putSel)
	}
	res(e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{
		TrailName: aws.String(mainARN),
		AdvancedEventSelectors: []types.AdvancedEventSelector{{
			Name: aws.String("writes"),
			FieldSelectors: []types.AdvancedFieldSelector{
				{Field: aws.String("eventCategory"), Equals: []string{"Management"}},
				{Field: aws.String("readOnly"), Equals: []string{"false"}},
			},
		}},
	})).must(t, "PutEventSelectors advanced")
	sel = res(e.east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("main")})).must(t, "GetEventSelectors")
	if sel.EventSelectors != nil || len(sel.AdvancedEventSelectors) != 1 || len(sel.AdvancedEventSelectors[0].FieldSelectors) != 2 ||
		sel.AdvancedEventSelectors[0].FieldSelectors[0].NotEquals != nil {
		t.Errorf("advanced selectors %+v", sel)
	}

	ins := res(e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{
		TrailName:        aws.String("main"),
		InsightSelectors: []types.InsightSelector{{InsightType: types.InsightTypeApiCallRateInsight, EventCategories: []types.SourceEventCategory{types.SourceEventCategoryManagement}}},
	})).must(t, "PutInsightSelectors")
	if aws.ToString(ins.TrailARN) != mainARN || len(ins.InsightSelectors) != 1 {
		t.Errorf("PutInsightSelectors = %+v", ins)
	}
	gins := res(e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("main")})).must(t, "GetInsightSelectors")
	if len(gins.InsightSelectors) != 1 || gins.InsightSelectors[0].InsightType != types.InsightTypeApiCallRateInsight {
		t.Errorf("GetInsightSelectors = %+v", gins)
	}
	got = res(e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("main")})).must(t, "GetTrail")
	if !aws.ToBool(got.Trail.HasCustomEventSelectors) || !aws.ToBool(got.Trail.HasInsightSelectors) {
		t.Errorf("GetTrail flags %+v", got.Trail)
	}

	res(e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(mainARN), TagsList: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("bare")}}})).must(t, "AddTags")
	res(e.east.RemoveTags(ctx, &cloudtrail.RemoveTagsInput{ResourceId: aws.String(mainARN), TagsList: []types.Tag{{Key: aws.String("team")}}})).must(t, "RemoveTags")
	lt := res(e.east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{mainARN}})).must(t, "ListTags")
	if len(lt.ResourceTagList) != 1 || len(lt.ResourceTagList[0].TagsList) != 2 ||
		aws.ToString(lt.ResourceTagList[0].TagsList[0].Key) != "env" || lt.ResourceTagList[0].TagsList[1].Value != nil {
		t.Errorf("ListTags = %+v", lt.ResourceTagList)
	}

	// A read-only key reads but cannot change anything.
	if _, err := e.h.ReadOnly.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Errorf("read-only DescribeTrails: %v", err)
	}
	if _, err := e.h.ReadOnly.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{mainARN}}); err != nil {
		t.Errorf("read-only ListTags: %v", err)
	}
	for name, call := range map[string]func() error{
		"StartLogging": func() error {
			_, err := e.h.ReadOnly.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("main")})
			return err
		},
		"AddTags": func() error {
			_, err := e.h.ReadOnly.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(mainARN), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		},
	} {
		var ae smithy.APIError
		if err := call(); !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Errorf("read-only %s: %v, want AccessDeniedException", name, err)
		}
	}

	res(e.east.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String("main")})).must(t, "DeleteTrail")
	res(e.west.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String(e.arn(west, "global"))})).must(t, "DeleteTrail by ARN")
	desc = res(e.east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})).must(t, "DescribeTrails")
	if len(desc.TrailList) != 0 {
		t.Errorf("trails left after delete: %+v", desc.TrailList)
	}
}

// sdkErr is the typed error check: errors.As into the SDK's modeled
// exception type, which only works when the wire code is exactly right.
func sdkErr[T error]() func(error) bool {
	return func(err error) bool {
		var target T
		return errors.As(err, &target)
	}
}

// sdkCode checks an error the SDK does not model for the operation.
func sdkCode(code string) func(error) bool {
	return func(err error) bool {
		var ae smithy.APIError
		return errors.As(err, &ae) && ae.ErrorCode() == code
	}
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// TestTrailSDKErrors checks every modeled error Cairn produces for the
// trail, selector, Insights and tag operations, as the SDK decodes it.
func TestTrailSDKErrors(t *testing.T) {
	e := startSDK(t)
	ctx := servertest.Context(t)
	mainARN := e.arn(east, "main")
	globalARN := e.arn(west, "global")
	badARN := "arn:aws:cloudtrail:us-east-1:" + e.acct + ":main"
	res(e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("main"), S3BucketName: aws.String(sdkBucket)})).must(t, "CreateTrail")
	res(e.west.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("global"), S3BucketName: aws.String(sdkBucket), IsMultiRegionTrail: aws.Bool(true)})).must(t, "CreateTrail")

	create := func(mod func(*cloudtrail.CreateTrailInput)) func() error {
		return func() error {
			in := &cloudtrail.CreateTrailInput{Name: aws.String("fresh"), S3BucketName: aws.String(sdkBucket)}
			mod(in)
			_, err := e.east.CreateTrail(ctx, in)
			return err
		}
	}
	update := func(c *cloudtrail.Client, in *cloudtrail.UpdateTrailInput) func() error {
		return func() error { _, err := c.UpdateTrail(ctx, in); return err }
	}
	tooManyTags := make([]types.Tag, 51)
	for i := range tooManyTags {
		tooManyTags[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i))}
	}
	mgmtSel := []types.AdvancedEventSelector{{FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"Management"}}}}}

	cases := []struct {
		name   string
		call   func() error
		is     func(error) bool
		status int
	}{
		// CreateTrail
		{"create: invalid name", create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("a--b") }), sdkErr[*types.InvalidTrailNameException](), 400},
		{"create: name taken", create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("main") }), sdkErr[*types.TrailAlreadyExistsException](), 400},
		{"create: shadow name taken", create(func(in *cloudtrail.CreateTrailInput) { in.Name = aws.String("global") }), sdkErr[*types.TrailAlreadyExistsException](), 400},
		{"create: bucket missing", create(func(in *cloudtrail.CreateTrailInput) { in.S3BucketName = aws.String("no-such-bucket") }), sdkErr[*types.S3BucketDoesNotExistException](), 404},
		{"create: bucket name invalid", create(func(in *cloudtrail.CreateTrailInput) { in.S3BucketName = aws.String("Bad_Bucket") }), sdkErr[*types.InvalidS3BucketNameException](), 400},
		{"create: prefix too long", create(func(in *cloudtrail.CreateTrailInput) { in.S3KeyPrefix = aws.String(strings.Repeat("p", 201)) }), sdkErr[*types.InvalidS3PrefixException](), 400},
		{"create: topic invalid", create(func(in *cloudtrail.CreateTrailInput) { in.SnsTopicName = aws.String("no spaces") }), sdkErr[*types.InvalidSnsTopicNameException](), 400},
		{"create: topic not configured", create(func(in *cloudtrail.CreateTrailInput) { in.SnsTopicName = aws.String("nobody-listens") }), sdkErr[*types.InsufficientSnsTopicPolicyException](), 403},
		{"create: key invalid", create(func(in *cloudtrail.CreateTrailInput) { in.KmsKeyId = aws.String("not-a-key") }), sdkErr[*types.InvalidKmsKeyIdException](), 400},
		{"create: log group invalid", create(func(in *cloudtrail.CreateTrailInput) {
			in.CloudWatchLogsLogGroupArn, in.CloudWatchLogsRoleArn = aws.String("group"), aws.String("arn:aws:iam::"+e.acct+":role/r")
		}), sdkErr[*types.InvalidCloudWatchLogsLogGroupArnException](), 400},
		{"create: role invalid", create(func(in *cloudtrail.CreateTrailInput) {
			in.CloudWatchLogsLogGroupArn, in.CloudWatchLogsRoleArn = aws.String("arn:aws:logs:us-east-1:"+e.acct+":log-group:g:*"), aws.String("role")
		}), sdkErr[*types.InvalidCloudWatchLogsRoleArnException](), 400},
		{"create: log group without role", create(func(in *cloudtrail.CreateTrailInput) {
			in.CloudWatchLogsLogGroupArn = aws.String("arn:aws:logs:us-east-1:" + e.acct + ":log-group:g:*")
		}), sdkErr[*types.InvalidParameterCombinationException](), 400},
		{"create: multi-region without global events", create(func(in *cloudtrail.CreateTrailInput) {
			in.IsMultiRegionTrail, in.IncludeGlobalServiceEvents = aws.Bool(true), aws.Bool(false)
		}), sdkErr[*types.InvalidParameterCombinationException](), 400},
		{"create: organization trail", create(func(in *cloudtrail.CreateTrailInput) { in.IsOrganizationTrail = aws.Bool(true) }), sdkErr[*types.OrganizationsNotInUseException](), 404},
		{"create: 51 tags", create(func(in *cloudtrail.CreateTrailInput) { in.TagsList = tooManyTags }), sdkErr[*types.TagsLimitExceededException](), 400},
		{"create: aws: tag", create(func(in *cloudtrail.CreateTrailInput) { in.TagsList = []types.Tag{{Key: aws.String("aws:x")}} }), sdkErr[*types.InvalidTagParameterException](), 400},

		// UpdateTrail
		{"update: unknown", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("nope")}), sdkErr[*types.TrailNotFoundException](), 404},
		{"update: invalid name", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("-x-")}), sdkErr[*types.InvalidTrailNameException](), 400},
		{"update: bad ARN", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String(badARN)}), sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"update: shadow", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("global")}), sdkErr[*types.InvalidHomeRegionException](), 400},
		{"update: bucket missing", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), S3BucketName: aws.String("no-such-bucket")}), sdkErr[*types.S3BucketDoesNotExistException](), 404},
		{"update: bucket name invalid", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), S3BucketName: aws.String("x")}), sdkErr[*types.InvalidS3BucketNameException](), 400},
		{"update: prefix invalid", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), S3KeyPrefix: aws.String("a|b")}), sdkErr[*types.InvalidS3PrefixException](), 400},
		{"update: topic invalid", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), SnsTopicName: aws.String("arn:aws:sns:x")}), sdkErr[*types.InvalidSnsTopicNameException](), 400},
		{"update: key invalid", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), KmsKeyId: aws.String("alias/")}), sdkErr[*types.InvalidKmsKeyIdException](), 400},
		{"update: role alone", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), CloudWatchLogsRoleArn: aws.String("arn:aws:iam::" + e.acct + ":role/r")}), sdkErr[*types.InvalidParameterCombinationException](), 400},
		{"update: log group invalid", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), CloudWatchLogsLogGroupArn: aws.String("g")}), sdkErr[*types.InvalidCloudWatchLogsLogGroupArnException](), 400},
		{"update: role invalid", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), CloudWatchLogsRoleArn: aws.String("r")}), sdkErr[*types.InvalidCloudWatchLogsRoleArnException](), 400},
		{"update: organization trail", update(e.east, &cloudtrail.UpdateTrailInput{Name: aws.String("main"), IsOrganizationTrail: aws.Bool(true)}), sdkErr[*types.OrganizationsNotInUseException](), 404},

		// DeleteTrail
		{"delete: unknown", func() error {
			_, err := e.east.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String("nope")})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"delete: invalid name", func() error {
			_, err := e.east.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String("ab")})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"delete: bad ARN", func() error {
			_, err := e.east.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String(badARN)})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"delete: shadow", func() error {
			_, err := e.eu.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String(globalARN)})
			return err
		}, sdkErr[*types.InvalidHomeRegionException](), 400},

		// GetTrail, DescribeTrails, ListTrails
		{"get: unknown", func() error {
			_, err := e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("nope")})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"get: invalid name", func() error {
			_, err := e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("a b")})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"get: bad ARN", func() error {
			_, err := e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String(badARN)})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"describe: invalid name", func() error {
			_, err := e.east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{TrailNameList: []string{"x"}})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"describe: bad ARN", func() error {
			_, err := e.east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{TrailNameList: []string{badARN}})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"list: forged token", func() error {
			_, err := e.east.ListTrails(ctx, &cloudtrail.ListTrailsInput{NextToken: aws.String("forged")})
			return err
		}, sdkCode("InvalidNextTokenException"), 400},

		// GetTrailStatus, StartLogging, StopLogging
		{"status: unknown", func() error {
			_, err := e.east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("nope")})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"status: invalid name", func() error {
			_, err := e.east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("a..b")})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"status: bad ARN", func() error {
			_, err := e.east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(badARN)})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"start: unknown", func() error {
			_, err := e.east.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("nope")})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"start: invalid name", func() error {
			_, err := e.east.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("_x_")})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"start: bad ARN", func() error {
			_, err := e.east.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String(badARN)})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"start: shadow", func() error {
			_, err := e.east.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("global")})
			return err
		}, sdkErr[*types.InvalidHomeRegionException](), 400},
		{"stop: unknown", func() error {
			_, err := e.east.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String("nope")})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"stop: invalid name", func() error {
			_, err := e.east.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String("x.")})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"stop: bad ARN", func() error {
			_, err := e.east.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String(badARN)})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"stop: shadow", func() error {
			_, err := e.east.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String(globalARN)})
			return err
		}, sdkErr[*types.InvalidHomeRegionException](), 400},

		// PutEventSelectors, GetEventSelectors
		{"put selectors: unknown", func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("nope"), AdvancedEventSelectors: mgmtSel})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"put selectors: invalid name", func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("no"), AdvancedEventSelectors: mgmtSel})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"put selectors: bad ARN", func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String(badARN), AdvancedEventSelectors: mgmtSel})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"put selectors: shadow", func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("global"), AdvancedEventSelectors: mgmtSel})
			return err
		}, sdkErr[*types.InvalidHomeRegionException](), 400},
		{"put selectors: invalid basic", func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("main"), EventSelectors: []types.EventSelector{{ExcludeManagementEventSources: []string{"ec2.amazonaws.com"}}}})
			return err
		}, sdkErr[*types.InvalidEventSelectorsException](), 400},
		{"put selectors: invalid advanced", func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("main"), AdvancedEventSelectors: []types.AdvancedEventSelector{{FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"Data"}}}}}})
			return err
		}, sdkErr[*types.InvalidEventSelectorsException](), 400},
		{"put selectors: both kinds", func() error {
			_, err := e.east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("main"), EventSelectors: []types.EventSelector{{}}, AdvancedEventSelectors: mgmtSel})
			return err
		}, sdkCode("InvalidParameterCombinationException"), 400},
		{"get selectors: unknown", func() error {
			_, err := e.east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("nope")})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"get selectors: invalid name", func() error {
			_, err := e.east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("n")})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"get selectors: bad ARN", func() error {
			_, err := e.east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(badARN)})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},

		// PutInsightSelectors, GetInsightSelectors
		{"put insights: trail and event data store", func() error {
			_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("main"), EventDataStore: aws.String("eds"), InsightSelectors: []types.InsightSelector{}})
			return err
		}, sdkErr[*types.InvalidParameterCombinationException](), 400},
		{"put insights: event data store", func() error {
			_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{EventDataStore: aws.String("eds"), InsightsDestination: aws.String("eds2"), InsightSelectors: []types.InsightSelector{}})
			return err
		}, sdkErr[*types.UnsupportedOperationException](), 400},
		{"put insights: unknown", func() error {
			_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("nope"), InsightSelectors: []types.InsightSelector{}})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"put insights: invalid name", func() error {
			_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("1.2.3.4"), InsightSelectors: []types.InsightSelector{}})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"put insights: bad ARN", func() error {
			_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String(badARN), InsightSelectors: []types.InsightSelector{}})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"put insights: shadow", func() error {
			_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("global"), InsightSelectors: []types.InsightSelector{}})
			return err
		}, sdkErr[*types.InvalidHomeRegionException](), 400},
		{"put insights: invalid type", func() error {
			_, err := e.east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("main"), InsightSelectors: []types.InsightSelector{{InsightType: "ApiRateInsight"}}})
			return err
		}, sdkErr[*types.InvalidInsightSelectorsException](), 400},
		{"get insights: not enabled", func() error {
			_, err := e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("main")})
			return err
		}, sdkErr[*types.InsightNotEnabledException](), 400},
		{"get insights: trail and event data store", func() error {
			_, err := e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("main"), EventDataStore: aws.String("eds")})
			return err
		}, sdkErr[*types.InvalidParameterCombinationException](), 400},
		{"get insights: event data store", func() error {
			_, err := e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{EventDataStore: aws.String("eds")})
			return err
		}, sdkErr[*types.UnsupportedOperationException](), 400},
		{"get insights: unknown", func() error {
			_, err := e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("nope")})
			return err
		}, sdkErr[*types.TrailNotFoundException](), 404},
		{"get insights: invalid name", func() error {
			_, err := e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("a")})
			return err
		}, sdkErr[*types.InvalidTrailNameException](), 400},
		{"get insights: bad ARN", func() error {
			_, err := e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String(badARN)})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},

		// AddTags, RemoveTags, ListTags
		{"add tags: unknown trail", func() error {
			_, err := e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(e.arn(east, "nope")), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, sdkErr[*types.ResourceNotFoundException](), 400},
		{"add tags: bad ARN", func() error {
			_, err := e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String("main"), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"add tags: other region", func() error {
			_, err := e.west.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(mainARN), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"add tags: unsupported type", func() error {
			_, err := e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String("arn:aws:cloudtrail:us-east-1:" + e.acct + ":query/q"), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, sdkErr[*types.ResourceTypeNotSupportedException](), 400},
		{"add tags: 51", func() error {
			_, err := e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(mainARN), TagsList: tooManyTags})
			return err
		}, sdkErr[*types.TagsLimitExceededException](), 400},
		{"add tags: aws: key", func() error {
			_, err := e.east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(mainARN), TagsList: []types.Tag{{Key: aws.String("aws:k")}}})
			return err
		}, sdkErr[*types.InvalidTagParameterException](), 400},
		{"remove tags: unknown trail", func() error {
			_, err := e.east.RemoveTags(ctx, &cloudtrail.RemoveTagsInput{ResourceId: aws.String(e.arn(east, "nope")), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, sdkErr[*types.ResourceNotFoundException](), 400},
		{"remove tags: bad ARN", func() error {
			_, err := e.east.RemoveTags(ctx, &cloudtrail.RemoveTagsInput{ResourceId: aws.String("arn:aws:s3:::b"), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"remove tags: unsupported type", func() error {
			_, err := e.east.RemoveTags(ctx, &cloudtrail.RemoveTagsInput{ResourceId: aws.String("arn:aws:cloudtrail:us-east-1:" + e.acct + ":import/i"), TagsList: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, sdkErr[*types.ResourceTypeNotSupportedException](), 400},
		{"remove tags: empty key", func() error {
			_, err := e.east.RemoveTags(ctx, &cloudtrail.RemoveTagsInput{ResourceId: aws.String(mainARN), TagsList: []types.Tag{{Key: aws.String("")}}})
			return err
		}, sdkErr[*types.InvalidTagParameterException](), 400},
		{"list tags: unknown trail", func() error {
			_, err := e.east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{e.arn(east, "nope")}})
			return err
		}, sdkErr[*types.ResourceNotFoundException](), 400},
		{"list tags: bad ARN", func() error {
			_, err := e.east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{"trail/main"}})
			return err
		}, sdkErr[*types.CloudTrailARNInvalidException](), 400},
		{"list tags: unsupported type", func() error {
			_, err := e.east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{"arn:aws:cloudtrail:us-east-1:" + e.acct + ":query/q"}})
			return err
		}, sdkErr[*types.ResourceTypeNotSupportedException](), 400},
		{"list tags: token", func() error {
			_, err := e.east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{mainARN}, NextToken: aws.String("t")})
			return err
		}, sdkErr[*types.InvalidTokenException](), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if err == nil {
				t.Fatal("succeeded")
			}
			if !c.is(err) {
				t.Fatalf("wrong error: %v", err)
			}
			if s := httpStatus(err); s != c.status {
				t.Errorf("HTTP status %d, want %d", s, c.status)
			}
		})
	}
	t.Run("limit", func(t *testing.T) {
		for i := range 3 {
			res(e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(fmt.Sprintf("extra%d", i)), S3BucketName: aws.String(sdkBucket)})).must(t, "CreateTrail")
		}
		_, err := e.east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("sixth"), S3BucketName: aws.String(sdkBucket)})
		var target *types.MaximumNumberOfTrailsExceededException
		if !errors.As(err, &target) || httpStatus(err) != 403 {
			t.Fatalf("sixth trail in us-east-1: %v", err)
		}
		if want := "User: " + e.acct + " already has 5 trails in us-east-1."; target.ErrorMessage() != want {
			t.Errorf("message %q, want %q", target.ErrorMessage(), want)
		}
	})
	// The messages users see through the SDK are the ones CloudTrail uses.
	_, err := e.east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("nope")})
	var nf *types.TrailNotFoundException
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Unknown trail: nope for the user: "+e.acct {
		t.Errorf("TrailNotFoundException message: %v", err)
	}
	_, err = e.east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("main")})
	var ine *types.InsightNotEnabledException
	if !errors.As(err, &ine) || ine.ErrorMessage() != "Trail "+mainARN+" does not have Insights enabled. Edit the trail settings to enable Insights, and then try the operation again." {
		t.Errorf("InsightNotEnabledException message: %v", err)
	}
}
