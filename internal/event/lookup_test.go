package event

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// findRecord parses the first dataset record whose file name contains file
// and whose eventName is name.
func findRecord(t *testing.T, file, name string) *Record {
	t.Helper()
	names, recs := datasetRecords(t)
	for i, raw := range recs {
		if !strings.Contains(names[i], file) {
			continue
		}
		r, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		if r.EventName == name {
			return r
		}
	}
	t.Fatalf("no %s record in %s", name, file)
	return nil
}

func TestUsernameAndAccessKey(t *testing.T) {
	cases := []struct {
		file, event, typ, user, key string
	}{
		{"cloudtrail-stop", "StopLogging", "IAMUser", "christophe", "AKIAGGWFBBHBE7D3M9WI"},
		// AssumedRole: the session name (principalId after ':').
		{"ec2-steal-instance-credentials", "GetCallerIdentity", "AssumedRole", "i-786a3A8B5C0d92eF4", "ASIAP5CT9NN8EYVU1FXV"},
		// Anonymised SSO session whose ARN lost the session segment: principalId still has it.
		{"ec2-serial-console", "SendSerialConsoleSSHPublicKey", "AssumedRole", "randomca0L529zwNAY@gmail.com", "ASIA2HJRQF0DHNYEE9N1"},
		{"sts-federation-token", "GetCallerIdentity", "FederatedUser", "stratus_red_team", "ASIASTJKC5GCM7ZE6LUP"},
		// Console sign-in: no access key.
		{"console-login-without-mfa", "ConsoleLogin", "IAMUser", "stratus-red-team-nmfalu-jfzdtsvchl", ""},
		// flaws2: AWSService callers have no Username, as in real event history.
		{"20181128T2235Z_cR9ra7OH1rytWyXY", "AssumeRole", "AWSService", "", ""},
		{"20181128T2305Z_83VTWZ8Z0kiEC7Lq", "CreateLogStream", "AssumedRole", "level1", "ASIAZQNB3KHGIGYQXVVG"},
		// Anonymous S3 reader.
		{"20181128T2305Z_zKlMhON7EpHala9u", "GetObject", "AWSAccount", "", ""},
	}
	for _, tc := range cases {
		r := findRecord(t, tc.file, tc.event)
		if r.UserIdentityType != tc.typ || r.Username != tc.user || r.AccessKeyID != tc.key {
			t.Errorf("%s %s: type %q user %q key %q; want %q %q %q", tc.file, tc.event,
				r.UserIdentityType, r.Username, r.AccessKeyID, tc.typ, tc.user, tc.key)
		}
	}
}

func TestUsernameSynthetic(t *testing.T) {
	for ui, want := range map[string]string{
		`{"type":"Root","principalId":"123456789012","arn":"arn:aws:iam::123456789012:root","accountId":"123456789012","userName":"my-alias"}`: "root",
		`{"type":"IAMUser","arn":"arn:aws:iam::1:user/path/bob"}`:                                                                              "bob",
		`{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/R/sess"}`:                                                                    "sess",
		`{"type":"AssumedRole","principalId":"AROA:s1","invokedBy":"ec2.amazonaws.com"}`:                                                       "s1",
		`{"type":"FederatedUser","arn":"arn:aws:sts::1:federated-user/fed"}`:                                                                   "fed",
		`{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}`:                                                                         "",
		`{"type":"SAMLUser","principalId":"x","userName":"alice@example.com"}`:                                                                 "alice@example.com",
		`{"type":"WebIdentityUser","principalId":"accounts.google.com:1:2","userName":"1234"}`:                                                 "1234",
		`{"type":"IdentityCenterUser","onBehalfOf":{"userId":"u-1","identityStoreArn":"arn:x"}}`:                                               "u-1",
		`{"type":"Unknown","principalId":"AIDA:bob"}`:                                                                                          "bob",
		`{"type":"IAMUser","userName":"HIDDEN_DUE_TO_SECURITY_REASONS"}`:                                                                       "HIDDEN_DUE_TO_SECURITY_REASONS",
		`null`: "",
	} {
		r := mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","userIdentity":`+ui+`}`)
		if r.Username != want {
			t.Errorf("%s: Username %q want %q", ui, r.Username, want)
		}
	}
}

