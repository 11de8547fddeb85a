package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// stalledPost opens a raw connection, sends a POST's headers declaring
// declared bytes of body plus the first len(sent) of them, and leaves the
// rest unsent, as a client that stalls (or an attacker) does.
func stalledPost(t *testing.T, h *servertest.Harness, path string, hdr map[string]string, declared int64, sent []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, strings.TrimPrefix(h.URL, "http://"), declared)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	b.Write(sent)
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answer reads the server's response on conn, waiting at most wait.
func answer(t *testing.T, conn net.Conn, wait time.Duration) (*http.Response, []byte) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %s while the body is unsent: %v", wait, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, body
}

// forgedAuth is an Authorization for the real admin key with a fresh date
// and a signature that cannot be right: everything the headers can show
// is in order, so only the body's signature check can refuse it.
func forgedAuth(h *servertest.Harness, service string) map[string]string {
	now := time.Now().UTC()
	return map[string]string{
		"X-Amz-Date": now.Format("20060102T150405Z"),
		"Authorization": "AWS4-HMAC-SHA256 Credential=" + h.AdminKeyID + "/" + now.Format("20060102") + "/us-east-1/" + service +
			"/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64),
	}
}

// TestBodyRefusedFromHeaders: a request the headers alone condemn is
// answered before its body is read, so an anonymous client cannot make
// the server hold a body (issue 12, defect 2). Before the fix the server
// read up to 4-5 MB and waited for the rest before checking anything.
func TestBodyRefusedFromHeaders(t *testing.T) {
	h := servertest.Start(t)
	now := time.Now().UTC()
	stale := now.Add(-time.Hour)
	authFor := func(key, service string, at time.Time) map[string]string {
		return map[string]string{
			"X-Amz-Date": at.Format("20060102T150405Z"),
			"Authorization": "AWS4-HMAC-SHA256 Credential=" + key + "/" + at.Format("20060102") + "/us-east-1/" + service +
				"/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64),
		}
	}
	cases := []struct {
		name, path string
		hdr        map[string]string
		declared   int64
		status     int
		code       string
	}{
		{"unsigned control plane", "/", nil, 4_000_000, 403, "MissingAuthenticationTokenException"},
		{"unsigned import", server.ImportPath, nil, 5_000_000, 403, "MissingAuthenticationTokenException"},
		{"unsigned PutAuditEvents", "/PutAuditEvents", nil, 1_000_000, 403, "MissingAuthenticationTokenException"},
		{"unknown key", "/", authFor("AKIAUNKNOWNKEY000000", "cloudtrail", now), 4_000_000, 403, "UnrecognizedClientException"},
		{"stale date", server.ImportPath, authFor(h.AdminKeyID, "cairn", stale), 5_000_000, 403, "InvalidSignatureException"},
		{"malformed Authorization", "/", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, 4_000_000, 403, "IncompleteSignatureException"},
		{"wrong service", server.ImportPath, forgedAuth(h, "cloudtrail"), 5_000_000, 403, "InvalidSignatureException"},
		{"over the control plane's limit", "/", forgedAuth(h, "cloudtrail"), 4<<20 + 1, 413, "RequestEntityTooLargeException"},
		{"over the import limit", server.ImportPath, forgedAuth(h, "cairn"), 5<<20 + 1, 413, "RequestEntityTooLargeException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := stalledPost(t, h, c.path, c.hdr, c.declared, []byte("{"))
			resp, body := answer(t, conn, 5*time.Second)
			if resp.StatusCode != c.status || !bytes.Contains(body, []byte(c.code)) {
				t.Fatalf("status %d body %s, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
		})
	}
}

// TestBodyReadDeadline: a client that declares a body and stops sending
// loses its connection at the body deadline, on every route that reads a
// body (issue 12, defect 2). Before the fix such a connection stayed open
// for good.
func TestBodyReadDeadline(t *testing.T) {
	const timeout = time.Second
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.BodyTimeout = timeout }})
	cases := []struct {
		name, path string
		hdr        map[string]string
	}{
		{"control plane", "/", forgedAuth(h, "cloudtrail")},
		{"import", server.ImportPath, forgedAuth(h, "cairn")},
		{"PutAuditEvents", "/PutAuditEvents", forgedAuth(h, "cloudtrail-data")},
		{"console sign-in", "/console/signin", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			began := time.Now()
			conn := stalledPost(t, h, c.path, c.hdr, 1000, []byte("{"))
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err := io.Copy(io.Discard, conn) // the answer, if any, then the close
			if err != nil {
				t.Fatalf("connection not closed by the server: %v", err)
			}
			if took := time.Since(began); took < timeout {
				t.Fatalf("closed after %s, before the %s deadline", took, timeout)
			}
		})
	}
	// The answer says why, where the endpoint can still answer.
	conn := stalledPost(t, h, "/", forgedAuth(h, "cloudtrail"), 1000, []byte("{"))
	resp, body := answer(t, conn, 15*time.Second)
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(body, []byte("RequestTimeoutException")) {
		t.Fatalf("status %d body %s, want 408 RequestTimeoutException", resp.StatusCode, body)
	}
}

