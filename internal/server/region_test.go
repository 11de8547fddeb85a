package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// wantUnknownRegion checks that err is AWS's refusal of a credential scoped
// to region.
func wantUnknownRegion(t *testing.T, what string, err error, region string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s: err = %v, want InvalidSignatureException", what, err)
	}
	want := "Credential should be scoped to a valid region, not '" + region + "'."
	if apiErr.ErrorCode() != "InvalidSignatureException" || !strings.Contains(apiErr.ErrorMessage(), want) {
		t.Fatalf("%s: %s: %s, want InvalidSignatureException: %s", what, apiErr.ErrorCode(), apiErr.ErrorMessage(), want)
	}
}

// metric returns the text exposition line of one series, or "".
func metric(t *testing.T, h *servertest.Harness, series string) string {
	t.Helper()
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return line
		}
	}
	return ""
}

// TestUnknownRegionRefusedThroughSDK: with the real SDK signing for an
// invented region, a read-only key cannot read a us-east-1 trail's status
// or selectors by ARN and an admin cannot create a trail; nothing is
// recorded under the invented region, and each refusal is counted.
func TestUnknownRegionRefusedThroughSDK(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	h.CreateBucket(t, "logs")
	made, err := h.CloudTrail.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("home"), S3BucketName: aws.String("logs")})
	if err != nil {
		t.Fatal(err)
	}
	arn := made.TrailARN

	for _, region := range []string{"zz-fake-9", "us-fake-9"} { // us-fake-9 fits the SDK's regionRegex
		ro := h.Client(h.ReadOnlyKeyID, h.ReadOnlySecret, region)
		_, err := ro.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: arn})
		wantUnknownRegion(t, "GetTrailStatus by ARN", err, region)
		_, err = ro.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: arn})
		wantUnknownRegion(t, "GetEventSelectors by ARN", err, region)
		admin := h.Client(h.AdminKeyID, h.AdminSecret, region)
		_, err = admin.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("elsewhere"), S3BucketName: aws.String("logs")})
		wantUnknownRegion(t, "CreateTrail", err, region)
	}

	for _, r := range records(t, h) {
		if strings.Contains(string(r.Raw), "fake-9") {
			t.Errorf("a refused request was recorded: %s", r.Raw)
		}
	}
	trails, err := h.CloudTrail.ListTrails(ctx, &cloudtrail.ListTrailsInput{})
	if err != nil || len(trails.Trails) != 1 {
		t.Fatalf("ListTrails = %+v, %v: the refused CreateTrail made a trail", trails, err)
	}
	if got := metric(t, h, `cairn_unknown_region_refusals_total{service="cloudtrail"}`); !strings.HasSuffix(got, " 6") {
		t.Errorf("refusal counter: %q, want 6", got)
	}
	// The refused region is no label anywhere.
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); bytes.Contains(body, []byte("fake-9")) {
		t.Error("/metrics names the refused region")
	}
}

// TestUnknownRegionRefusedBeforeTheBody: every signed endpoint answers a
// request signed for an unknown region while its declared body has not
// been sent at all, so the refusal reads no body.
func TestUnknownRegionRefusedBeforeTheBody(t *testing.T) {
	h := servertest.Start(t)
	for _, tc := range []struct{ path, service string }{
		{"/", "cloudtrail"},
		{"/PutAuditEvents?channelArn=" + url.QueryEscape("arn:aws:cloudtrail:us-east-1:000000000000:channel/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"), "cloudtrail-data"},
		{server.ImportPath, server.ImportService},
	} {
		t.Run(tc.service, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close() // never written: the body never comes
			req, err := http.NewRequest(http.MethodPost, h.URL+tc.path, pr)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 1 << 20
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateTrail")
			sum := sha256.Sum256([]byte("whatever"))
			if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: h.AdminKeyID, SecretAccessKey: h.AdminSecret},
				req, hex.EncodeToString(sum[:]), tc.service, "zz-fake-9", time.Now()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// The transport waits for the body it is sending: end it when
			// the wait is over, so that a server reading it fails the test
			// instead of hanging it.
			stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
			defer stop()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatalf("no answer without the body: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "InvalidSignatureException") ||
				!strings.Contains(string(body), "Credential should be scoped to a valid region, not 'zz-fake-9'.") {
				t.Fatalf("%d %s, want 403 InvalidSignatureException", resp.StatusCode, body)
			}
		})
	}
	for _, svc := range []string{"cloudtrail", "cloudtrail-data", server.ImportService} {
		if got := metric(t, h, fmt.Sprintf(`cairn_unknown_region_refusals_total{service=%q}`, svc)); !strings.HasSuffix(got, " 1") {
			t.Errorf("refusal counter of %s: %q, want 1", svc, got)
		}
	}
}

