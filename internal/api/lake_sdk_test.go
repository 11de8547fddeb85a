package api_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// wantAPIError checks that err is the modeled error code.
func wantAPIError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

// TestDashboardsSDK drives every dashboard operation through the real
// aws-sdk-go-v2 client against a real Cairn: success paths and the
// modeled errors.
func TestDashboardsSDK(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	ct := h.CloudTrail
	store := res(ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("dash-store"), TerminationProtectionEnabled: aws.Bool(false)})).must(t, "CreateEventDataStore")
	id := aws.ToString(store.EventDataStoreArn)
	id = id[strings.LastIndexByte(id, '/')+1:]
	widget := func(stmt string) types.RequestWidget {
		return types.RequestWidget{QueryStatement: aws.String(stmt), ViewProperties: map[string]string{"View": "Table"}}
	}

	created := res(ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{
		Name:                         aws.String("security"),
		Widgets:                      []types.RequestWidget{widget("SELECT eventname, count(*) FROM " + id + " GROUP BY 1")},
		RefreshSchedule:              &types.RefreshSchedule{Status: types.RefreshScheduleStatusEnabled, Frequency: &types.RefreshScheduleFrequency{Unit: types.RefreshScheduleFrequencyUnitHours, Value: aws.Int32(6)}, TimeOfDay: aws.String("02:00")},
		TerminationProtectionEnabled: aws.Bool(true),
		TagsList:                     []types.Tag{{Key: aws.String("team"), Value: aws.String("sec")}},
	})).must(t, "CreateDashboard")
	arn := aws.ToString(created.DashboardArn)
	if created.Type != types.DashboardTypeCustom || len(created.Widgets) != 1 || aws.ToString(created.Widgets[0].QueryAlias) == "" ||
		!strings.HasSuffix(arn, ":dashboard/security") || len(created.TagsList) != 1 || created.RefreshSchedule == nil {
		t.Errorf("CreateDashboard: %+v", created)
	}
	got := res(ct.GetDashboard(ctx, &cloudtrail.GetDashboardInput{DashboardId: aws.String(arn)})).must(t, "GetDashboard by ARN")
	if got.Status != types.DashboardStatusCreated || !aws.ToBool(got.TerminationProtectionEnabled) || got.CreatedTimestamp == nil {
		t.Errorf("GetDashboard: %+v", got)
	}
	tags := res(ct.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{arn}})).must(t, "ListTags of a dashboard")
	if len(tags.ResourceTagList) != 1 || len(tags.ResourceTagList[0].TagsList) != 1 {
		t.Errorf("ListTags: %+v", tags)
	}
	res(ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{Name: aws.String("other")})).must(t, "CreateDashboard without widgets")
	list := res(ct.ListDashboards(ctx, &cloudtrail.ListDashboardsInput{NamePrefix: aws.String("sec")})).must(t, "ListDashboards")
	if len(list.Dashboards) != 1 || aws.ToString(list.Dashboards[0].DashboardArn) != arn {
		t.Errorf("ListDashboards NamePrefix sec: %+v", list.Dashboards)
	}
	refresh := res(ct.StartDashboardRefresh(ctx, &cloudtrail.StartDashboardRefreshInput{DashboardId: aws.String("security")})).must(t, "StartDashboardRefresh")
	if n := len(aws.ToString(refresh.RefreshId)); n < 10 || n > 20 {
		t.Errorf("RefreshId %q", aws.ToString(refresh.RefreshId))
	}
	up := res(ct.UpdateDashboard(ctx, &cloudtrail.UpdateDashboardInput{DashboardId: aws.String("security"), TerminationProtectionEnabled: aws.Bool(false),
		Widgets: []types.RequestWidget{widget("SELECT count(*) FROM " + id), widget("SELECT 1 FROM " + id)}})).must(t, "UpdateDashboard")
	if len(up.Widgets) != 2 || aws.ToBool(up.TerminationProtectionEnabled) {
		t.Errorf("UpdateDashboard: %+v", up)
	}

	_, err := ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{Name: aws.String("security")})
	wantAPIError(t, "CreateDashboard of a taken name", err, "ConflictException")
	_, err = ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{Name: aws.String("bad-sql"), Widgets: []types.RequestWidget{widget("DROP TABLE x")}})
	wantAPIError(t, "CreateDashboard with a statement that is no SELECT", err, "InvalidQueryStatementException")
	_, err = ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{Name: aws.String("no-store"), Widgets: []types.RequestWidget{widget("SELECT 1 FROM 00000000-0000-4000-8000-000000000000")}})
	wantAPIError(t, "CreateDashboard over a missing store", err, "EventDataStoreNotFoundException")
	eleven := make([]types.RequestWidget, 11)
	for i := range eleven {
		eleven[i] = widget("SELECT 1 FROM " + id)
	}
	_, err = ct.CreateDashboard(ctx, &cloudtrail.CreateDashboardInput{Name: aws.String("too-many"), Widgets: eleven})
	wantAPIError(t, "CreateDashboard with 11 widgets", err, "ServiceQuotaExceededException")
	_, err = ct.GetDashboard(ctx, &cloudtrail.GetDashboardInput{DashboardId: aws.String("missing")})
	wantAPIError(t, "GetDashboard of a missing dashboard", err, "ResourceNotFoundException")
	_, err = ct.StartDashboardRefresh(ctx, &cloudtrail.StartDashboardRefreshInput{DashboardId: aws.String("missing")})
	wantAPIError(t, "StartDashboardRefresh of a missing dashboard", err, "ResourceNotFoundException")
	res(ct.UpdateDashboard(ctx, &cloudtrail.UpdateDashboardInput{DashboardId: aws.String("other"), TerminationProtectionEnabled: aws.Bool(true)})).must(t, "protect")
	_, err = ct.DeleteDashboard(ctx, &cloudtrail.DeleteDashboardInput{DashboardId: aws.String("other")})
	wantAPIError(t, "DeleteDashboard of a protected dashboard", err, "ConflictException")

	res(ct.DeleteDashboard(ctx, &cloudtrail.DeleteDashboardInput{DashboardId: aws.String(arn)})).must(t, "DeleteDashboard")
	_, err = ct.DeleteDashboard(ctx, &cloudtrail.DeleteDashboardInput{DashboardId: aws.String(arn)})
	wantAPIError(t, "DeleteDashboard twice", err, "ResourceNotFoundException")
}