// TestBodyBudget: bodies in flight share one budget. Whoever knows an
// access key ID (it is in every record of that key's calls) can claim it
// without its secret until the body is read, so large bodies hold at most
// a quarter of the budget per key (and per peer address) and never its
// last eighth: a forger cannot refuse everyone's calls by stalling bodies
// (found by review: 64 stalled 1 MiB PutAuditEvents bodies naming the
// admin key took the whole 64 MiB, and every call got 503). Small bodies
// fill the rest; past the budget calls get 503 ThrottlingException with
// Retry-After.
func TestBodyBudget(t *testing.T) {
	const budget = 1 << 20
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.BodyBudget = budget
		c.BodyTimeout = time.Minute
	}})
	refused := func(what string, conn net.Conn) {
		t.Helper()
		resp, body := answer(t, conn, 5*time.Second)
		if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("ThrottlingException")) || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: status %d Retry-After %q body %s, want 503 ThrottlingException with Retry-After",
				what, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	reserved := func(want int) {
		t.Helper()
		waitFor(t, 10*time.Second, func() bool { return metricValue(t, h, "cairn_request_body_bytes_reserved") == float64(want) })
	}

	// Large bodies naming the admin key: two fit its quarter, a third not.
	const large = 100_000
	for range 2 {
		stalledPost(t, h, server.ImportPath, forgedAuth(h, "cairn"), large, []byte("{"))
	}
	reserved(2 * large)
	refused("a third large body for one key", stalledPost(t, h, server.ImportPath, forgedAuth(h, "cairn"), large, []byte("{")))
	// A real client's call still gets through.
	if _, err := h.CloudTrail.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Fatalf("signed call while a forger holds large bodies: %v", err)
	}

	// Small bodies take what is left, then the budget is full.
	const small = 60_000
	n := (budget - 2*large) / small
	for range n {
		stalledPost(t, h, "/", forgedAuth(h, "cloudtrail"), small, []byte("{"))
	}
	reserved(2*large + n*small)
	for _, c := range []struct{ path, service string }{{server.ImportPath, "cairn"}, {"/", "cloudtrail"}} {
		refused(c.path+" over the budget", stalledPost(t, h, c.path, forgedAuth(h, c.service), small, []byte("{")))
	}
	reserved(2*large + n*small)
}

