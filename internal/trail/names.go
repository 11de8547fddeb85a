package trail

import (
	"regexp"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// Partition is the ARN partition Cairn uses in every ARN it writes.
const Partition = "aws"

// Name limits from the CloudTrail model docs.
const (
	minNameLen = 3
	maxNameLen = 128
)

var ipShapedRE = regexp.MustCompile(`^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$`)

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isSpecial(c byte) bool { return c == '.' || c == '_' || c == '-' }

// ValidateName applies CloudTrail's trail-name rules, in the order AWS
// reports them, with AWS's messages (its grammar included, so scripts that
// match on the text keep working).
func ValidateName(name string) error {
	bad := func(format string, args ...any) error {
		return awsproto.Errorf("InvalidTrailNameException", format, args...)
	}
	if len(name) < minNameLen {
		return bad("Trail name too short. Minimum allowed length: %d characters. Specified name length: %d characters.", minNameLen, len(name))
	}
	if len(name) > maxNameLen {
		return bad("Trail name too long. Maximum allowed length: %d characters. Specified name length: %d characters.", maxNameLen, len(name))
	}
	if !isAlnum(name[0]) {
		return bad("Trail name must starts with a letter or number.")
	}
	if !isAlnum(name[len(name)-1]) {
		return bad("Trail name must ends with a letter or number.")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && !isSpecial(c) {
			return bad("Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_).")
		}
	}
	for i := 1; i < len(name); i++ {
		if isSpecial(name[i]) && isSpecial(name[i-1]) {
			return bad("Trail name cannot contain adjacent periods (.), hyphens (-), or underscores (_): %s", name)
		}
	}
	if ipShapedRE.MatchString(name) {
		return bad("Trail name cannot be formatted as an IP address: %s", name)
	}
	return nil
}

// ref is a parsed trail reference: either a bare name, which means the
// trail visible in the caller's region, or an ARN naming a home region.
type ref struct {
	raw     string
	isARN   bool
	region  string
	account string
	name    string
}

// IsARN reports whether s is meant as an ARN rather than a name. Names
// cannot contain ':', so the prefix is unambiguous.
func IsARN(s string) bool { return strings.HasPrefix(s, "arn:") }

// TrailARN builds a trail's ARN.
func TrailARN(region, account, name string) string {
	return "arn:" + Partition + ":cloudtrail:" + region + ":" + account + ":trail/" + name
}

func arnInvalid(s string) error {
	return awsproto.Errorf("CloudTrailARNInvalidException",
		"Invalid trail ARN: %s. The format of a trail ARN is arn:%s:cloudtrail:us-east-2:123456789012:trail/MyTrail.", s, Partition)
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-\d+$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
)

// parseRef reads a name-or-ARN argument. A name must be a valid trail
// name (InvalidTrailNameException); an ARN must be a well-formed trail ARN
// (CloudTrailARNInvalidException).
func parseRef(s string) (ref, error) {
	if !IsARN(s) {
		if err := ValidateName(s); err != nil {
			return ref{}, err
		}
		return ref{raw: s, name: s}, nil
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[1] != Partition || parts[2] != "cloudtrail" ||
		!regionRE.MatchString(parts[3]) || !accountRE.MatchString(parts[4]) ||
		!strings.HasPrefix(parts[5], "trail/") {
		return ref{}, arnInvalid(s)
	}
	name := strings.TrimPrefix(parts[5], "trail/")
	if err := ValidateName(name); err != nil {
		return ref{}, arnInvalid(s)
	}
	return ref{raw: s, isARN: true, region: parts[3], account: parts[4], name: name}, nil
}
