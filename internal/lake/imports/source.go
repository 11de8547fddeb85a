package imports

import (
	"regexp"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// location is a parsed S3LocationUri: s3://bucket[/prefix].
type location struct {
	bucket, prefix string
}

var (
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	roleRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	// logKeyRE matches a CloudTrail log file's key below the location:
	// .../CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz
	// (digest files live under CloudTrail-Digest and never match). Group 1
	// is the day prefix, 2–4 the date, 5 the file's time stamp.
	logKeyRE = regexp.MustCompile(`^(.*/CloudTrail/[a-z0-9-]+/(\d{4})/(\d{2})/(\d{2})/)\d{12}_CloudTrail_[a-z0-9-]+_(\d{8}T\d{4}Z)_[A-Za-z0-9]+\.json\.gz$`)
)

func parseLocation(uri string) (location, error) {
	bad := func(why string) error {
		return awsproto.Errorf("InvalidImportSourceException", "S3LocationUri %q is not valid: %s.", uri, why)
	}
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return location{}, bad("it must start with s3://")
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !bucketRE.MatchString(bucket) || strings.Contains(bucket, "..") {
		return location{}, bad("the bucket name is not a valid S3 bucket name")
	}
	if len(prefix) > 1024 {
		return location{}, bad("the prefix is longer than an S3 key")
	}
	return location{bucket: bucket, prefix: prefix}, nil
}

func checkRoleARN(arn string) error {
	if !roleRE.MatchString(arn) {
		return awsproto.Errorf("InvalidParameterException", "S3BucketAccessRoleArn %q is not a valid IAM role ARN (arn:aws:iam::<account-id>:role/<name>).", arn)
	}
	return nil
}

// logFile is a source key recognised as a CloudTrail log file.
type logFile struct {
	key, dayPrefix string
	stamp          time.Time // the time in the file name (end of its window)
}

func parseLogKey(key string) (logFile, bool) {
	m := logKeyRE.FindStringSubmatch(key)
	if m == nil {
		return logFile{}, false
	}
	if _, err := time.Parse("2006/01/02", m[2]+"/"+m[3]+"/"+m[4]); err != nil {
		return logFile{}, false
	}
	stamp, err := time.Parse("20060102T1504Z", m[5])
	if err != nil {
		return logFile{}, false
	}
	return logFile{key: key, dayPrefix: m[1], stamp: stamp}, true
}

// fileSlack is how far a file's events may lie from the time in its name:
// CloudTrail writes a file about every five minutes with events up to
// fifteen minutes old, and late events exist; an hour either side keeps
// every file that may hold an event of the range, and the events
// themselves are then filtered exactly.
const fileSlack = time.Hour

// mayHold reports whether the file can hold events of [start, end]: the
// file name's stamp is checked before any byte is read.
func (f logFile) mayHold(start, end *time.Time) bool {
	if start != nil && f.stamp.Add(fileSlack).Before(*start) {
		return false
	}
	if end != nil && f.stamp.Add(-fileSlack).After(*end) {
		return false
	}
	return true
}
