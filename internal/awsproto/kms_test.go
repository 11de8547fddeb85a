package awsproto

import (
	"errors"
	"testing"
)

func TestKMSKeyARN(t *testing.T) {
	for _, c := range []struct {
		in, want, code string
	}{
		{"4c5ae5ac-3c13-421e-8335-c7868ef6a769", "arn:aws:kms:eu-west-1:123456789012:key/4c5ae5ac-3c13-421e-8335-c7868ef6a769", ""},
		{"mrk-1234567890abcdef1234567890abcdef", "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234567890abcdef1234567890abcdef", ""},
		{"alias/My_Key-1", "arn:aws:kms:eu-west-1:123456789012:alias/My_Key-1", ""},
		{"arn:aws:kms:us-east-2:123456789012:alias/MyAliasName", "arn:aws:kms:us-east-2:123456789012:alias/MyAliasName", ""},
		{"arn:aws:kms:us-east-2:123456789012:key/12345678-1234-1234-1234-123456789012", "arn:aws:kms:us-east-2:123456789012:key/12345678-1234-1234-1234-123456789012", ""},
		{"alias/aws/cloudtrail", "", "InvalidKmsKeyIdException"},
		{"12345678-1234-1234-1234", "", "InvalidKmsKeyIdException"},
		{"arn:aws:kms:us-east-2:123456789012:key/abc", "", "InvalidKmsKeyIdException"},
	} {
		got, err := KMSKeyARN(c.in, "eu-west-1", "123456789012")
		var ae *Error
		if (c.code == "" && err != nil) || (c.code != "" && (!errors.As(err, &ae) || ae.Code != c.code)) {
			t.Errorf("KMSKeyARN(%q): error %v, want %q", c.in, err, c.code)
		}
		if got != c.want {
			t.Errorf("KMSKeyARN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
