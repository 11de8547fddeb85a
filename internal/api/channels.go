package api

import (
	"context"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/channel"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/tags"
)

// ChannelOperations returns the CloudTrail Lake channel operations and the
// resource-based policy operations, backed by svc.
//
// The policy operations take any ARN; today only channels have policies,
// so the channel service answers every ARN, with
// ResourceTypeNotSupportedException for other resource types. When event
// data stores and dashboards land, their policy handlers dispatch on the
// ARN's resource type before calling the channel service.
//
// svc is also the tag resolver for channel ARNs: pass it as
// the tagging service's resolver for tags.TypeChannel.
func ChannelOperations(svc *channel.Service) []Operation {
	h := channelHandlers{svc: svc}
	return []Operation{
		Op("CreateChannel", false, h.createChannel),
		Op("GetChannel", true, h.getChannel),
		Op("ListChannels", true, h.listChannels),
		Op("UpdateChannel", false, h.updateChannel),
		Op("DeleteChannel", false, h.deleteChannel),
		Op("PutResourcePolicy", false, h.putResourcePolicy),
		Op("GetResourcePolicy", true, h.getResourcePolicy),
		Op("DeleteResourcePolicy", false, h.deleteResourcePolicy),
	}
}

type channelHandlers struct{ svc *channel.Service }

