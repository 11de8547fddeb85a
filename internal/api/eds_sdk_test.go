package api_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// These tests drive the event data store operations through a real Cairn
// with the real aws-sdk-go-v2 CloudTrail client: every answer must
// deserialize into the SDK's types and every modeled error must surface
// as the SDK's typed error.

func mgmtSelectors() []types.AdvancedEventSelector {
	return []types.AdvancedEventSelector{{FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"Management"}}}}}
}

func auditStoreSelectors() []types.AdvancedEventSelector {
	return []types.AdvancedEventSelector{{FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"ActivityAuditLog"}}}}}
}

func TestEventDataStoresSDKLifecycle(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	ct := h.CloudTrail

	created := res(ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("org-trail-events")})).must(t, "CreateEventDataStore")
	if created.Status != types.EventDataStoreStatusCreated || !aws.ToBool(created.MultiRegionEnabled) || aws.ToBool(created.OrganizationEnabled) ||
		created.BillingMode != types.BillingModeExtendableRetentionPricing || aws.ToInt32(created.RetentionPeriod) != 366 ||
		!aws.ToBool(created.TerminationProtectionEnabled) || created.KmsKeyId != nil || created.CreatedTimestamp == nil ||
		len(created.AdvancedEventSelectors) != 1 || aws.ToString(created.AdvancedEventSelectors[0].Name) != "Default management events" {
		t.Errorf("CreateEventDataStore defaults: %+v", created)
	}
	arn := aws.ToString(created.EventDataStoreArn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	if !strings.HasPrefix(arn, "arn:aws:cloudtrail:us-east-1:") || !strings.Contains(arn, ":eventdatastore/") || len(id) != 36 {
		t.Fatalf("EventDataStoreArn %s", arn)
	}
	got := res(ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(id)})).must(t, "GetEventDataStore by ID")
	if got.Status != types.EventDataStoreStatusEnabled || got.FederationStatus != types.FederationStatusDisabled || aws.ToString(got.EventDataStoreArn) != arn {
		t.Errorf("GetEventDataStore: %+v", got)
	}

	fixed := res(ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{
		Name: aws.String("fixed"), BillingMode: types.BillingModeFixedRetentionPricing, StartIngestion: aws.Bool(false),
		MultiRegionEnabled: aws.Bool(false), TerminationProtectionEnabled: aws.Bool(false),
		KmsKeyId: aws.String("4c5ae5ac-3c13-421e-8335-c7868ef6a769"),
		TagsList: []types.Tag{{Key: aws.String("team"), Value: aws.String("sec")}},
	})).must(t, "CreateEventDataStore fixed")
	fixedARN := aws.ToString(fixed.EventDataStoreArn)
	if aws.ToInt32(fixed.RetentionPeriod) != 2557 || aws.ToBool(fixed.MultiRegionEnabled) || len(fixed.TagsList) != 1 ||
		!strings.HasSuffix(aws.ToString(fixed.KmsKeyId), ":key/4c5ae5ac-3c13-421e-8335-c7868ef6a769") {
		t.Errorf("CreateEventDataStore fixed: %+v", fixed)
	}
	if g := res(ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(fixedARN)})).must(t, "Get"); g.Status != types.EventDataStoreStatusStoppedIngestion {
		t.Errorf("StartIngestion=false: status %s, want STOPPED_INGESTION", g.Status)
	}
	res(ct.StartEventDataStoreIngestion(ctx, &cloudtrail.StartEventDataStoreIngestionInput{EventDataStore: aws.String(fixedARN)})).must(t, "StartEventDataStoreIngestion")
	res(ct.StopEventDataStoreIngestion(ctx, &cloudtrail.StopEventDataStoreIngestionInput{EventDataStore: aws.String(fixedARN)})).must(t, "StopEventDataStoreIngestion")

	upd := res(ct.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{
		EventDataStore: aws.String(fixedARN), Name: aws.String("extendable"), BillingMode: types.BillingModeExtendableRetentionPricing,
		RetentionPeriod: aws.Int32(3000), AdvancedEventSelectors: mgmtSelectors(),
	})).must(t, "UpdateEventDataStore")
	if aws.ToString(upd.Name) != "extendable" || upd.BillingMode != types.BillingModeExtendableRetentionPricing || aws.ToInt32(upd.RetentionPeriod) != 3000 ||
		upd.Status != types.EventDataStoreStatusStoppedIngestion || upd.FederationStatus != types.FederationStatusDisabled {
		t.Errorf("UpdateEventDataStore: %+v", upd)
	}

	// Pages of one store each, in creation order.
	var names []string
	p := cloudtrail.NewListEventDataStoresPaginator(ct, &cloudtrail.ListEventDataStoresInput{MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		page := res(p.NextPage(ctx)).must(t, "ListEventDataStores")
		for _, s := range page.EventDataStores {
			names = append(names, aws.ToString(s.Name))
		}
	}
	if strings.Join(names, ",") != "org-trail-events,extendable" {
		t.Errorf("ListEventDataStores pages: %v", names)
	}

	// Tags on a store's ARN.
	res(ct.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: aws.String(fixedARN), TagsList: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}})).must(t, "AddTags")
	res(ct.RemoveTags(ctx, &cloudtrail.RemoveTagsInput{ResourceId: aws.String(fixedARN), TagsList: []types.Tag{{Key: aws.String("team")}}})).must(t, "RemoveTags")
	lt := res(ct.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{fixedARN}})).must(t, "ListTags")
	if len(lt.ResourceTagList) != 1 || len(lt.ResourceTagList[0].TagsList) != 1 || aws.ToString(lt.ResourceTagList[0].TagsList[0].Key) != "env" {
		t.Errorf("ListTags: %+v", lt.ResourceTagList)
	}

	// Delete, restore, delete again, purge.
	res(ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(fixedARN)})).must(t, "DeleteEventDataStore")
	if g := res(ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(fixedARN)})).must(t, "Get"); g.Status != types.EventDataStoreStatusPendingDeletion {
		t.Errorf("after delete: status %s", g.Status)
	}
	restored := res(ct.RestoreEventDataStore(ctx, &cloudtrail.RestoreEventDataStoreInput{EventDataStore: aws.String(fixedARN)})).must(t, "RestoreEventDataStore")
	if restored.Status != types.EventDataStoreStatusStoppedIngestion {
		t.Errorf("restored status %s, want the status before the delete", restored.Status)
	}
	res(ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(fixedARN)})).must(t, "DeleteEventDataStore again")
	if n, err := h.Server.Lake().Purge(ctx, time.Now().Add(lake.PendingDeletionPeriod-time.Minute)); err != nil || n != 0 {
		t.Fatalf("Purge before seven days: %d %v", n, err)
	}
	if n, err := h.Server.Lake().Purge(ctx, time.Now().Add(lake.PendingDeletionPeriod+time.Minute)); err != nil || n != 1 {
		t.Fatalf("Purge after seven days: %d %v", n, err)
	}
	_, err := ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(fixedARN)})
	var nf *types.EventDataStoreNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("Get after purge: %v, want EventDataStoreNotFoundException", err)
	}
	_, err = ct.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{fixedARN}})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("ListTags of a purged store: %v, want ResourceNotFoundException", err)
	}
}