// TestUsernameOfChannelEvents: an application's own principal IDs are the
// user names of its channel events, and only of those.
func TestUsernameOfChannelEvents(t *testing.T) {
	r := mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventName":"CreateNote","eventCategory":"ActivityAuditLog","userIdentity":{"type":"User","principalId":"alice","details":{}}}`)
	if r.Username != "alice" {
		t.Errorf("channel event Username %q, want alice", r.Username)
	}
	r = mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","userIdentity":{"type":"AWSService","principalId":"svc"}}`)
	if r.Username != "" {
		t.Errorf("management event Username %q, want none", r.Username)
	}
}

// TestStratusTechniqueResources: the main resource of every Stratus technique
// shows up in the event-history resources of its defining event.
func TestStratusTechniqueResources(t *testing.T) {
	cases := []struct{ technique, event, typ, name string }{
		{"credential-access.ec2-get-password-data", "GetPasswordData", "AWS::EC2::Instance", "i-i2jnm5swa59p4fxg"},
		{"credential-access.ec2-steal-instance-credentials", "SendCommand", "AWS::EC2::Instance", "i-786a3A8B5C0d92eF4"},
		{"credential-access.secretsmanager-batch-retrieve-secrets", "BatchGetSecretValue", "", ""}, // filtered by tag: no ID in the record
		{"credential-access.secretsmanager-retrieve-secrets", "GetSecretValue", "AWS::SecretsManager::Secret", "arn:aws:secretsmanager:cn-centraleast-1r:903144391865:secret:stratus-red-team-retrieve-secret-18-4Rzn83"},
		{"credential-access.ssm-retrieve-securestring-parameters", "GetParameters", "AWS::SSM::Parameter", "/credentials/stratus-red-team/credentials-1"},
		{"defense-evasion.cloudtrail-delete", "DeleteTrail", "AWS::CloudTrail::Trail", "stratus-red-team-cloudtraild-trail-kvrwohmiai"},
		{"defense-evasion.cloudtrail-event-selectors", "PutEventSelectors", "AWS::CloudTrail::Trail", "stratus-red-team-ctes-trail-khlvciwdor"},
		{"defense-evasion.cloudtrail-stop", "StopLogging", "AWS::CloudTrail::Trail", "stratus-red-team-ct-stop-trail-buykxbqejv"},
		{"defense-evasion.dns-delete-logs", "DeleteResolverQueryLogConfig", "AWS::Route53Resolver::ResolverQueryLoggingConfig", "rqlc-4473f20ca554c07"},
		{"defense-evasion.organizations-leave", "AssumeRole", "AWS::IAM::Role", "arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role"},
		{"defense-evasion.organizations-leave", "LeaveOrganization", "", ""}, // no parameters at all
		{"defense-evasion.vpc-remove-flow-logs", "DeleteFlowLogs", "AWS::EC2::FlowLog", "fl-0e17aa62a21d4bbfe"},
		{"discovery.ec2-download-user-data", "DescribeInstanceAttribute", "AWS::EC2::Instance", "i-95b86090"},
		{"execution.ec2-launch-unusual-instances", "RunInstances", "AWS::EC2::Ami", "ami-aCBbfd13bdb1d1E4b"},
		{"execution.ec2-user-data", "ModifyInstanceAttribute", "AWS::EC2::Instance", "i-DDd6c7B0e18F0E35f"},
		{"execution.ssm-send-command", "SendCommand", "AWS::EC2::Instance", "i-00456A8D163f546Ff"},
		{"execution.ssm-send-command", "SendCommand", "AWS::SSM::Document", "AWS-RunShellScript"},
		{"execution.ssm-start-session", "StartSession", "AWS::EC2::Instance", "i-eA1d1296c1dE3Aa1f"},
		{"exfiltration.ec2-security-group-open-port-22-ingress", "AuthorizeSecurityGroupIngress", "AWS::EC2::SecurityGroup", "sg-003dc7f1f1c686164"},
		{"exfiltration.ec2-share-ami", "ModifyImageAttribute", "AWS::EC2::Ami", "ami-de1fbCab6ccB03e6D"},
		{"exfiltration.ec2-share-ebs-snapshot", "ModifySnapshotAttribute", "AWS::EC2::Snapshot", "snap-041993b54a9b3af6f"},
		{"exfiltration.rds-share-snapshot", "ModifyDBSnapshotAttribute", "AWS::RDS::DBSnapshot", "exfiltration"},
		{"impact.bedrock-invoke-model", "InvokeModel", "AWS::Bedrock::Model", "anthropic.claude-3-sonnet-20240229-v1:0"},
		{"initial-access.console-login-without-mfa", "ConsoleLogin", "", ""}, // event history shows no resources for sign-ins
		{"lateral-movement.ec2-instance-connect", "SendSSHPublicKey", "AWS::EC2::Instance", "i-fDb357cB7e99ad973"},
		{"lateral-movement.ec2-serial-console-send-ssh-public-key", "SendSerialConsoleSSHPublicKey", "AWS::EC2::Instance", "i-EFCb4e480CAbc4CF9"},
		{"persistence.iam-backdoor-role", "UpdateAssumeRolePolicy", "AWS::IAM::Role", "stratus-red-team-backdoor-r-role"},
		{"persistence.iam-backdoor-user", "CreateAccessKey", "AWS::IAM::User", "stratus-red-team-backdoor-u-user"},
		{"persistence.iam-backdoor-user", "CreateAccessKey", "AWS::IAM::AccessKey", "AKIAL80DWDVKKM0UXEER"},
		{"persistence.iam-create-admin-user", "CreateUser", "AWS::IAM::User", "malicious-iam-user"},
		{"persistence.iam-create-admin-user", "AttachUserPolicy", "AWS::IAM::Policy", "arn:aws:iam::aws:policy/AdministratorAccess"},
		{"persistence.iam-create-backdoor-role", "CreateRole", "AWS::IAM::Role", "stratus-red-team-malicious-iam-role"},
		{"persistence.iam-create-user-login-profile", "CreateLoginProfile", "AWS::IAM::User", "stratus-red-team-login-profile-user"},
		{"persistence.lambda-backdoor-function", "AddPermission20150331v2", "AWS::Lambda::Function", "stratus-red-team-backdoor-f-func"},
		{"persistence.lambda-layer-extension", "UpdateFunctionConfiguration20150331v2", "AWS::Lambda::Function", "arn:aws:lambda:eugov-eastcentral-1r:712967571683:function:stratus-red-team-lambda-layer-simpleLambda"},
		{"persistence.lambda-overwrite-code", "UpdateFunctionCode20150331v2", "AWS::Lambda::Function", "arn:aws:lambda:ap-westeast-2r:266106314375:function:stratus-red-team-olc-func-vayhjqkdav"},
		{"persistence.rolesanywhere-create-trust-anchor", "CreateTrustAnchor", "AWS::RolesAnywhere::TrustAnchor", "malicious-rolesanywhere-trust-anchor"},
		{"persistence.sts-federation-token", "GetFederationToken", "AWS::STS::FederatedUser", "stratus_red_team"},
		{"privilege-escalation.iam-update-user-login-profile", "UpdateLoginProfile", "AWS::IAM::User", "stratus-red-team-update-login-profile-user"},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.technique] = true
		r := findRecord(t, "aws."+tc.technique+".json", tc.event)
		if tc.typ == "" {
			if len(r.Resources) != 0 {
				t.Errorf("%s %s: want no resources, got %+v", tc.technique, tc.event, r.Resources)
			}
			continue
		}
		want := Resource{Type: tc.typ, Name: tc.name}
		if strings.HasPrefix(tc.name, "arn:") {
			want.ARN = tc.name
		}
		if !slices.Contains(r.Resources, want) {
			t.Errorf("%s %s: %+v not in %+v", tc.technique, tc.event, want, r.Resources)
		}
		if !r.MatchAttribute(AttrResourceName, tc.name) || !r.MatchAttribute(AttrResourceType, tc.typ) {
			t.Errorf("%s %s: attributes do not match", tc.technique, tc.event)
		}
	}
	for _, f := range stratusFiles(t) {
		tech := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "aws."), ".json")
		if !covered[tech] {
			t.Errorf("technique %s has no expectation", tech)
		}
	}
}

