package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	"github.com/cairn-audit/cairn/internal/testenv"
)

// findBrowser returns Debian's chromium (or another Chromium on PATH). A
// missing browser skips the console tests on a workstation but fails them
// under CI, where .ci/run installs it: the console must not go untested
// because a package went missing.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.RequireOrSkip(t, "no Chromium on PATH: the console's end-to-end tests need Debian's chromium package (apt-get install chromium)")
	return ""
}

// artifactDir is where the screenshots go: <repo>/artifacts/console.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "artifacts", "console"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserSession is one headless Chromium tab driven by the test.
type browserSession struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newBrowser(t *testing.T, base string) *browserSession {
	t.Helper()
	exe := findBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // the CI container runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("font-render-hinting", "none"),
		// Tests stay on loopback: no host name resolves, and the browser's
		// own background traffic is off.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browserSession{t: t, ctx: ctx, base: base, shots: artifactDir(t)}
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Every page records what its Content-Security-Policy blocked, so the
	// test can tell that the console works under its own policy.
	b.do("watch for CSP violations", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`,
		})
		return err
	}))
	return b
}

// cspViolations returns what the current page's policy blocked.
func (b *browserSession) cspViolations() []string {
	b.t.Helper()
	return eval[[]string](b, `window.__csp || []`)
}

// do runs steps with a deadline, failing the test with what was running.
func (b *browserSession) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 1500) : ""`))
		b.t.Fatalf("%s: %v (page %s)\n%s", what, err, loc, body)
	}
}

func (b *browserSession) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func eval[T any](b *browserSession, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page.
func (b *browserSession) waitFor(what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil {
			return
		}
		// A click that submits a form navigates while the poll runs; the
		// poll then fails with the old page's context ("navigated or
		// closed", "Cannot find context with specified id", "context was
		// destroyed") and is started again on the new one.
		if ctx.Err() == nil && !strings.Contains(err.Error(), "SyntaxError") {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("main") ? document.querySelector("main").innerText.slice(0, 2000) : ""`))
		b.t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
	}
}

// shot writes full-page screenshots of the current page at a desktop and
// a phone width.
func (b *browserSession) shot(name string) {
	b.t.Helper()
	if v := b.cspViolations(); len(v) > 0 {
		b.t.Errorf("page %s broke its Content-Security-Policy: %v", name, v)
	}
	for _, w := range []int64{1280, 390} {
		h := int64(900)
		if w == 390 {
			h = 844
		}
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h), chromedp.Sleep(300*time.Millisecond))
		var png []byte
		if err == nil {
			// Nothing may be wider than the screen: a phone would scroll
			// the whole page sideways.
			var width int64
			if width, err = chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`)); err == nil && width > w {
				b.t.Errorf("page %s is %d px wide at a %d px viewport", name, width, w)
			}
		}
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		cancel()
		if err != nil {
			b.t.Fatalf("screenshot %s at %d px: %v", name, w, err)
		}
		if err := os.WriteFile(filepath.Join(b.shots, fmt.Sprintf("%s-%d.png", name, w)), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do("restore the viewport", chromedp.EmulateViewport(1280, 900))
}

func (b *browserSession) signIn(keyID, secret string) {
	b.t.Helper()
	b.do("sign in",
		chromedp.Navigate(b.base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("access_key_id")),
		chromedp.SendKeys(chromedp.ID("access_key_id"), keyID),
		chromedp.SendKeys(chromedp.ID("secret_access_key"), secret),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("signout")),
	)
}

// readCredentials reads the admin key cairn wrote into its data dir.
func readCredentials(t *testing.T, dataDir string) (string, string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var id, secret string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	if id == "" || secret == "" {
		t.Fatal("no key in the credentials file")
	}
	return id, secret
}

var (
	createdKeyID     = regexp.MustCompile(`Access key ID:\s+(\S+)`)
	createdKeySecret = regexp.MustCompile(`Secret access key:\s+(\S+)`)
)