// TestEventDataStoresSDKErrors reaches every modeled error of the eight
// operations that needs neither Organizations nor KMS, and the channel
// errors that name stores, each as the SDK's typed error.
func TestEventDataStoresSDKErrors(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	ct := h.CloudTrail
	mk := func(name string, in *cloudtrail.CreateEventDataStoreInput) string {
		t.Helper()
		in.Name = aws.String(name)
		return aws.ToString(res(ct.CreateEventDataStore(ctx, in)).must(t, "CreateEventDataStore "+name).EventDataStoreArn)
	}
	protected := mk("protected", &cloudtrail.CreateEventDataStoreInput{})
	audit := mk("audit", &cloudtrail.CreateEventDataStoreInput{AdvancedEventSelectors: auditStoreSelectors(), TerminationProtectionEnabled: aws.Bool(false)})
	pending := mk("pending", &cloudtrail.CreateEventDataStoreInput{AdvancedEventSelectors: auditStoreSelectors(), TerminationProtectionEnabled: aws.Bool(false)})
	keyed := mk("keyed", &cloudtrail.CreateEventDataStoreInput{KmsKeyId: aws.String("alias/lake"), BillingMode: types.BillingModeExtendableRetentionPricing})
	res(ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(pending)})).must(t, "delete pending")
	ch := res(ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("app"), Source: aws.String("Custom"),
		Destinations: []types.Destination{{Type: types.DestinationTypeEventDataStore, Location: aws.String(audit)}}})).must(t, "CreateChannel")
	acct := strings.Split(protected, ":")[4]
	missing := "arn:aws:cloudtrail:us-east-1:" + acct + ":eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"
	otherAccount := "arn:aws:cloudtrail:us-east-1:999999999999:eventdatastore/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c"
	dest := func(arn string) []types.Destination {
		return []types.Destination{{Type: types.DestinationTypeEventDataStore, Location: aws.String(arn)}}
	}

	cases := []struct {
		name   string
		call   func() error
		target any
	}{
		{"name taken", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("protected")})
			return err
		}, new(*types.EventDataStoreAlreadyExistsException)},
		{"name of a store pending deletion", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("pending")})
			return err
		}, new(*types.EventDataStoreAlreadyExistsException)},
		{"rename to a taken name", func() error {
			_, err := ct.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{EventDataStore: aws.String(keyed), Name: aws.String("audit")})
			return err
		}, new(*types.EventDataStoreAlreadyExistsException)},
		{"bad name", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("no spaces")})
			return err
		}, new(*types.InvalidParameterException)},
		{"retention too long for fixed", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("ret"), BillingMode: types.BillingModeFixedRetentionPricing, RetentionPeriod: aws.Int32(2558)})
			return err
		}, new(*types.InvalidParameterException)},
		{"retention too short", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("short"), RetentionPeriod: aws.Int32(6)})
			return err
		}, new(*types.InvalidParameterException)},
		{"bad billing mode", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("bmode"), BillingMode: "CHEAP"})
			return err
		}, new(*types.InvalidParameterException)},
		{"extendable to fixed", func() error {
			_, err := ct.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{EventDataStore: aws.String(keyed), BillingMode: types.BillingModeFixedRetentionPricing})
			return err
		}, new(*types.InvalidParameterException)},
		{"update nothing", func() error {
			_, err := ct.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{EventDataStore: aws.String(keyed)})
			return err
		}, new(*types.InvalidParameterException)},
		{"change the KMS key", func() error {
			_, err := ct.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{EventDataStore: aws.String(keyed), KmsKeyId: aws.String("alias/other")})
			return err
		}, new(*types.InvalidParameterException)},
		{"malformed KMS key", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("kms1"), KmsKeyId: aws.String("key:nope")})
			return err
		}, new(*types.InvalidKmsKeyIdException)},
		{"AWS managed key alias", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("kms2"), KmsKeyId: aws.String("alias/aws/cloudtrail")})
			return err
		}, new(*types.InvalidKmsKeyIdException)},
		{"StartIngestion false on an ActivityAuditLog store", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("nostart"), AdvancedEventSelectors: auditStoreSelectors(), StartIngestion: aws.Bool(false)})
			return err
		}, new(*types.InvalidParameterException)},
		{"organization store", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("org"), OrganizationEnabled: aws.Bool(true)})
			return err
		}, new(*types.OrganizationsNotInUseException)},
		{"mixed categories", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("mix"), AdvancedEventSelectors: append(mgmtSelectors(), auditStoreSelectors()...)})
			return err
		}, new(*types.InvalidEventSelectorsException)},
		{"trail-only selector field on a store category", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("cfg"), AdvancedEventSelectors: []types.AdvancedEventSelector{{FieldSelectors: []types.AdvancedFieldSelector{
				{Field: aws.String("eventCategory"), Equals: []string{"ConfigurationItem"}}, {Field: aws.String("eventName"), Equals: []string{"x"}}}}}})
			return err
		}, new(*types.InvalidEventSelectorsException)},
		{"bad tag", func() error {
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("tags"), TagsList: []types.Tag{{Key: aws.String("aws:reserved")}}})
			return err
		}, new(*types.InvalidTagParameterException)},
		{"51 tags", func() error {
			many := make([]types.Tag, 51)
			for i := range many {
				many[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i))}
			}
			_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("many-tags"), TagsList: many})
			return err
		}, new(*types.InvalidTagParameterException)},
		{"malformed ARN", func() error {
			_, err := ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String("arn:aws:cloudtrail:us-east-1:1:trail/x")})
			return err
		}, new(*types.EventDataStoreARNInvalidException)},
		{"ARN of another account", func() error {
			_, err := ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(otherAccount)})
			return err
		}, new(*types.EventDataStoreARNInvalidException)},
		{"missing store", func() error {
			_, err := ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(missing)})
			return err
		}, new(*types.EventDataStoreNotFoundException)},
		{"delete a protected store", func() error {
			_, err := ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(protected)})
			return err
		}, new(*types.EventDataStoreTerminationProtectedException)},
		{"delete a store a channel sends to", func() error {
			_, err := ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(audit)})
			return err
		}, new(*types.ChannelExistsForEDSException)},
		{"delete a store pending deletion", func() error {
			_, err := ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(pending)})
			return err
		}, new(*types.InactiveEventDataStoreException)},
		{"update a store pending deletion", func() error {
			_, err := ct.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{EventDataStore: aws.String(pending), RetentionPeriod: aws.Int32(90)})
			return err
		}, new(*types.InactiveEventDataStoreException)},
		{"restore an active store", func() error {
			_, err := ct.RestoreEventDataStore(ctx, &cloudtrail.RestoreEventDataStoreInput{EventDataStore: aws.String(protected)})
			return err
		}, new(*types.InvalidEventDataStoreStatusException)},
		{"start an enabled store", func() error {
			_, err := ct.StartEventDataStoreIngestion(ctx, &cloudtrail.StartEventDataStoreIngestionInput{EventDataStore: aws.String(protected)})
			return err
		}, new(*types.InvalidEventDataStoreStatusException)},
		{"stop an ActivityAuditLog store", func() error {
			_, err := ct.StopEventDataStoreIngestion(ctx, &cloudtrail.StopEventDataStoreIngestionInput{EventDataStore: aws.String(audit)})
			return err
		}, new(*types.InvalidEventDataStoreCategoryException)},
		{"list MaxResults 0", func() error {
			_, err := ct.ListEventDataStores(ctx, &cloudtrail.ListEventDataStoresInput{MaxResults: aws.Int32(0)})
			return err
		}, new(*types.InvalidMaxResultsException)},
		{"list MaxResults 1001", func() error {
			_, err := ct.ListEventDataStores(ctx, &cloudtrail.ListEventDataStoresInput{MaxResults: aws.Int32(1001)})
			return err
		}, new(*types.InvalidMaxResultsException)},
		{"list bad token", func() error {
			_, err := ct.ListEventDataStores(ctx, &cloudtrail.ListEventDataStoresInput{NextToken: aws.String("bogus")})
			return err
		}, new(*types.InvalidNextTokenException)},
		{"channel to a missing store", func() error {
			_, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("ch1"), Source: aws.String("Custom"), Destinations: dest(missing)})
			return err
		}, new(*types.EventDataStoreNotFoundException)},
		{"channel to a management store", func() error {
			_, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("ch2"), Source: aws.String("Custom"), Destinations: dest(protected)})
			return err
		}, new(*types.InvalidEventDataStoreCategoryException)},
		{"channel to a store pending deletion", func() error {
			_, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String("ch3"), Source: aws.String("Custom"), Destinations: dest(pending)})
			return err
		}, new(*types.InactiveEventDataStoreException)},
		{"update a channel to a management store", func() error {
			_, err := ct.UpdateChannel(ctx, &cloudtrail.UpdateChannelInput{Channel: ch.ChannelArn, Destinations: dest(protected)})
			return err
		}, new(*types.InvalidEventDataStoreCategoryException)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if err == nil || !errors.As(err, c.target) {
				t.Fatalf("got %v, want %T", err, c.target)
			}
		})
	}

	// The quota: ten stores per region, those pending deletion included.
	for i := 0; ; i++ {
		_, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String(fmt.Sprintf("fill-%d", i))})
		var max *types.EventDataStoreMaxLimitExceededException
		if errors.As(err, &max) {
			if total := 4 + i; total != lake.MaxPerRegion {
				t.Fatalf("EventDataStoreMaxLimitExceededException at %d stores, want %d", total, lake.MaxPerRegion)
			}
			break
		}
		if err != nil {
			t.Fatalf("CreateEventDataStore fill-%d: %v", i, err)
		}
	}
	// Another region has its own quota.
	other := h.Client(h.AdminKeyID, h.AdminSecret, "eu-west-1")
	res(other.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("protected")})).must(t, "CreateEventDataStore in eu-west-1")

	// A deleted channel frees its store.
	res(ct.DeleteChannel(ctx, &cloudtrail.DeleteChannelInput{Channel: ch.ChannelArn})).must(t, "DeleteChannel")
	res(ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(audit)})).must(t, "DeleteEventDataStore after its channel")
}

