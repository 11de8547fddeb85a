// Package digest writes and validates CloudTrail digest files: the signed,
// hash-chained manifests that let `aws cloudtrail validate-logs` (and
// Cairn's stricter `cairn validate-logs`) prove that a trail's log files
// were neither changed nor deleted (reference §5).
//
// Three parts:
//   - Keys: per-region RSA signing keys, rotated, sealed at rest, served by
//     ListPublicKeys;
//   - Writer: per logging trail with validation enabled and per source
//     region, one digest every interval listing the log files delivery
//     reported through Writer.Record, chained to the previous digest;
//   - Validate: the AWS CLI's algorithm plus the checks it leaves out.
package digest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Constants of the digest format.
const (
	SignatureAlgorithm = "SHA256withRSA"
	HashAlgorithm      = "SHA-256"
	// TimeFormat is how times appear inside a digest.
	TimeFormat = "2006-01-02T15:04:05Z"
	// keyTimeFormat is the end time in a digest's key (seconds precision).
	keyTimeFormat = "20060102T150405Z"
	// Metadata keys on digest objects (x-amz-meta-*).
	MetaSignature          = "signature"
	MetaSignatureAlgorithm = "signature-algorithm"
)

// Digest is a digest file's JSON, fields in the order CloudTrail writes
// them (encoding/json keeps declaration order). Nullable fields are
// pointers so that a starting digest has its previous* keys present with
// null values, which the AWS CLI requires.
type Digest struct {
	AWSAccountID                string    `json:"awsAccountId"`
	DigestStartTime             string    `json:"digestStartTime"`
	DigestEndTime               string    `json:"digestEndTime"`
	DigestS3Bucket              string    `json:"digestS3Bucket"`
	DigestS3Object              string    `json:"digestS3Object"`
	DigestPublicKeyFingerprint  string    `json:"digestPublicKeyFingerprint"`
	DigestSignatureAlgorithm    string    `json:"digestSignatureAlgorithm"`
	NewestEventTime             *string   `json:"newestEventTime"`
	OldestEventTime             *string   `json:"oldestEventTime"`
	PreviousDigestS3Bucket      *string   `json:"previousDigestS3Bucket"`
	PreviousDigestS3Object      *string   `json:"previousDigestS3Object"`
	PreviousDigestHashValue     *string   `json:"previousDigestHashValue"`
	PreviousDigestHashAlgorithm *string   `json:"previousDigestHashAlgorithm"`
	PreviousDigestSignature     *string   `json:"previousDigestSignature"`
	LogFiles                    []LogFile `json:"logFiles"`
}

// LogFile is one entry of a digest's logFiles.
type LogFile struct {
	S3Bucket        string `json:"s3Bucket"`
	S3Object        string `json:"s3Object"`
	HashValue       string `json:"hashValue"`
	HashAlgorithm   string `json:"hashAlgorithm"`
	NewestEventTime string `json:"newestEventTime"`
	OldestEventTime string `json:"oldestEventTime"`
}

