package objstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/objstore"
)

func TestValidBucketName(t *testing.T) {
	valid := []string{
		"abc", "my-trail-bucket", "logs.example.com", "a1b", "123", "0-0",
		strings.Repeat("a", 63), "aws-cloudtrail-logs-123456789012-abcd1234",
		"xn-ok", "s3alias-ok", "my.bucket-s3", "1.2.3", "1.2.3.4.5",
	}
	for _, name := range valid {
		if err := objstore.ValidBucketName(name); err != nil {
			t.Errorf("ValidBucketName(%q) = %v, want nil", name, err)
		}
	}
	invalid := map[string]string{
		"":                       "3 to 63",
		"ab":                     "3 to 63",
		strings.Repeat("a", 64):  "3 to 63",
		"Upper":                  "lower-case",
		"under_score":            "lower-case",
		"spa ce":                 "lower-case",
		"slash/name":             "lower-case",
		"-leading":               "begin and end",
		"trailing-":              "begin and end",
		".leading":               "begin and end",
		"trailing.":              "begin and end",
		"two..dots":              "adjacent periods",
		"192.168.5.4":            "IP address",
		"999.1.1.1":              "IP address",
		"010.001.1.1":            "IP address",
		"xn--punycode":           "prefix xn--",
		"sthree-bucket":          "prefix sthree-",
		"amzn-s3-demo-bucket":    "prefix amzn-s3-demo-",
		"bucket-s3alias":         "suffix -s3alias",
		"bucket--ol-s3":          "suffix --ol-s3",
		"bucket.mrap":            "suffix .mrap",
		"bucket--x-s3":           "suffix --x-s3",
		"bucket--table-s3":       "suffix --table-s3",
		"ünïcode":                "lower-case",
		"null\x00byte":           "lower-case",
		".cairn-tmp":             "begin and end",
		"bucket.cairn-meta.json": "", // valid by S3's rules: only checked not to panic
	}
	for name, why := range invalid {
		err := objstore.ValidBucketName(name)
		if why == "" {
			continue
		}
		if err == nil {
			t.Errorf("ValidBucketName(%q) = nil, want an error about %q", name, why)
			continue
		}
		if !errors.Is(err, objstore.ErrInvalidBucketName) || !strings.Contains(err.Error(), why) {
			t.Errorf("ValidBucketName(%q) = %v, want ErrInvalidBucketName about %q", name, err, why)
		}
	}
}

func TestValidKey(t *testing.T) {
	for _, k := range []string{"a", "a/b", "../up", "/leading", "trailing/", "sp ace", "ü", strings.Repeat("k", objstore.MaxKeyLen)} {
		if err := objstore.ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil (S3 accepts it)", k, err)
		}
	}
	for _, k := range []string{"", "nul\x00", "\xff", strings.Repeat("k", objstore.MaxKeyLen+1)} {
		if err := objstore.ValidKey(k); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("ValidKey(%.20q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestValidMetadata(t *testing.T) {
	if err := objstore.ValidMetadata(map[string]string{"signature": "ab12", "signature-algorithm": "SHA256withRSA", "X_y.z~": " spaces ok "}); err != nil {
		t.Errorf("ValidMetadata of good metadata: %v", err)
	}
	for _, md := range []map[string]string{
		{"": "v"}, {"a b": "v"}, {"a:b": "v"}, {"k": "\r\n"}, {"k": "é"}, {"K": "1", "k": "2"},
	} {
		if err := objstore.ValidMetadata(md); err == nil {
			t.Errorf("ValidMetadata(%q) = nil, want an error", md)
		}
	}
	if got := objstore.NormalizeMetadata(map[string]string{"Signature-Algorithm": "x"}); got["signature-algorithm"] != "x" || len(got) != 1 {
		t.Errorf("NormalizeMetadata = %v", got)
	}
	if objstore.NormalizeMetadata(map[string]string{}) != nil {
		t.Errorf("NormalizeMetadata of an empty map is not nil")
	}
}
