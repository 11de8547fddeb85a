package trail

import (
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !awsproto.IsCode(err, code) {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func TestValidateName(t *testing.T) {
	for _, c := range []struct {
		name, code string
	}{
		{"abc", ""},
		{"My.Trail_1-x", ""},
		{strings.Repeat("a", 128), ""},
		{"1.2.3", ""},
		{"ab", "InvalidTrailNameException"},
		{strings.Repeat("a", 129), "InvalidTrailNameException"},
		{".abc", "InvalidTrailNameException"},
		{"abc_", "InvalidTrailNameException"},
		{"a/bc", "InvalidTrailNameException"},
		{"a._b", "InvalidTrailNameException"},
		{"a__b", "InvalidTrailNameException"},
		{"10.0.0.1", "InvalidTrailNameException"},
		{"ábc", "InvalidTrailNameException"},
	} {
		wantCode(t, ValidateName(c.name), c.code)
	}
}

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in, code string
		want     ref
	}{
		{"main", "", ref{raw: "main", name: "main"}},
		{"arn:aws:cloudtrail:us-east-1:123456789012:trail/main", "", ref{raw: "arn:aws:cloudtrail:us-east-1:123456789012:trail/main", isARN: true, region: "us-east-1", account: "123456789012", name: "main"}},
		{"arn:aws:cloudtrail:us-gov-west-1:123456789012:trail/m.n", "", ref{raw: "arn:aws:cloudtrail:us-gov-west-1:123456789012:trail/m.n", isARN: true, region: "us-gov-west-1", account: "123456789012", name: "m.n"}},
		{"arn:aws-cn:cloudtrail:cn-north-1:123456789012:trail/main", "CloudTrailARNInvalidException", ref{}},
		{"arn:aws:cloudtrail:us-east-1:12345:trail/main", "CloudTrailARNInvalidException", ref{}},
		{"arn:aws:cloudtrail:nowhere:123456789012:trail/main", "CloudTrailARNInvalidException", ref{}},
		{"arn:aws:cloudtrail:us-east-1:123456789012:trail/", "CloudTrailARNInvalidException", ref{}},
		{"arn:aws:cloudtrail:us-east-1:123456789012:trail/a--b", "CloudTrailARNInvalidException", ref{}},
		{"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/x", "CloudTrailARNInvalidException", ref{}},
		{"arn:", "CloudTrailARNInvalidException", ref{}},
		{"no", "InvalidTrailNameException", ref{}},
	} {
		got, err := parseRef(c.in)
		wantCode(t, err, c.code)
		if c.code == "" && got != c.want {
			t.Errorf("parseRef(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestDestinationSettings(t *testing.T) {
	const region, acct = "eu-west-1", "123456789012"
	for _, c := range []struct {
		in, want, code string
	}{
		{"topic-1", "arn:aws:sns:eu-west-1:123456789012:topic-1", ""},
		{"arn:aws:sns:us-east-1:210987654321:t", "arn:aws:sns:us-east-1:210987654321:t", ""},
		{strings.Repeat("t", 256), "arn:aws:sns:eu-west-1:123456789012:" + strings.Repeat("t", 256), ""},
		{strings.Repeat("t", 257), "", "InvalidSnsTopicNameException"},
		{"t.fifo", "", "InvalidSnsTopicNameException"},
		{"arn:aws:sqs:us-east-1:210987654321:t", "", "InvalidSnsTopicNameException"},
	} {
		got, err := snsTopicARN(c.in, region, acct)
		wantCode(t, err, c.code)
		if got != c.want {
			t.Errorf("snsTopicARN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	const group, role = "arn:aws:logs:eu-west-1:123456789012:log-group:CloudTrail/x:*", "arn:aws:iam::123456789012:role/service-role/ct"
	wantCode(t, validateCloudWatchLogs("", ""), "")
	wantCode(t, validateCloudWatchLogs(group, role), "")
	wantCode(t, validateCloudWatchLogs(strings.TrimSuffix(group, ":*"), role), "")
	wantCode(t, validateCloudWatchLogs(group, ""), "InvalidParameterCombinationException")
	wantCode(t, validateCloudWatchLogs("", role), "InvalidParameterCombinationException")
	wantCode(t, validateCloudWatchLogs("arn:aws:logs:eu-west-1:123456789012:CloudTrail", role), "InvalidCloudWatchLogsLogGroupArnException")
	wantCode(t, validateCloudWatchLogs(group, "arn:aws:iam::123456789012:user/u"), "InvalidCloudWatchLogsRoleArnException")

	wantCode(t, validateS3KeyPrefix(""), "")
	wantCode(t, validateS3KeyPrefix("AWSLogs/o-123/ü"), "")
	wantCode(t, validateS3KeyPrefix(strings.Repeat("ü", 100)+"/"+strings.Repeat("ü", 99)), "")
	// 400 bytes in one segment: no file name can be that long.
	wantCode(t, validateS3KeyPrefix(strings.Repeat("ü", 200)), "InvalidS3PrefixException")
	for _, p := range []string{"logs/", "/logs", "a//b", "./x", "../../x", "a/./b", "x.cairn-meta.json"} {
		wantCode(t, validateS3KeyPrefix(p), "InvalidS3PrefixException")
	}
	wantCode(t, validateS3KeyPrefix(strings.Repeat("p", 201)), "InvalidS3PrefixException")
	wantCode(t, validateS3KeyPrefix("a\nb"), "InvalidS3PrefixException")
	wantCode(t, validateS3KeyPrefix("a^b"), "InvalidS3PrefixException")
	wantCode(t, validateS3KeyPrefix("\xff"), "InvalidS3PrefixException")

	wantCode(t, validateBucketName("cairn-logs"), "")
	wantCode(t, validateBucketName("my.bucket.1"), "")
	wantCode(t, validateBucketName("Cairn"), "InvalidS3BucketNameException")
	wantCode(t, validateBucketName("10.0.0.1"), "InvalidS3BucketNameException")
	wantCode(t, validateBucketName("a..b"), "InvalidS3BucketNameException")
}