// Marshal serializes d the way it is stored (before gzip): compact JSON,
// without HTML escaping, logFiles always an array.
func (d *Digest) Marshal() ([]byte, error) {
	if d.LogFiles == nil {
		d.LogFiles = []LogFile{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("digest: encode %s: %w", d.DigestS3Object, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// requiredKeys are the keys the AWS CLI insists on (missing: "invalid
// format"); Cairn also requires logFiles and the start/end to parse.
var requiredKeys = []string{"digestPublicKeyFingerprint", "digestS3Bucket", "digestS3Object", "previousDigestSignature", "digestEndTime", "digestStartTime", "logFiles"}

// ErrFormat marks a digest that is not valid digest JSON.
var ErrFormat = errors.New("invalid format")

// Parse decodes a digest's uncompressed JSON and checks that it has the
// keys validation needs, with usable times.
func Parse(data []byte) (*Digest, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	for _, k := range requiredKeys {
		if _, ok := keys[k]; !ok {
			return nil, fmt.Errorf("%w: no %s", ErrFormat, k)
		}
	}
	var d Digest
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if _, err := ParseTime(d.DigestStartTime); err != nil {
		return nil, fmt.Errorf("%w: digestStartTime: %v", ErrFormat, err)
	}
	if _, err := ParseTime(d.DigestEndTime); err != nil {
		return nil, fmt.Errorf("%w: digestEndTime: %v", ErrFormat, err)
	}
	return &d, nil
}

// ParseTime parses a digest time; the CLI accepts any ISO 8601 form, so
// fractional seconds and offsets are accepted too.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{TimeFormat, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not ISO 8601", s)
}

// FormatTime formats a time as digests carry it.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// StringToSign is what a digest's signature covers (reference §5.3).
func StringToSign(d *Digest, uncompressedSHA256Hex string) []byte {
	prev := "null"
	if d.PreviousDigestSignature != nil {
		prev = *d.PreviousDigestSignature
	}
	return []byte(d.DigestEndTime + "\n" + d.DigestS3Bucket + "/" + d.DigestS3Object + "\n" + uncompressedSHA256Hex + "\n" + prev)
}

// Location names a trail's digests of one source region.
type Location struct {
	Prefix, Account, SourceRegion, TrailName, HomeRegion string
}

// Dir is the key prefix all of the location's digests share, up to and
// including the source region (what the CLI lists).
func (l Location) Dir() string {
	var b strings.Builder
	if l.Prefix != "" {
		b.WriteString(l.Prefix)
		b.WriteByte('/')
	}
	fmt.Fprintf(&b, "AWSLogs/%s/CloudTrail-Digest/%s/", l.Account, l.SourceRegion)
	return b.String()
}

// Key is the object key of the digest ending at end (reference §5.1).
func (l Location) Key(end time.Time) string {
	end = end.UTC()
	return fmt.Sprintf("%s%s/%s_CloudTrail-Digest_%s_%s_%s_%s.json.gz", l.Dir(), end.Format("2006/01/02"),
		l.Account, l.SourceRegion, l.TrailName, l.HomeRegion, end.Format(keyTimeFormat))
}

// LogDir is the key prefix of the source region's log files.
func (l Location) LogDir() string {
	var b strings.Builder
	if l.Prefix != "" {
		b.WriteString(l.Prefix)
		b.WriteByte('/')
	}
	fmt.Fprintf(&b, "AWSLogs/%s/CloudTrail/%s/", l.Account, l.SourceRegion)
	return b.String()
}

// KeyRE matches the location's digest keys, as the CLI's regex does.
func (l Location) KeyRE() *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(l.Dir()) + `\d+/\d+/\d+/` +
		regexp.QuoteMeta(l.Account+"_CloudTrail-Digest_"+l.SourceRegion+"_"+l.TrailName+"_"+l.HomeRegion+"_") + `.+\.json\.gz$`)
}

// KeyEndTime is the end time encoded in a digest key: the 16 characters
// before ".json.gz" (or "_backfill.json.gz"), as the CLI reads it.
func KeyEndTime(key string) (time.Time, bool) {
	s := strings.TrimSuffix(strings.TrimSuffix(key, ".json.gz"), "_backfill")
	if len(s) < 16 {
		return time.Time{}, false
	}
	t, err := time.Parse(keyTimeFormat, s[len(s)-16:])
	return t, err == nil
}

// logKeyTimeRE finds the delivery minute in a log file name.
var logKeyTimeRE = regexp.MustCompile(`_CloudTrail_[\w\-]+_(\d{8}T\d{4}Z)_\w+\.json\.gz$`)

// LogKeyTime is the delivery minute in a log file key.
func LogKeyTime(key string) (time.Time, bool) {
	m := logKeyTimeRE.FindStringSubmatch(key)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T1504Z", m[1])
	return t, err == nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func strp(s string) *string { return &s }
