package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"golang.org/x/term"

	"github.com/cairn-audit/cairn/internal/apiclient"
	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/event"
)

// remoteFlags are the flags of the commands that talk to a running Cairn
// over its API (lookup, import, bench), named like the AWS CLI's so that
// habits carry over.
type remoteFlags struct {
	endpoint, credFile, profile, region, dataDir string
	fs                                           *flag.FlagSet
}

func firstEnv(def string, names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return def
}

func addRemoteFlags(fs *flag.FlagSet) *remoteFlags {
	f := &remoteFlags{fs: fs}
	fs.StringVar(&f.endpoint, "endpoint-url", firstEnv("http://127.0.0.1:4747", "CAIRN_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
		"Cairn's URL (env CAIRN_ENDPOINT_URL, AWS_ENDPOINT_URL)")
	fs.StringVar(&f.dataDir, "data-dir", firstEnv(datadir.Default, datadir.EnvVar),
		"the server's data directory, whose credentials file holds the first admin key (env CAIRN_DATA_DIR)")
	fs.StringVar(&f.credFile, "credentials-file", "", "an AWS shared-credentials file to read --profile from (default: <data-dir>/credentials, else the AWS SDK's usual files and AWS_* variables)")
	fs.StringVar(&f.profile, "profile", firstEnv("cairn", "AWS_PROFILE"), "credentials profile (env AWS_PROFILE)")
	fs.StringVar(&f.region, "region", firstEnv("us-east-1", "AWS_REGION", "AWS_DEFAULT_REGION"), "region to sign for; event history is per region (env AWS_REGION)")
	return f
}

func (f *remoteFlags) isSet(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// credentials finds the key to sign with, in this order: --credentials-file;
// the data directory's credentials file when --data-dir (or CAIRN_DATA_DIR)
// was given; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; ./cairn-data/credentials
// when it exists; the profile in the AWS SDK's usual files. The profile is
// always explicit, so the SDK never falls back to the EC2 metadata
// service (which would mean network traffic off this machine).
func (f *remoteFlags) credentials(ctx context.Context) (aws.Credentials, error) {
	file := f.credFile
	dataDirGiven := f.isSet("data-dir") || os.Getenv("CAIRN_DATA_DIR") != ""
	envKeys := os.Getenv("AWS_ACCESS_KEY_ID") != "" && os.Getenv("AWS_SECRET_ACCESS_KEY") != ""
	if file == "" && (dataDirGiven || !envKeys) {
		cand := datadir.Path(f.dataDir, datadir.Credentials)
		if _, err := os.Stat(cand); err == nil {
			file = cand
		} else if dataDirGiven {
			return aws.Credentials{}, fmt.Errorf("no credentials file in data directory %s: %w", f.dataDir, err)
		}
	}
	if file == "" && envKeys {
		return aws.Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
			SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "environment"}, nil
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(f.region),
		config.WithSharedConfigProfile(f.profile),
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	}
	if file != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{file}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("load credentials (profile %s%s): %w; point --data-dir at the server's data directory or pass --credentials-file", f.profile, fileNote(file), err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("load credentials (profile %s%s): %w", f.profile, fileNote(file), err)
	}
	return creds, nil
}

func fileNote(file string) string {
	if file == "" {
		return ""
	}
	return " in " + file
}

// cloudTrail is the real SDK client for the endpoint, without retries (a
// retried call would hide what the server did; benchmarks must see it).
func (f *remoteFlags) cloudTrail(ctx context.Context, hc *http.Client) (*cloudtrail.Client, aws.Credentials, error) {
	creds, err := f.credentials(ctx)
	if err != nil {
		return nil, creds, err
	}
	if hc == nil {
		hc = &http.Client{Transport: apiclient.NewTransport(4)}
	}
	return cloudtrail.New(cloudtrail.Options{
		Region:       f.region,
		BaseEndpoint: aws.String(f.endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
		HTTPClient:   awsproto.SDKHTTPClient{Client: hc},
		Retryer:      aws.NopRetryer{},
	}), creds, nil
}

const lookupUsage = `usage: cairn lookup [flags]

Shows the event history (LookupEvents) of one region, newest first.

  cairn lookup --attr EventName=ConsoleLogin --start 7d
  cairn lookup --attr Username=alice --attr EventSource=iam.amazonaws.com --max 0 --output json
  cairn lookup -f                         # follow new events, oldest first, until Ctrl-C

--attr may be repeated; Cairn ANDs the attributes (CloudTrail itself takes
only one). Keys: EventId, EventName, ReadOnly, Username, ResourceType,
ResourceName, EventSource, AccessKeyId. --start/--end take RFC 3339 times,
dates (2024-05-01) or ages before now: 90s, 30m, 1h, 7d, 2w.
`

// runLookup is `cairn lookup`.
func runLookup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return lookupMain(ctx, args, stdout, stderr, time.Now)
}

type attrList []types.LookupAttribute

func (a *attrList) String() string { return "" }

func (a *attrList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("%q is not Key=Value", s)
	}
	*a = append(*a, types.LookupAttribute{AttributeKey: types.LookupAttributeKey(k), AttributeValue: aws.String(v)})
	return nil
}