// TestEventDataStorePurgedAtRestart restarts Cairn on the same data
// directory with its clock moved on: before seven days the store is still
// pending deletion, after them the server's own purge has removed it (the
// first pass runs before Open returns).
func TestEventDataStorePurgedAtRestart(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	st := res(h.CloudTrail.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{
		Name: aws.String("short-lived"), TerminationProtectionEnabled: aws.Bool(false),
		TagsList: []types.Tag{{Key: aws.String("team"), Value: aws.String("sec")}},
	})).must(t, "CreateEventDataStore")
	arn := aws.ToString(st.EventDataStoreArn)
	res(h.CloudTrail.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(arn)})).must(t, "DeleteEventDataStore")
	deleted := time.Now()
	h.Stop()

	for _, c := range []struct {
		name  string
		after time.Duration
		gone  bool
	}{
		{"six days later", 6 * 24 * time.Hour, false},
		{"eight days later", 8 * 24 * time.Hour, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			later := servertest.Start(t, servertest.Options{DataDir: h.DataDir, Configure: func(cfg *server.Config) {
				cfg.Now = func() time.Time { return deleted.Add(c.after) }
			}})
			got, err := later.Server.Lake().Get(ctx, servertest.DefaultRegion, arn)
			switch {
			case c.gone && err == nil:
				t.Fatalf("the store is still there: %+v", got)
			case c.gone && !strings.Contains(err.Error(), "EventDataStoreNotFoundException"):
				t.Fatalf("Get: %v, want EventDataStoreNotFoundException", err)
			case !c.gone && (err != nil || got.Status != lake.StatusPendingDeletion):
				t.Fatalf("Get: %+v %v, want the store pending deletion", got, err)
			}
			later.Stop()
		})
	}
}