// TestAssumeRoleResources matches the shape of real event history output
// for sts:AssumeRole (published lookup-events output).
func TestAssumeRoleResources(t *testing.T) {
	r := findRecord(t, "ec2-get-password-data", "AssumeRole")
	var got []string
	for _, res := range r.Resources {
		got = append(got, res.Type+"="+res.Name)
	}
	want := []string{
		"AWS::IAM::AccessKey=ASIA7RQR64ZW9JXKWPUO",
		"AWS::STS::AssumedRole=aws-go-sdk-1722375070115152000",
		"AWS::STS::AssumedRole=AROAMLQ9F6KHQ07JKA0WY:aws-go-sdk-1722375070115152000",
		"AWS::STS::AssumedRole=arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000",
		"AWS::IAM::Role=arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if len(r.RecordResources) != 1 || r.RecordResources[0].AccountID != "457448411975" {
		t.Errorf("RecordResources %+v", r.RecordResources)
	}
}

func TestRecordResourcesAndFallback(t *testing.T) {
	// SSM GetParameters writes resources[] without "type": inferred from the ARN.
	r := findRecord(t, "ssm-retrieve-securestring-parameters", "GetParameters")
	if len(r.RecordResources) != 10 || r.RecordResources[0].Type != "AWS::SSM::Parameter" {
		t.Errorf("RecordResources %+v", r.RecordResources)
	}
	// kms is a known source: its table decides, resources[] is not copied
	// (real event history shows Resources [] for a service-invoked Decrypt).
	kms := mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventName":"Decrypt","eventSource":"kms.amazonaws.com","requestParameters":{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"},"resources":[{"accountId":"1","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-east-1:1:key/k"}]}`)
	if len(kms.Resources) != 0 || len(kms.RecordResources) != 1 {
		t.Errorf("kms Decrypt: %+v", kms.Resources)
	}
	// Unknown source: fall back to resources[].
	unk := mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventName":"X","eventSource":"new.amazonaws.com","resources":[{"ARN":"arn:aws:s3:::b"},{"type":"AWS::New::Thing","ARN":"arn:aws:new:::t","accountId":"1"},{"type":"AWS::New::Thing","ARN":"arn:aws:new:::t"}]}`)
	want := []Resource{{Type: "AWS::S3::Bucket", Name: "arn:aws:s3:::b", ARN: "arn:aws:s3:::b"}, {Type: "AWS::New::Thing", Name: "arn:aws:new:::t", ARN: "arn:aws:new:::t", AccountID: "1"}}
	if !reflect.DeepEqual(unk.Resources, want) {
		t.Errorf("fallback: %+v", unk.Resources)
	}
	for arn, typ := range map[string]string{
		"arn:aws:s3:::b/k": "AWS::S3::Object", "arn:aws:iam::1:role/x": "AWS::IAM::Role", "arn:aws:lambda:r:1:function:f": "AWS::Lambda::Function",
		"arn:aws:sns:r:1:t": "AWS::SNS::Topic", "arn:aws:ec2:r:1:instance/i-1": "AWS::EC2::Instance", "nope": "", "arn:aws:zzz:r:1:q/x": "",
	} {
		if got := typeFromARN(arn); got != typ {
			t.Errorf("typeFromARN(%s) = %q want %q", arn, got, typ)
		}
	}
}

