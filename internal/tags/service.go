package tags

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
)

// Resolver answers, for one resource type, whether a resource exists. It
// reads r, the transaction or snapshot the tag operation runs in, so that
// "the resource exists" and "its tags were written" are one atomic step: a
// tag write cannot resurrect a resource deleted a moment before. A
// resolver may return a modeled *awsproto.Error (for example
// ChannelARNInvalidException for a malformed channel ID) instead of false.
type Resolver interface {
	ResourceExists(ctx context.Context, r state.Reader, arn string) (bool, error)
}

// StandaloneResolver adapts an existence check that reads the store on its
// own, such as channel.Service.Exists. The state store cannot nest a view
// inside an update, so the tag operations call it just before their
// transaction rather than inside it; the price is that a delete racing
// AddTags can leave tags on an ARN that is gone. Prefer a Resolver.
type StandaloneResolver func(ctx context.Context, arn string) (bool, error)

// ResourceExists calls f, ignoring r.
func (f StandaloneResolver) ResourceExists(ctx context.Context, _ state.Reader, arn string) (bool, error) {
	return f(ctx, arn)
}

// Taggable resource types: the resource part of a CloudTrail ARN before
// the "/".
const (
	TypeTrail          = "trail"
	TypeChannel        = "channel"
	TypeEventDataStore = "eventdatastore"
	TypeDashboard      = "dashboard"
)

// MaxListResources is ListTags' limit on ResourceIdList.
const MaxListResources = 20

// Service is tagging as its own service: tags of any taggable CloudTrail
// resource, keyed by ARN, each checked against the resolver of its type.
// A type CloudTrail can tag but Cairn does not implement yet (no resolver)
// has no resources, so its ARNs get ResourceNotFoundException.
type Service struct {
	store     *state.Store
	accountID string
	resolvers map[string]Resolver
}

// NewService tags the resources that resolvers know, in accountID.
func NewService(store *state.Store, accountID string, resolvers map[string]Resolver) *Service {
	return &Service{store: store, accountID: accountID, resolvers: resolvers}
}

// Add merges list into the tags of the resource arn, seen from region.
func (s *Service) Add(ctx context.Context, region, arn string, list []Tag) error {
	if err := Validate(list); err != nil {
		return err
	}
	return s.update(ctx, region, arn, func(existing []Tag) ([]Tag, error) { return Merge(existing, list) })
}

// Remove takes the keys in list off the resource arn, seen from region.
func (s *Service) Remove(ctx context.Context, region, arn string, list []Tag) error {
	if err := ValidateRemoval(list); err != nil {
		return err
	}
	return s.update(ctx, region, arn, func(existing []Tag) ([]Tag, error) { return Remove(existing, list), nil })
}

func (s *Service) update(ctx context.Context, region, arn string, change func([]Tag) ([]Tag, error)) error {
	if err := s.checkResource(ctx, nil, region, arn); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx *state.Tx) error {
		if err := s.checkResource(ctx, tx, region, arn); err != nil {
			return err
		}
		existing, err := Load(tx, arn)
		if err != nil {
			return err
		}
		next, err := change(existing)
		if err != nil {
			return err
		}
		return Save(tx, arn, next)
	})
}

// List returns the tags of each resource in arns, in order, from one
// snapshot.
func (s *Service) List(ctx context.Context, region string, arns []string) ([][]Tag, error) {
	if len(arns) > MaxListResources {
		return nil, awsproto.Errorf("InvalidParameterException", "ResourceIdList can contain at most %d ARNs; %d were specified.", MaxListResources, len(arns))
	}
	for _, arn := range arns {
		if err := s.checkResource(ctx, nil, region, arn); err != nil {
			return nil, err
		}
	}
	out := make([][]Tag, 0, len(arns))
	err := s.store.View(ctx, func(r state.Reader) error {
		for _, arn := range arns {
			if err := s.checkResource(ctx, r, region, arn); err != nil {
				return err
			}
			list, err := Load(r, arn)
			if err != nil {
				return err
			}
			out = append(out, list)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkResource validates an ARN and verifies the resource exists. With
// r == nil it runs before the transaction and only consults
// StandaloneResolvers; with r set it runs inside it and consults the rest.
func (s *Service) checkResource(ctx context.Context, r state.Reader, region, arn string) error {
	typ, err := s.parseARN(region, arn)
	if err != nil {
		return err
	}
	resolver := s.resolvers[typ]
	if resolver == nil {
		return resourceNotFound(arn)
	}
	if _, standalone := resolver.(StandaloneResolver); standalone != (r == nil) {
		return nil
	}
	ok, err := resolver.ResourceExists(ctx, r, arn)
	if err != nil {
		return fmt.Errorf("tags: check that %s exists: %w", arn, err)
	}
	if !ok {
		return resourceNotFound(arn)
	}
	return nil
}

func resourceNotFound(arn string) error {
	return awsproto.Errorf("ResourceNotFoundException", "Resource %s does not exist.", arn)
}

// parseARN checks that arn is a CloudTrail ARN of a taggable type in this
// account and the caller's region (CloudTrail resources are only reachable
// from their own region) and returns its resource type.
func (s *Service) parseARN(region, arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "cloudtrail" || parts[3] == "" || parts[4] == "" {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Invalid ARN: %s. Specify the ARN of a trail, event data store, channel or dashboard, such as arn:aws:cloudtrail:%s:%s:trail/MyTrail.", arn, region, s.accountID)
	}
	typ, id, ok := strings.Cut(parts[5], "/")
	if !ok || id == "" {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Invalid ARN: %s. The resource part must be trail/, eventdatastore/, channel/ or dashboard/ followed by the resource name or ID.", arn)
	}
	switch typ {
	case TypeTrail, TypeChannel, TypeEventDataStore, TypeDashboard:
	default:
		return "", awsproto.Errorf("ResourceTypeNotSupportedException",
			"Resource type %s is not supported. Tags can be added to trails, event data stores, channels and dashboards.", typ)
	}
	if parts[3] != region {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Region in ARN is wrong, you can only access resources in region %s.", region)
	}
	if parts[4] != s.accountID {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Account ID in ARN is wrong, you can only access resources in account %s.", s.accountID)
	}
	return typ, nil
}
