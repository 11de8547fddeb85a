package awsproto

// ValidAccountID says whether s is an AWS account ID: exactly twelve
// decimal digits. Account IDs go into ARNs, S3 keys and records, so
// anything else is refused wherever one is configured.
func ValidAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
