// Package bench drives a running Cairn through its real HTTP API, the way
// production clients do, to measure it: realistic CloudTrail events from a
// deterministic generator, PutAuditEvents and import load drivers signed
// with SigV4, and LookupEvents through the real aws-sdk-go-v2 client.
//
// It also holds the small SigV4 HTTP client `cairn import` uses for
// /cairn/import, which has no SDK.
package bench

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// Options configure a Generator. The same Options (Seed and End included)
// always produce the same events, byte for byte.
type Options struct {
	Seed uint64
	// AccountID is the account of the records (recipientAccountId, ARNs).
	// PutAuditEvents requires it to be the server's account. Default
	// 000000000000, Cairn's default account.
	AccountID string
	// Region is the records' awsRegion; LookupEvents only sees events of
	// the region it is called in. Default us-east-1.
	Region string
	// End is the newest eventTime; zero means now (which makes the output
	// depend on the clock).
	End time.Time
	// Span spreads eventTimes uniformly over [End-Span, End]. Default 24h.
	Span time.Duration
}

// Generator makes CloudTrail events whose shape follows the data sets'
// statistics (shared/datasets/STATS.md): about 1.3 KB of compact JSON on
// average with a median near 1 KB and a long tail to tens of KB, userIdentity
// types in realistic proportions (IAM users, assumed-role sessions, AWS
// services, a little root and federated use), a skewed mix of event
// sources and names (Describe*/Get* polls dominate, destructive calls are
// rare), about one event in ten failing with AccessDenied-style errors,
// and request parameters that name resources from bounded pools, so that
// every LookupEvents attribute has common values and rare ones.
//
// A Generator is not safe for concurrent use; give each goroutine its own
// (with different seeds).
type Generator struct {
	opts    Options
	rng     *rand.Rand
	endUnix int64
	span    int64

	ops      []*operation
	opCum    []float64
	opTotal  float64
	idByType [][]*principal
	idZipf   []*rand.Zipf
	idCum    []float64

	pools   map[string]*pool
	scratch []byte
	req     []byte
	resp    []byte
	c       call

	tracker *Tracker
}

// pool is a bounded set of resource names picked with a Zipf skew, so a
// few resources are hot and most are touched rarely.
type pool struct {
	vals []string
	z    *rand.Zipf
}

func (g *Generator) newPool(name string, n int, mk func(i int) string) {
	p := &pool{vals: make([]string, n), z: rand.NewZipf(g.rng, 1.1, 2, uint64(n-1))}
	for i := range p.vals {
		p.vals[i] = mk(i)
	}
	g.pools[name] = p
}

func (g *Generator) pick(name string) string {
	p := g.pools[name]
	return p.vals[p.z.Uint64()]
}