// channelRequired reports a missing required member the way AWS's request
// validation does, for clients that skip client-side validation.
func channelRequired(member string, present bool) error {
	if !present {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return nil
}

// createChannelInput is CreateChannelRequest.
type createChannelInput struct {
	Name         *string               `json:"Name"`
	Source       *string               `json:"Source"`
	Destinations []channel.Destination `json:"Destinations"`
	Tags         []tags.Tag            `json:"Tags"`
}

// createChannelOutput is CreateChannelResponse; Tags is left out when the
// channel has none.
type createChannelOutput struct {
	ChannelArn   string                `json:"ChannelArn"`
	Name         string                `json:"Name"`
	Source       string                `json:"Source"`
	Destinations []channel.Destination `json:"Destinations"`
	Tags         []tags.Tag            `json:"Tags,omitempty"`
}

func (h channelHandlers) createChannel(ctx context.Context, req *Request, in *createChannelInput) (*createChannelOutput, error) {
	if err := channelRequired("Name", in.Name != nil); err != nil {
		return nil, err
	}
	if err := channelRequired("Source", in.Source != nil); err != nil {
		return nil, err
	}
	if err := channelRequired("Destinations", in.Destinations != nil); err != nil {
		return nil, err
	}
	c, tagList, err := h.svc.Create(ctx, req.Region, channel.CreateInput{
		Name: *in.Name, Source: *in.Source, Destinations: in.Destinations, Tags: in.Tags,
	})
	if err != nil {
		return nil, err
	}
	return &createChannelOutput{ChannelArn: c.ARN(), Name: c.Name, Source: c.Source, Destinations: c.Destinations, Tags: tagList}, nil
}

// channelRefInput is the input of GetChannel and DeleteChannel.
type channelRefInput struct {
	Channel *string `json:"Channel"`
}

// channelSourceConfig is SourceConfig; both members are always sent.
type channelSourceConfig struct {
	ApplyToAllRegions      bool                             `json:"ApplyToAllRegions"`
	AdvancedEventSelectors []selector.AdvancedEventSelector `json:"AdvancedEventSelectors"`
}

// channelIngestionStatus is IngestionStatus; "never" members are left out
// and the structure itself is always present.
type channelIngestionStatus struct {
	LatestIngestionSuccessTime    *awsproto.Timestamp `json:"LatestIngestionSuccessTime,omitempty"`
	LatestIngestionSuccessEventID *string             `json:"LatestIngestionSuccessEventID,omitempty"`
	LatestIngestionErrorCode      *string             `json:"LatestIngestionErrorCode,omitempty"`
	LatestIngestionAttemptTime    *awsproto.Timestamp `json:"LatestIngestionAttemptTime,omitempty"`
	LatestIngestionAttemptEventID *string             `json:"LatestIngestionAttemptEventID,omitempty"`
}

// getChannelOutput is GetChannelResponse.
type getChannelOutput struct {
	ChannelArn      string                 `json:"ChannelArn"`
	Name            string                 `json:"Name"`
	Source          string                 `json:"Source"`
	SourceConfig    channelSourceConfig    `json:"SourceConfig"`
	Destinations    []channel.Destination  `json:"Destinations"`
	IngestionStatus channelIngestionStatus `json:"IngestionStatus"`
}

func channelOptString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (h channelHandlers) getChannel(ctx context.Context, req *Request, in *channelRefInput) (*getChannelOutput, error) {
	if err := channelRequired("Channel", in.Channel != nil); err != nil {
		return nil, err
	}
	c, st, err := h.svc.Get(ctx, req.Region, *in.Channel)
	if err != nil {
		return nil, err
	}
	all, sels := c.SourceSelectors()
	return &getChannelOutput{
		ChannelArn:   c.ARN(),
		Name:         c.Name,
		Source:       c.Source,
		SourceConfig: channelSourceConfig{ApplyToAllRegions: all, AdvancedEventSelectors: sels},
		Destinations: c.Destinations,
		IngestionStatus: channelIngestionStatus{
			LatestIngestionSuccessTime:    awsproto.NewTimestamp(st.LatestIngestionSuccessTime),
			LatestIngestionSuccessEventID: channelOptString(st.LatestIngestionSuccessEventID),
			LatestIngestionErrorCode:      channelOptString(st.LatestIngestionErrorCode),
			LatestIngestionAttemptTime:    awsproto.NewTimestamp(st.LatestIngestionAttemptTime),
			LatestIngestionAttemptEventID: channelOptString(st.LatestIngestionAttemptEventID),
		},
	}, nil
}

// listChannelsInput is ListChannelsRequest.
type listChannelsInput struct {
	MaxResults *int    `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

type channelSummary struct {
	ChannelArn string `json:"ChannelArn"`
	Name       string `json:"Name"`
}

// listChannelsOutput is ListChannelsResponse; Channels is always a list.
type listChannelsOutput struct {
	Channels  []channelSummary `json:"Channels"`
	NextToken *string          `json:"NextToken,omitempty"`
}

func (h channelHandlers) listChannels(ctx context.Context, req *Request, in *listChannelsInput) (*listChannelsOutput, error) {
	max := 0
	if in.MaxResults != nil {
		max = *in.MaxResults
		if max < 1 || max > channel.MaxListResults {
			return nil, awsproto.Errorf("InvalidParameterException", "MaxResults must be between 1 and %d; it was %d.", channel.MaxListResults, max)
		}
	}
	tok := ""
	if in.NextToken != nil {
		tok = *in.NextToken
	}
	page, next, err := h.svc.List(ctx, req.Region, max, tok)
	if err != nil {
		return nil, err
	}
	out := &listChannelsOutput{Channels: make([]channelSummary, 0, len(page)), NextToken: channelOptString(next)}
	for i := range page {
		out.Channels = append(out.Channels, channelSummary{ChannelArn: page[i].ARN(), Name: page[i].Name})
	}
	return out, nil
}

// updateChannelInput is UpdateChannelRequest. Destinations stays nil when
// absent, so that an explicit empty list is refused rather than ignored.
type updateChannelInput struct {
	Channel      *string               `json:"Channel"`
	Destinations []channel.Destination `json:"Destinations"`
	Name         *string               `json:"Name"`
}

// updateChannelOutput is UpdateChannelResponse.
type updateChannelOutput struct {
	ChannelArn   string                `json:"ChannelArn"`
	Name         string                `json:"Name"`
	Source       string                `json:"Source"`
	Destinations []channel.Destination `json:"Destinations"`
}

func (h channelHandlers) updateChannel(ctx context.Context, req *Request, in *updateChannelInput) (*updateChannelOutput, error) {
	if err := channelRequired("Channel", in.Channel != nil); err != nil {
		return nil, err
	}
	c, err := h.svc.Update(ctx, req.Region, *in.Channel, channel.UpdateInput{Name: in.Name, Destinations: in.Destinations})
	if err != nil {
		return nil, err
	}
	return &updateChannelOutput{ChannelArn: c.ARN(), Name: c.Name, Source: c.Source, Destinations: c.Destinations}, nil
}

type channelEmptyOutput struct{}

func (h channelHandlers) deleteChannel(ctx context.Context, req *Request, in *channelRefInput) (*channelEmptyOutput, error) {
	if err := channelRequired("Channel", in.Channel != nil); err != nil {
		return nil, err
	}
	if err := h.svc.Delete(ctx, req.Region, *in.Channel); err != nil {
		return nil, err
	}
	return &channelEmptyOutput{}, nil
}

// resourcePolicyInput is the input of the three policy operations
// (ResourcePolicy only for PutResourcePolicy).
type resourcePolicyInput struct {
	ResourceArn    *string `json:"ResourceArn"`
	ResourcePolicy *string `json:"ResourcePolicy"`
}

// resourcePolicyOutput is Put/GetResourcePolicyResponse.
// DelegatedAdminResourcePolicy is never sent: Cairn has no organization.
type resourcePolicyOutput struct {
	ResourceArn    string `json:"ResourceArn"`
	ResourcePolicy string `json:"ResourcePolicy"`
}

func (h channelHandlers) putResourcePolicy(ctx context.Context, _ *Request, in *resourcePolicyInput) (*resourcePolicyOutput, error) {
	if err := channelRequired("ResourceArn", in.ResourceArn != nil); err != nil {
		return nil, err
	}
	if err := channelRequired("ResourcePolicy", in.ResourcePolicy != nil); err != nil {
		return nil, err
	}
	arn := *in.ResourceArn
	policy, err := h.svc.PutResourcePolicy(ctx, arn, *in.ResourcePolicy)
	if err != nil {
		return nil, err
	}
	return &resourcePolicyOutput{ResourceArn: arn, ResourcePolicy: policy}, nil
}

func (h channelHandlers) getResourcePolicy(ctx context.Context, _ *Request, in *resourcePolicyInput) (*resourcePolicyOutput, error) {
	if err := channelRequired("ResourceArn", in.ResourceArn != nil); err != nil {
		return nil, err
	}
	arn := *in.ResourceArn
	policy, err := h.svc.GetResourcePolicy(ctx, arn)
	if err != nil {
		return nil, err
	}
	return &resourcePolicyOutput{ResourceArn: arn, ResourcePolicy: policy}, nil
}

func (h channelHandlers) deleteResourcePolicy(ctx context.Context, _ *Request, in *resourcePolicyInput) (*channelEmptyOutput, error) {
	if err := channelRequired("ResourceArn", in.ResourceArn != nil); err != nil {
		return nil, err
	}
	if err := h.svc.DeleteResourcePolicy(ctx, *in.ResourceArn); err != nil {
		return nil, err
	}
	return &channelEmptyOutput{}, nil
}