func lookupMain(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("cairn lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var attrs attrList
	fs.Var(&attrs, "attr", "lookup attribute Key=Value (repeatable; ANDed)")
	start := fs.String("start", "", "oldest event time: RFC 3339, a date, or an age (30m, 1h, 7d)")
	end := fs.String("end", "", "newest event time, same forms as --start")
	maxN := fs.Int("max", 50, "at most this many events (0 = all, following NextToken)")
	output := fs.String("output", "table", "table or json (one CloudTrail record per line)")
	follow := fs.Bool("follow", false, "keep polling for new events until interrupted")
	fs.BoolVar(follow, "f", false, "short for --follow")
	interval := fs.Duration("interval", 2*time.Second, "how often --follow polls")
	rf := addRemoteFlags(fs)
	usageWithFlags(fs, lookupUsage, stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("--output %q: want table or json", *output)
	}
	if *maxN < 0 {
		return fmt.Errorf("--max %d: want 0 (all) or more", *maxN)
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval %s: want a positive duration", *interval)
	}
	in := &cloudtrail.LookupEventsInput{LookupAttributes: attrs}
	t0 := now()
	if *start != "" {
		t, err := parseWhen(*start, t0)
		if err != nil {
			return fmt.Errorf("--start: %w", err)
		}
		in.StartTime = &t
	}
	if *end != "" {
		t, err := parseWhen(*end, t0)
		if err != nil {
			return fmt.Errorf("--end: %w", err)
		}
		in.EndTime = &t
	}
	ct, _, err := rf.cloudTrail(ctx, nil)
	if err != nil {
		return err
	}
	prov := &provenances{}
	ct = cloudtrail.New(ct.Options(), func(o *cloudtrail.Options) { o.HTTPClient = &provenanceRecorder{next: o.HTTPClient, into: prov} })
	width := terminalWidth(stdout)
	events, err := lookupAll(ctx, ct, in, *maxN)
	if err != nil {
		return err
	}
	if !*follow {
		return writeEvents(stdout, *output, events, width, true, prov)
	}

	// Follow: show what exists oldest first, then new events as they come.
	reverse(events)
	tw := &tableWriter{w: stdout, width: width, prov: prov}
	emit := func(evs []types.Event, header bool) error {
		if *output == "json" {
			return writeJSON(stdout, evs, prov)
		}
		return tw.write(evs, header)
	}
	if err := emit(events, true); err != nil {
		return err
	}
	seen := map[string]time.Time{}
	var newest time.Time
	note := func(evs []types.Event) {
		for _, e := range evs {
			t := aws.ToTime(e.EventTime)
			seen[aws.ToString(e.EventId)] = t
			if t.After(newest) {
				newest = t
			}
		}
	}
	note(events)
	if newest.IsZero() {
		newest = t0.Add(-time.Minute)
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		q := *in
		since := newest
		q.StartTime, q.EndTime, q.NextToken = &since, nil, nil
		got, err := lookupAll(ctx, ct, &q, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(stderr, "cairn lookup: %v (retrying)\n", err)
			continue
		}
		var fresh []types.Event
		for _, e := range got {
			if _, dup := seen[aws.ToString(e.EventId)]; !dup {
				fresh = append(fresh, e)
			}
		}
		sort.SliceStable(fresh, func(i, j int) bool { return aws.ToTime(fresh[i].EventTime).Before(aws.ToTime(fresh[j].EventTime)) })
		note(fresh)
		// Only events at or after the newest second can come back; forget older IDs.
		for id, t := range seen {
			if t.Before(newest) {
				delete(seen, id)
			}
		}
		if len(fresh) > 0 {
			if err := emit(fresh, false); err != nil {
				return err
			}
		}
	}
}

// lookupAll pages through LookupEvents until max events (0 = all).
func lookupAll(ctx context.Context, ct *cloudtrail.Client, in *cloudtrail.LookupEventsInput, max int) ([]types.Event, error) {
	var out []types.Event
	p := cloudtrail.NewLookupEventsPaginator(ct, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("LookupEvents: %w", err)
		}
		out = append(out, page.Events...)
		if max > 0 && len(out) >= max {
			return out[:max], nil
		}
	}
	return out, nil
}

