package s3proxy

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-audit/cairn/internal/datasets"
	"github.com/cairn-audit/cairn/internal/testenv"
)

// The proxy's records are eventVersion 1.11; the S3 records of the
// flaws2.cloud dataset were written in 2018 (1.04 to 1.06). These are the
// members each side may have without the other, and why. Everything else
// must match: the same members, recursively, with the same JSON types.
var (
	// allowedExtra: members the proxy writes that the 2018 records lack.
	allowedExtra = map[string]string{
		"managementEvent":                            "added in eventVersion 1.06",
		"eventCategory":                              "added in eventVersion 1.07",
		"requestParameters.Host":                     "S3 records the Host header since 2019",
		"additionalEventData.SignatureVersion":       "S3 records it since 2019 (signed requests only)",
		"additionalEventData.AuthenticationMethod":   "S3 records it since 2019 (signed requests only)",
		"additionalEventData.bytesTransferredIn":     "S3 records it since 2019",
		"additionalEventData.bytesTransferredOut":    "S3 records it since 2019",
		"additionalEventData.CipherSuite":            "S3 records it since 2019 (TLS only)",
		"ListBuckets/readOnly":                       "S3 management events carry readOnly today; the 2018 ListBuckets record did not",
		"ListBuckets/additionalEventData":            "S3 management events carry additionalEventData today",
		"ListBuckets/additionalEventData.x-amz-id-2": "S3 management events carry additionalEventData today",
		"requestParameters.x-id": "aws-sdk-go-v2 adds its x-id routing hint to the query; S3 records every query " +
			"parameter, x-id included (2018's callers did not send it)",
	}
	// allowedMissing: members of the 2018 records the proxy cannot write.
	allowedMissing = map[string]string{
		"sharedEventID": "AWS writes it when it delivers the event to two accounts (an anonymous or cross-account " +
			"caller and the bucket owner); a proxy records for one account",
		"userIdentity.sessionContext": "for AssumedRole callers AWS knows the STS session; the proxy knows only the " +
			"configured identity of the access key (no session issuer, creation date or MFA flag)",
	}
)

