package awsproto

import (
	"regexp"
	"strings"
)

// KMS key identifiers in the forms CloudTrail's KmsKeyId takes.
var (
	kmsKeyIDRE    = regexp.MustCompile(`^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32})$`)
	kmsAliasRE    = regexp.MustCompile(`^alias/[A-Za-z0-9/_-]{1,250}$`)
	kmsKeyARNRE   = regexp.MustCompile(`^arn:aws:kms:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:key/(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-f]{32})$`)
	kmsAliasARNRE = regexp.MustCompile(`^arn:aws:kms:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:alias/[A-Za-z0-9/_-]{1,250}$`)
)

// KMSKeyARN validates a KmsKeyId (key ID, alias/Name, key ARN or alias
// ARN), as trails and event data stores take it, and returns the fully
// specified ARN CloudTrail stores and returns. AWS resolves an alias to
// its key's ARN through KMS; Cairn has no KMS to ask, so an alias becomes
// the alias ARN in region. Cairn records the key; it never encrypts with it.
func KMSKeyARN(id, region, account string) (string, error) {
	prefix := "arn:aws:kms:" + region + ":" + account + ":"
	switch {
	case kmsKeyIDRE.MatchString(id):
		return prefix + "key/" + id, nil
	case kmsAliasRE.MatchString(id) && !strings.HasPrefix(id, "alias/aws/"):
		return prefix + id, nil
	case kmsKeyARNRE.MatchString(id), kmsAliasARNRE.MatchString(id):
		return id, nil
	}
	return "", Errorf("InvalidKmsKeyIdException",
		"Invalid KmsKeyId %s. Specify a key ID, an alias name prefixed by alias/ (not an AWS managed key alias), a key ARN or an alias ARN.", id)
}