func reverse(evs []types.Event) {
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
}

// The times LookupEvents can carry between the SDK and the server: the
// SDK converts timestamps through int64 nanoseconds (UnixNano), so a time
// outside these wraps around (year 9999 became 1816). No event can lie
// outside them (the server refuses event times before 2013 or in the
// future), so parseWhen clamps to them: `--end 9999-12-31` means "no upper
// bound", as its writer meant.
var (
	lookupMinTime = time.Unix(0, math.MinInt64).UTC().Truncate(time.Second).Add(time.Second)
	lookupMaxTime = time.Unix(0, math.MaxInt64).UTC().Truncate(time.Second)
)

// parseWhen reads a time: RFC 3339, a date (midnight UTC), or an age before
// now written as a Go duration or with d (days) and w (weeks) units. The
// result is clamped to [lookupMinTime, lookupMaxTime].
func parseWhen(s string, now time.Time) (time.Time, error) {
	clamp := func(t time.Time) time.Time {
		if t.Before(lookupMinTime) {
			return lookupMinTime
		}
		if t.After(lookupMaxTime) {
			return lookupMaxTime
		}
		return t
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return clamp(t), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return clamp(t), nil
	}
	if d, err := parseAge(s); err == nil {
		if now.Sub(lookupMinTime) <= d {
			return lookupMinTime, nil
		}
		return clamp(now.Add(-d)), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2024-05-01T12:00:00Z), a date (2024-05-01) or an age (90s, 30m, 1h, 7d, 2w)", s)
}

// parseAge is time.ParseDuration plus whole days (d) and weeks (w), which
// are how people say how far back to look. An age longer than a Duration
// holds (292 years) is the longest one: it reaches back past every event.
func parseAge(s string) (time.Duration, error) {
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.ParseFloat(s[:n-1], 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("bad age %q", s)
		}
		unit := 24 * time.Hour
		if s[n-1] == 'w' {
			unit *= 7
		}
		if f := v * float64(unit); f < float64(math.MaxInt64) {
			return time.Duration(f), nil
		}
		return time.Duration(math.MaxInt64), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad age %q", s)
	}
	return d, nil
}

// terminalWidth is the width to fit the table in: the terminal's, else
// $COLUMNS, else 0 (no limit: a pipe gets whole lines).
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