func TestAttributeValues(t *testing.T) {
	r := findRecord(t, "iam-backdoor-user", "CreateAccessKey")
	for key, want := range map[string][]string{
		AttrEventID:      {r.EventID},
		AttrEventName:    {"CreateAccessKey"},
		AttrReadOnly:     {"false"},
		AttrUsername:     {"christophe"},
		AttrResourceType: {"AWS::IAM::AccessKey", "AWS::IAM::User"},
		AttrResourceName: {"AKIAL80DWDVKKM0UXEER", "stratus-red-team-backdoor-u-user"},
		AttrEventSource:  {"iam.amazonaws.com"},
		AttrAccessKeyID:  {"AKIA30BEZSJBVKOFKZW0"},
		"eventName":      nil,
		"Bogus":          nil,
	} {
		if got := r.AttributeValues(key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q want %q", key, got, want)
		}
	}
	if r.EventID == "" || len(AttributeKeys()) != 8 {
		t.Fatal("setup")
	}
	for _, k := range AttributeKeys() {
		if !IsAttributeKey(k) || IsAttributeKey(strings.ToLower(k)) {
			t.Errorf("IsAttributeKey(%s)", k)
		}
	}
	// Exact and case-sensitive.
	if !r.MatchAttribute(AttrUsername, "christophe") || r.MatchAttribute(AttrUsername, "Christophe") ||
		r.MatchAttribute(AttrUsername, "chris") || r.MatchAttribute(AttrEventName, "createaccesskey") ||
		r.MatchAttribute(AttrAccessKeyID, "") {
		t.Error("matching must be exact and case-sensitive")
	}
	// Multi-valued types are de-duplicated.
	ar := findRecord(t, "ec2-get-password-data", "AssumeRole")
	if got := ar.AttributeValues(AttrResourceType); !reflect.DeepEqual(got, []string{"AWS::IAM::AccessKey", "AWS::STS::AssumedRole", "AWS::IAM::Role"}) {
		t.Errorf("ResourceType values %q", got)
	}
}