// New returns a Generator for opts.
func New(opts Options) *Generator {
	if opts.AccountID == "" {
		opts.AccountID = "000000000000"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.End.IsZero() {
		opts.End = time.Now()
	}
	if opts.Span <= 0 {
		opts.Span = 24 * time.Hour
	}
	g := &Generator{
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		endUnix: opts.End.Unix(),
		span:    int64(opts.Span / time.Second),
		pools:   map[string]*pool{},
	}
	g.initPools()
	g.initIdentities()
	g.ops = catalog()
	for _, op := range g.ops {
		g.opTotal += op.weight
		g.opCum = append(g.opCum, g.opTotal)
	}
	return g
}

// Options returns the generator's options with defaults filled in.
func (g *Generator) Options() Options { return g.opts }

// Track makes the generator count the LookupEvents attribute values of
// every record it produces from now on (see Tracker), at the cost of
// parsing each record once more.
func (g *Generator) Track(t *Tracker) { g.tracker = t }

// Record returns the next event as a CloudTrail management-event record
// (compact JSON, eventVersion 1.08 to 1.10), appended to dst.
func (g *Generator) Record(dst []byte) []byte {
	g.next()
	start := len(dst)
	dst = g.renderRecord(dst)
	if g.tracker != nil {
		g.tracker.observe(dst[start:])
	}
	return dst
}

// AuditEventData returns the next event as the eventData of a
// PutAuditEvents audit event (reference §2.2), appended to dst. Its
// recipientAccountId is Options.AccountID.
func (g *Generator) AuditEventData(dst []byte) []byte {
	g.next()
	return g.renderEventData(dst)
}

// call is the event being generated, before it is rendered in one of the
// two shapes.
type call struct {
	op        *operation
	who       *principal
	t         time.Time
	eventID   string
	requestID string
	errCode   string
	errMsg    string
	req       []byte // JSON object or nil (null)
	resp      []byte
	extra     []byte // additionalEventData or nil
	resources []resRef
	version   string
	sourceIP  string
	userAgent string
	eventType string
}

type resRef struct{ typ, arn string }

func (g *Generator) next() {
	c := &g.c
	*c = call{resources: c.resources[:0]}
	c.op = g.pickOp()
	c.who = g.pickIdentity()
	c.t = time.Unix(g.endUnix-g.rng.Int64N(g.span+1), 0).UTC()
	c.eventID = g.uuid()
	c.requestID = g.uuid()
	c.eventType = "AwsApiCall"
	switch v := g.rng.IntN(100); {
	case v < 45:
		c.version = "1.08"
	case v < 95:
		c.version = "1.09"
	default:
		c.version = "1.10"
	}
	c.sourceIP, c.userAgent = c.who.sourceIP, c.who.userAgent
	g.req, g.resp = g.req[:0], g.resp[:0]
	c.op.build(g, c)
	if c.req != nil {
		g.req = c.req
	}
	if c.resp != nil {
		g.resp = c.resp
	}
	// About one call in ten fails; the failure replaces the response.
	if c.who.typ != "AWSService" && c.errCode == "" && g.rng.IntN(100) < 10 {
		g.fail(c)
	}
}

func (g *Generator) pickOp() *operation {
	x := g.rng.Float64() * g.opTotal
	lo, hi := 0, len(g.opCum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if g.opCum[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return g.ops[lo]
}

func (g *Generator) fail(c *call) {
	action := serviceName(c.op.source) + ":" + c.op.name
	if c.op.source == "ec2.amazonaws.com" {
		c.errCode = "Client.UnauthorizedOperation"
		msg := g.scratch[:0]
		msg = append(msg, "You are not authorized to perform this operation. User: "...)
		msg = append(msg, c.who.arn...)
		msg = append(msg, " is not authorized to perform: "...)
		msg = append(msg, action...)
		msg = append(msg, " because no identity-based policy allows the "...)
		msg = append(msg, action...)
		msg = append(msg, " action. Encoded authorization failure message: "...)
		msg = g.appendToken(msg, 300+g.rng.IntN(600))
		g.scratch = msg
		c.errMsg = string(msg)
	} else {
		c.errCode = "AccessDenied"
		c.errMsg = "User: " + c.who.arn + " is not authorized to perform: " + action + " because no identity-based policy allows the " + action + " action"
	}
	c.resp = nil
	g.resp = g.resp[:0]
}

func serviceName(source string) string {
	for i := 0; i < len(source); i++ {
		if source[i] == '.' {
			return source[:i]
		}
	}
	return source
}

const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// appendToken appends n characters of base64url-looking noise (encoded
// authorization messages, user data, tokens).
func (g *Generator) appendToken(b []byte, n int) []byte {
	for n > 0 {
		x := g.rng.Uint64()
		for i := 0; i < 10 && n > 0; i++ {
			b = append(b, tokenChars[x&63])
			x >>= 6
			n--
		}
	}
	return b
}

const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func (g *Generator) upperID(prefix string, n int) string {
	b := make([]byte, 0, len(prefix)+n)
	b = append(b, prefix...)
	for i := 0; i < n; i++ {
		b = append(b, upperAlnum[g.rng.IntN(len(upperAlnum))])
	}
	return string(b)
}

func (g *Generator) hexID(prefix string, n int) string {
	b := make([]byte, 0, len(prefix)+n)
	b = append(b, prefix...)
	for i := 0; i < n; i++ {
		b = append(b, hexDigits[g.rng.IntN(16)])
	}
	return string(b)
}

// uuid returns a random version-4 UUID from the generator's stream.
func (g *Generator) uuid() string {
	var u [16]byte
	x, y := g.rng.Uint64(), g.rng.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(x >> (8 * i))
		u[8+i] = byte(y >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	j := 0
	for i, v := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[v>>4], hexDigits[v&0xf]
		j += 2
	}
	return string(b[:])
}

// principal is one caller identity.
type principal struct {
	typ         string
	userName    string // IAM user name, or the role session name
	principalID string
	arn         string
	accessKey   string
	issuer      *principal // the role of an AssumedRole session
	invokedBy   string
	userAgent   string
	sourceIP    string
	mfa         bool
}

var firstNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
	"mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin",
	"zoe", "amir", "bea", "chen", "dmitri", "elena", "farah", "goran", "hana", "ines"}

var userSuffixes = []string{"", ".admin", "-dev", "-ops", ".sre", "-ci", "-readonly", ".contractor"}

var roleNames = []string{"OrganizationAccountAccessRole", "AWSReservedSSO_AdministratorAccess_7c1a2b3d4e5f6a7b",
	"AWSReservedSSO_ReadOnlyAccess_0f9e8d7c6b5a4f3e", "eks-node-group-role", "lambda-exec-orders", "lambda-exec-billing",
	"github-actions-deploy", "terraform-apply", "ecs-task-api", "ecs-task-worker", "datadog-integration",
	"ssm-managed-instance", "backup-operator", "security-audit", "cost-explorer-reader", "karpenter-controller",
	"rds-monitoring-role", "config-recorder", "guardduty-forwarder", "jenkins-agent"}

var services = []string{"ec2.amazonaws.com", "lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "autoscaling.amazonaws.com",
	"cloudformation.amazonaws.com", "elasticloadbalancing.amazonaws.com", "ssm.amazonaws.com", "config.amazonaws.com"}

var userAgents = []string{
	"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/ec2.describe-instances",
	"Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
	"aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.152.0",
	"aws-sdk-java/2.25.16 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
	"Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1",
	"console.amazonaws.com",
	"[aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/s3.ls]",
	"aws-internal/3 aws-sdk-java/1.12.673 Linux/5.10.213-180.876.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 vendor/Oracle_Corporation cfg/retry-mode/standard",
	"amazon-ssm-agent/3.3.131.0",
}

func (g *Generator) ipv4() string {
	b := make([]byte, 0, 15)
	for i := 0; i < 4; i++ {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(1+g.rng.IntN(254)), 10)
	}
	return string(b)
}

// Identity type shares, matching the combined data sets (IAMUser 73%,
// AssumedRole 20%, AWS services and accounts the rest) shifted toward
// assumed roles, which dominate in accounts that use SSO and workloads.
var identityTypes = []struct {
	typ   string
	share float64
	n     int
}{
	{"IAMUser", 50, 150},
	{"AssumedRole", 38, 1500},
	{"AWSService", 8, len(services)},
	{"Root", 1, 1},
	{"FederatedUser", 1.5, 40},
	{"AWSAccount", 1.5, 10},
}

func (g *Generator) initIdentities() {
	acct := g.opts.AccountID
	roles := make([]*principal, len(roleNames))
	for i, r := range roleNames {
		roles[i] = &principal{typ: "Role", userName: r, principalID: g.upperID("AROA", 17), arn: "arn:aws:iam::" + acct + ":role/" + r}
	}
	total := 0.0
	for _, it := range identityTypes {
		list := make([]*principal, it.n)
		for i := range list {
			p := &principal{typ: it.typ, userAgent: userAgents[g.rng.IntN(len(userAgents))], sourceIP: g.ipv4()}
			switch it.typ {
			case "IAMUser":
				p.userName = firstNames[i%len(firstNames)] + userSuffixes[(i/len(firstNames))%len(userSuffixes)]
				if i >= len(firstNames)*len(userSuffixes) {
					p.userName += strconv.Itoa(i)
				}
				p.principalID = g.upperID("AIDA", 17)
				p.arn = "arn:aws:iam::" + acct + ":user/" + p.userName
				p.accessKey = g.upperID("AKIA", 16)
			case "AssumedRole":
				role := roles[int(rand.NewZipf(g.rng, 1.2, 1, uint64(len(roles)-1)).Uint64())]
				switch g.rng.IntN(4) {
				case 0:
					p.userName = firstNames[g.rng.IntN(len(firstNames))] + "@example.com"
					p.mfa = true
				case 1:
					p.userName = g.hexID("i-0", 16)
				case 2:
					p.userName = "botocore-session-" + strconv.Itoa(1700000000+g.rng.IntN(30000000))
				default:
					p.userName = "aws-go-sdk-" + strconv.FormatInt(1722511821294449000+g.rng.Int64N(1e15), 10)
				}
				p.issuer = role
				p.principalID = role.principalID + ":" + p.userName
				p.arn = "arn:aws:sts::" + acct + ":assumed-role/" + role.userName + "/" + p.userName
				p.accessKey = g.upperID("ASIA", 16)
			case "AWSService":
				p.invokedBy = services[i]
				p.sourceIP = p.invokedBy
				p.userAgent = p.invokedBy
				p.principalID = p.invokedBy
			case "Root":
				p.principalID = acct
				p.arn = "arn:aws:iam::" + acct + ":root"
				p.accessKey = g.upperID("ASIA", 16)
				p.userAgent = "console.amazonaws.com"
				p.mfa = true
			case "FederatedUser":
				p.userName = firstNames[i%len(firstNames)] + "-fed"
				p.principalID = acct + ":" + p.userName
				p.arn = "arn:aws:sts::" + acct + ":federated-user/" + p.userName
				p.accessKey = g.upperID("ASIA", 16)
			case "AWSAccount":
				p.principalID = g.upperID("AIDA", 17)
				p.userName = strconv.Itoa(100000000000 + g.rng.IntN(899999999999))
			}
			list[i] = p
		}
		g.idByType = append(g.idByType, list)
		var z *rand.Zipf
		if it.n > 1 {
			z = rand.NewZipf(g.rng, 1.05, 3, uint64(it.n-1))
		}
		g.idZipf = append(g.idZipf, z)
		total += it.share
		g.idCum = append(g.idCum, total)
	}
}

func (g *Generator) pickIdentity() *principal {
	x := g.rng.Float64() * g.idCum[len(g.idCum)-1]
	i := 0
	for g.idCum[i] < x {
		i++
	}
	if g.idZipf[i] == nil {
		return g.idByType[i][0]
	}
	return g.idByType[i][g.idZipf[i].Uint64()]
}

var words = []string{"orders", "billing", "payments", "inventory", "search", "auth", "users", "reports",
	"analytics", "ingest", "media", "notifications", "catalog", "checkout", "shipping", "ledger"}
var envs = []string{"prod", "staging", "dev", "sandbox"}

func (g *Generator) initPools() {
	acct, region := g.opts.AccountID, g.opts.Region
	word := func(i int) string { return words[i%len(words)] + "-" + envs[(i/len(words))%len(envs)] }
	g.newPool("instance", 800, func(int) string { return g.hexID("i-0", 16) })
	g.newPool("volume", 600, func(int) string { return g.hexID("vol-0", 16) })
	g.newPool("sg", 120, func(int) string { return g.hexID("sg-0", 16) })
	g.newPool("subnet", 24, func(int) string { return g.hexID("subnet-0", 16) })
	g.newPool("vpc", 6, func(int) string { return g.hexID("vpc-0", 16) })
	g.newPool("ami", 40, func(int) string { return g.hexID("ami-0", 16) })
	g.newPool("snapshot", 300, func(int) string { return g.hexID("snap-0", 16) })
	g.newPool("bucket", 90, func(i int) string { return "acme-" + word(i) + "-" + strconv.Itoa(i) })
	g.newPool("kms", 40, func(int) string { return g.uuid() })
	g.newPool("function", 70, func(i int) string { return word(i) + "-handler" })
	g.newPool("secret", 150, func(i int) string { return word(i) + "/db-credentials-" + strconv.Itoa(i) })
	g.newPool("loggroup", 200, func(i int) string { return "/aws/lambda/" + word(i) + "-handler-" + strconv.Itoa(i) })
	g.newPool("param", 250, func(i int) string {
		return "/" + envs[i%len(envs)] + "/" + words[i%len(words)] + "/config-" + strconv.Itoa(i)
	})
	g.newPool("trail", 3, func(i int) string { return []string{"management-events", "org-trail", "security-audit"}[i] })
	g.newPool("repo", 30, func(i int) string { return words[i%len(words)] + "-service" })
	g.newPool("table", 45, func(i int) string { return word(i) + "-table" })
	g.newPool("role", len(roleNames), func(i int) string { return roleNames[i] })
	g.newPool("rolearn", len(roleNames), func(i int) string { return "arn:aws:iam::" + acct + ":role/" + roleNames[i] })
	g.newPool("policyarn", 30, func(i int) string {
		if i < 10 {
			return "arn:aws:iam::aws:policy/" + []string{"AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess", "AmazonS3FullAccess",
				"AmazonEC2ReadOnlyAccess", "SecurityAudit", "AWSLambdaBasicExecutionRole", "IAMFullAccess", "AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"}[i]
		}
		return "arn:aws:iam::" + acct + ":policy/" + word(i) + "-access"
	})
	g.newPool("lb", 20, func(i int) string {
		return "arn:aws:elasticloadbalancing:" + region + ":" + acct + ":loadbalancer/app/" + word(i) + "/" + g.hexID("", 16)
	})
	g.newPool("db", 12, func(i int) string { return word(i) + "-db" })
}
