package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/tags"
)

// newEDSEnv is channelEnv with the event data store operations: the lake
// service on the same state store and clock, the channel service checking
// its destinations with it, and the tagging service resolving both kinds
// of ARN, as the server wires them.
func newEDSEnv(t *testing.T) (*channelEnv, *lake.Service) {
	t.Helper()
	e := newChannelEnv(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var chans *channel.Service
	svc := lake.New(e.store, channelAccount, func() time.Time { return e.now }, lake.WithLogger(log), lake.WithChannels(channelsOf{&chans}))
	var err error
	chans, err = channel.New(e.store, channelAccount, channel.Options{Now: func() time.Time { return e.now }, Logger: log, EventDataStores: svc})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = chans
	tagging := tags.NewService(e.store, channelAccount, map[string]tags.Resolver{tags.TypeChannel: chans, tags.TypeEventDataStore: svc})
	if e.reg, err = api.NewRegistry(api.EventDataStoreOperations(svc), api.ChannelOperations(chans), api.TagOperations(tagging)); err != nil {
		t.Fatal(err)
	}
	return e, svc
}

// channelsOf is the server's late-bound channel index.
type channelsOf struct{ svc **channel.Service }

func (c channelsOf) ChannelsByStore(ctx context.Context, r state.Reader) (map[string][]string, error) {
	return (*c.svc).ChannelsByStore(ctx, r)
}

func edsARNOf(t *testing.T, out []byte) string {
	t.Helper()
	var v struct{ EventDataStoreArn string }
	if err := json.Unmarshal(out, &v); err != nil || v.EventDataStoreArn == "" {
		t.Fatalf("no EventDataStoreArn in %s", out)
	}
	return v.EventDataStoreArn
}

const auditSelectors = `[{"Name":"Channel events","FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]}]`

// TestEventDataStoreOperationsGolden pins every answer of the eight
// operations, and the errors of their rules, byte for byte.
func TestEventDataStoreOperationsGolden(t *testing.T) {
	e, svc := newEDSEnv(t)
	ctx := context.Background()
	out := e.ok("create with defaults", channelRegion, "CreateEventDataStore", `{"Name":"management-events"}`)
	mgmt := edsARNOf(t, out)
	mgmtID := mgmt[strings.LastIndex(mgmt, "/")+1:]
	e.ok("get by ID: running", channelRegion, "GetEventDataStore", `{"EventDataStore":"`+mgmtID+`"}`)
	e.now = e.now.Add(time.Minute)
	out = e.ok("create with every option", channelRegion, "CreateEventDataStore", `{"Name":"s3-data","AdvancedEventSelectors":[{"Name":"S3 objects","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"userIdentity.arn","StartsWith":["arn:aws:iam::123456789012:role/"]}]}],"MultiRegionEnabled":false,"RetentionPeriod":30,"TerminationProtectionEnabled":false,"TagsList":[{"Key":"team","Value":"sec"}],"KmsKeyId":"alias/lake","StartIngestion":false,"BillingMode":"FIXED_RETENTION_PRICING"}`)
	data := edsARNOf(t, out)
	e.ok("get: stopped ingestion", channelRegion, "GetEventDataStore", `{"EventDataStore":"`+data+`"}`)
	e.ok("start ingestion", channelRegion, "StartEventDataStoreIngestion", `{"EventDataStore":"`+data+`"}`)
	e.fails("start ingestion again", channelRegion, "StartEventDataStoreIngestion", `{"EventDataStore":"`+data+`"}`, "InvalidEventDataStoreStatusException")
	e.ok("stop ingestion", channelRegion, "StopEventDataStoreIngestion", `{"EventDataStore":"`+data+`"}`)
	e.now = e.now.Add(time.Minute)
	e.ok("update: rename, extendable billing, longer retention", channelRegion, "UpdateEventDataStore", `{"EventDataStore":"`+data+`","Name":"s3-objects","BillingMode":"EXTENDABLE_RETENTION_PRICING","RetentionPeriod":3653}`)
	e.fails("update: back to fixed", channelRegion, "UpdateEventDataStore", `{"EventDataStore":"`+data+`","BillingMode":"FIXED_RETENTION_PRICING"}`, "InvalidParameterException")
	e.fails("update: change the KMS key", channelRegion, "UpdateEventDataStore", `{"EventDataStore":"`+data+`","KmsKeyId":"alias/other"}`, "InvalidParameterException")
	e.ok("update: the same KMS key as an ARN", channelRegion, "UpdateEventDataStore", `{"EventDataStore":"`+data+`","KmsKeyId":"arn:aws:kms:us-east-1:123456789012:alias/lake"}`)
	e.fails("update: nothing", channelRegion, "UpdateEventDataStore", `{"EventDataStore":"`+data+`"}`, "InvalidParameterException")
	out = e.ok("create the channels' store", channelRegion, "CreateEventDataStore", `{"Name":"channel-events","AdvancedEventSelectors":`+auditSelectors+`,"TerminationProtectionEnabled":false}`)
	audit := edsARNOf(t, out)
	e.fails("stop ingestion of an ActivityAuditLog store", channelRegion, "StopEventDataStoreIngestion", `{"EventDataStore":"`+audit+`"}`, "InvalidEventDataStoreCategoryException")
	e.fails("update: ActivityAuditLog to management", channelRegion, "UpdateEventDataStore", `{"EventDataStore":"`+audit+`","AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]}`, "InvalidEventSelectorsException")
	e.ok("list all", channelRegion, "ListEventDataStores", `{}`)
	e.ok("list one per page", channelRegion, "ListEventDataStores", `{"MaxResults":1}`)

	// Channels and their stores.
	out = e.ok("channel to the audit store", channelRegion, "CreateChannel", `{"Name":"app","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+audit+`"}]}`)
	chARN := channelARNOf(t, out)
	e.fails("channel to a management store", channelRegion, "CreateChannel", `{"Name":"app2","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+mgmt+`"}]}`, "InvalidEventDataStoreCategoryException")
	e.fails("channel to a missing store", channelRegion, "CreateChannel", channelCreateBody("app3"), "EventDataStoreNotFoundException")
	e.fails("delete a store a channel sends to", channelRegion, "DeleteEventDataStore", `{"EventDataStore":"`+audit+`"}`, "ChannelExistsForEDSException")
	specs, err := svc.Specs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if sp.ARN == audit && (len(sp.Channels) != 1 || sp.Channels[0] != chARN || sp.Category != lake.CategoryActivityAuditLog || !sp.Ingesting || !sp.Queryable) {
			t.Errorf("spec of the audit store: %+v", sp)
		}
	}
	e.ok("delete the channel", channelRegion, "DeleteChannel", `{"Channel":"`+chARN+`"}`)

	// Deletion, restore, purge.
	e.fails("delete a protected store", channelRegion, "DeleteEventDataStore", `{"EventDataStore":"`+mgmt+`"}`, "EventDataStoreTerminationProtectedException")
	e.ok("delete", channelRegion, "DeleteEventDataStore", `{"EventDataStore":"`+data+`"}`)
	e.ok("get: pending deletion", channelRegion, "GetEventDataStore", `{"EventDataStore":"`+data+`"}`)
	e.fails("update a store pending deletion", channelRegion, "UpdateEventDataStore", `{"EventDataStore":"`+data+`","RetentionPeriod":90}`, "InactiveEventDataStoreException")
	e.fails("delete it again", channelRegion, "DeleteEventDataStore", `{"EventDataStore":"`+data+`"}`, "InactiveEventDataStoreException")
	e.fails("start ingestion of a store pending deletion", channelRegion, "StartEventDataStoreIngestion", `{"EventDataStore":"`+data+`"}`, "InvalidEventDataStoreStatusException")
	e.ok("restore", channelRegion, "RestoreEventDataStore", `{"EventDataStore":"`+data+`"}`)
	e.fails("restore a store not pending deletion", channelRegion, "RestoreEventDataStore", `{"EventDataStore":"`+data+`"}`, "InvalidEventDataStoreStatusException")
	e.ok("delete the audit store", channelRegion, "DeleteEventDataStore", `{"EventDataStore":"`+audit+`"}`)
	e.fails("channel to a store pending deletion", channelRegion, "CreateChannel", `{"Name":"app4","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"`+audit+`"}]}`, "InactiveEventDataStoreException")
	e.fails("get a store that does not exist", channelRegion, "GetEventDataStore", `{"EventDataStore":"nope"}`, "EventDataStoreNotFoundException")
	if _, err := svc.Resolve(ctx, channelRegion, audit); err == nil || !strings.Contains(err.Error(), "InactiveEventDataStoreException") {
		t.Errorf("Resolve of a store pending deletion: %v", err)
	}
	e.now = e.now.Add(lake.PendingDeletionPeriod)
	e.fails("restore after seven days", channelRegion, "RestoreEventDataStore", `{"EventDataStore":"`+audit+`"}`, "EventDataStoreNotFoundException")
	n, err := svc.Purge(ctx, e.now)
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1 store removed", n, err)
	}
	e.fails("get after the purge", channelRegion, "GetEventDataStore", `{"EventDataStore":"`+audit+`"}`, "EventDataStoreNotFoundException")
	e.ok("list after the purge", channelRegion, "ListEventDataStores", `{}`)
	e.checkGolden("eds_operations.golden")
}