// TestDeclaredRegionAccepted: a private region the operator declares works
// like an AWS region, end to end through the SDK, and its record is filed
// under it.
func TestDeclaredRegionAccepted(t *testing.T) {
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.Regions = []string{"xx-private-1"} }})
	ctx := servertest.Context(t)
	h.CreateBucket(t, "logs")
	private := h.Client(h.AdminKeyID, h.AdminSecret, "xx-private-1")
	made, err := private.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("onprem"), S3BucketName: aws.String("logs")})
	if err != nil {
		t.Fatalf("CreateTrail in a declared region: %v", err)
	}
	if want := "arn:aws:cloudtrail:xx-private-1:000000000000:trail/onprem"; aws.ToString(made.TrailARN) != want {
		t.Fatalf("TrailARN %s, want %s", aws.ToString(made.TrailARN), want)
	}
	if _, err := private.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: made.TrailARN}); err != nil {
		t.Fatalf("GetTrailStatus by ARN in a declared region: %v", err)
	}
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}
	out, err := private.LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateTrail")}},
	})
	if err != nil || len(out.Events) != 1 || !strings.Contains(aws.ToString(out.Events[0].CloudTrailEvent), `"awsRegion":"xx-private-1"`) {
		t.Fatalf("LookupEvents in xx-private-1: %+v, %v", out, err)
	}
	// Declaring one region does not open the others.
	_, err = h.Client(h.AdminKeyID, h.AdminSecret, "xx-private-2").ListTrails(ctx, &cloudtrail.ListTrailsInput{})
	wantUnknownRegion(t, "an undeclared private region", err, "xx-private-2")
}

// TestBadDeclaredRegionRefusedAtOpen: a declared region that could not be
// a region name stops the server from starting.
func TestBadDeclaredRegionRefusedAtOpen(t *testing.T) {
	_, err := server.Open(context.Background(), server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Regions: []string{"../etc"}})
	if err == nil || !strings.Contains(err.Error(), "--regions") {
		t.Fatalf("Open = %v, want the bad region refused", err)
	}
}

// TestConsoleRegionPickerListsImportedRegions: the picker offers every
// region Cairn serves and every region with events, so an imported record
// with an anonymised region (as real exports carry) keeps its awsRegion and
// can be browsed; the console makes no change in such a region.
func TestConsoleRegionPickerListsImportedRegions(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	h.CreateBucket(t, "logs")
	const anon = "sagov-westsouth-1r"
	rec := fmt.Sprintf(`{"eventVersion":"1.08","eventID":"6f1b8a3e-0d7c-4c8e-9a55-3c2f4b1d9e01","eventTime":%q,"eventName":"RunInstances","eventSource":"ec2.amazonaws.com","awsRegion":%q,"eventType":"AwsApiCall","readOnly":false,"userIdentity":{"type":"IAMUser","userName":"alice"}}`+"\n",
		time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), anon)
	req, err := http.NewRequest(http.MethodPost, h.URL+server.ImportPath, strings.NewReader(rec))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	sum := sha256.Sum256([]byte(rec))
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: h.AdminKeyID, SecretAccessKey: h.AdminSecret},
		req, hex.EncodeToString(sum[:]), server.ImportService, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"accepted":1`) {
		t.Fatalf("import: %d %s", resp.StatusCode, out)
	}
	if err := h.Server.History().WaitIndexed(ctx, h.Server.Journal().LastSeq()); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, h.URL)
	b.signIn(h.AdminKeyID, h.AdminSecret)
	_, page := b.get("/console/")
	for _, r := range []string{anon, "us-east-1", "us-gov-west-1", "cn-north-1", "eu-west-3"} {
		if !strings.Contains(page, `<option value="`+r+`"`) {
			t.Errorf("the region picker does not offer %s", r)
		}
	}
	if strings.Index(page, `<option value="us-east-1"`) > strings.Index(page, `<option value="af-south-1"`) {
		t.Error("the default region is not first")
	}

	b.post("/console/region", url.Values{"csrf": {b.csrf}, "region": {anon}}, nil)
	_, page = b.get("/console/events?k=EventName&v=RunInstances")
	if !strings.Contains(page, "<strong>"+anon+"</strong>") || strings.Count(page, "<tr data-t=") != 1 {
		t.Fatalf("the imported region's history does not show its event")
	}
	// No change is made in a region Cairn does not serve.
	form := url.Values{"csrf": {b.csrf}, "name": {"anon-trail"}, "bucket_mode": {"existing"}, "bucket": {"logs"}, "selector_mode": {"basic"}}
	if resp, _ := b.post("/console/trails/new", form, nil); resp.StatusCode == http.StatusSeeOther {
		t.Fatalf("a trail was created in %s: %s", anon, resp.Header.Get("Location"))
	}
	b.post("/console/signout", url.Values{"csrf": {b.csrf}}, nil)
	if len(consoleRecords(t, h, "ConsoleLogout")) != 1 {
		t.Fatal("the sign-out was not recorded")
	}
	for _, r := range records(t, h) {
		if r.AWSRegion == anon && r.EventName != "RunInstances" {
			t.Errorf("%s recorded under the imported region %s", r.EventName, anon)
		}
	}
	if trails, err := h.CloudTrail.ListTrails(ctx, &cloudtrail.ListTrailsInput{}); err != nil || len(trails.Trails) != 0 {
		t.Fatalf("ListTrails = %+v, %v", trails, err)
	}
}
