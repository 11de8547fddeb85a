package event

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/golden"
)

func sampleCall() APICall {
	return APICall{
		Time:      time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.FixedZone("CET", 3600)),
		Source:    "cloudtrail.amazonaws.com",
		Name:      "StopLogging",
		Region:    "eu-west-1",
		SourceIP:  "203.0.113.7",
		UserAgent: "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0 source/x86_64.debian.12 prompt/off command/cloudtrail.stop-logging <&>",
		RequestID: "8f1c1f4e-5b0a-4a8e-9d55-0c2b7f9d1a11",
		EventID:   "0f6a4b0e-2f8e-4c43-9f1f-2d9f6a6a7c11",
		Identity: UserIdentity{
			Type: "AssumedRole", PrincipalID: "AROAEXAMPLEROLEID:alice", AccountID: "123456789012",
			ARN:         "arn:aws:sts::123456789012:assumed-role/Auditor/alice",
			AccessKeyID: "ASIAEXAMPLEKEY",
			SessionContext: &SessionContext{
				SessionIssuer: &SessionIssuer{Type: "Role", PrincipalID: "AROAEXAMPLEROLEID",
					ARN: "arn:aws:iam::123456789012:role/Auditor", AccountID: "123456789012", UserName: "Auditor"},
				CreationDate: time.Date(2026, 3, 14, 14, 0, 0, 0, time.UTC),
			},
		},
		RecipientAccountID: "123456789012",
		RequestParameters:  json.RawMessage(`{ "name": "arn:aws:cloudtrail:eu-west-1:123456789012:trail/main",  "n": 1.0 }`),
		TLS: &TLSDetails{TLSVersion: "TLSv1.3", CipherSuite: "TLS_AES_128_GCM_SHA256",
			ClientProvidedHostHeader: "cloudtrail.eu-west-1.amazonaws.com"},
	}
}

func TestAPICallRecordGolden(t *testing.T) {
	r, err := sampleCall().Record()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "apicall.golden"), append(append([]byte(nil), r.Raw...), '\n'))

	// Field order is AWS's (reference §3.1).
	order := []string{"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
		"sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID", "eventID",
		"readOnly", "eventType", "managementEvent", "recipientAccountId", "eventCategory", "tlsDetails"}
	var got []string
	eachMember(r.Raw, func(k, _ []byte) bool { got = append(got, string(k)); return true })
	if strings.Join(got, ",") != strings.Join(order, ",") {
		t.Errorf("member order\n got %v\nwant %v", got, order)
	}
	if r.EventVersion != "1.11" || r.EventType != "AwsApiCall" || r.EventCategory != "Management" ||
		r.ManagementEvent != True || r.ReadOnly != False {
		t.Errorf("fixed fields wrong: %+v", r)
	}
	if want := time.Date(2026, 3, 14, 14, 9, 26, 0, time.UTC); !r.EventTime.Equal(want) {
		t.Errorf("EventTime = %v, want %v (UTC, whole seconds)", r.EventTime, want)
	}
	if r.Username != "alice" || r.AccessKeyID != "ASIAEXAMPLEKEY" {
		t.Errorf("Username %q AccessKeyID %q", r.Username, r.AccessKeyID)
	}
	if len(r.Resources) != 1 || r.Resources[0].Type != "AWS::CloudTrail::Trail" {
		t.Errorf("Resources = %+v", r.Resources)
	}
	if !bytes.Contains(r.Raw, []byte(`"responseElements":null`)) || !bytes.Contains(r.Raw, []byte(`"n":1.0`)) {
		t.Errorf("nil ResponseElements must be null and literals kept: %s", r.Raw)
	}
}

// TestAPICallKinds checks that data events and console actions are written
// with the classification CloudTrail gives them, which decides whether a
// trail's selectors and the event history see them.
func TestAPICallKinds(t *testing.T) {
	data := sampleCall()
	data.Source, data.Name, data.DataEvent = "s3.amazonaws.com", "GetObject", true
	r, err := data.Record()
	if err != nil {
		t.Fatal(err)
	}
	if r.EventType != "AwsApiCall" || r.ManagementEvent != False || r.EventCategory != "Data" {
		t.Errorf("data event: eventType %q managementEvent %v eventCategory %q", r.EventType, r.ManagementEvent, r.EventCategory)
	}
	console := sampleCall()
	console.EventType, console.FromConsole = "AwsConsoleAction", true
	if r, err = console.Record(); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(r.Raw, []byte(`,"sessionCredentialFromConsole":"true"}`)) {
		t.Errorf("sessionCredentialFromConsole must close the record as a string: %s", r.Raw)
	}
	if r.EventType != "AwsConsoleAction" || r.ManagementEvent != True || r.EventCategory != "Management" {
		t.Errorf("console action: eventType %q managementEvent %v eventCategory %q", r.EventType, r.ManagementEvent, r.EventCategory)
	}
}

func TestAPICallRecordErrors(t *testing.T) {
	c := sampleCall()
	c.Name = ""
	if _, err := c.Record(); err == nil || !strings.Contains(err.Error(), "Name") {
		t.Errorf("missing Name: err = %v", err)
	}
	c = sampleCall()
	c.ResponseElements = json.RawMessage(`[1]`)
	if _, err := c.Record(); err == nil || !strings.Contains(err.Error(), "ResponseElements") {
		t.Errorf("array ResponseElements: err = %v", err)
	}
	c = sampleCall()
	c.EventID = ""
	r, err := c.Record()
	if err != nil || len(r.EventID) != 36 {
		t.Errorf("generated EventID %q, err %v", r.EventID, err)
	}
	c = sampleCall()
	c.ErrorCode, c.ErrorMessage = "TrailNotFoundException", "Unknown trail"
	c.ReadOnly = true
	r, err = c.Record()
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != "TrailNotFoundException" || r.ReadOnly != True ||
		!bytes.Contains(r.Raw, []byte(`"userAgent":"aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0 source/x86_64.debian.12 prompt/off command/cloudtrail.stop-logging <&>","errorCode":"TrailNotFoundException","errorMessage":"Unknown trail","requestParameters"`)) {
		t.Errorf("error fields: %s", r.Raw)
	}
}
