package history

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/journal"
)

// testLogger discards logs unless CAIRN_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CAIRN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openJournal(t testing.TB, dir string) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), dir, journal.Options{Logger: testLogger(), MinFreeBytes: -1, MemTableSize: 16 << 20, CacheSize: 16 << 20})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	return j
}

// testNow is the fixed clock of most tests: events are generated in the
// days before it.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func openHistory(t testing.TB, dir string, j *journal.Journal, opts Options) *History {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 8 << 20
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 16 << 20
	}
	h, err := Open(context.Background(), dir, j, opts)
	if err != nil {
		t.Fatalf("open history: %v", err)
	}
	return h
}

// env is a journal and a started history in a temporary directory.
type env struct {
	t   testing.TB
	dir string
	j   *journal.Journal
	h   *History
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, j: openJournal(t, dir+"/journal")}
	e.h = openHistory(t, dir+"/history", e.j, opts)
	if err := e.h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.h != nil {
		if err := e.h.Close(); err != nil {
			e.t.Errorf("close history: %v", err)
		}
		e.h = nil
	}
	if e.j != nil {
		if err := e.j.Close(); err != nil {
			e.t.Errorf("close journal: %v", err)
		}
		e.j = nil
	}
}

// append appends records to the journal and waits until they are indexed.
func (e *env) append(recs ...[]byte) uint64 {
	e.t.Helper()
	ctx := context.Background()
	var last uint64
	for len(recs) > 0 {
		n := min(len(recs), 1000)
		first, err := e.j.Append(ctx, recs[:n])
		if err != nil {
			e.t.Fatalf("append: %v", err)
		}
		last = first + uint64(n) - 1
		recs = recs[n:]
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.h.WaitIndexed(ctx, last); err != nil {
		e.t.Fatalf("wait indexed: %v", err)
	}
	return last
}

func (e *env) lookup(q Query) Page {
	e.t.Helper()
	p, err := e.h.Lookup(context.Background(), q)
	if err != nil {
		e.t.Fatalf("lookup %+v: %v", q, err)
	}
	return p
}

// lookupAll pages through a query and returns the event IDs in order.
func (e *env) lookupAll(q Query) []string {
	e.t.Helper()
	var ids []string
	for {
		p := e.lookup(q)
		for _, ev := range p.Events {
			ids = append(ids, ev.EventID)
		}
		if p.NextToken == "" {
			return ids
		}
		q.NextToken = p.NextToken
	}
}

// rec describes a synthetic CloudTrail record; json renders it in the shape
// AWS writes (eventVersion 1.09 management event unless overridden).
type rec struct {
	ID, Name, Source, Region string
	Time                     time.Time
	User, AccessKey          string
	ReadOnly                 *bool
	Category                 string // eventCategory; "" leaves it out
	Management               *bool
	EventType                string
	ReqParams                map[string]any
	Resources                []map[string]string
	Extra                    map[string]any
}

func (r rec) json() []byte {
	m := map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{
			"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/" + r.User,
			"accountId": "123456789012", "accessKeyId": r.AccessKey, "userName": r.User,
		},
		"eventTime":          r.Time.UTC().Format(time.RFC3339),
		"eventSource":        r.Source,
		"eventName":          r.Name,
		"awsRegion":          r.Region,
		"sourceIPAddress":    "203.0.113.7",
		"userAgent":          "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
		"requestParameters":  r.ReqParams,
		"responseElements":   nil,
		"requestID":          "req-" + r.ID,
		"eventID":            r.ID,
		"eventType":          "AwsApiCall",
		"recipientAccountId": "123456789012",
	}
	if r.ReadOnly != nil {
		m["readOnly"] = *r.ReadOnly
	}
	if r.Management != nil {
		m["managementEvent"] = *r.Management
	}
	if r.Category != "" {
		m["eventCategory"] = r.Category
	}
	if r.EventType != "" {
		m["eventType"] = r.EventType
	}
	if r.Resources != nil {
		m["resources"] = r.Resources
	}
	for k, v := range r.Extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// mgmt returns a management event with sensible defaults.
func mgmt(id string, t time.Time) rec {
	return rec{ID: id, Name: "DescribeInstances", Source: "ec2.amazonaws.com", Region: "us-east-1", Time: t,
		User: "alice", AccessKey: "AKIAALICE", ReadOnly: ptr(true), Category: "Management", Management: ptr(true)}
}

// generator produces realistic management events for load tests and
// benchmarks: Zipf-distributed users, APIs and resources over a time span.
type generator struct {
	rng     *rand.Rand
	apis    []api
	apiZipf *rand.Zipf
	users   int
	userZ   *rand.Zipf
	instZ   *rand.Zipf
	bucketZ *rand.Zipf
}

type api struct {
	source, name string
	readOnly     bool
	resource     string // requestParameters member naming the resource
}

func newGenerator(seed uint64) *generator {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	apis := []api{
		{"ec2.amazonaws.com", "DescribeInstances", true, ""},
		{"ssm.amazonaws.com", "DescribeInstanceInformation", true, ""},
		{"sts.amazonaws.com", "GetCallerIdentity", true, ""},
		{"s3.amazonaws.com", "ListBuckets", true, ""},
		{"ec2.amazonaws.com", "DescribeInstanceAttribute", true, "instanceId"},
		{"s3.amazonaws.com", "GetBucketAcl", true, "bucketName"},
		{"kms.amazonaws.com", "DescribeKey", true, "keyId"},
		{"iam.amazonaws.com", "GetUser", true, "userName"},
		{"ec2.amazonaws.com", "DescribeVolumes", true, ""},
		{"logs.amazonaws.com", "CreateLogStream", false, "logGroupName"},
		{"s3.amazonaws.com", "GetBucketPolicy", true, "bucketName"},
		{"secretsmanager.amazonaws.com", "GetSecretValue", true, "secretId"},
		{"ec2.amazonaws.com", "StartInstances", false, "instanceId"},
		{"ec2.amazonaws.com", "StopInstances", false, "instanceId"},
		{"lambda.amazonaws.com", "GetFunction", true, "functionName"},
		{"iam.amazonaws.com", "ListRoles", true, ""},
		{"ec2.amazonaws.com", "GetPasswordData", true, "instanceId"},
		{"s3.amazonaws.com", "PutBucketPolicy", false, "bucketName"},
		{"iam.amazonaws.com", "CreateAccessKey", false, "userName"},
		{"cloudtrail.amazonaws.com", "StopLogging", false, "name"},
		{"iam.amazonaws.com", "DeleteUser", false, "userName"},
		{"cloudtrail.amazonaws.com", "DeleteTrail", false, "name"},
	}
	g := &generator{rng: rng, apis: apis, users: 500}
	g.apiZipf = rand.NewZipf(rng, 1.2, 1, uint64(len(apis)-1))
	g.userZ = rand.NewZipf(rng, 1.1, 1, uint64(g.users-1))
	g.instZ = rand.NewZipf(rng, 1.05, 1, 4999)
	g.bucketZ = rand.NewZipf(rng, 1.05, 1, 299)
	return g
}

// regionFor spreads events over three regions, most in us-east-1.
func (g *generator) region() string {
	switch x := g.rng.IntN(100); {
	case x < 80:
		return "us-east-1"
	case x < 95:
		return "eu-west-1"
	default:
		return "ap-southeast-2"
	}
}

// next returns the i-th event at time t (plus up to a minute of jitter, so
// events arrive slightly out of order as they do from CloudTrail).
func (g *generator) next(t time.Time) []byte {
	a := g.apis[g.apiZipf.Uint64()]
	u := g.userZ.Uint64()
	user := fmt.Sprintf("user-%03d", u)
	key := fmt.Sprintf("AKIA%016d", u*2+uint64(g.rng.IntN(2)))
	params := map[string]any{}
	switch a.resource {
	case "instanceId":
		params["instanceId"] = fmt.Sprintf("i-%017x", g.instZ.Uint64())
	case "bucketName":
		params["bucketName"] = fmt.Sprintf("bucket-%03d", g.bucketZ.Uint64())
	case "userName":
		params["userName"] = fmt.Sprintf("user-%03d", g.userZ.Uint64())
	case "":
		params["maxResults"] = 50
	default:
		params[a.resource] = fmt.Sprintf("%s-%03d", strings.ToLower(a.resource), g.rng.IntN(100))
	}
	var idb [16]byte
	for i := range idb {
		idb[i] = byte(g.rng.Uint32())
	}
	id, _ := uuid.FromBytes(idb[:])
	r := rec{
		ID: id.String(), Name: a.name, Source: a.source, Region: g.region(),
		Time: t.Add(-time.Duration(g.rng.IntN(60)) * time.Second), User: user, AccessKey: key,
		ReadOnly: ptr(a.readOnly), Category: "Management", Management: ptr(true), ReqParams: params,
		Extra: map[string]any{"tlsDetails": map[string]any{"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
			"clientProvidedHostHeader": strings.TrimSuffix(a.source, ".amazonaws.com") + ".us-east-1.amazonaws.com"}},
	}
	return r.json()
}
