package api

import (
	"context"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/tags"
)

// TagOperations returns AddTags, RemoveTags and ListTags, thin over the
// tagging service.
func TagOperations(svc *tags.Service) []Operation {
	h := tagHandlers{svc: svc}
	return []Operation{
		Op("AddTags", false, h.addTags),
		Op("RemoveTags", false, h.removeTags),
		Op("ListTags", true, h.listTags),
	}
}

type tagHandlers struct{ svc *tags.Service }

type tagsInput struct {
	ResourceId *string    `json:"ResourceId"`
	TagsList   []tags.Tag `json:"TagsList"`
}

// validateTagsInput checks the members every tag call needs; the service
// holds the list to its limits before anything is read (so a 100,000-tag
// AddTags is refused at once).
func validateTagsInput(in *tagsInput) error {
	if err := trailRequired("ResourceId", in.ResourceId); err != nil {
		return err
	}
	if in.TagsList == nil {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'TagsList' failed to satisfy constraint: Member must not be null")
	}
	return nil
}

func (h tagHandlers) addTags(ctx context.Context, req *Request, in *tagsInput) (*trailEmptyOutput, error) {
	if err := validateTagsInput(in); err != nil {
		return nil, err
	}
	if err := h.svc.Add(ctx, req.Region, *in.ResourceId, in.TagsList); err != nil {
		return nil, err
	}
	return &trailEmptyOutput{}, nil
}

func (h tagHandlers) removeTags(ctx context.Context, req *Request, in *tagsInput) (*trailEmptyOutput, error) {
	if err := validateTagsInput(in); err != nil {
		return nil, err
	}
	if err := h.svc.Remove(ctx, req.Region, *in.ResourceId, in.TagsList); err != nil {
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
	if len(in.ResourceIdList) > tags.MaxListResources {
		return nil, awsproto.Errorf("InvalidParameterException", "ResourceIdList can contain at most %d ARNs; %d were specified.", tags.MaxListResources, len(in.ResourceIdList))
	}
	if in.NextToken != nil && *in.NextToken != "" {
		return nil, awsproto.Errorf("InvalidTokenException", "The NextToken is not valid: ListTags returns every requested resource in one response.")
	}
	lists, err := h.svc.List(ctx, req.Region, in.ResourceIdList)
	if err != nil {
		return nil, err
	}
	out := &listTagsOutput{ResourceTagList: make([]resourceTag, len(lists))}
	for i, list := range lists {
		out.ResourceTagList[i] = resourceTag{ResourceId: in.ResourceIdList[i], TagsList: list}
	}
	return out, nil
}