func writeEvents(w io.Writer, format string, evs []types.Event, width int, header bool, prov *provenances) error {
	if format == "json" {
		return writeJSON(w, evs, prov)
	}
	if len(evs) == 0 {
		_, err := fmt.Fprintln(w, "No events.")
		return err
	}
	return (&tableWriter{w: w, width: width, prov: prov}).write(evs, header)
}

// writeJSON writes each event's CloudTrail record, one per line. An
// imported event's line gets one more member at the end,
// "cairnProvenance", naming its import; the record's own members are as
// imported.
func writeJSON(w io.Writer, evs []types.Event, prov *provenances) error {
	for _, e := range evs {
		rec := aws.ToString(e.CloudTrailEvent)
		if !json.Valid([]byte(rec)) {
			return fmt.Errorf("event %s: CloudTrailEvent is not JSON", aws.ToString(e.EventId))
		}
		if p := prov.of(e); p != nil {
			rec = withProvenance(rec, p)
		}
		if _, err := io.WriteString(w, rec+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// tableWriter prints events as aligned columns. Widths are fixed by the
// first batch, so that followed events line up with the ones above.
type tableWriter struct {
	w      io.Writer
	width  int // 0: no limit
	widths []int
	prov   *provenances
}

var tableHeader = []string{"TIME", "EVENT NAME", "USER", "SOURCE", "RESOURCES", "EVENT ID"}

// eventRow is one table row. An imported event's ID is marked
// "[imported]"; `--output json` says which import.
func eventRow(e types.Event, prov *provenances) []string {
	var res []string
	for _, r := range e.Resources {
		res = append(res, aws.ToString(r.ResourceName))
	}
	user := aws.ToString(e.Username)
	if user == "" {
		user = "-"
	}
	resources := strings.Join(res, ",")
	if resources == "" {
		resources = "-"
	}
	id := aws.ToString(e.EventId)
	if prov.of(e) != nil {
		id += " [imported]"
	}
	return []string{
		eventTime(e).Format("2006-01-02 15:04:05"),
		aws.ToString(e.EventName),
		user,
		strings.TrimSuffix(aws.ToString(e.EventSource), ".amazonaws.com"),
		resources,
		id,
	}
}

// eventTime is the event's time as its record states it. The SDK's
// EventTime went through int64 nanoseconds and wraps for times outside
// 1678-2262, which records stored before Cairn refused such times may
// carry; the record's own eventTime does not. The SDK's value is the
// fallback for a record without a readable one.
func eventTime(e types.Event) time.Time {
	var rec struct {
		EventTime string `json:"eventTime"`
	}
	if json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &rec) == nil {
		if t, err := event.ParseTime(rec.EventTime); err == nil {
			return t
		}
	}
	return aws.ToTime(e.EventTime).UTC()
}

// shrinkOrder is which columns give up width first when the table is wider
// than the terminal: resources, then user, then event name. Time, source
// and event ID keep theirs (an ID cut short is useless).
var shrinkOrder = []struct{ col, min int }{{4, 12}, {2, 12}, {1, 16}, {3, 10}}

func (t *tableWriter) write(evs []types.Event, header bool) error {
	rows := make([][]string, 0, len(evs)+1)
	if header {
		rows = append(rows, tableHeader)
	}
	for _, e := range evs {
		rows = append(rows, eventRow(e, t.prov))
	}
	if t.widths == nil {
		t.widths = make([]int, len(tableHeader))
		for i, h := range tableHeader {
			t.widths[i] = len(h)
		}
		for _, r := range rows {
			for i, c := range r {
				t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
			}
		}
		if t.width > 0 {
			total := func() int {
				n := 2 * (len(t.widths) - 1)
				for _, w := range t.widths {
					n += w
				}
				return n
			}
			for _, s := range shrinkOrder {
				if over := total() - t.width; over > 0 && t.widths[s.col] > s.min {
					t.widths[s.col] = max(s.min, t.widths[s.col]-over)
				}
			}
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for i, c := range r {
			c = clip(c, t.widths[i])
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", t.widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(t.w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// clip shortens s to n runes, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