// TestImportsSDK drives the import operations' paths that need no import
// to finish: StopImport, ListImportFailures, ListImports' filters and the
// modeled errors (the successful copy is TestLakeImportThroughSDK in
// internal/server, and the kill -9 test in cmd/cairn).
func TestImportsSDK(t *testing.T) {
	h := servertest.Start(t)
	ctx := servertest.Context(t)
	ct := h.CloudTrail
	store := res(ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("imports"), TerminationProtectionEnabled: aws.Bool(false)})).must(t, "CreateEventDataStore")
	audit := servertest.AuditStore(t, ctx, ct, "audit-only")
	h.CreateBucket(t, "empty-trail")
	src := func(uri string) *types.ImportSource {
		return &types.ImportSource{S3: &types.S3ImportSource{S3LocationUri: aws.String(uri), S3BucketRegion: aws.String("us-east-1"),
			S3BucketAccessRoleArn: aws.String("arn:aws:iam::123456789012:role/import")}}
	}

	started := res(ct.StartImport(ctx, &cloudtrail.StartImportInput{Destinations: []string{aws.ToString(store.EventDataStoreArn)}, ImportSource: src("s3://empty-trail")})).must(t, "StartImport")
	importID := started.ImportId
	stopped := res(ct.StopImport(ctx, &cloudtrail.StopImportInput{ImportId: importID})).must(t, "StopImport")
	if stopped.ImportStatus != types.ImportStatusStopped && stopped.ImportStatus != types.ImportStatusCompleted {
		t.Errorf("StopImport: %s", stopped.ImportStatus)
	}
	fails := res(ct.ListImportFailures(ctx, &cloudtrail.ListImportFailuresInput{ImportId: importID})).must(t, "ListImportFailures")
	if len(fails.Failures) != 0 {
		t.Errorf("ListImportFailures of an empty bucket: %+v", fails.Failures)
	}
	list := res(ct.ListImports(ctx, &cloudtrail.ListImportsInput{Destination: store.EventDataStoreArn})).must(t, "ListImports")
	if len(list.Imports) != 1 || aws.ToString(list.Imports[0].ImportId) != aws.ToString(importID) {
		t.Errorf("ListImports: %+v", list.Imports)
	}
	if l := res(ct.ListImports(ctx, &cloudtrail.ListImportsInput{ImportStatus: types.ImportStatusFailed})).must(t, "ListImports FAILED"); len(l.Imports) != 0 {
		t.Errorf("ListImports FAILED: %+v", l.Imports)
	}

	dest := []string{aws.ToString(store.EventDataStoreArn)}
	for _, c := range []struct {
		what string
		in   cloudtrail.StartImportInput
		code string
	}{
		{"no source", cloudtrail.StartImportInput{Destinations: dest}, "InvalidParameterException"},
		{"missing bucket", cloudtrail.StartImportInput{Destinations: dest, ImportSource: src("s3://no-such-bucket")}, "InvalidImportSourceException"},
		{"not an s3 URI", cloudtrail.StartImportInput{Destinations: dest, ImportSource: src("https://example.com/x")}, "InvalidImportSourceException"},
		{"unknown store", cloudtrail.StartImportInput{Destinations: []string{dest[0][:strings.LastIndexByte(dest[0], '/')+1] + "00000000-0000-4000-8000-000000000000"}, ImportSource: src("s3://empty-trail")}, "EventDataStoreNotFoundException"},
		{"ActivityAuditLog store", cloudtrail.StartImportInput{Destinations: []string{audit}, ImportSource: src("s3://empty-trail")}, "InvalidEventDataStoreCategoryException"},
		{"unknown import", cloudtrail.StartImportInput{ImportId: aws.String("00000000-0000-4000-8000-000000000000")}, "ImportNotFoundException"},
	} {
		_, err := ct.StartImport(ctx, &c.in)
		wantAPIError(t, "StartImport "+c.what, err, c.code)
	}
	_, err := ct.GetImport(ctx, &cloudtrail.GetImportInput{ImportId: aws.String("00000000-0000-4000-8000-000000000000")})
	wantAPIError(t, "GetImport of a missing import", err, "ImportNotFoundException")
	_, err = ct.StopImport(ctx, &cloudtrail.StopImportInput{ImportId: aws.String("00000000-0000-4000-8000-000000000000")})
	wantAPIError(t, "StopImport of a missing import", err, "ImportNotFoundException")
	_, err = ct.ListImports(ctx, &cloudtrail.ListImportsInput{NextToken: aws.String("bogus")})
	wantAPIError(t, "ListImports with a bogus token", err, "InvalidNextTokenException")
}
