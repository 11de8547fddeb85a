package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail/tags"
)

// TaggableResolver answers, for one resource type, whether a resource
// exists. It reads r, the transaction or snapshot the tag operation runs
// in, so that "the resource exists" and "its tags were written" are one
// atomic step: a tag write cannot resurrect a resource deleted a moment
// before. A resolver may return a modeled *awsproto.Error (for example
// ChannelARNInvalidException for a malformed channel ID) instead of false.
type TaggableResolver interface {
	ResourceExists(ctx context.Context, r state.Reader, arn string) (bool, error)
}

// StandaloneResolver adapts an existence check that reads the store on its
// own, such as channel.Service.Exists. The state store cannot nest a view
// inside an update, so the tag operations call it just before their
// transaction rather than inside it; the price is that a delete racing
// AddTags can leave tags on an ARN that is gone. Prefer a TaggableResolver.
type StandaloneResolver func(ctx context.Context, arn string) (bool, error)

// ResourceExists calls f, ignoring r.
func (f StandaloneResolver) ResourceExists(ctx context.Context, _ state.Reader, arn string) (bool, error) {
	return f(ctx, arn)
}

// Taggable resource types: the resource part of a CloudTrail ARN before
// the "/".
const (
	TagTypeTrail          = "trail"
	TagTypeChannel        = "channel"
	TagTypeEventDataStore = "eventdatastore"
	TagTypeDashboard      = "dashboard"
)

// TagResources is what the tag operations need: the store the tags live
// in, the account, and a resolver per resource type. A type CloudTrail can
// tag but Cairn does not implement yet (no resolver) has no resources, so
// its ARNs get ResourceNotFoundException.
type TagResources struct {
	Store     *state.Store
	AccountID string
	Resolvers map[string]TaggableResolver
}

// MaxListTagsResources is ListTags' limit on ResourceIdList.
const MaxListTagsResources = 20

// TagOperations returns AddTags, RemoveTags and ListTags.
func TagOperations(res TagResources) []Operation {
	h := tagHandlers{res: res}
	return []Operation{
		Op("AddTags", false, h.addTags),
		Op("RemoveTags", false, h.removeTags),
		Op("ListTags", true, h.listTags),
	}
}

type tagHandlers struct{ res TagResources }

// checkResource validates a ResourceId and verifies the resource exists.
// With r == nil it runs before the transaction and only consults
// StandaloneResolvers; with r set it runs inside it and consults the rest.
func (h tagHandlers) checkResource(ctx context.Context, r state.Reader, region, arn string) error {
	typ, err := h.parseTaggableARN(region, arn)
	if err != nil {
		return err
	}
	resolver := h.res.Resolvers[typ]
	if resolver == nil {
		return tagResourceNotFound(arn)
	}
	if _, standalone := resolver.(StandaloneResolver); standalone != (r == nil) {
		return nil
	}
	ok, err := resolver.ResourceExists(ctx, r, arn)
	if err != nil {
		return fmt.Errorf("api: check that %s exists: %w", arn, err)
	}
	if !ok {
		return tagResourceNotFound(arn)
	}
	return nil
}

func tagResourceNotFound(arn string) error {
	return awsproto.Errorf("ResourceNotFoundException", "Resource %s does not exist.", arn)
}

// parseTaggableARN checks that arn is a CloudTrail ARN of a taggable type
// in this account and the caller's region (CloudTrail resources are only
// reachable from their own region) and returns its resource type.
func (h tagHandlers) parseTaggableARN(region, arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "cloudtrail" || parts[3] == "" || parts[4] == "" {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Invalid ARN: %s. Specify the ARN of a trail, event data store, channel or dashboard, such as arn:aws:cloudtrail:%s:%s:trail/MyTrail.", arn, region, h.res.AccountID)
	}
	typ, id, ok := strings.Cut(parts[5], "/")
	if !ok || id == "" {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Invalid ARN: %s. The resource part must be trail/, eventdatastore/, channel/ or dashboard/ followed by the resource name or ID.", arn)
	}
	switch typ {
	case TagTypeTrail, TagTypeChannel, TagTypeEventDataStore, TagTypeDashboard:
	default:
		return "", awsproto.Errorf("ResourceTypeNotSupportedException",
			"Resource type %s is not supported. Tags can be added to trails, event data stores, channels and dashboards.", typ)
	}
	if parts[3] != region {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Region in ARN is wrong, you can only access resources in region %s.", region)
	}
	if parts[4] != h.res.AccountID {
		return "", awsproto.Errorf("CloudTrailARNInvalidException",
			"Account ID in ARN is wrong, you can only access resources in account %s.", h.res.AccountID)
	}
	return typ, nil
}

