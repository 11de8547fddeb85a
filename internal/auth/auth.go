// Package auth keeps Cairn's own access keys: the AWS-style key pairs that
// clients sign their requests with.
//
// SigV4 needs the plaintext secret on the server to recompute the HMAC, so
// secrets cannot be hashed; they are sealed with AES-256-GCM under a master
// key kept in a separate file, so that a copy of keys.json alone (a backup,
// a log of a config-management run) reveals nothing.
//
// The keys live in <data-dir>/keys.json rather than in an embedded database
// because `cairn keys create|delete` must work while `cairn serve` holds the
// data directory: writers serialise on an flock of keys.lock and replace the
// file atomically; readers never lock and notice a new file by its stat.
package auth

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Role is what a key may do.
type Role string

const (
	// RoleAdmin may call every operation.
	RoleAdmin Role = "admin"
	// RoleReadOnly may call only operations that change nothing (Describe*,
	// Get*, List*, LookupEvents).
	RoleReadOnly Role = "read-only"
)

// ParseRole accepts "admin" or "read-only".
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleReadOnly:
		return r, nil
	}
	return "", fmt.Errorf("invalid role %q: must be %q or %q", s, RoleAdmin, RoleReadOnly)
}

// CanWrite reports whether the role may call mutating operations.
func (r Role) CanWrite() bool { return r == RoleAdmin }

// Key is an access key without its secret; it is what may be listed and
// logged.
type Key struct {
	// AccessKeyID is "CKIA" + 16 upper-case base32 characters. AWS's own
	// keys start with "AKIA"; the different prefix keeps Cairn keys
	// recognisable while the CLIs and SDKs, which do not validate the
	// format, accept them.
	AccessKeyID string
	// Name is the IAM-style user name of the key's identity.
	Name    string
	Role    Role
	Created time.Time
	// PrincipalID is "AIDA" + 16 characters, the unique ID of the user
	// Name; keys created for the same name share it, as an IAM user's keys do.
	PrincipalID string
}

// Identity is the CloudTrail userIdentity of requests signed with a key.
type Identity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId"`
	UserName    string `json:"userName"`
}

// Identity describes k as the IAM user of accountID.
func (k Key) Identity(accountID string) Identity {
	return Identity{
		Type:        "IAMUser",
		PrincipalID: k.PrincipalID,
		ARN:         "arn:aws:iam::" + accountID + ":user/" + k.Name,
		AccountID:   accountID,
		AccessKeyID: k.AccessKeyID,
		UserName:    k.Name,
	}
}

var (
	// ErrNotFound is wrapped by Delete for an unknown access key.
	ErrNotFound = errors.New("access key not found")
	// ErrCorrupt is wrapped when keys.json or a sealed secret fails to
	// decode or authenticate: the file was edited or damaged, or master.key
	// is not the one the secrets were sealed with.
	ErrCorrupt = errors.New("access key store is corrupt")
)

// nameRE is IAM's user-name pattern.
var nameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// ValidateName checks name against IAM's user-name rules.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid key name %q: use 1-64 characters of letters, digits and +=,.@_-", name)
	}
	return nil
}

// CredentialsFile renders an AWS shared-credentials file section; the SDKs
// and CLIs read it with --profile / AWS_PROFILE.
func CredentialsFile(profile, accessKeyID, secret string) string {
	return "[" + profile + "]\n" +
		"aws_access_key_id = " + accessKeyID + "\n" +
		"aws_secret_access_key = " + secret + "\n" +
		// botocore reads a profile's region from the credentials file too,
		// so the AWS CLI works with only AWS_SHARED_CREDENTIALS_FILE and
		// AWS_PROFILE set; the SDKs ignore it there, harmlessly.
		"region = " + DefaultRegion + "\n"
}

// DefaultRegion is the region written into generated credentials files.
const DefaultRegion = "us-east-1"
