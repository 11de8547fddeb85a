package digest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/golden"
)

// TestDigestGolden pins a digest's JSON byte for byte: AWS's field order,
// null previous* fields of a starting digest, an empty logFiles array.
func TestDigestGolden(t *testing.T) {
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	loc := Location{Prefix: "ct", Account: "123456789012", SourceRegion: "eu-west-1", TrailName: "audit", HomeRegion: "us-east-1"}
	docs := map[string]*Digest{
		"digest-start.json": {
			AWSAccountID: "123456789012", DigestStartTime: FormatTime(end.Add(-time.Hour)), DigestEndTime: FormatTime(end),
			DigestS3Bucket: "logs", DigestS3Object: loc.Key(end), DigestPublicKeyFingerprint: "0123456789abcdef0123456789abcdef",
			DigestSignatureAlgorithm: SignatureAlgorithm,
		},
		"digest-chained.json": {
			AWSAccountID: "123456789012", DigestStartTime: FormatTime(end), DigestEndTime: FormatTime(end.Add(time.Hour)),
			DigestS3Bucket: "logs", DigestS3Object: loc.Key(end.Add(time.Hour)), DigestPublicKeyFingerprint: "0123456789abcdef0123456789abcdef",
			DigestSignatureAlgorithm: SignatureAlgorithm,
			NewestEventTime:          strp("2026-01-02T03:59:00Z"), OldestEventTime: strp("2026-01-02T03:01:00Z"),
			PreviousDigestS3Bucket: strp("logs"), PreviousDigestS3Object: strp(loc.Key(end)),
			PreviousDigestHashValue: strp("aa"), PreviousDigestHashAlgorithm: strp(HashAlgorithm), PreviousDigestSignature: strp("bb"),
			LogFiles: []LogFile{{S3Bucket: "logs", S3Object: "ct/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/01/02/123456789012_CloudTrail_eu-west-1_20260102T0400Z_abcdefghijklmnop.json.gz",
				HashValue: "cc", HashAlgorithm: HashAlgorithm, NewestEventTime: "2026-01-02T03:59:00Z", OldestEventTime: "2026-01-02T03:01:00Z"}},
		},
	}
	for name, d := range docs {
		got, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", name), got)
		back, err := Parse(got)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(again, got) {
			t.Errorf("%s does not round-trip:\n%s", name, again)
		}
	}
	if k := loc.Key(end); k != "ct/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2026/01/02/123456789012_CloudTrail-Digest_eu-west-1_audit_us-east-1_20260102T030405Z.json.gz" {
		t.Errorf("key %s", k)
	}
	if got, ok := KeyEndTime(loc.Key(end)); !ok || !got.Equal(end) {
		t.Errorf("KeyEndTime = %v %v", got, ok)
	}
}

// FuzzParse: the digest parser never panics, and whatever it accepts
// re-serializes into something it accepts again with the same content.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"digest-start.json", "digest-chained.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("marshal a parsed digest: %v", err)
		}
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		out2, _ := d2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}
