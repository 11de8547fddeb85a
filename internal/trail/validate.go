package trail

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/objstore"
)

// Limits from the CloudTrail model docs.
const (
	MaxTrailsPerRegion = 5
	maxS3KeyPrefixLen  = 200
	maxSnsTopicNameLen = 256
)

// validateBucketName applies S3's bucket naming rules, the same ones the
// object store enforces, so a name no backend could hold fails with
// InvalidS3BucketNameException before the existence check, as on AWS.
func validateBucketName(b string) error {
	if err := objstore.ValidBucketName(b); err != nil {
		why := err.Error()
		if i := strings.LastIndex(why, ": "); i >= 0 {
			why = why[i+2:]
		}
		return awsproto.Errorf("InvalidS3BucketNameException", "Invalid S3 bucket name %s: bucket names %s.", b, why)
	}
	return nil
}

// maxKeySuffixBytes bounds what Cairn writes below a trail's prefix: the
// longest key is a digest's, "AWSLogs/<account>/CloudTrail-Digest/<region>/
// YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home region>_
// <time>.json.gz", about 430 bytes with a 128-character trail name and
// 64-byte region names. A prefix must leave that much of the object
// store's MaxKeyLen free.
const maxKeySuffixBytes = 512

// validateS3KeyPrefix enforces CloudTrail's 200-character limit, refuses
// the characters S3 documents as unsafe in keys, and refuses any prefix
// under which the keys delivery and digests write ("<prefix>/AWSLogs/...")
// would be refused by an object store backend ("logs/", "a//b", "./x",
// "../x", a key too long): such a trail would be created, report that it
// is logging, and then fail every delivery.
func validateS3KeyPrefix(p string) error {
	if utf8.RuneCountInString(p) > maxS3KeyPrefixLen {
		return awsproto.Errorf("InvalidS3PrefixException", "The S3 key prefix is %d characters long; the maximum length is %d characters.", utf8.RuneCountInString(p), maxS3KeyPrefixLen)
	}
	if !utf8.ValidString(p) {
		return awsproto.Errorf("InvalidS3PrefixException", "The S3 key prefix %q is not valid UTF-8.", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || strings.ContainsRune("\\{}^%`[]\"<>~#|", r) {
			return awsproto.Errorf("InvalidS3PrefixException", "The S3 key prefix %q contains the character %q, which is not allowed in a prefix.", p, r)
		}
	}
	if p == "" {
		return nil
	}
	if len(p)+1+maxKeySuffixBytes > objstore.MaxKeyLen {
		return awsproto.Errorf("InvalidS3PrefixException", "The S3 key prefix %q is %d bytes long; log file keys under it would exceed the %d-byte S3 key limit (at most %d bytes).", p, len(p), objstore.MaxKeyLen, objstore.MaxKeyLen-1-maxKeySuffixBytes)
	}
	if err := objstore.ValidPortableKey(p + "/AWSLogs"); err != nil {
		return awsproto.Errorf("InvalidS3PrefixException", "The S3 key prefix %q is not valid: it must be a relative path without empty, \".\" or \"..\" segments (no leading, trailing or double '/'), each segment at most %d bytes and not ending in %q.", p, objstore.MaxSegmentLen, objstore.SidecarSuffix)
	}
	return nil
}

var (
	snsNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	snsARNRE  = regexp.MustCompile(`^arn:` + Partition + `:sns:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):([A-Za-z0-9_-]{1,256})$`)
)

// snsTopicARN validates SnsTopicName (a topic name or a topic ARN, at most
// 256 characters) and returns the topic ARN CloudTrail reports as
// SnsTopicARN: a bare name is a topic in the trail's home region and the
// trail's account.
func snsTopicARN(topic, homeRegion, account string) (string, error) {
	bad := func() error {
		return awsproto.Errorf("InvalidSnsTopicNameException",
			"SNS topic name %s is not valid. Specify a topic name (letters, numbers, hyphens and underscores, up to %d characters) or a topic ARN such as arn:%s:sns:%s:%s:MyTopic.",
			topic, maxSnsTopicNameLen, Partition, homeRegion, account)
	}
	if len(topic) > maxSnsTopicNameLen {
		return "", bad()
	}
	if IsARN(topic) {
		if !snsARNRE.MatchString(topic) {
			return "", bad()
		}
		return topic, nil
	}
	if !snsNameRE.MatchString(topic) {
		return "", bad()
	}
	return "arn:" + Partition + ":sns:" + homeRegion + ":" + account + ":" + topic, nil
}

var (
	logGroupARNRE = regexp.MustCompile(`^arn:` + Partition + `:logs:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:log-group:[\.\-_/#A-Za-z0-9]{1,512}(?::\*)?$`)
	roleARNRE     = regexp.MustCompile(`^arn:` + Partition + `:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
)

// validateCloudWatchLogs checks the two CloudWatch Logs settings as they
// will be stored: each well-formed, and both set or both empty, because
// CloudTrail needs the role to write to the group.
func validateCloudWatchLogs(group, role string) error {
	if group != "" && !logGroupARNRE.MatchString(group) {
		return awsproto.Errorf("InvalidCloudWatchLogsLogGroupArnException",
			"CloudWatch Logs log group ARN %s is not valid. Specify a log group ARN such as arn:%s:logs:us-east-2:123456789012:log-group:CloudTrail/logs:*.", group, Partition)
	}
	if role != "" && !roleARNRE.MatchString(role) {
		return awsproto.Errorf("InvalidCloudWatchLogsRoleArnException",
			"CloudWatch Logs role ARN %s is not valid. Specify a role ARN such as arn:%s:iam::123456789012:role/CloudTrail_CloudWatchLogs_Role.", role, Partition)
	}
	if (group == "") != (role == "") {
		return awsproto.Errorf("InvalidParameterCombinationException",
			"You must specify both CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn, or neither.")
	}
	return nil
}