type tagsInput struct {
	ResourceId *string    `json:"ResourceId"`
	TagsList   []tags.Tag `json:"TagsList"`
}

// validateTagsInput checks a request before anything is read: a list to
// add is held to the per-resource limit (so a 100,000-tag AddTags is
// refused at once), a list to remove to the model's bound.
func (h tagHandlers) validateTagsInput(in *tagsInput, removal bool) error {
	if err := trailRequired("ResourceId", in.ResourceId); err != nil {
		return err
	}
	if in.TagsList == nil {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'TagsList' failed to satisfy constraint: Member must not be null")
	}
	if removal {
		return tags.ValidateRemoval(in.TagsList)
	}
	return tags.Validate(in.TagsList)
}

func (h tagHandlers) addTags(ctx context.Context, req *Request, in *tagsInput) (*trailEmptyOutput, error) {
	if err := h.validateTagsInput(in, false); err != nil {
		return nil, err
	}
	arn := *in.ResourceId
	if err := h.checkResource(ctx, nil, req.Region, arn); err != nil {
		return nil, err
	}
	err := h.res.Store.Update(ctx, func(tx *state.Tx) error {
		if err := h.checkResource(ctx, tx, req.Region, arn); err != nil {
			return err
		}
		existing, err := tags.Load(tx, arn)
		if err != nil {
			return err
		}
		merged, err := tags.Merge(existing, in.TagsList)
		if err != nil {
			return err
		}
		return tags.Save(tx, arn, merged)
	})
	if err != nil {
		return nil, err
	}
	return &trailEmptyOutput{}, nil
}

func (h tagHandlers) removeTags(ctx context.Context, req *Request, in *tagsInput) (*trailEmptyOutput, error) {
	if err := h.validateTagsInput(in, true); err != nil {
		return nil, err
	}
	arn := *in.ResourceId
	if err := h.checkResource(ctx, nil, req.Region, arn); err != nil {
		return nil, err
	}
	err := h.res.Store.Update(ctx, func(tx *state.Tx) error {
		if err := h.checkResource(ctx, tx, req.Region, arn); err != nil {
			return err
		}
		existing, err := tags.Load(tx, arn)
		if err != nil {
			return err
		}
		return tags.Save(tx, arn, tags.Remove(existing, in.TagsList))
	})
	if err != nil {
		return nil, err
	}
	return &trailEmptyOutput{}, nil
}

type listTagsInput struct {
	ResourceIdList []string `json:"ResourceIdList"`
	NextToken      *string  `json:"NextToken"`
}

type resourceTag struct {
	ResourceId string     `json:"ResourceId"`
	TagsList   []tags.Tag `json:"TagsList"`
}

type listTagsOutput struct {
	ResourceTagList []resourceTag `json:"ResourceTagList"`
	NextToken       *string       `json:"NextToken,omitempty"`
}

// listTags returns the tags of up to 20 resources in one page: at most
// 20 x 50 tags, so CloudTrail's NextToken ("reserved for future use") is
// never needed and any token a client sends is not one Cairn issued.
func (h tagHandlers) listTags(ctx context.Context, req *Request, in *listTagsInput) (*listTagsOutput, error) {
	if in.ResourceIdList == nil {
		return nil, awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'ResourceIdList' failed to satisfy constraint: Member must not be null")
	}
	if len(in.ResourceIdList) > MaxListTagsResources {
		return nil, awsproto.Errorf("InvalidParameterException", "ResourceIdList can contain at most %d ARNs; %d were specified.", MaxListTagsResources, len(in.ResourceIdList))
	}
	if in.NextToken != nil && *in.NextToken != "" {
		return nil, awsproto.Errorf("InvalidTokenException", "The NextToken is not valid: ListTags returns every requested resource in one response.")
	}
	out := &listTagsOutput{ResourceTagList: make([]resourceTag, 0, len(in.ResourceIdList))}
	for _, arn := range in.ResourceIdList {
		if err := h.checkResource(ctx, nil, req.Region, arn); err != nil {
			return nil, err
		}
	}
	err := h.res.Store.View(ctx, func(r state.Reader) error {
		for _, arn := range in.ResourceIdList {
			if err := h.checkResource(ctx, r, req.Region, arn); err != nil {
				return err
			}
			list, err := tags.Load(r, arn)
			if err != nil {
				return err
			}
			out.ResourceTagList = append(out.ResourceTagList, resourceTag{ResourceId: arn, TagsList: list})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