func TestLookupEvent(t *testing.T) {
	r := findRecord(t, "ec2-steal-instance-credentials", "GetCallerIdentity")
	ev := r.LookupEvent()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"EventId":"` + r.EventID + `","EventName":"GetCallerIdentity","ReadOnly":"true","AccessKeyId":"ASIAP5CT9NN8EYVU1FXV","EventSource":"sts.amazonaws.com","Username":"i-786a3A8B5C0d92eF4","Resources":[],"CloudTrailEvent":`
	if !strings.HasPrefix(string(b), want) {
		t.Errorf("got  %s\nwant prefix %s", b, want)
	}
	if ev.CloudTrailEvent != string(r.Raw) || !ev.EventTime.Equal(r.EventTime) {
		t.Error("CloudTrailEvent/EventTime")
	}
	old := mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}`).LookupEvent()
	b, _ = json.Marshal(old)
	if string(b) != `{"EventName":"A","Resources":[],"CloudTrailEvent":"{\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventName\":\"A\",\"userIdentity\":{\"type\":\"AWSService\",\"invokedBy\":\"s3.amazonaws.com\"}}"}` {
		t.Errorf("unknown fields must be left out: %s", b)
	}
}

func TestCategory(t *testing.T) {
	names, recs := datasetRecords(t)
	counts := map[string]int{}
	for i, raw := range recs {
		r, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		c := r.Category()
		counts[c]++
		data := r.EventName == "GetObject" || r.EventName == "ListObjects" || r.EventName == "Invoke"
		if data != (c == "Data") || data == r.IsManagementEvent() {
			t.Errorf("%s %s: category %s", names[i], r.EventName, c)
		}
	}
	if counts["Data"] != 25 || counts["Management"] != 322 {
		t.Errorf("counts %v", counts)
	}
	if c := mustParse(t, `{"eventTime":"2024-01-01T00:00:00Z","eventType":"AwsCloudTrailInsight","insightDetails":{"eventName":"X"}}`).Category(); c != "Insight" {
		t.Errorf("insight: %s", c)
	}
}
