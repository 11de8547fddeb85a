package api

import (
	"context"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/tags"
)

// EventDataStoreOperations returns the eight CloudTrail Lake event data
// store operations, backed by svc. svc is also the tag resolver for
// eventdatastore ARNs: pass it as the tagging service's resolver for
// tags.TypeEventDataStore.
func EventDataStoreOperations(svc *lake.Service) []Operation {
	h := edsHandlers{svc: svc}
	return []Operation{
		Op("CreateEventDataStore", false, h.create),
		Op("GetEventDataStore", true, h.get),
		Op("UpdateEventDataStore", false, h.update),
		Op("DeleteEventDataStore", false, h.delete),
		Op("RestoreEventDataStore", false, h.restore),
		Op("ListEventDataStores", true, h.list),
		Op("StartEventDataStoreIngestion", false, h.startIngestion),
		Op("StopEventDataStoreIngestion", false, h.stopIngestion),
		Op("EnableFederation", false, h.enableFederation),
		Op("DisableFederation", false, h.disableFederation),
	}
}

type edsHandlers struct{ svc *lake.Service }

// edsRequired reports a missing required member the way AWS's request
// validation does, for clients that skip client-side validation.
func edsRequired(member string, present bool) error {
	if !present {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return nil
}

// createEventDataStoreInput is CreateEventDataStoreRequest.
type createEventDataStoreInput struct {
	Name                         *string                          `json:"Name"`
	AdvancedEventSelectors       []selector.AdvancedEventSelector `json:"AdvancedEventSelectors"`
	MultiRegionEnabled           *bool                            `json:"MultiRegionEnabled"`
	OrganizationEnabled          *bool                            `json:"OrganizationEnabled"`
	RetentionPeriod              *int                             `json:"RetentionPeriod"`
	TerminationProtectionEnabled *bool                            `json:"TerminationProtectionEnabled"`
	TagsList                     []tags.Tag                       `json:"TagsList"`
	KmsKeyId                     *string                          `json:"KmsKeyId"`
	StartIngestion               *bool                            `json:"StartIngestion"`
	BillingMode                  *string                          `json:"BillingMode"`
}

// edsShape is the event data store of the Create, Get, Update and Restore
// answers, members in the order AWS sends them; Create adds TagsList,
// Get and Update FederationStatus, Get PartitionKeys. Booleans are always
// sent; KmsKeyId only when the store has a key.
type edsShape struct {
	EventDataStoreArn            string                           `json:"EventDataStoreArn"`
	Name                         string                           `json:"Name"`
	Status                       string                           `json:"Status"`
	AdvancedEventSelectors       []selector.AdvancedEventSelector `json:"AdvancedEventSelectors"`
	MultiRegionEnabled           bool                             `json:"MultiRegionEnabled"`
	OrganizationEnabled          bool                             `json:"OrganizationEnabled"`
	BillingMode                  string                           `json:"BillingMode"`
	RetentionPeriod              int                              `json:"RetentionPeriod"`
	TerminationProtectionEnabled bool                             `json:"TerminationProtectionEnabled"`
	TagsList                     []tags.Tag                       `json:"TagsList,omitempty"`
	CreatedTimestamp             *awsproto.Timestamp              `json:"CreatedTimestamp,omitempty"`
	UpdatedTimestamp             *awsproto.Timestamp              `json:"UpdatedTimestamp,omitempty"`
	KmsKeyId                     *string                          `json:"KmsKeyId,omitempty"`
	FederationStatus             *string                          `json:"FederationStatus,omitempty"`
	FederationRoleArn            *string                          `json:"FederationRoleArn,omitempty"`
	PartitionKeys                []partitionKey                   `json:"PartitionKeys,omitempty"`
}

// partitionKey is PartitionKey; Cairn's stores have none until federation.
type partitionKey struct {
	Name string `json:"Name"`
	Type string `json:"Type"`
}

func edsShapeOf(st *lake.Store) *edsShape {
	out := &edsShape{
		EventDataStoreArn:            st.ARN(),
		Name:                         st.Name,
		Status:                       st.Status,
		AdvancedEventSelectors:       st.AdvancedEventSelectors,
		MultiRegionEnabled:           st.MultiRegionEnabled,
		OrganizationEnabled:          st.OrganizationEnabled,
		BillingMode:                  st.BillingMode,
		RetentionPeriod:              st.RetentionPeriod,
		TerminationProtectionEnabled: st.TerminationProtectionEnabled,
		CreatedTimestamp:             awsproto.NewTimestamp(st.CreatedAt),
		UpdatedTimestamp:             awsproto.NewTimestamp(st.UpdatedAt),
	}
	if st.KmsKeyId != "" {
		key := st.KmsKeyId
		out.KmsKeyId = &key
	}
	return out
}

// withFederation adds FederationStatus and FederationRoleArn, which Get
// and Update send.
func (o *edsShape) withFederation(st *lake.Store) *edsShape {
	status := st.FederationStatus()
	o.FederationStatus = &status
	if st.FederationRoleArn != "" {
		role := st.FederationRoleArn
		o.FederationRoleArn = &role
	}
	return o
}

// federationInput is EnableFederationRequest and DisableFederationRequest.
type federationInput struct {
	EventDataStore    *string `json:"EventDataStore"`
	FederationRoleArn *string `json:"FederationRoleArn"`
}

// federationOutput is EnableFederationResponse and
// DisableFederationResponse.
type federationOutput struct {
	EventDataStoreArn string  `json:"EventDataStoreArn"`
	FederationStatus  string  `json:"FederationStatus"`
	FederationRoleArn *string `json:"FederationRoleArn,omitempty"`
}

func federationOut(st lake.Store) *federationOutput {
	out := &federationOutput{EventDataStoreArn: st.ARN(), FederationStatus: st.FederationStatus()}
	if st.FederationRoleArn != "" {
		role := st.FederationRoleArn
		out.FederationRoleArn = &role
	}
	return out
}

func (h edsHandlers) enableFederation(ctx context.Context, req *Request, in *federationInput) (*federationOutput, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	if err := edsRequired("FederationRoleArn", in.FederationRoleArn != nil); err != nil {
		return nil, err
	}
	st, err := h.svc.EnableFederation(ctx, req.Region, *in.EventDataStore, *in.FederationRoleArn)
	if err != nil {
		return nil, err
	}
	return federationOut(st), nil
}

func (h edsHandlers) disableFederation(ctx context.Context, req *Request, in *federationInput) (*federationOutput, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	st, err := h.svc.DisableFederation(ctx, req.Region, *in.EventDataStore)
	if err != nil {
		return nil, err
	}
	return federationOut(st), nil
}

func (h edsHandlers) create(ctx context.Context, req *Request, in *createEventDataStoreInput) (*edsShape, error) {
	if err := edsRequired("Name", in.Name != nil); err != nil {
		return nil, err
	}
	st, tagList, err := h.svc.Create(ctx, req.Region, lake.CreateInput{
		Name:                         *in.Name,
		AdvancedEventSelectors:       in.AdvancedEventSelectors,
		MultiRegionEnabled:           in.MultiRegionEnabled,
		OrganizationEnabled:          in.OrganizationEnabled,
		RetentionPeriod:              in.RetentionPeriod,
		TerminationProtectionEnabled: in.TerminationProtectionEnabled,
		Tags:                         in.TagsList,
		KmsKeyId:                     in.KmsKeyId,
		StartIngestion:               in.StartIngestion,
		BillingMode:                  in.BillingMode,
	})
	if err != nil {
		return nil, err
	}
	out := edsShapeOf(&st)
	// AWS answers CREATED; the store reaches its running status (which
	// Get shows) a moment later.
	out.Status = lake.StatusCreated
	out.TagsList = tagList
	return out, nil
}

// edsRefInput is the input of the operations that take only
// EventDataStore.
type edsRefInput struct {
	EventDataStore *string `json:"EventDataStore"`
}

func (h edsHandlers) get(ctx context.Context, req *Request, in *edsRefInput) (*edsShape, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	st, err := h.svc.Get(ctx, req.Region, *in.EventDataStore)
	if err != nil {
		return nil, err
	}
	return edsShapeOf(&st).withFederation(&st), nil
}

// updateEventDataStoreInput is UpdateEventDataStoreRequest.
type updateEventDataStoreInput struct {
	EventDataStore               *string                          `json:"EventDataStore"`
	Name                         *string                          `json:"Name"`
	AdvancedEventSelectors       []selector.AdvancedEventSelector `json:"AdvancedEventSelectors"`
	MultiRegionEnabled           *bool                            `json:"MultiRegionEnabled"`
	OrganizationEnabled          *bool                            `json:"OrganizationEnabled"`
	RetentionPeriod              *int                             `json:"RetentionPeriod"`
	TerminationProtectionEnabled *bool                            `json:"TerminationProtectionEnabled"`
	KmsKeyId                     *string                          `json:"KmsKeyId"`
	BillingMode                  *string                          `json:"BillingMode"`
}

func (h edsHandlers) update(ctx context.Context, req *Request, in *updateEventDataStoreInput) (*edsShape, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	st, err := h.svc.Update(ctx, req.Region, *in.EventDataStore, lake.UpdateInput{
		Name:                         in.Name,
		AdvancedEventSelectors:       in.AdvancedEventSelectors,
		MultiRegionEnabled:           in.MultiRegionEnabled,
		OrganizationEnabled:          in.OrganizationEnabled,
		RetentionPeriod:              in.RetentionPeriod,
		TerminationProtectionEnabled: in.TerminationProtectionEnabled,
		KmsKeyId:                     in.KmsKeyId,
		BillingMode:                  in.BillingMode,
	})
	if err != nil {
		return nil, err
	}
	return edsShapeOf(&st).withFederation(&st), nil
}

type edsEmptyOutput struct{}

func (h edsHandlers) delete(ctx context.Context, req *Request, in *edsRefInput) (*edsEmptyOutput, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	if err := h.svc.Delete(ctx, req.Region, *in.EventDataStore); err != nil {
		return nil, err
	}
	return &edsEmptyOutput{}, nil
}

func (h edsHandlers) restore(ctx context.Context, req *Request, in *edsRefInput) (*edsShape, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	st, err := h.svc.Restore(ctx, req.Region, *in.EventDataStore)
	if err != nil {
		return nil, err
	}
	return edsShapeOf(&st), nil
}

// listEventDataStoresInput is ListEventDataStoresRequest.
type listEventDataStoresInput struct {
	NextToken  *string `json:"NextToken"`
	MaxResults *int    `json:"MaxResults"`
}

// edsSummary is the EventDataStore of ListEventDataStores: AWS no longer
// sends the members the model marks deprecated there.
type edsSummary struct {
	EventDataStoreArn string `json:"EventDataStoreArn"`
	Name              string `json:"Name"`
}

// listEventDataStoresOutput is ListEventDataStoresResponse; the list is
// always present.
type listEventDataStoresOutput struct {
	EventDataStores []edsSummary `json:"EventDataStores"`
	NextToken       *string      `json:"NextToken,omitempty"`
}

func (h edsHandlers) list(ctx context.Context, req *Request, in *listEventDataStoresInput) (*listEventDataStoresOutput, error) {
	max := 0
	if in.MaxResults != nil {
		max = *in.MaxResults
		if max < 1 || max > lake.MaxListResults {
			return nil, awsproto.Errorf("InvalidMaxResultsException", "MaxResults must be between 1 and %d; it was %d.", lake.MaxListResults, max)
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
	out := &listEventDataStoresOutput{EventDataStores: make([]edsSummary, 0, len(page))}
	if next != "" {
		out.NextToken = &next
	}
	for i := range page {
		out.EventDataStores = append(out.EventDataStores, edsSummary{EventDataStoreArn: page[i].ARN(), Name: page[i].Name})
	}
	return out, nil
}

func (h edsHandlers) startIngestion(ctx context.Context, req *Request, in *edsRefInput) (*edsEmptyOutput, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	if err := h.svc.StartIngestion(ctx, req.Region, *in.EventDataStore); err != nil {
		return nil, err
	}
	return &edsEmptyOutput{}, nil
}

func (h edsHandlers) stopIngestion(ctx context.Context, req *Request, in *edsRefInput) (*edsEmptyOutput, error) {
	if err := edsRequired("EventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	if err := h.svc.StopIngestion(ctx, req.Region, *in.EventDataStore); err != nil {
		return nil, err
	}
	return &edsEmptyOutput{}, nil
}
