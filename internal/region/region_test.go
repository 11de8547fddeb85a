package region

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestAWSListsEveryPartitionButNoInventions(t *testing.T) {
	s, err := NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{
		"us-east-1", "eu-west-3", "ap-southeast-7", "mx-central-1", // commercial
		"cn-north-1", "cn-northwest-1", // China
		"us-gov-west-1", "us-gov-east-1", // GovCloud
		"us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", // ISO
	} {
		if !s.Known(r) {
			t.Errorf("Known(%q) = false, want true", r)
		}
	}
	for _, r := range []string{
		"zz-fake-9",
		"us-fake-9",     // matches the commercial regionRegex, but is not listed
		"aws-global",    // a pseudo-region of the endpoint rules, never a scope
		"aws-cn-global", // ditto
		"", "US-EAST-1", "us-east-1 ", "eu-central-99",
	} {
		if s.Known(r) {
			t.Errorf("Known(%q) = true, want false", r)
		}
	}
	if len(s.Declared()) != 0 {
		t.Errorf("Declared = %v, want none", s.Declared())
	}
}

func TestDeclaredRegions(t *testing.T) {
	got, err := ParseList(" xx-private-1, us-east-1 ,,xx-private-1,dc-onprem-2")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "xx-private-1,us-east-1,dc-onprem-2" {
		t.Fatalf("ParseList = %q", got)
	}
	s, err := NewSet(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"xx-private-1", "dc-onprem-2", "us-east-1"} {
		if !s.Known(r) {
			t.Errorf("Known(%q) = false after declaring it", r)
		}
	}
	if d := strings.Join(s.Declared(), ","); d != "xx-private-1,dc-onprem-2" {
		t.Errorf("Declared = %q: us-east-1 is AWS's, not declared", d)
	}
	if s.Known("zz-fake-9") {
		t.Error("an undeclared invention is known")
	}

	for _, bad := range []string{"onprem", "Xx-private-1", "xx-private-", "x-private-1", "xx_private-1", "xx-private-1/../a",
		"xx-" + strings.Repeat("a", 60) + "-1", "xx-private-1\x00", "xx-pri vate-1"} {
		if _, err := ParseList(bad); err == nil {
			t.Errorf("ParseList(%q) accepted it", bad)
		}
		if _, err := NewSet([]string{bad}); err == nil {
			t.Errorf("NewSet(%q) accepted it", bad)
		}
	}
	if got, err := ParseList(""); err != nil || len(got) != 0 {
		t.Errorf("ParseList(\"\") = %v, %v: an empty list declares nothing", got, err)
	}
}

// TestEmbeddedMatchesSDK fails when the SDK in go.mod lists other regions
// than the embedded copy: copy its partitions.json here when it does.
func TestEmbeddedMatchesSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Fatalf("locate aws-sdk-go-v2: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("aws-sdk-go-v2 is not in the module cache; run go mod download")
	}
	sdk, err := os.ReadFile(filepath.Join(dir, "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sdk, partitionsJSON) {
		t.Fatalf("internal/region/partitions.json differs from %s's: copy the SDK's file here", dir)
	}
}
