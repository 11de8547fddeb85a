package servertest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

// AuditStore creates an event data store called name that selects
// eventCategory ActivityAuditLog, the kind of store a channel's
// EVENT_DATA_STORE destination must be, through ct (any Cairn, in-process
// or a child process), and returns its ARN. Termination protection is off
// so that tests may delete it.
func AuditStore(t testing.TB, ctx context.Context, ct *cloudtrail.Client, name string) string {
	t.Helper()
	out, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{
		Name: aws.String(name),
		AdvancedEventSelectors: []types.AdvancedEventSelector{{
			Name:           aws.String("Channel events"),
			FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"ActivityAuditLog"}}},
		}},
		TerminationProtectionEnabled: aws.Bool(false),
	})
	if err != nil {
		t.Fatalf("create event data store %s: %v", name, err)
	}
	return aws.ToString(out.EventDataStoreArn)
}