// TestEventDataStoreFederationSDK: federation is a status with its role,
// shown by Get, refused twice, and it keeps the store from deletion.
func TestEventDataStoreFederationSDK(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	ct := h.CloudTrail
	created := res(ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{
		Name: aws.String("federated"), TerminationProtectionEnabled: aws.Bool(false),
	})).must(t, "CreateEventDataStore")
	arn := created.EventDataStoreArn
	role := "arn:aws:iam::123456789012:role/lake-federation"

	var ipe *types.InvalidParameterException
	if _, err := ct.EnableFederation(ctx, &cloudtrail.EnableFederationInput{EventDataStore: arn, FederationRoleArn: aws.String("not-a-role")}); !errors.As(err, &ipe) {
		t.Errorf("EnableFederation with a bad role: %v, want InvalidParameterException", err)
	}
	on := res(ct.EnableFederation(ctx, &cloudtrail.EnableFederationInput{EventDataStore: arn, FederationRoleArn: aws.String(role)})).must(t, "EnableFederation")
	if on.FederationStatus != types.FederationStatusEnabled || aws.ToString(on.FederationRoleArn) != role || aws.ToString(on.EventDataStoreArn) != aws.ToString(arn) {
		t.Errorf("EnableFederation: %+v", on)
	}
	got := res(ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: arn})).must(t, "GetEventDataStore")
	if got.FederationStatus != types.FederationStatusEnabled || aws.ToString(got.FederationRoleArn) != role {
		t.Errorf("GetEventDataStore of a federated store: %s %s", got.FederationStatus, aws.ToString(got.FederationRoleArn))
	}
	var fed *types.EventDataStoreFederationEnabledException
	if _, err := ct.EnableFederation(ctx, &cloudtrail.EnableFederationInput{EventDataStore: arn, FederationRoleArn: aws.String(role)}); !errors.As(err, &fed) {
		t.Errorf("EnableFederation twice: %v", err)
	}
	if _, err := ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: arn}); !errors.As(err, &fed) {
		t.Errorf("DeleteEventDataStore of a federated store: %v, want EventDataStoreFederationEnabledException", err)
	}
	off := res(ct.DisableFederation(ctx, &cloudtrail.DisableFederationInput{EventDataStore: arn})).must(t, "DisableFederation")
	if off.FederationStatus != types.FederationStatusDisabled {
		t.Errorf("DisableFederation: %+v", off)
	}
	res(ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: arn})).must(t, "DeleteEventDataStore")
	var inactive *types.InactiveEventDataStoreException
	if _, err := ct.EnableFederation(ctx, &cloudtrail.EnableFederationInput{EventDataStore: arn, FederationRoleArn: aws.String(role)}); !errors.As(err, &inactive) {
		t.Errorf("EnableFederation on a deleted store: %v, want InactiveEventDataStoreException", err)
	}
}
