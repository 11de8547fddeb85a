package objstore

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidBucketName checks name against S3's rules for general purpose
// buckets, so a trail pointing at a name S3 would refuse fails the same way
// on every backend (and so a bucket name is always a safe single path
// element for the file backend). The error wraps ErrInvalidBucketName and
// says which rule failed.
//
// Rules: 3 to 63 characters; only lower-case letters, digits, '.' and '-';
// first and last character a letter or digit; no ".."; not shaped like an
// IPv4 address; none of the prefixes and suffixes AWS reserves ("xn--",
// "sthree-", "amzn-s3-demo-", "-s3alias", "--ol-s3", ".mrap", "--x-s3",
// "--table-s3").
func ValidBucketName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidBucketName, name, why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.' || c == '-':
			if i == 0 || i == len(name)-1 {
				return bad("must begin and end with a lower-case letter or digit")
			}
		default:
			return bad("may contain only lower-case letters, digits, '.' and '-'")
		}
	}
	if strings.Contains(name, "..") {
		return bad("must not contain two adjacent periods")
	}
	if looksLikeIPv4(name) {
		return bad("must not be formatted as an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad("must not start with the reserved prefix " + p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return bad("must not end with the reserved suffix " + s)
		}
	}
	return nil
}

// looksLikeIPv4 reports a dotted quad of 1-3 digit numbers, including ones
// that are not real addresses ("999.1.1.1"), which S3 refuses too.
// (IPv6 forms cannot get here: ':' is already refused.)
func looksLikeIPv4(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// ValidKey checks what every backend requires of a key: non-empty, valid
// UTF-8 of at most MaxKeyLen bytes, no NUL. Backends may refuse more (the
// file backend refuses keys that are not clean relative paths). The error
// wraps ErrInvalidKey.
func ValidKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key is %d bytes, more than %d", ErrInvalidKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrInvalidKey, key)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w %q: contains NUL", ErrInvalidKey, key)
	}
	return nil
}

// SidecarSuffix ends the names of the file backend's metadata sidecars; a
// key segment ending in it could shadow an object's sidecar there, so no
// portable key has one.
const SidecarSuffix = ".cairn-meta.json"

// MaxSegmentLen is the longest '/'-separated segment of a portable key in
// bytes: NAME_MAX (255) less the sidecar suffix, because the file backend
// stores each segment as a file name and names the sidecar after it.
const MaxSegmentLen = 255 - len(SidecarSuffix)

// ValidPortableKey checks a key against the rules of every backend, the
// strictest of them being the file backend's: ValidKey, and the key must
// be a clean relative path (no empty, "." or ".." segment, no leading,
// trailing or double '/', no segment longer than MaxSegmentLen or ending
// in SidecarSuffix). Callers that choose keys up front (a trail's
// S3KeyPrefix) check them here, so a key no backend could write is refused
// when it is configured rather than at every delivery. The error wraps
// ErrInvalidKey.
func ValidPortableKey(key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w %q: empty path segment (leading, trailing or double '/')", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w %q: %q path segment", ErrInvalidKey, key, seg)
		case strings.HasSuffix(seg, SidecarSuffix):
			return fmt.Errorf("%w %q: segments ending in %q are reserved", ErrInvalidKey, key, SidecarSuffix)
		case len(seg) > MaxSegmentLen:
			return fmt.Errorf("%w %q: segment longer than %d bytes", ErrInvalidKey, key, MaxSegmentLen)
		}
	}
	return nil
}

// ValidMetadata checks user metadata so that every backend accepts and
// refuses the same maps: keys must be HTTP header tokens (they travel as
// x-amz-meta-<key> headers) and values printable ASCII, which is what S3
// stores without RFC 2047 encoding. Keys that differ only in case collide.
func ValidMetadata(md map[string]string) error {
	seen := make(map[string]bool, len(md))
	for k, v := range md {
		if k == "" {
			return fmt.Errorf("metadata: empty key")
		}
		for i := 0; i < len(k); i++ {
			if !isTokenChar(k[i]) {
				return fmt.Errorf("metadata key %q: %q is not allowed in an HTTP header name", k, k[i])
			}
		}
		lk := strings.ToLower(k)
		if seen[lk] {
			return fmt.Errorf("metadata key %q: given twice with different case", k)
		}
		seen[lk] = true
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return fmt.Errorf("metadata %q: value must be printable ASCII", k)
			}
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// NormalizeMetadata returns md with lower-cased keys, or nil when empty, the
// form ObjectInfo.Metadata always has.
func NormalizeMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[strings.ToLower(k)] = v
	}
	return out
}
