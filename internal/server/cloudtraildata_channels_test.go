package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/testenv"
)

// TestChannelsThroughSDK drives the channel control plane with the real
// aws-sdk-go-v2 CloudTrail client: every output shape must deserialize and
// every modeled error must surface as the SDK's typed error.
func TestChannelsThroughSDK(t *testing.T) {
	e := startDataEnv(t)
	ctx := testCtx(t)
	ct := e.ct

	created, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{
		Name: aws.String("sdk-channel"), Source: aws.String("Custom"),
		Destinations: []cttypes.Destination{{Type: cttypes.DestinationTypeEventDataStore, Location: aws.String(e.eds)}},
		Tags:         []cttypes.Tag{{Key: aws.String("team"), Value: aws.String("sec")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.ChannelArn)
	if aws.ToString(created.Name) != "sdk-channel" || aws.ToString(created.Source) != "Custom" || len(created.Tags) != 1 || len(created.Destinations) != 1 {
		t.Fatalf("CreateChannel output %+v", created)
	}
	got, err := ct.GetChannel(ctx, &cloudtrail.GetChannelInput{Channel: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if got.SourceConfig == nil || aws.ToBool(got.SourceConfig.ApplyToAllRegions) || len(got.SourceConfig.AdvancedEventSelectors) != 1 ||
		got.SourceConfig.AdvancedEventSelectors[0].FieldSelectors[0].Equals[0] != "ActivityAuditLog" || got.IngestionStatus == nil {
		t.Fatalf("GetChannel output %+v", got)
	}

	for i := range 4 {
		if _, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String(fmt.Sprintf("more-%d", i)), Source: aws.String("Custom"),
			Destinations: []cttypes.Destination{{Type: cttypes.DestinationTypeEventDataStore, Location: aws.String(e.eds)}}}); err != nil {
			t.Fatal(err)
		}
	}
	pages := cloudtrail.NewListChannelsPaginator(ct, &cloudtrail.ListChannelsInput{MaxResults: aws.Int32(2)})
	var names []string
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Channels {
			names = append(names, aws.ToString(c.Name))
		}
	}
	if strings.Join(names, ",") != "sdk-channel,more-0,more-1,more-2,more-3" {
		t.Fatalf("paginated ListChannels %v", names)
	}

	up, err := ct.UpdateChannel(ctx, &cloudtrail.UpdateChannelInput{Channel: aws.String(arn), Name: aws.String("renamed")})
	if err != nil || aws.ToString(up.Name) != "renamed" || aws.ToString(up.ChannelArn) != arn {
		t.Fatalf("UpdateChannel %+v %v", up, err)
	}
	tags, err := ct.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{arn}})
	if err != nil || len(tags.ResourceTagList) != 1 || len(tags.ResourceTagList[0].TagsList) != 1 {
		t.Fatalf("ListTags %+v %v", tags, err)
	}
	if _, err := ct.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(arn), TagsList: []cttypes.Tag{{Key: aws.String("env")}}}); err != nil {
		t.Fatal(err)
	}
	policy := `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"cloudtrail-data:PutAuditEvents"}]}`
	pol, err := ct.PutResourcePolicy(ctx, &cloudtrail.PutResourcePolicyInput{ResourceArn: aws.String(arn), ResourcePolicy: aws.String(policy)})
	if err != nil || aws.ToString(pol.ResourcePolicy) != policy {
		t.Fatalf("PutResourcePolicy %+v %v", pol, err)
	}
	gp, err := ct.GetResourcePolicy(ctx, &cloudtrail.GetResourcePolicyInput{ResourceArn: aws.String(arn)})
	if err != nil || aws.ToString(gp.ResourcePolicy) != policy || aws.ToString(gp.ResourceArn) != arn {
		t.Fatalf("GetResourcePolicy %+v %v", gp, err)
	}
	if _, err := ct.DeleteResourcePolicy(ctx, &cloudtrail.DeleteResourcePolicyInput{ResourceArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}

	// Modeled errors, as the SDK's typed errors.
	missing := "arn:aws:cloudtrail:us-east-1:" + dataAccount + ":channel/9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"
	eds := []cttypes.Destination{{Type: cttypes.DestinationTypeEventDataStore, Location: aws.String(e.eds)}}
	expect := func(name string, err error, target any) {
		t.Helper()
		if err == nil || !errors.As(err, target) {
			t.Errorf("%s: got %v, want %T", name, err, target)
		}
	}
	_, err = ct.GetChannel(ctx, &cloudtrail.GetChannelInput{Channel: aws.String(missing)})
	expect("GetChannel missing", err, new(*cttypes.ChannelNotFoundException))
	_, err = ct.GetChannel(ctx, &cloudtrail.GetChannelInput{Channel: aws.String("not-a-channel")})
	expect("GetChannel invalid", err, new(*cttypes.ChannelARNInvalidException))
	_, err = ct.DeleteChannel(ctx, &cloudtrail.DeleteChannelInput{Channel: aws.String(missing)})
	expect("DeleteChannel missing", err, new(*cttypes.ChannelNotFoundException))
	_, err = ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("more-0"), Source: aws.String("Custom"), Destinations: eds})
	expect("CreateChannel duplicate", err, new(*cttypes.ChannelAlreadyExistsException))
	_, err = ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("partner"), Source: aws.String("Okta"), Destinations: eds})
	expect("CreateChannel partner", err, new(*cttypes.InvalidSourceException))
	_, err = ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("bad-eds"), Source: aws.String("Custom"),
		Destinations: []cttypes.Destination{{Type: cttypes.DestinationTypeEventDataStore, Location: aws.String("eds-name")}}})
	expect("CreateChannel EDS", err, new(*cttypes.EventDataStoreARNInvalidException))
	_, err = ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("a b c"), Source: aws.String("Custom"), Destinations: eds})
	expect("CreateChannel name", err, new(*cttypes.InvalidParameterException))
	_, err = ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("tagged"), Source: aws.String("Custom"), Destinations: eds,
		Tags: []cttypes.Tag{{Key: aws.String("aws:x")}}})
	expect("CreateChannel tag", err, new(*cttypes.InvalidTagParameterException))
	var many []cttypes.Tag
	for i := range 51 {
		many = append(many, cttypes.Tag{Key: aws.String(fmt.Sprintf("k%d", i))})
	}
	_, err = ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("tagged"), Source: aws.String("Custom"), Destinations: eds, Tags: many})
	expect("CreateChannel 51 tags", err, new(*cttypes.TagsLimitExceededException))
	_, err = ct.UpdateChannel(ctx, &cloudtrail.UpdateChannelInput{Channel: aws.String(arn), Name: aws.String("more-1")})
	expect("UpdateChannel name taken", err, new(*cttypes.ChannelAlreadyExistsException))
	_, err = ct.ListChannels(ctx, &cloudtrail.ListChannelsInput{NextToken: aws.String("bogus-token")})
	expect("ListChannels token", err, new(*cttypes.InvalidNextTokenException))
	_, err = ct.GetResourcePolicy(ctx, &cloudtrail.GetResourcePolicyInput{ResourceArn: aws.String(arn)})
	expect("GetResourcePolicy none", err, new(*cttypes.ResourcePolicyNotFoundException))
	_, err = ct.PutResourcePolicy(ctx, &cloudtrail.PutResourcePolicyInput{ResourceArn: aws.String(arn), ResourcePolicy: aws.String("{}")})
	expect("PutResourcePolicy invalid", err, new(*cttypes.ResourcePolicyNotValidException))
	_, err = ct.PutResourcePolicy(ctx, &cloudtrail.PutResourcePolicyInput{ResourceArn: aws.String(e.eds), ResourcePolicy: aws.String(policy)})
	expect("PutResourcePolicy EDS", err, new(*cttypes.ResourceTypeNotSupportedException))
	_, err = ct.PutResourcePolicy(ctx, &cloudtrail.PutResourcePolicyInput{ResourceArn: aws.String("no-arn"), ResourcePolicy: aws.String(policy)})
	expect("PutResourcePolicy ARN", err, new(*cttypes.ResourceARNNotValidException))
	_, err = ct.DeleteResourcePolicy(ctx, &cloudtrail.DeleteResourcePolicyInput{ResourceArn: aws.String(missing)})
	expect("DeleteResourcePolicy missing channel", err, new(*cttypes.ResourceNotFoundException))
	for i := 5; i < 25; i++ {
		if _, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String(fmt.Sprintf("fill-%d", i)), Source: aws.String("Custom"), Destinations: eds}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("too-many"), Source: aws.String("Custom"), Destinations: eds})
	expect("CreateChannel quota", err, new(*cttypes.ChannelMaxLimitExceededException))

	// A read-only key reads channels but cannot change them.
	ro := cloudtrail.New(e.ct.Options(), func(o *cloudtrail.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(e.roID, e.roSecret, "")
	})
	if _, err := ro.GetChannel(ctx, &cloudtrail.GetChannelInput{Channel: aws.String(arn)}); err != nil {
		t.Fatalf("read-only GetChannel: %v", err)
	}
	_, err = ro.DeleteChannel(ctx, &cloudtrail.DeleteChannelInput{Channel: aws.String(arn)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("read-only DeleteChannel: %v", err)
	}
	if _, err := ct.DeleteChannel(ctx, &cloudtrail.DeleteChannelInput{Channel: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
}

// TestAWSCLIPutAuditEvents runs the real AWS CLI against Cairn: create a
// channel, put events from a file, read the channel back. With CI=true a
// missing CLI is a failure, not a skip.
func TestAWSCLIPutAuditEvents(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		testenv.RequireOrSkip(t, "no aws CLI on PATH: %v", err)
	}
	e := startDataEnv(t)
	creds := filepath.Join(e.DataDir, "credentials")
	if _, err := os.Stat(creds); err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(testCtx(t), awsBin, args...)
		cmd.Env = append(os.Environ(),
			"AWS_ENDPOINT_URL="+e.URL,
			"AWS_SHARED_CREDENTIALS_FILE="+creds,
			"AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "none"),
			"AWS_PROFILE=cairn",
			"AWS_DEFAULT_REGION=us-east-1",
			"AWS_EC2_METADATA_DISABLED=true",
			"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=",
			"AWS_PAGER=",
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("cloudtrail", "create-channel", "--name", "cli-channel", "--source", "Custom",
		"--destinations", "Type=EVENT_DATA_STORE,Location="+e.eds, "--query", "ChannelArn", "--output", "text")
	arn := strings.TrimSpace(out)
	if !strings.HasPrefix(arn, "arn:aws:cloudtrail:us-east-1:"+dataAccount+":channel/") {
		t.Fatalf("create-channel printed %q", out)
	}

	good := appEvent(map[string]any{"UID": "cli-1"})
	events := fmt.Sprintf(`[{"id":"cli-event-1","eventData":%q,"eventDataChecksum":%q},{"id":"cli-event-2","eventData":%q}]`,
		good, *sha256b64(good), appEvent(map[string]any{"recipientAccountId": "210987654321"}))
	file := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(file, []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	before := len(e.records(t))
	out = run("cloudtrail-data", "put-audit-events", "--channel-arn", arn, "--audit-events", "file://"+file, "--output", "json")
	var resp struct {
		Successful []struct{ ID, EventID string }   `json:"successful"`
		Failed     []struct{ ID, ErrorCode string } `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("put-audit-events output %q: %v", out, err)
	}
	if len(resp.Successful) != 1 || resp.Successful[0].ID != "cli-event-1" || len(resp.Failed) != 1 || resp.Failed[0].ErrorCode != "InvalidRecipient" {
		t.Fatalf("put-audit-events: %s", out)
	}
	recs := e.records(t)[before:]
	if len(recs) != 2 || recs[0].EventID != resp.Successful[0].EventID || !strings.HasPrefix(recs[1].UserAgent, "aws-cli/") {
		t.Fatalf("journal after the CLI call: %d records", len(recs))
	}

	// An error reaches the CLI with its code.
	cmd := exec.CommandContext(testCtx(t), awsBin, "cloudtrail-data", "put-audit-events", "--channel-arn",
		strings.Replace(arn, arn[len(arn)-36:], "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f", 1), "--audit-events", "file://"+file)
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+e.URL, "AWS_SHARED_CREDENTIALS_FILE="+creds, "AWS_PROFILE=cairn",
		"AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "none"), "AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=")
	errOut, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(errOut), "(ChannelNotFound)") {
		t.Fatalf("unknown channel via the CLI: %v\n%s", err, errOut)
	}

	got, err := e.ct.GetChannel(testCtx(t), &cloudtrail.GetChannelInput{Channel: aws.String(arn)})
	if err != nil || aws.ToString(got.IngestionStatus.LatestIngestionSuccessEventID) != resp.Successful[0].EventID {
		t.Fatalf("GetChannel after the CLI call: %+v %v", got, err)
	}
}