// TestMetricLabelsClosed: operation names from X-Amz-Target become labels
// only when Cairn serves them, so unsigned or bogus names cannot add
// series to /metrics (issue 12, defect 3). Before the fix each distinct
// name added two series.
func TestMetricLabelsClosed(t *testing.T) {
	h := servertest.Start(t)
	bogus := func(i int) {
		op := fmt.Sprintf("Bogus%d", i)
		// Unsigned, and signed by a real key: neither names a new series.
		rawCall(t, h, "", "", op, `{}`, time.Now(), nil)
		rawCall(t, h, h.AdminKeyID, h.AdminSecret, op, `{}`, time.Now(), nil)
		req, _ := http.NewRequest(http.MethodPost, h.URL+"/", strings.NewReader(`{}`))
		req.Header.Set("X-Amz-Target", "Other_"+strconv.Itoa(i)+".ListTrails")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}
	bogus(0)
	if _, err := h.CloudTrail.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Fatal(err)
	}
	before := seriesCount(t, h)
	for i := 1; i <= 200; i++ {
		bogus(i)
	}
	if after := seriesCount(t, h); after != before {
		t.Fatalf("/metrics grew from %d to %d series after 600 calls with bogus operation names", before, after)
	}
}

// TestPresignedBodyMustBeSigned: a presigned URL whose signature does not
// cover the body (SignedHeaders=host, UNSIGNED-PAYLOAD) cannot carry one,
// on any endpoint (issue 12, defect 4). Before the fix one URL, valid for a
// week, created a channel and posted forged imports.
func TestPresignedBodyMustBeSigned(t *testing.T) {
	h := servertest.Start(t)
	creds := aws.Credentials{AccessKeyID: h.AdminKeyID, SecretAccessKey: h.AdminSecret}
	presign := func(path, service string, hdr map[string]string) string {
		req, _ := http.NewRequest(http.MethodPost, h.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		q := req.URL.Query()
		q.Set("X-Amz-Expires", "604800")
		req.URL.RawQuery = q.Encode()
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", service, "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(u, "X-Amz-SignedHeaders=host&") {
			t.Fatalf("want a URL that signs only the host: %s", u)
		}
		return u
	}
	post := func(u, body string, declare bool) (int, string) {
		if declare {
			u += "&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD"
		}
		resp, err := http.Post(u, "application/x-amz-json-1.1", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	channel := presign("/", "cloudtrail", map[string]string{"X-Amz-Target": target + "CreateChannel"})
	imp := presign(server.ImportPath, "cairn", nil)
	record := `{"eventVersion":"1.08","eventID":"%s","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"DeleteBucket","awsRegion":"us-east-1"}`
	for _, c := range []struct{ name, url, body string }{
		{"CreateChannel", channel, `{"Name":"forged","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"arn:aws:cloudtrail:us-east-1:000000000000:eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"}]}`},
		{"import one", imp, fmt.Sprintf(record, "11111111-1111-1111-1111-111111111111")},
		{"import two", imp, fmt.Sprintf(record, "22222222-2222-2222-2222-222222222222")},
	} {
		for _, declare := range []bool{false, true} {
			status, body := post(c.url, c.body, declare)
			if status != http.StatusForbidden || !strings.Contains(body, "InvalidSignatureException") {
				t.Fatalf("%s (declared UNSIGNED-PAYLOAD %v): status %d %s, want 403 InvalidSignatureException", c.name, declare, status, body)
			}
		}
	}
	out, err := h.CloudTrail.ListChannels(context.Background(), &cloudtrail.ListChannelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Channels) != 0 {
		t.Fatalf("a forged call created channels: %+v", out.Channels)
	}
}

// seriesCount is the number of samples /metrics exposes.
func seriesCount(t *testing.T, h *servertest.Harness) int {
	t.Helper()
	n := 0
	for line := range strings.SplitSeq(scrape(t, h), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "go_") && !strings.HasPrefix(line, "process_") {
			n++
		}
	}
	return n
}

// metricValue is the value of an unlabelled metric, or -1 when absent.
func metricValue(t *testing.T, h *servertest.Harness, name string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(scrape(t, h), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func scrape(t *testing.T, h *servertest.Harness) string {
	t.Helper()
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(errors.New("condition not met in time"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
