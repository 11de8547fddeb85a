package server_test

import (
	"context"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/journal/journaltest"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
	"github.com/cairn-audit/cairn/internal/tlstest"
)

// browser is an HTTP client that keeps cookies like a browser and does
// not follow redirects, so that tests see them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfInput.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values, header http.Header) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// downloadURL is the event history's download link for format and the
// extra query, as the events page shows it.
func (b *browser) downloadURL(format, query string) string {
	b.t.Helper()
	_, page := b.get("/console/events?" + query)
	m := regexp.MustCompile(`href="(/console/events/download\?format=` + format + `[^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("the events page has no %s download link", format)
	}
	return html.UnescapeString(m[1])
}

// signIn signs in through the form and returns the sign-in response.
func (b *browser) signIn(keyID, secret string) *http.Response {
	b.t.Helper()
	b.get("/console/signin")
	resp, _ := b.post("/console/signin", url.Values{"csrf": {b.csrf}, "access_key_id": {keyID}, "secret_access_key": {secret}}, nil)
	if resp.StatusCode == http.StatusSeeOther {
		b.get("/console/") // picks up the session's CSRF token
	}
	return resp
}

// consoleRecords returns the journal's records with this eventName.
func consoleRecords(t *testing.T, h *servertest.Harness, name string) []*event.Record {
	t.Helper()
	var out []*event.Record
	for _, r := range records(t, h) {
		if r.EventName == name {
			out = append(out, r)
		}
	}
	return out
}

func TestConsoleSignInSessionAndHeaders(t *testing.T) {
	h := servertest.Start(t)
	b := newBrowser(t, h.URL)

	resp, _ := b.get("/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET / = %d to %q, want a redirect to the console", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get("/console/")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin") {
		t.Fatalf("the dashboard without a session = %d to %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.get("/console/signin")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	if !strings.Contains(page, `name="access_key_id"`) {
		t.Fatal("no sign-in form")
	}

	// A wrong secret: refused, recorded as a failed ConsoleLogin without it.
	resp, page = b.post("/console/signin", url.Values{"csrf": {b.csrf}, "access_key_id": {h.AdminKeyID}, "secret_access_key": {"wrong-secret-value"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "wrong") {
		t.Fatalf("a wrong secret: %d", resp.StatusCode)
	}
	resp = b.signIn(h.AdminKeyID, h.AdminSecret)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "cairn_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure || session.MaxAge <= 0 || session.MaxAge > 12*3600 || len(session.Value) < 43 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure without TLS, an expiry within 12 h and 256 random bits", session)
	}
	resp, page = b.get("/console/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Dashboard") {
		t.Fatalf("the dashboard after sign-in: %d", resp.StatusCode)
	}
	for _, p := range []string{"/console/events", "/console/trails", "/console/trails/new", "/console/static/app.css", "/console/static/vendor/htmx/htmx.min.js"} {
		if resp, _ := b.get(p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}

	logins := consoleRecords(t, h, "ConsoleLogin")
	if len(logins) != 2 {
		t.Fatalf("%d ConsoleLogin records, want 2", len(logins))
	}
	for i, want := range []string{"Failure", "Success"} {
		raw := string(logins[i].Raw)
		if logins[i].EventType != "AwsConsoleSignIn" || logins[i].EventSource != "signin.amazonaws.com" || !strings.Contains(raw, `"ConsoleLogin":"`+want+`"`) {
			t.Errorf("ConsoleLogin %d: %s", i, raw)
		}
		if strings.Contains(raw, "wrong-secret-value") || strings.Contains(raw, h.AdminSecret) {
			t.Errorf("a ConsoleLogin record holds a secret: %s", raw)
		}
	}

	// The JSON download is the filtered history as a log file, and is
	// recorded as a console action.
	if err := h.Server.History().WaitIndexed(context.Background(), h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	resp, page = b.get(b.downloadURL("json", "k=EventName&v=ConsoleLogin"))
	var doc struct{ Records []map[string]any }
	if err := json.Unmarshal([]byte(page), &doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JSON download: %d %v", resp.StatusCode, err)
	}
	if len(doc.Records) != 2 || doc.Records[0]["eventName"] != "ConsoleLogin" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("JSON download holds %d records (want the 2 sign-ins), disposition %q", len(doc.Records), resp.Header.Get("Content-Disposition"))
	}
	if dl := consoleRecords(t, h, "DownloadEventHistory"); len(dl) != 1 || dl[0].EventType != "AwsConsoleAction" {
		t.Errorf("download records: %v", dl)
	}

	// Sign-out ends the session on the server, not only in the browser.
	old := session.Value
	resp, _ = b.post("/console/signout", url.Values{"csrf": {b.csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, h.URL+"/console/", nil)
	req.AddCookie(&http.Cookie{Name: "cairn_session", Value: old})
	r2, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusSeeOther {
		t.Errorf("the old session cookie still works after sign-out: %d", r2.StatusCode)
	}
	if out := consoleRecords(t, h, "ConsoleLogout"); len(out) != 1 || out[0].EventType != "AwsConsoleAction" {
		t.Errorf("sign-out records: %v", out)
	}
}

func TestConsoleCSRF(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	form := url.Values{"name": {"trail-one"}, "bucket_mode": {"existing"}, "bucket": {"logs"}, "mgmt": {"on"}, "mgmt_rw": {"All"}}

	if resp, _ := b.post("/console/trails/new", form, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a POST without a CSRF token: %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", "forged")
	if resp, _ := b.post("/console/trails/new", form, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a POST with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", b.csrf)
	if resp, _ := b.post("/console/trails/new", form, http.Header{"Origin": {"https://evil.example"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a POST from another origin: %d, want 403", resp.StatusCode)
	}
	if out, _ := h.CloudTrail.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); len(out.TrailList) != 0 {
		t.Fatalf("a refused POST created %d trails", len(out.TrailList))
	}
	resp, _ := b.post("/console/trails/new", form, http.Header{"Origin": {h.URL}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a valid POST: %d", resp.StatusCode)
	}
	created := consoleRecords(t, h, "CreateTrail")
	if len(created) != 1 || !strings.Contains(string(created[0].Raw), `"sessionCredentialFromConsole":"true"`) || created[0].EventType != "AwsApiCall" {
		t.Fatalf("the console's CreateTrail is not recorded as a console call: %v", created)
	}
	if started := consoleRecords(t, h, "StartLogging"); len(started) != 1 {
		t.Errorf("%d StartLogging records after the wizard, want 1", len(started))
	}

	// The API's own validation message comes back next to the field.
	form.Set("name", "trail-one")
	_, page := b.post("/console/trails/new", form, nil)
	if !strings.Contains(page, "already exists") || !strings.Contains(page, `class="field-err"`) {
		t.Errorf("a duplicate name does not show the API's message next to a field")
	}
}

func TestConsoleReadOnlyKeyChangesNothing(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	ctx := context.Background()
	if _, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("trail-one"), S3BucketName: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.URL)
	b.signIn(h.ReadOnlyKeyID, h.ReadOnlySecret)
	_, page := b.get("/console/trails/us-east-1/trail-one")
	if !strings.Contains(page, "read-only") || strings.Contains(page, `id="delete-trail"`) {
		t.Error("the trail page offers a read-only key its change buttons")
	}
	b.post("/console/trails/us-east-1/trail-one/logging", url.Values{"csrf": {b.csrf}, "logging": {"on"}}, nil)
	b.post("/console/trails/us-east-1/trail-one/delete", url.Values{"csrf": {b.csrf}, "confirm": {"trail-one"}}, nil)
	b.post("/console/trails/new", url.Values{"csrf": {b.csrf}, "name": {"trail-two"}, "bucket_mode": {"new"}, "new_bucket": {"ro-bucket"}}, nil)
	st, err := h.CloudTrail.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("trail-one")})
	if err != nil {
		t.Fatalf("the trail is gone: %v", err)
	}
	if aws.ToBool(st.IsLogging) {
		t.Error("a read-only key started logging")
	}
	if out, _ := h.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); len(out.TrailList) != 1 {
		t.Errorf("%d trails after a read-only key's attempts, want 1", len(out.TrailList))
	}
	if ok, _ := h.Server.ObjectStore().BucketExists(ctx, "ro-bucket"); ok {
		t.Error("a read-only key created a bucket")
	}
	// Deleting the key ends its console sessions at their next request.
	if err := h.Server.Keys().Delete(ctx, h.ReadOnlyKeyID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := b.get("/console/trails"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a session of a deleted key still works: %d", resp.StatusCode)
	}
	for _, name := range []string{"StartLogging", "DeleteTrail"} {
		recs := consoleRecords(t, h, name)
		if len(recs) != 1 || recs[0].ErrorCode != "AccessDenied" || !strings.Contains(string(recs[0].Raw), `"sessionCredentialFromConsole":"true"`) {
			t.Errorf("the refused %s is not recorded as a refused console call: %v", name, recs)
		}
	}
}

func TestConsoleFailsClosed(t *testing.T) {
	disk := journaltest.NewFullDisk()
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.JournalFS = disk }})
	h.CreateBucket(t, "logs")
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)

	disk.Full.Store(true)
	resp, page := b.post("/console/trails/new", url.Values{"csrf": {b.csrf}, "name": {"during"}, "bucket_mode": {"existing"}, "bucket": {"logs"}, "mgmt": {"on"}}, nil)
	if resp.StatusCode == http.StatusSeeOther || !strings.Contains(page, "journal") {
		t.Errorf("a change while the journal refuses writes: %d, want a refusal that says why", resp.StatusCode)
	}
	if out, _ := h.CloudTrail.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); out != nil && len(out.TrailList) != 0 {
		t.Errorf("a refused console change left %d trails", len(out.TrailList))
	}
	b2 := newBrowser(t, h.URL)
	if resp := b2.signIn(h.AdminKeyID, h.AdminSecret); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a sign-in that cannot be recorded: %d, want 503", resp.StatusCode)
	}
	disk.Full.Store(false)
}

func TestConsoleSignInRateLimit(t *testing.T) {
	h := servertest.Start(t)
	b := newBrowser(t, h.URL)
	var last int
	for range 11 {
		b.get("/console/signin")
		resp, _ := b.post("/console/signin", url.Values{"csrf": {b.csrf}, "access_key_id": {h.AdminKeyID}, "secret_access_key": {"guess"}}, nil)
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("the 11th sign-in attempt within a minute: %d, want 429", last)
	}
	b.get("/console/signin")
	if resp, _ := b.post("/console/signin", url.Values{"csrf": {b.csrf}, "access_key_id": {h.AdminKeyID}, "secret_access_key": {h.AdminSecret}}, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the right secret during the lock-out: %d, want 429", resp.StatusCode)
	}
	// A sign-in form without its cookie's token (login CSRF) is refused.
	b3 := newBrowser(t, h.URL)
	if resp, _ := b3.post("/console/signin", url.Values{"csrf": {"x"}, "access_key_id": {h.AdminKeyID}, "secret_access_key": {h.AdminSecret}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a sign-in without the form's token: %d, want 403", resp.StatusCode)
	}
}

func TestConsoleUnderTLS(t *testing.T) {
	certFile, keyFile, pool := tlstest.SelfSigned(t)
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.TLSCert, c.TLSKey = certFile, keyFile }})
	h.CreateBucket(t, "logs")
	b := newBrowser(t, h.URL)
	b.c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	resp := b.signIn(h.AdminKeyID, h.AdminSecret)
	var secure bool
	for _, c := range resp.Cookies() {
		if c.Name == "cairn_session" {
			secure = c.Secure
		}
	}
	if !secure {
		t.Error("the session cookie is not Secure under TLS")
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS under TLS")
	}
	if resp, _ := b.post("/console/trails/new", url.Values{"csrf": {b.csrf}, "name": {"tls-trail"}, "bucket_mode": {"existing"}, "bucket": {"logs"}, "mgmt": {"on"}, "mgmt_rw": {"All"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create over TLS: %d", resp.StatusCode)
	}
	recs := consoleRecords(t, h, "CreateTrail")
	if len(recs) != 1 || !strings.Contains(string(recs[0].Raw), `"tlsDetails":{"tlsVersion":"TLSv1.3"`) {
		t.Errorf("the console's call over TLS lacks tlsDetails: %v", recs)
	}
}

func TestConsoleAdvancedSelectorsAndRegion(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	ctx := context.Background()
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)

	// A new trail in another region, with advanced selectors.
	if resp, _ := b.post("/console/region", url.Values{"csrf": {b.csrf}, "region": {"eu-west-1"}, "back": {"/console/trails"}}, nil); resp.Header.Get("Location") != "/console/trails" {
		t.Fatalf("region switch went to %q", resp.Header.Get("Location"))
	}
	adv := `[{"Name":"writes","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]`
	form := url.Values{"csrf": {b.csrf}, "name": {"eu-trail"}, "bucket_mode": {"existing"}, "bucket": {"logs"}, "selector_mode": {"advanced"}, "advanced": {adv}}
	if resp, page := b.post("/console/trails/new", form, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/trails/eu-west-1/eu-trail" {
		t.Fatalf("create with advanced selectors: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	eu := h.Client(h.AdminKeyID, h.AdminSecret, "eu-west-1")
	sels, err := eu.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("eu-trail")})
	if err != nil || len(sels.AdvancedEventSelectors) != 1 || aws.ToString(sels.AdvancedEventSelectors[0].Name) != "writes" {
		t.Fatalf("advanced selectors: %+v %v", sels, err)
	}

	// Invalid selectors in the edit form: the API's message, nothing saved.
	form.Set("advanced", `[{"Name":"bad","FieldSelectors":[{"Field":"noSuchField","Equals":["x"]}]}]`)
	resp, page := b.post("/console/trails/eu-west-1/eu-trail/edit", form, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `class="field-err"`) || !strings.Contains(page, "noSuchField") {
		t.Errorf("invalid advanced selectors: %d, want the API's message next to the selectors", resp.StatusCode)
	}
	form.Set("advanced", "not json")
	if resp, _ := b.post("/console/trails/eu-west-1/eu-trail/edit", form, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("selectors that are not JSON: %d", resp.StatusCode)
	}
	sels, _ = eu.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("eu-trail")})
	if len(sels.AdvancedEventSelectors) != 1 || aws.ToString(sels.AdvancedEventSelectors[0].Name) != "writes" {
		t.Errorf("a refused edit changed the selectors: %+v", sels)
	}

	// The event history follows the region: the CreateTrail is in eu-west-1's.
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	_, page = b.get("/console/events?k=EventName&v=CreateTrail")
	if !strings.Contains(page, "<strong>eu-west-1</strong>") || strings.Count(page, "<tr data-t=") != 1 {
		t.Errorf("eu-west-1's history does not show its CreateTrail")
	}
	b.post("/console/region", url.Values{"csrf": {b.csrf}, "region": {"us-east-1"}}, nil)
	if _, page = b.get("/console/events?k=EventName&v=CreateTrail"); strings.Contains(page, "<tr data-t=") {
		t.Errorf("us-east-1's history shows eu-west-1's CreateTrail")
	}
}

// TestConsolePagingARelativeRange pages through "the last hour" after the
// clock has moved on: the history binds NextTokens to the query's bounds,
// so the pages must share the first page's start time.
func TestConsolePagingARelativeRange(t *testing.T) {
	h := servertest.Start(t)
	ctx := context.Background()
	for range 60 {
		if _, err := h.CloudTrail.ListTrails(ctx, &cloudtrail.ListTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	_, page := b.get("/console/events?range=1h&k=EventName&v=ListTrails")
	m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(page)
	if m == nil || strings.Count(page, "<tr data-t=") != 50 {
		t.Fatalf("the first page has %d rows and no next link", strings.Count(page, "<tr data-t="))
	}
	time.Sleep(1100 * time.Millisecond)
	resp, page := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if resp.StatusCode != http.StatusOK || strings.Count(page, "<tr data-t=") != 10 {
		t.Errorf("the second page a second later: %d with %d rows, want the remaining 10", resp.StatusCode, strings.Count(page, "<tr data-t="))
	}
}

// TestConsoleCSVNeutralisesFormulas downloads records whose user names
// start with = + - @ (key names may) as CSV: a cell that a spreadsheet
// would run as a formula must not start with one of them.
func TestConsoleCSVNeutralisesFormulas(t *testing.T) {
	h := servertest.Start(t)
	ctx := context.Background()
	formulas := []string{"=1+2", "+1+2", "-2+3", "@SUM"}
	for _, name := range formulas {
		k, secret, err := h.Server.Keys().Create(ctx, name, auth.RoleReadOnly)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Client(k.AccessKeyID, secret, "us-east-1").ListTrails(ctx, &cloudtrail.ListTrailsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	resp, body := b.get(b.downloadURL("csv", "k=EventName&v=ListTrails"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CSV download: %d %s", resp.StatusCode, body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 1+len(formulas) {
		t.Fatalf("CSV download: %d rows (want a header and %d calls), %v", len(rows), len(formulas), err)
	}
	found := 0
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("a CSV cell a spreadsheet would run as a formula: %q", cell)
			}
			for _, f := range formulas {
				if cell == "'"+f {
					found++
				}
			}
		}
	}
	if found != len(formulas) {
		t.Errorf("%d of the %d user names are in the CSV as text", found, len(formulas))
	}
}

// TestConsoleDownloadNeedsCSRFToken: a download writes an audit record in
// the user's name, so a link without the session's token (from another
// page of the same site, which the SameSite cookie does not stop) is
// refused and records nothing.
func TestConsoleDownloadNeedsCSRFToken(t *testing.T) {
	h := servertest.Start(t)
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	for _, q := range []string{"format=csv", "format=json&csrf=forged", "format=csv&csrf="} {
		if resp, _ := b.get("/console/events/download?" + q); resp.StatusCode != http.StatusForbidden {
			t.Errorf("download %s: %d, want 403", q, resp.StatusCode)
		}
	}
	if dl := consoleRecords(t, h, "DownloadEventHistory"); len(dl) != 0 {
		t.Fatalf("%d downloads recorded for forged links", len(dl))
	}
	u := b.downloadURL("csv", "")
	if !strings.Contains(u, "csrf="+url.QueryEscape(b.csrf)) {
		t.Errorf("the page's download link %q lacks the session's token", u)
	}
	if resp, _ := b.get(u); resp.StatusCode != http.StatusOK {
		t.Errorf("the page's own download link: %d", resp.StatusCode)
	}
	if dl := consoleRecords(t, h, "DownloadEventHistory"); len(dl) != 1 {
		t.Errorf("%d downloads recorded, want 1", len(dl))
	}
}

// TestConsoleSignInEndsThePreviousSession signs in again from a browser
// that still holds a session: the old session ID must stop working, and
// a sign-in form whose token and cookie are both empty is refused.
func TestConsoleSignInEndsThePreviousSession(t *testing.T) {
	h := servertest.Start(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(cookies string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.URL+"/console/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", cookies)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	sessionOf := func(resp *http.Response) string {
		for _, c := range resp.Cookies() {
			if c.Name == "cairn_session" && c.Value != "" {
				return c.Value
			}
		}
		return ""
	}
	works := func(id string) bool {
		req, _ := http.NewRequest(http.MethodGet, h.URL+"/console/trails", nil)
		req.AddCookie(&http.Cookie{Name: "cairn_session", Value: id})
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "access_key_id": {h.AdminKeyID}, "secret_access_key": {h.AdminSecret}}
	}
	pre := func() string {
		b := newBrowser(t, h.URL)
		b.get("/console/signin")
		return b.csrf
	}

	tok := pre()
	first := sessionOf(signIn("cairn_signin="+tok, form(tok)))
	if first == "" || !works(first) {
		t.Fatal("the first sign-in gave no working session")
	}
	tok = pre()
	second := sessionOf(signIn("cairn_session="+first+"; cairn_signin="+tok, form(tok)))
	if second == "" || second == first || !works(second) {
		t.Fatal("signing in again gave no new working session")
	}
	if works(first) {
		t.Error("the browser's previous session still works after it signed in again")
	}

	if resp := signIn("cairn_signin=", form("")); resp.StatusCode != http.StatusForbidden || sessionOf(resp) != "" {
		t.Errorf("a sign-in with an empty form token and an empty cookie: %d, want 403 and no session", resp.StatusCode)
	}
}

// TestConsoleFailedSignInKeepsASecretTypedAsTheKeyID: a secret pasted into
// the key ID field must not reach the journal (kept forever, read by
// every auditor) nor come back in the form; a typed key ID of the right
// shape is still recorded.
func TestConsoleFailedSignInKeepsASecretTypedAsTheKeyID(t *testing.T) {
	h := servertest.Start(t)
	b := newBrowser(t, h.URL)
	b.get("/console/signin")
	resp, page := b.post("/console/signin", url.Values{"csrf": {b.csrf}, "access_key_id": {h.AdminSecret}, "secret_access_key": {h.AdminSecret}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the secret as the key ID: %d, want 401", resp.StatusCode)
	}
	if strings.Contains(page, h.AdminSecret) {
		t.Error("the sign-in form shows the secret typed as the key ID")
	}
	const unknown = "CKIAAAAAAAAAAAAAAAAA"
	b.get("/console/signin")
	if _, page := b.post("/console/signin", url.Values{"csrf": {b.csrf}, "access_key_id": {unknown}, "secret_access_key": {"wrong"}}, nil); !strings.Contains(page, `value="`+unknown+`"`) {
		t.Error("the form does not keep a mistyped key ID")
	}
	logins := consoleRecords(t, h, "ConsoleLogin")
	if len(logins) != 2 {
		t.Fatalf("%d ConsoleLogin records, want 2", len(logins))
	}
	if raw := string(logins[0].Raw); strings.Contains(raw, h.AdminSecret) {
		t.Errorf("a failed sign-in's record holds the secret typed as the key ID: %s", raw)
	}
	if raw := string(logins[1].Raw); !strings.Contains(raw, `"accessKeyId":"`+unknown+`"`) {
		t.Errorf("a failed sign-in's record lacks the key ID typed: %s", raw)
	}
}

// TestConsoleScriptRegistersMenuHandlersOnce: the column chooser's change
// handler used to add the menu's document-wide keydown and click handlers
// again on every change, piling up one more pair per click.
func TestConsoleScriptRegistersMenuHandlersOnce(t *testing.T) {
	h := servertest.Start(t)
	b := newBrowser(t, h.URL)
	resp, js := b.get("/console/static/app.js")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("app.js: %d", resp.StatusCode)
	}
	for _, handler := range []string{`document.addEventListener("keydown"`, `document.addEventListener("click"`} {
		if n := strings.Count(js, handler); n != 1 {
			t.Errorf("app.js adds %s handlers in %d places, want 1 (once, at load)", handler, n)
		}
	}
}

// TestConsoleEditReportsAPartialSave: an edit whose UpdateTrail succeeds
// but whose PutEventSelectors is refused has changed the trail; the page
// must not say it was not saved.
func TestConsoleEditReportsAPartialSave(t *testing.T) {
	h := servertest.Start(t)
	h.CreateBucket(t, "logs")
	ctx := context.Background()
	if _, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("trail-one"), S3BucketName: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	form := url.Values{"csrf": {b.csrf}, "bucket_mode": {"existing"}, "bucket": {"logs"}, "prefix": {"new-prefix"},
		"selector_mode": {"advanced"}, "advanced": {`[{"Name":"bad","FieldSelectors":[{"Field":"noSuchField","Equals":["x"]}]}]`}}
	resp, page := b.post("/console/trails/us-east-1/trail-one/edit", form, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "noSuchField") {
		t.Fatalf("an edit with refused selectors: %d, want 400 with the API's message", resp.StatusCode)
	}
	out, err := h.CloudTrail.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("trail-one")})
	if err != nil || aws.ToString(out.Trail.S3KeyPrefix) != "new-prefix" {
		t.Fatalf("UpdateTrail did not take effect: %v %v", out, err)
	}
	if strings.Contains(page, "Not saved") || !strings.Contains(page, "settings were saved") {
		t.Error("the page says the edit was not saved although UpdateTrail changed the trail")
	}
}

// TestConsoleEventLinksEscapeTheID: an imported record's eventID can hold
// / ? # and dot segments, which html/template leaves alone in a URL path;
// the event history's link must still lead to that event's page.
func TestConsoleEventLinksEscapeTheID(t *testing.T) {
	h := servertest.Start(t)
	ctx := context.Background()
	const id = "x/../../trails?signedout=1#top"
	rec, err := event.APICall{Time: time.Now().UTC(), Source: "ec2.amazonaws.com", Name: "RunInstances", Region: "us-east-1",
		EventID: id, RecipientAccountID: "000000000000", Identity: event.UserIdentity{Type: "IAMUser", UserName: "alice"}}.Record()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Server.Journal().Append(ctx, [][]byte{rec.Raw}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"/console/events?k=EventName&v=RunInstances", "/console/"} {
		_, body := b.get(page)
		m := regexp.MustCompile(`<a href="(/console/events/[^"]*)">RunInstances</a>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s has no link to the event", page)
		}
		resp, detail := b.get(html.UnescapeString(m[1]))
		if resp.StatusCode != http.StatusOK || !strings.Contains(detail, html.EscapeString(id)) {
			t.Errorf("%s links the event as %q, which answers %d without the event", page, m[1], resp.StatusCode)
		}
	}
}

// TestConsolePostBodyIsBounded: a signed-in POST's form is read (for the
// CSRF token) before any handler runs, so its size bound must apply there.
func TestConsolePostBodyIsBounded(t *testing.T) {
	h := servertest.Start(t)
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	form := url.Values{"region": {"eu-west-1"}, "back": {"/console/trails"}, "pad": {strings.Repeat("x", 2<<20)}}
	resp, _ := b.post("/console/region", form, http.Header{"X-Csrf-Token": {b.csrf}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB form: %d, want 413", resp.StatusCode)
	}
	form.Del("pad")
	if resp, _ := b.post("/console/region", form, http.Header{"X-Csrf-Token": {b.csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a small form: %d, want 303", resp.StatusCode)
	}
}

// TestConsoleOddBucketNamesAreRecorded: a new bucket's name goes into its
// CreateBucket record; one with a control character must still give a
// well-formed record, so that the refused attempt is in the trail.
func TestConsoleOddBucketNamesAreRecorded(t *testing.T) {
	h := servertest.Start(t)
	for _, k := range []struct{ id, secret, code string }{
		{h.ReadOnlyKeyID, h.ReadOnlySecret, "AccessDenied"},
		{h.AdminKeyID, h.AdminSecret, "InvalidBucketName"},
	} {
		b := newBrowser(t, h.URL)
		b.signIn(k.id, k.secret)
		resp, page := b.post("/console/trails/new", url.Values{"csrf": {b.csrf}, "name": {"t1"}, "bucket_mode": {"new"}, "new_bucket": {"odd\x01name\xff"}, "mgmt": {"on"}}, nil)
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(page, "audit journal") {
			t.Errorf("%s: an odd bucket name: %d, want 400 for the name, not a journal failure", k.code, resp.StatusCode)
		}
	}
	recs := consoleRecords(t, h, "CreateBucket")
	if len(recs) != 2 || recs[0].ErrorCode != "AccessDenied" || recs[1].ErrorCode != "InvalidBucketName" {
		t.Fatalf("%d CreateBucket records for the two refused attempts, want AccessDenied and InvalidBucketName: %v", len(recs), recs)
	}
}

// TestConsoleLivePollAfterExpiryReturnsToThePage: live mode's poll of an
// expired session sends the browser to sign in; afterwards it must come
// back to the event history, not to the bare fragment endpoint.
func TestConsoleLivePollAfterExpiryReturnsToThePage(t *testing.T) {
	h := servertest.Start(t)
	req, _ := http.NewRequest(http.MethodGet, h.URL+"/console/events/live?range=all&after=1", nil)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Current-URL", h.URL+"/console/events?range=all&live=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "/console/signin?next=" + url.QueryEscape("/console/events?range=all&live=1")
	if got := resp.Header.Get("HX-Redirect"); resp.StatusCode != http.StatusUnauthorized || got != want {
		t.Errorf("a live poll without a session: %d, HX-Redirect %q, want 401 and %q", resp.StatusCode, got, want)
	}
}

// TestConsoleEventDetailShowsImportProvenance: an imported event's page
// says it was imported, by which import, key and when; a native event's
// page says nothing of the kind.
func TestConsoleEventDetailShowsImportProvenance(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	rec := `{"eventVersion":"1.08","eventID":"console-imp","eventTime":"` + at + `","eventName":"RunInstances","eventSource":"ec2.amazonaws.com","awsRegion":"us-east-1","eventType":"AwsApiCall"}`
	out, err := importClient(h).Import(ctx, []byte(rec+"\n"))
	if err != nil || out.Accepted != 1 {
		t.Fatalf("import: %+v, %v", out, err)
	}
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	native := lookupRaw(t, h, `{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"ImportEvents"}]}`)
	if len(native) != 1 {
		t.Fatalf("%d ImportEvents events, want 1", len(native))
	}
	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	resp, page := b.get("/console/events/console-imp")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("imported event page: %d", resp.StatusCode)
	}
	for _, want := range []string{"Imported record", out.ImportID, h.AdminKeyID, out.SHA256} {
		if !strings.Contains(page, want) {
			t.Errorf("imported event page lacks %q", want)
		}
	}
	resp, page = b.get("/console/events/" + native[0].EventID)
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "Imported record") || strings.Contains(page, ">Imported<") {
		t.Errorf("native event page (%d) claims an import", resp.StatusCode)
	}
}