// TestEventsMatchRealS3Events drives the real AWS CLI and aws-sdk-go-v2
// through the proxy and compares the structure of the events, per
// eventName and caller type, with the real S3 events of the flaws2.cloud
// dataset.
func TestEventsMatchRealS3Events(t *testing.T) {
	real := datasetShapes(t)
	r := newRig(t, rigOptions{configure: func(c *Config) {
		// The dataset's signed S3 calls came from an assumed role.
		c.Identities = []Identity{{AccessKeyID: c.Identities[0].AccessKeyID, Type: "AssumedRole",
			PrincipalID: "AROAEXAMPLEROLEID0001:session", ARN: "arn:aws:sts::" + testAccount + ":assumed-role/level1/session",
			AccountID: testAccount}}
	}})
	aws := awsCLI(t, r.p.URL(), r.s3.AccessKeyID, r.s3.SecretAccessKey)
	aws(true, "s3api", "create-bucket", "--bucket", "flaws")
	aws(true, "s3api", "put-bucket-policy", "--bucket", "flaws", "--policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::flaws/*"}]}`)
	page := filepath.Join(t.TempDir(), "index.htm")
	if err := os.WriteFile(page, []byte("<html>flaws</html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	aws(true, "s3", "cp", page, "s3://flaws/index.htm")
	aws(true, "s3", "ls", "s3://flaws/")
	aws(true, "s3api", "list-buckets")
	aws(true, "s3api", "get-object", "--no-sign-request", "--bucket", "flaws", "--key", "index.htm", filepath.Join(t.TempDir(), "out"))
	aws(false, "s3api", "get-object", "--no-sign-request", "--bucket", "flaws", "--key", "fonts/missing.woff", filepath.Join(t.TempDir(), "out"))
	// A browser's request with a stray query parameter, as in the dataset
	// (S3 records unknown parameters too).
	req, err := http.NewRequest("GET", r.p.URL()+"/flaws/index.htm?incorrect", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The same calls through aws-sdk-go-v2, signed and anonymous.
	ctx := context.Background()
	sdk := r.client(r.p.URL())
	anon := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: awssdk.String(r.p.URL()), UsePathStyle: true,
		Credentials: awssdk.AnonymousCredentials{}, Retryer: awssdk.NopRetryer{}})
	for _, c := range []*s3.Client{sdk, anon} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: awssdk.String("flaws"), Key: awssdk.String("index.htm")})
		if err != nil {
			t.Fatalf("SDK GetObject: %v", err)
		}
		out.Body.Close()
	}
	if _, err := sdk.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: awssdk.String("flaws")}); err != nil {
		t.Fatalf("SDK ListObjectsV2: %v", err)
	}
	if _, err := sdk.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("SDK ListBuckets: %v", err)
	}

	ours := map[string]map[string]string{}
	for _, e := range r.events(t) {
		g := group(e)
		if ours[g] == nil {
			ours[g] = map[string]string{}
		}
		shape(e, "", ours[g])
	}
	for g, want := range real {
		have, ok := ours[g]
		if !ok {
			t.Errorf("%s: the proxy recorded no such event; it recorded %v", g, keys(ours))
			continue
		}
		name, _, _ := strings.Cut(g, " ")
		for _, p := range sortedKeys(want) {
			ht, ok := have[p]
			switch {
			case !ok && !allowed(allowedMissing, name, p):
				t.Errorf("%s: real S3 events have %s (%s), the proxy's do not", g, p, want[p])
			case ok && ht != want[p] && !(want[p] == "null" || ht == "null"):
				t.Errorf("%s: %s is %s in real S3 events, %s in the proxy's", g, p, want[p], ht)
			}
		}
		for _, p := range sortedKeys(have) {
			if _, ok := want[p]; !ok && !allowed(allowedExtra, name, p) {
				t.Errorf("%s: the proxy writes %s (%s), real S3 events do not", g, p, have[p])
			}
		}
	}
	if t.Failed() {
		for _, e := range r.events(t) {
			b, _ := json.Marshal(e)
			t.Logf("proxy event: %s", b)
		}
	}
}

// allowed says whether path p of an eventName's records is a stated
// exception (for every eventName, or "Name/path" for one).
func allowed(m map[string]string, name, p string) bool {
	for cand := p; cand != ""; {
		if _, ok := m[cand]; ok {
			return true
		}
		if _, ok := m[name+"/"+cand]; ok {
			return true
		}
		i := strings.LastIndexAny(cand, ".[")
		if i < 0 {
			break
		}
		cand = cand[:i]
	}
	return false
}

// group keys events by eventName and caller type.
func group(e map[string]any) string {
	return fmt.Sprintf("%v %v", e["eventName"], path(e, "userIdentity.type"))
}

// shape lists every member path of v with its JSON type. Array elements
// that carry a "type" member (resources) are told apart by it.
func shape(v any, prefix string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if prefix != "" {
			out[prefix] = "object"
		}
		for k, vv := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			shape(vv, p, out)
		}
	case []any:
		out[prefix] = "array"
		for _, el := range x {
			sub := prefix + "[]"
			if m, ok := el.(map[string]any); ok {
				if ty, ok := m["type"].(string); ok {
					sub = prefix + "[" + ty + "]"
				}
			}
			shape(el, sub, out)
		}
	case string:
		out[prefix] = "string"
	case float64:
		out[prefix] = "number"
	case bool:
		out[prefix] = "boolean"
	case nil:
		out[prefix] = "null"
	}
}

// datasetShapes reads the flaws2.cloud logs at test time and returns the
// shapes of their S3 events by group.
func datasetShapes(t *testing.T) map[string]map[string]string {
	t.Helper()
	root := filepath.Join(datasets.Dir(t), "flaws2-cloud")
	out := map[string]map[string]string{}
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json.gz") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		var file struct{ Records []map[string]any }
		if err := json.NewDecoder(zr).Decode(&file); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, e := range file.Records {
			if e["eventSource"] != "s3.amazonaws.com" {
				continue
			}
			n++
			g := group(e)
			if out[g] == nil {
				out[g] = map[string]string{}
			}
			shape(e, "", out[g])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the flaws2.cloud dataset: %v", err)
	}
	if n == 0 {
		t.Fatalf("no S3 events in %s", root)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := keys(m)
	sort.Strings(out)
	return out
}

// awsCLI runs the real AWS CLI against the proxy, path-style. ok says
// whether the command must succeed or must fail.
func awsCLI(t *testing.T, endpoint, keyID, secret string) func(ok bool, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		testenv.RequireOrSkip(t, "no aws CLI on PATH: %v", err)
	}
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	if err := os.WriteFile(cfg, []byte("[default]\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home, "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
		"AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ENDPOINT_URL_S3="+endpoint, "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1")
	return func(ok bool, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if (err == nil) != ok {
			t.Fatalf("aws %s: err %v (want success %v)\n%s", strings.Join(args, " "), err, ok, out)
		}
		return string(out)
	}
}
