package lake

import (
	"context"
	"regexp"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
)

// Federation statuses (the model's FederationStatus). AWS passes through
// ENABLING and DISABLING while it registers the store in Glue; Cairn's
// federation is the store's own open layout, so it changes at once.
const (
	FederationEnabled  = "ENABLED"
	FederationDisabled = "DISABLED"
)

// federationRoleRE is the model's FederationRoleArn form: an IAM role ARN.
var federationRoleRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)

// FederationStatus is the store's federation status as the API shows it.
func (st *Store) FederationStatus() string {
	if st.Federated {
		return FederationEnabled
	}
	return FederationDisabled
}

// EnableFederation marks a store federated: readable by other engines
// from its Parquet files in the object store (Hive-style partitions, see
// docs/lake.md) with the table definition ingestion publishes next to
// them. A federated store cannot be deleted until federation is disabled,
// as on AWS. roleARN is kept and returned; Cairn assumes no role.
func (s *Service) EnableFederation(ctx context.Context, region, eds, roleARN string) (Store, error) {
	if !federationRoleRE.MatchString(roleARN) {
		return Store{}, awsproto.Errorf("InvalidParameterException",
			"FederationRoleArn %q is not a valid IAM role ARN (arn:aws:iam::<account-id>:role/<name>).", roleARN)
	}
	return s.setFederation(ctx, region, eds, func(st *Store) error {
		if st.Federated {
			return awsproto.Errorf("EventDataStoreFederationEnabledException",
				"Federation is already enabled on the event data store %s.", st.ARN())
		}
		st.Federated, st.FederationRoleArn = true, roleARN
		return nil
	})
}

// DisableFederation ends a store's federation; its files stay where they
// are.
func (s *Service) DisableFederation(ctx context.Context, region, eds string) (Store, error) {
	return s.setFederation(ctx, region, eds, func(st *Store) error {
		st.Federated, st.FederationRoleArn = false, ""
		return nil
	})
}

func (s *Service) setFederation(ctx context.Context, region, eds string, change func(*Store) error) (Store, error) {
	var out Store
	err := s.store.Update(ctx, func(tx *state.Tx) error {
		st, err := s.resolve(tx, region, eds)
		if err != nil {
			return err
		}
		if st.pending() {
			return inactive(&st)
		}
		if err := change(&st); err != nil {
			return err
		}
		st.UpdatedAt = s.now()
		out = st
		return put(tx, &st)
	})
	if err != nil {
		return Store{}, err
	}
	s.log.InfoContext(ctx, "event data store federation changed", "event_data_store", out.ARN(), "federation", out.FederationStatus())
	s.notifyChanged(ctx)
	return out, nil
}