// writeImportFile writes n CloudTrail records spread over the last two
// hours, by three users, for `cairn import`.
func writeImportFile(t *testing.T, path string, n int) {
	t.Helper()
	now := time.Now().UTC()
	users := []string{"alice", "bob", "carol"}
	names := []string{"RunInstances", "DescribeInstances", "TerminateInstances", "GetObject", "ConsoleLogin", "AssumeRole"}
	var sb strings.Builder
	for i := range n {
		user := users[i%len(users)]
		name := names[i%len(names)]
		rec := map[string]any{
			"eventVersion": "1.09",
			"userIdentity": map[string]any{"type": "IAMUser", "principalId": "AIDAEXAMPLE" + user, "arn": "arn:aws:iam::000000000000:user/" + user,
				"accountId": "000000000000", "accessKeyId": "AKIAEXAMPLE" + strings.ToUpper(user), "userName": user},
			"eventTime":          now.Add(-time.Duration(i) * 2 * time.Hour / time.Duration(n)).Format(time.RFC3339),
			"eventSource":        "ec2.amazonaws.com",
			"eventName":          name,
			"awsRegion":          "us-east-1",
			"sourceIPAddress":    fmt.Sprintf("203.0.113.%d", i%250+1),
			"userAgent":          "aws-cli/2.17.0",
			"requestParameters":  map[string]any{"instanceId": fmt.Sprintf("i-%017x", i%7)},
			"responseElements":   nil,
			"requestID":          uuid.NewString(),
			"eventID":            uuid.NewString(),
			"readOnly":           strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "Get"),
			"eventType":          "AwsApiCall",
			"managementEvent":    true,
			"recipientAccountId": "000000000000",
			"eventCategory":      "Management",
		}
		if i%9 == 0 {
			rec["errorCode"] = "UnauthorizedOperation"
			rec["errorMessage"] = "You are not authorized to perform this operation."
		}
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(line)
		sb.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleEndToEnd drives the web console in a real headless Chromium
// against a real `cairn serve`: sign-in, the create-trail wizard (with an
// API validation error first), the logging switch, ingest, event history
// with two filters, an event's detail, a CSV download compared with
// LookupEvents, live mode, sign-out, and a read-only key refused a change.
// Every page is screenshotted at 1280 and 390 px into artifacts/console.
func TestConsoleEndToEnd(t *testing.T) {
	findBrowser(t)
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	runCairn(t, work, "buckets", "create", "audit-logs", "--data-dir", dataDir)
	srv := startCairn(t, work, "--data-dir", dataDir)
	adminID, adminSecret := readCredentials(t, dataDir)
	out := runCairn(t, work, "keys", "create", "--name", "auditor", "--role", "read-only", "--data-dir", dataDir)
	roID, roSecret := createdKeyID.FindStringSubmatch(out), createdKeySecret.FindStringSubmatch(out)
	if roID == nil || roSecret == nil {
		t.Fatalf("cannot read the new key from:\n%s", out)
	}
	ct := sdkClient(t, dataDir, srv.URL)
	ctx := context.Background()

	b := newBrowser(t, srv.URL)

	// Sign-in: a wrong secret is refused, then the right one works.
	b.do("open the console", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("access_key_id")))
	b.shot("01-signin")
	b.do("wrong secret",
		chromedp.SendKeys(chromedp.ID("access_key_id"), adminID),
		chromedp.SendKeys(chromedp.ID("secret_access_key"), "not-the-secret"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash.err`)),
	)
	if msg := b.text(".flash.err"); !strings.Contains(msg, "wrong") {
		t.Errorf("failed sign-in says %q", msg)
	}
	b.signIn(adminID, adminSecret)
	cookies := eval[string](b, `document.cookie`)
	if strings.Contains(cookies, "cairn_session") {
		t.Errorf("the session cookie is visible to scripts (not HttpOnly): %q", cookies)
	}

	// Ingest: events from other systems through `cairn import`.
	importFile := filepath.Join(work, "events.jsonl")
	writeImportFile(t, importFile, 240)
	runCairn(t, work, "import", "--data-dir", dataDir, "--endpoint-url", srv.URL, importFile)

	// The create-trail wizard: an invalid name gets the API's own message
	// next to the field; then a valid trail with a new bucket, a prefix,
	// write-only management events, S3 data events and a tag.
	b.do("open the wizard", chromedp.Navigate(srv.URL+"/console/trails/new"), chromedp.WaitVisible(chromedp.ID("name")))
	b.shot("05-trail-wizard")
	b.do("submit an invalid name",
		chromedp.SendKeys(chromedp.ID("name"), "-bad name-"),
		chromedp.Click(chromedp.ID("submit-trail")),
		chromedp.WaitVisible(chromedp.CSS(`.field.invalid .field-err`)),
	)
	if msg := b.text(`.field.invalid .field-err`); !strings.Contains(strings.ToLower(msg), "trail name") && !strings.Contains(strings.ToLower(msg), "name") {
		t.Errorf("the name error does not say what is wrong: %q", msg)
	}
	b.shot("06-trail-wizard-error")
	b.do("fill the wizard",
		chromedp.SetValue(chromedp.ID("name"), "org-trail"),
		chromedp.Click(chromedp.ID("bucket_mode_new")),
		chromedp.SendKeys(chromedp.ID("new_bucket"), "console-created-logs"),
		chromedp.SendKeys(chromedp.ID("prefix"), "cairn"),
		chromedp.Click(chromedp.CSS(`input[name=mgmt_rw][value=WriteOnly]`)),
		chromedp.Click(chromedp.ID("data_s3")),
		chromedp.SendKeys(chromedp.ID("tag_key0"), "team"),
		chromedp.SendKeys(chromedp.ID("tag_value0"), "security"),
		chromedp.Click(chromedp.ID("submit-trail")),
		chromedp.WaitVisible(chromedp.ID("edit-trail")),
	)
	got, err := ct.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("org-trail")})
	if err != nil {
		t.Fatalf("the wizard's trail is not there: %v", err)
	}
	if aws.ToString(got.Trail.S3BucketName) != "console-created-logs" || aws.ToString(got.Trail.S3KeyPrefix) != "cairn" || !aws.ToBool(got.Trail.IsMultiRegionTrail) {
		t.Errorf("the wizard's trail is %+v", got.Trail)
	}
	sels, err := ct.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("org-trail")})
	if err != nil || len(sels.EventSelectors) != 1 || sels.EventSelectors[0].ReadWriteType != types.ReadWriteTypeWriteOnly || len(sels.EventSelectors[0].DataResources) != 1 {
		t.Errorf("the wizard's selectors are %+v (%v)", sels, err)
	}
	tags, err := ct.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{aws.ToString(got.Trail.TrailARN)}})
	if err != nil || len(tags.ResourceTagList) != 1 || len(tags.ResourceTagList[0].TagsList) != 1 {
		t.Errorf("the wizard's tags are %+v (%v)", tags, err)
	}
	isLogging := func() bool {
		st, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("org-trail")})
		if err != nil {
			t.Fatalf("GetTrailStatus: %v", err)
		}
		return aws.ToBool(st.IsLogging)
	}
	if !isLogging() {
		t.Error("the wizard did not start logging")
	}
	b.shot("07-trail-detail")

	// The logging switch, off and on.
	b.do("switch logging off",
		chromedp.Click(chromedp.CSS(`.page-head .switch`)),
		chromedp.WaitVisible(chromedp.CSS(`.page-head .badge.off`)),
	)
	if isLogging() {
		t.Error("the switch did not stop logging")
	}
	b.do("switch logging on",
		chromedp.Click(chromedp.CSS(`.page-head .switch`)),
		chromedp.WaitVisible(chromedp.CSS(`.page-head .badge.on`)),
	)
	if !isLogging() {
		t.Error("the switch did not start logging")
	}

	// Edit: turn log file validation off.
	b.do("edit the trail",
		chromedp.Click(chromedp.ID("edit-trail")),
		chromedp.WaitVisible(chromedp.ID("validation")),
	)
	b.shot("08-trail-edit")
	b.do("save the edit",
		chromedp.Click(chromedp.ID("validation")),
		chromedp.Click(chromedp.ID("submit-trail")),
		chromedp.WaitVisible(chromedp.ID("edit-trail")),
	)
	if got, err := ct.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("org-trail")}); err != nil || aws.ToBool(got.Trail.LogFileValidationEnabled) {
		t.Errorf("the edit did not turn validation off: %+v %v", got, err)
	}

	// A second trail to delete, made through the API.
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("scratch"), S3BucketName: aws.String("audit-logs")}); err != nil {
		t.Fatal(err)
	}
	b.do("open the trail list", chromedp.Navigate(srv.URL+"/console/trails"), chromedp.WaitVisible(chromedp.ID("create-trail")))
	b.shot("04-trails")
	b.do("delete a trail",
		chromedp.Navigate(srv.URL+"/console/trails/us-east-1/scratch/delete"),
		chromedp.WaitVisible(chromedp.ID("confirm")),
	)
	b.shot("09-trail-delete")
	b.do("confirm the deletion",
		chromedp.SendKeys(chromedp.ID("confirm"), "scratch"),
		chromedp.Click(chromedp.ID("confirm-delete")),
		chromedp.WaitVisible(chromedp.CSS(`.flash.ok`)),
	)
	if _, err := ct.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("scratch")}); err == nil {
		t.Error("the deleted trail is still there")
	}

	// Event history filtered by two attributes at once.
	b.do("open the event history", chromedp.Navigate(srv.URL+"/console/events"), chromedp.WaitVisible(chromedp.ID("events-table")))
	b.shot("02-events")
	// The column chooser hides a column and remembers it across pages.
	b.do("hide the source IP column",
		chromedp.Click(chromedp.CSS(`#columns summary`)),
		chromedp.Click(chromedp.CSS(`input[data-col=ip]`)),
		chromedp.Navigate(srv.URL+"/console/events"),
		chromedp.WaitVisible(chromedp.ID("events-table")),
	)
	if shown := eval[bool](b, `getComputedStyle(document.querySelector("#rows tr .c-ip")).display !== "none"`); shown {
		t.Error("the hidden column is shown again after a reload")
	}
	b.do("show it again",
		chromedp.Click(chromedp.CSS(`#columns summary`)),
		chromedp.Click(chromedp.CSS(`input[data-col=ip]`)),
		chromedp.KeyEvent(kb.Escape),
	)
	if hidden := eval[bool](b, `getComputedStyle(document.querySelector("#rows tr .c-ip")).display === "none"`); hidden {
		t.Error("the column chooser does not show a column again")
	}
	firstPage := eval[string](b, `document.querySelector("#rows tr").dataset.id`)
	b.do("page to older events",
		chromedp.Click(chromedp.ID("next-page")),
		chromedp.WaitVisible(chromedp.CSS(`a[rel=prev]`)),
	)
	if second := eval[string](b, `document.querySelector("#rows tr").dataset.id`); second == firstPage {
		t.Error("the second page starts with the first page's event")
	}
	b.do("page back to newer events",
		chromedp.Click(chromedp.CSS(`a[rel=prev]`)),
		chromedp.WaitVisible(chromedp.ID("next-page")),
	)
	if again := eval[string](b, `document.querySelector("#rows tr").dataset.id`); again != firstPage {
		t.Error("paging back does not return to the first page")
	}
	b.do("filter by user",
		chromedp.SetValue(chromedp.ID("k0"), "Username"),
		chromedp.SendKeys(chromedp.ID("v0"), "alice"),
		chromedp.Click(chromedp.ID("apply")),
		chromedp.WaitVisible(chromedp.ID("v1")),
	)
	b.do("and by event name",
		chromedp.SetValue(chromedp.ID("k1"), "EventName"),
		chromedp.SendKeys(chromedp.ID("v1"), "RunInstances"),
		chromedp.Click(chromedp.ID("apply")),
		chromedp.WaitVisible(chromedp.ID("v2")),
	)
	lookup := func() []types.Event {
		var all []types.Event
		in := &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
			{AttributeKey: types.LookupAttributeKeyUsername, AttributeValue: aws.String("alice")},
			{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("RunInstances")},
		}}
		for {
			out, err := ct.LookupEvents(ctx, in)
			if err != nil {
				t.Fatalf("LookupEvents: %v", err)
			}
			all = append(all, out.Events...)
			if out.NextToken == nil {
				return all
			}
			in.NextToken = out.NextToken
		}
	}
	want := lookup()
	if len(want) != 40 { // every sixth record is RunInstances, every third alice's: 240/6 = 40, all alice's
		t.Errorf("LookupEvents found %d of alice's RunInstances, want 40", len(want))
	}
	rows := eval[[]string](b, `Array.from(document.querySelectorAll("#rows tr")).map(r => r.querySelector(".c-user").textContent + "/" + r.querySelector(".c-name").textContent)`)
	if len(rows) != min(len(want), 50) {
		t.Errorf("the filtered page shows %d rows, want %d", len(rows), min(len(want), 50))
	}
	for _, r := range rows {
		if r != "alice/RunInstances" {
			t.Errorf("a filtered row is %q", r)
			break
		}
	}
	b.shot("03-events-filtered")

	// Download the filtered result as CSV and compare it with LookupEvents.
	dl := t.TempDir()
	b.do("download CSV",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl,
			})
			return err
		}),
		chromedp.Click(chromedp.ID("dl-csv")),
	)
	csvPath := waitDownload(t, dl, ".csv")
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatalf("the download is not CSV: %v", err)
	}
	if len(recs) == 0 || recs[0][0] != "Event ID" {
		t.Fatalf("the CSV has no header: %v", recs)
	}
	var csvIDs, wantIDs []string
	for _, r := range recs[1:] {
		csvIDs = append(csvIDs, r[0])
		if r[2] != "alice" || r[3] != "RunInstances" {
			t.Errorf("CSV row %v does not match the filters", r)
		}
	}
	for _, e := range want {
		wantIDs = append(wantIDs, aws.ToString(e.EventId))
	}
	if !slices.Equal(csvIDs, wantIDs) {
		t.Errorf("the CSV's %d event IDs differ from LookupEvents' %d (order included)", len(csvIDs), len(wantIDs))
	}

	// An event's detail: its full record and resources.
	b.do("open an event",
		chromedp.Click(chromedp.CSS(`#rows tr:first-child .c-name a`)),
		chromedp.WaitVisible(chromedp.ID("record")),
	)
	record := b.text("#record")
	if !strings.Contains(record, `"eventName": "RunInstances"`) || !strings.Contains(record, `"userName": "alice"`) {
		t.Errorf("the detail's record is not the event:\n%s", record)
	}
	if res := b.text("#res-h"); !strings.Contains(res, "(1)") {
		t.Errorf("the detail lists resources as %q, want one instance", res)
	}
	b.shot("10-event-detail")

	// The console's own changes are in the history as made from the console.
	b.do("find the console's StopLogging",
		chromedp.Navigate(srv.URL+"/console/events?k=EventName&v=StopLogging"),
		chromedp.WaitVisible(chromedp.CSS(`#rows tr .c-name a`)),
		chromedp.Click(chromedp.CSS(`#rows tr .c-name a`)),
		chromedp.WaitVisible(chromedp.ID("record")),
	)
	if record := b.text("#record"); !strings.Contains(record, `"sessionCredentialFromConsole": "true"`) || !strings.Contains(record, `"eventType": "AwsApiCall"`) {
		t.Errorf("the console's StopLogging is not recorded as a console call:\n%s", record)
	}

	// Live mode shows a new event without a reload.
	b.do("start live mode", chromedp.Navigate(srv.URL+"/console/events?range=1h&live=1"), chromedp.WaitVisible(chromedp.CSS(`#live-toggle[aria-pressed=true]`)))
	b.waitFor("live mode to start polling", `document.getElementById("live-status").textContent.includes("Watching")`)
	if _, err := ct.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String("org-trail")}); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the new event to appear", `(() => { const r = document.querySelector("#rows tr"); return r && r.querySelector(".c-name").textContent === "StopLogging" && r.classList.contains("new"); })()`)
	b.shot("11-events-live")

	b.do("open the dashboard", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(`#chart .uplot`)))
	if n := eval[int](b, `parseInt(document.getElementById("events-3h").textContent)`); n < 240 {
		t.Errorf("the dashboard counts %d events in the last 3 hours, want the 240 imported and more", n)
	}
	if n := eval[int](b, `document.querySelectorAll("#lag-h + table tbody tr").length`); n < 1 {
		t.Errorf("the dashboard shows %d journal consumers", n)
	}
	b.shot("00-dashboard")
	// The policy is enforced: an injected inline script does not run.
	eval[bool](b, `(() => { const s = document.createElement("script"); s.textContent = "window.__injected = true"; document.head.appendChild(s); return true; })()`)
	b.waitFor("the CSP to report the injected script", `window.__csp.length > 0`)
	if eval[bool](b, `window.__injected === true`) {
		t.Error("an inline script ran despite the Content-Security-Policy")
	}

	// Sign out: the session is gone.
	b.do("sign out",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("access_key_id")),
		chromedp.Navigate(srv.URL+"/console/trails"),
		chromedp.WaitVisible(chromedp.ID("access_key_id")),
	)

	// A read-only key sees everything and changes nothing, even when it
	// forces the disabled switch.
	b.signIn(roID[1], roSecret[1])
	b.do("open the trail as read-only", chromedp.Navigate(srv.URL+"/console/trails/us-east-1/org-trail"), chromedp.WaitVisible(chromedp.CSS(`.page-head .switch[disabled]`)))
	if n := eval[int](b, `document.querySelectorAll("#edit-trail, #delete-trail").length`); n != 0 {
		t.Errorf("a read-only key is offered %d change buttons", n)
	}
	b.shot("12-trail-readonly")
	b.do("force the switch",
		chromedp.RemoveAttribute(chromedp.CSS(`.page-head .switch`), "disabled"),
		chromedp.Click(chromedp.CSS(`.page-head .switch`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash.err`)),
	)
	if msg := b.text(".flash.err"); !strings.Contains(msg, "read-only") {
		t.Errorf("the refused change says %q", msg)
	}
	if isLogging() {
		t.Error("a read-only key started logging")
	}

	// Sign-ins are in the history, the failed one too, without the secret.
	logins, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("ConsoleLogin")},
		{AttributeKey: types.LookupAttributeKeyEventSource, AttributeValue: aws.String("signin.amazonaws.com")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, e := range logins.Events {
		raw := aws.ToString(e.CloudTrailEvent)
		if strings.Contains(raw, adminSecret) || strings.Contains(raw, "not-the-secret") {
			t.Errorf("a ConsoleLogin record contains a secret: %s", raw)
		}
		var rec struct {
			EventType string            `json:"eventType"`
			Resp      map[string]string `json:"responseElements"`
		}
		_ = json.Unmarshal([]byte(raw), &rec)
		outcomes = append(outcomes, rec.EventType+":"+rec.Resp["ConsoleLogin"])
	}
	slices.Sort(outcomes)
	if want := []string{"AwsConsoleSignIn:Failure", "AwsConsoleSignIn:Success", "AwsConsoleSignIn:Success"}; !slices.Equal(outcomes, want) {
		t.Errorf("ConsoleLogin records %v, want %v", outcomes, want)
	}
}

// waitDownload waits for a finished file with the suffix in dir.
func waitDownload(t *testing.T, dir, suffix string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), suffix) {
				return filepath.Join(dir, e.Name())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s download in %s within 15s", suffix, dir)
	return ""
}

// requireLakeOperation skips (fails under CI) when the server has no such
// Lake operation: the Lake's server side is built on other branches, and
// this test runs once they are merged. Any other error fails the test.
func requireLakeOperation(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "UnknownOperationException" {
		testenv.RequireOrSkip(t, "this cairn has no CloudTrail Lake operation %s (%v): the console's Lake test needs the Lake's server side", op, err)
	}
	t.Fatalf("%s: %v", op, err)
}

// lakeQuery runs a statement through the SDK and returns its ID and rows,
// every page, each row's values in column order.
func lakeQuery(t *testing.T, ct *cloudtrail.Client, statement string) (string, [][]string) {
	t.Helper()
	ctx := context.Background()
	started, err := ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(statement)})
	requireLakeOperation(t, "StartQuery", err)
	id := aws.ToString(started.QueryId)
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: &id})
		requireLakeOperation(t, "DescribeQuery", err)
		if d.QueryStatus == types.QueryStatusFinished {
			break
		}
		if d.QueryStatus != types.QueryStatusQueued && d.QueryStatus != types.QueryStatusRunning {
			t.Fatalf("query %q ended %s: %s", statement, d.QueryStatus, aws.ToString(d.ErrorMessage))
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %q still %s after 60s", statement, d.QueryStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var rows [][]string
	in := &cloudtrail.GetQueryResultsInput{QueryId: &id}
	for {
		out, err := ct.GetQueryResults(ctx, in)
		requireLakeOperation(t, "GetQueryResults", err)
		for _, r := range out.QueryResultRows {
			var row []string
			for _, cell := range r {
				for _, v := range cell {
					row = append(row, v)
				}
			}
			rows = append(rows, row)
		}
		if out.NextToken == nil {
			return id, rows
		}
		in.NextToken = out.NextToken
	}
}

// TestConsoleLake drives the console's Lake pages in a real headless
// Chromium against a real `cairn serve` with an event data store holding
// imported events: a sample query from the library run from the editor,
// a query's results paged forwards and back, their CSV download compared
// with GetQueryResults and found recorded in the history, the query
// history, and a dashboard refreshed and drawn (a bar chart and a table).
// Every page is screenshotted at 1280 and 390 px into artifacts/console.
func TestConsoleLake(t *testing.T) {
	findBrowser(t)
	work := t.TempDir()
	dataDir := filepath.Join(work, "cairn-data")
	srv := startCairn(t, work, "--data-dir", dataDir)
	adminID, adminSecret := readCredentials(t, dataDir)
	ct := sdkClient(t, dataDir, srv.URL)
	ctx := context.Background()

	_, err := ct.ListEventDataStores(ctx, &cloudtrail.ListEventDataStoresInput{})
	requireLakeOperation(t, "ListEventDataStores", err)
	_, err = ct.SearchSampleQueries(ctx, &cloudtrail.SearchSampleQueriesInput{SearchPhrase: aws.String("events")})
	requireLakeOperation(t, "SearchSampleQueries", err)
	_, err = ct.ListDashboards(ctx, &cloudtrail.ListDashboardsInput{})
	requireLakeOperation(t, "ListDashboards", err)

	// A store of management events, then 240 events into it.
	created, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("console-lake"), MultiRegionEnabled: aws.Bool(true)})
	requireLakeOperation(t, "CreateEventDataStore", err)
	storeID := aws.ToString(created.EventDataStoreArn)
	storeID = storeID[strings.LastIndexByte(storeID, '/')+1:]
	importFile := filepath.Join(work, "events.jsonl")
	writeImportFile(t, importFile, 240)
	runCairn(t, work, "import", "--data-dir", dataDir, "--endpoint-url", srv.URL, importFile)
	ec2 := "FROM " + storeID + " WHERE eventsource = 'ec2.amazonaws.com'"
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, rows := lakeQuery(t, ct, "SELECT count(*) "+ec2)
		if len(rows) == 1 && len(rows[0]) == 1 && rows[0][0] == "240" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store holds %v of the 240 imported events after 60s", rows)
		}
	}

	b := newBrowser(t, srv.URL)
	b.signIn(adminID, adminSecret)

	// The Lake page: the store is chosen, the library lists samples.
	b.do("open the Lake page", chromedp.Navigate(srv.URL+"/console/lake"), chromedp.WaitVisible(chromedp.ID("statement")))
	if got := b.text("#store-id"); got != storeID {
		t.Errorf("the page chose store %q, want %q", got, storeID)
	}
	if n := eval[int](b, `document.querySelectorAll("#samples a.sample").length`); n == 0 {
		t.Fatal("the sample library is empty")
	}
	b.shot("20-lake")

	// A sample found in the library fills the editor and runs on the store.
	b.do("search the library",
		// A sample the library's table runs unchanged ("Top error messages",
		// for one, is published with a syntax error).
		chromedp.SetValue(chromedp.ID("search"), "console logins without MFA"),
		chromedp.Click(chromedp.ID("search-samples")),
	)
	b.waitFor("the search's results", `location.search.includes("search=console") && !!document.querySelector("#samples a.sample")`)
	if name := b.text("#samples a.sample"); name != "Console logins without MFA" {
		t.Errorf("the library's best match for \"console logins without MFA\" is %q", name)
	}
	b.do("choose a sample", chromedp.Click(chromedp.CSS(`#samples a.sample`)), chromedp.WaitVisible(chromedp.CSS(`#samples a.sample[aria-current]`)))
	sample := eval[string](b, `document.getElementById("statement").value`)
	if sample == "" {
		t.Fatal("the chosen sample did not fill the editor")
	}
	b.shot("21-lake-sample")
	b.do("run the sample", chromedp.Click(chromedp.ID("run-query")), chromedp.WaitVisible(chromedp.ID("query-stats")))
	b.waitFor("the sample query to end", `!!document.querySelector("#query-body") && !document.querySelector("#query-body[hx-trigger]")`)
	if status := b.text("#query-body h2 .badge"); status != "Finished" {
		t.Errorf("the sample query %q ended %q: %s", sample, status, eval[string](b, `(document.getElementById("query-error") || {}).textContent || ""`))
	}
	if stmt := eval[string](b, `document.getElementById("query-statement").textContent`); strings.Contains(stmt, "$EDS_ID") || !strings.Contains(stmt, storeID) {
		t.Errorf("the sample ran as %q: $EDS_ID must be the store's ID", stmt)
	}
	b.shot("22-lake-sample-query")

	// A query of 240 rows: five pages of 50.
	b.do("run a query of the imported events",
		chromedp.Navigate(srv.URL+"/console/lake"),
		chromedp.WaitVisible(chromedp.ID("statement")),
		chromedp.SetValue(chromedp.ID("statement"), "SELECT eventid, eventname, useridentity.username AS username FROM $EDS_ID WHERE eventsource = 'ec2.amazonaws.com' ORDER BY eventid"),
		chromedp.Click(chromedp.ID("run-query")),
		chromedp.WaitVisible(chromedp.ID("query-stats")),
	)
	b.waitFor("the results", `!!document.querySelector("#results table")`)
	queryID := eval[string](b, `location.pathname.split("/").pop()`)
	if got := b.text("#results-count"); got != "Rows 1–50 of 240" {
		t.Errorf("the results say %q", got)
	}
	if cols := eval[[]string](b, `Array.from(document.querySelectorAll("#results th")).map(th => th.textContent)`); !slices.Equal(cols, []string{"eventid", "eventname", "username"}) {
		t.Errorf("the result columns are %v", cols)
	}
	firstRow := `document.querySelector("#results tbody tr td").textContent`
	page1 := eval[string](b, firstRow)
	b.shot("23-lake-results")
	b.do("next page", chromedp.Click(chromedp.ID("next-page")), chromedp.WaitVisible(chromedp.ID("prev-page")))
	if page2 := eval[string](b, firstRow); page2 <= page1 || b.text("#results-count") != "Rows 51–100 of 240" {
		t.Errorf("page 2 starts with %q (%s) after page 1's %q", page2, b.text("#results-count"), page1)
	}
	b.shot("24-lake-results-page2")
	b.do("previous page", chromedp.Click(chromedp.ID("prev-page")))
	b.waitFor("page 1 again", `!document.getElementById("prev-page") && !!document.getElementById("next-page")`)
	if again := eval[string](b, firstRow); again != page1 {
		t.Errorf("Previous goes to a page starting with %q, want %q", again, page1)
	}

	// The CSV download holds every row, as GetQueryResults gives them.
	dl := t.TempDir()
	b.do("download CSV",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl,
			})
			return err
		}),
		chromedp.Click(chromedp.ID("dl-csv")),
	)
	f, err := os.Open(waitDownload(t, dl, ".csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatalf("the download is not CSV: %v", err)
	}
	var want [][]string
	in := &cloudtrail.GetQueryResultsInput{QueryId: &queryID}
	for {
		out, err := ct.GetQueryResults(ctx, in)
		requireLakeOperation(t, "GetQueryResults", err)
		for _, r := range out.QueryResultRows {
			want = append(want, []string{r[0]["eventid"], r[1]["eventname"], r[2]["username"]})
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(recs) != 241 || !slices.Equal(recs[0], []string{"eventid", "eventname", "username"}) {
		t.Fatalf("the CSV has %d lines, header %v; want a header and 240 rows", len(recs), recs[0])
	}
	for i, r := range recs[1:] {
		if !slices.Equal(r, want[i]) {
			t.Fatalf("CSV row %d is %v, GetQueryResults says %v", i+1, r, want[i])
		}
	}
	waitForHistory(t, ct, "DownloadQueryResults", 1)

	// The query history lists both queries, newest first.
	b.do("open the query history", chromedp.Navigate(srv.URL+"/console/lake"), chromedp.WaitVisible(chromedp.ID("history")))
	if ids := eval[[]string](b, `Array.from(document.querySelectorAll("#history tbody a")).map(a => a.textContent)`); !slices.Contains(ids, queryID) {
		t.Errorf("the query history %v lacks %s", ids, queryID)
	}

	// A dashboard with a bar chart and a table, refreshed from the console.
	_, err = ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{Name: aws.String("console-board"), Widgets: []types.RequestWidget{
		{QueryStatement: aws.String("SELECT eventname, count(*) AS n " + ec2 + " GROUP BY eventname ORDER BY n DESC"),
			ViewProperties: map[string]string{"View": "BarChart", "Title": "Events by name"}},
		{QueryStatement: aws.String("SELECT useridentity.username AS username, count(*) AS n " + ec2 + " GROUP BY 1 ORDER BY 1"),
			ViewProperties: map[string]string{"View": "Table", "Title": "Events by user"}},
	}})
	requireLakeOperation(t, "CreateDashboard", err)
	b.do("open the dashboards", chromedp.Navigate(srv.URL+"/console/lake/dashboards"), chromedp.WaitVisible(chromedp.ID("dashboards")))
	b.shot("25-lake-dashboards")
	b.do("open the dashboard",
		chromedp.Click(chromedp.CSS(`#dashboards a`)),
		chromedp.WaitVisible(chromedp.ID("refresh-dashboard")),
		chromedp.Click(chromedp.ID("refresh-dashboard")),
		chromedp.WaitVisible(chromedp.CSS(`.flash.ok`)),
	)
	b.waitFor("the widgets to be drawn", `!!document.querySelector("#w1-chart .uplot") && document.querySelectorAll("#widgets table tbody tr").length > 0`)
	if users := eval[[]string](b, `Array.from(document.querySelectorAll("#widgets table tbody tr")).map(r => Array.from(r.cells).map(c => c.textContent).join(" "))`); !slices.Equal(users, []string{"alice 80", "bob 80", "carol 80"}) {
		t.Errorf("the table widget shows %v", users)
	}
	b.shot("26-lake-dashboard")
}
