package api

import (
	"context"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/tags"
	"github.com/cairn-audit/cairn/internal/trail"
)

// TrailOperations returns the trail, event selector and Insights selector
// operations backed by svc.
func TrailOperations(svc *trail.Service) []Operation {
	h := trailHandlers{svc: svc}
	return []Operation{
		Op("CreateTrail", false, h.createTrail),
		Op("UpdateTrail", false, h.updateTrail),
		Op("DeleteTrail", false, h.deleteTrail),
		Op("GetTrail", true, h.getTrail),
		Op("DescribeTrails", true, h.describeTrails),
		Op("ListTrails", true, h.listTrails),
		Op("GetTrailStatus", true, h.getTrailStatus),
		Op("StartLogging", false, h.startLogging),
		Op("StopLogging", false, h.stopLogging),
		Op("PutEventSelectors", false, h.putEventSelectors),
		Op("GetEventSelectors", true, h.getEventSelectors),
		Op("PutInsightSelectors", false, h.putInsightSelectors),
		Op("GetInsightSelectors", true, h.getInsightSelectors),
	}
}

type trailHandlers struct{ svc *trail.Service }

// required reports a missing required member the way AWS's request
// validation does, for clients that skip client-side validation.
func trailRequired(member string, v *string) error {
	if v == nil {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return nil
}

func trailString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func trailOptString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// createTrailInput is CreateTrailRequest.
type createTrailInput struct {
	Name                       *string    `json:"Name"`
	S3BucketName               *string    `json:"S3BucketName"`
	S3KeyPrefix                *string    `json:"S3KeyPrefix"`
	SnsTopicName               *string    `json:"SnsTopicName"`
	IncludeGlobalServiceEvents *bool      `json:"IncludeGlobalServiceEvents"`
	IsMultiRegionTrail         *bool      `json:"IsMultiRegionTrail"`
	EnableLogFileValidation    *bool      `json:"EnableLogFileValidation"`
	CloudWatchLogsLogGroupArn  *string    `json:"CloudWatchLogsLogGroupArn"`
	CloudWatchLogsRoleArn      *string    `json:"CloudWatchLogsRoleArn"`
	KmsKeyId                   *string    `json:"KmsKeyId"`
	IsOrganizationTrail        *bool      `json:"IsOrganizationTrail"`
	TagsList                   []tags.Tag `json:"TagsList"`
}

// trailShape is the Trail structure of GetTrail and DescribeTrails and,
// without HomeRegion and the Has* flags, the output of CreateTrail and
// UpdateTrail (see settingsOf). Booleans are always present, as AWS sends
// them; unset strings are left out. Field order is AWS's for both.
type trailShape struct {
	Name                       string  `json:"Name"`
	S3BucketName               string  `json:"S3BucketName"`
	S3KeyPrefix                *string `json:"S3KeyPrefix,omitempty"`
	SnsTopicName               *string `json:"SnsTopicName,omitempty"`
	SnsTopicARN                *string `json:"SnsTopicARN,omitempty"`
	IncludeGlobalServiceEvents bool    `json:"IncludeGlobalServiceEvents"`
	IsMultiRegionTrail         bool    `json:"IsMultiRegionTrail"`
	HomeRegion                 *string `json:"HomeRegion,omitempty"`
	TrailARN                   string  `json:"TrailARN"`
	LogFileValidationEnabled   bool    `json:"LogFileValidationEnabled"`
	CloudWatchLogsLogGroupArn  *string `json:"CloudWatchLogsLogGroupArn,omitempty"`
	CloudWatchLogsRoleArn      *string `json:"CloudWatchLogsRoleArn,omitempty"`
	KmsKeyId                   *string `json:"KmsKeyId,omitempty"`
	HasCustomEventSelectors    *bool   `json:"HasCustomEventSelectors,omitempty"`
	HasInsightSelectors        *bool   `json:"HasInsightSelectors,omitempty"`
	IsOrganizationTrail        bool    `json:"IsOrganizationTrail"`
}

// settingsOf is the output of CreateTrail and UpdateTrail.
func settingsOf(t *trail.Trail) *trailShape {
	return &trailShape{
		Name:                       t.Name,
		S3BucketName:               t.S3BucketName,
		S3KeyPrefix:                trailOptString(t.S3KeyPrefix),
		SnsTopicName:               trailOptString(t.SnsTopicName),
		SnsTopicARN:                trailOptString(t.SnsTopicARN),
		IncludeGlobalServiceEvents: t.IncludeGlobalServiceEvents,
		IsMultiRegionTrail:         t.IsMultiRegionTrail,
		TrailARN:                   t.ARN(),
		LogFileValidationEnabled:   t.LogFileValidationEnabled,
		CloudWatchLogsLogGroupArn:  trailOptString(t.CloudWatchLogsLogGroupArn),
		CloudWatchLogsRoleArn:      trailOptString(t.CloudWatchLogsRoleArn),
		KmsKeyId:                   trailOptString(t.KmsKeyId),
		IsOrganizationTrail:        t.IsOrganizationTrail,
	}
}

// shapeOf is the Trail of GetTrail and DescribeTrails.
func shapeOf(t *trail.Trail) trailShape {
	s := settingsOf(t)
	home, custom, insight := t.HomeRegion, t.HasCustomEventSelectors, t.HasInsightSelectors()
	s.HomeRegion, s.HasCustomEventSelectors, s.HasInsightSelectors = &home, &custom, &insight
	return *s
}

func (h trailHandlers) createTrail(ctx context.Context, req *Request, in *createTrailInput) (*trailShape, error) {
	if err := trailRequired("Name", in.Name); err != nil {
		return nil, err
	}
	if err := trailRequired("S3BucketName", in.S3BucketName); err != nil {
		return nil, err
	}
	t, err := h.svc.Create(ctx, req.Region, trail.CreateInput{
		Name:                       *in.Name,
		S3BucketName:               *in.S3BucketName,
		S3KeyPrefix:                trailString(in.S3KeyPrefix),
		SnsTopicName:               trailString(in.SnsTopicName),
		CloudWatchLogsLogGroupArn:  trailString(in.CloudWatchLogsLogGroupArn),
		CloudWatchLogsRoleArn:      trailString(in.CloudWatchLogsRoleArn),
		KmsKeyId:                   trailString(in.KmsKeyId),
		IncludeGlobalServiceEvents: in.IncludeGlobalServiceEvents,
		IsMultiRegionTrail:         in.IsMultiRegionTrail,
		EnableLogFileValidation:    in.EnableLogFileValidation,
		IsOrganizationTrail:        in.IsOrganizationTrail,
		Tags:                       in.TagsList,
	})
	if err != nil {
		return nil, err
	}
	return settingsOf(&t), nil
}

// updateTrailInput is UpdateTrailRequest.
type updateTrailInput struct {
	Name                       *string `json:"Name"`
	S3BucketName               *string `json:"S3BucketName"`
	S3KeyPrefix                *string `json:"S3KeyPrefix"`
	SnsTopicName               *string `json:"SnsTopicName"`
	IncludeGlobalServiceEvents *bool   `json:"IncludeGlobalServiceEvents"`
	IsMultiRegionTrail         *bool   `json:"IsMultiRegionTrail"`
	EnableLogFileValidation    *bool   `json:"EnableLogFileValidation"`
	CloudWatchLogsLogGroupArn  *string `json:"CloudWatchLogsLogGroupArn"`
	CloudWatchLogsRoleArn      *string `json:"CloudWatchLogsRoleArn"`
	KmsKeyId                   *string `json:"KmsKeyId"`
	IsOrganizationTrail        *bool   `json:"IsOrganizationTrail"`
}

func (h trailHandlers) updateTrail(ctx context.Context, req *Request, in *updateTrailInput) (*trailShape, error) {
	if err := trailRequired("Name", in.Name); err != nil {
		return nil, err
	}
	t, err := h.svc.Update(ctx, req.Region, trail.UpdateInput{
		Name:                       *in.Name,
		S3BucketName:               in.S3BucketName,
		S3KeyPrefix:                in.S3KeyPrefix,
		SnsTopicName:               in.SnsTopicName,
		CloudWatchLogsLogGroupArn:  in.CloudWatchLogsLogGroupArn,
		CloudWatchLogsRoleArn:      in.CloudWatchLogsRoleArn,
		KmsKeyId:                   in.KmsKeyId,
		IncludeGlobalServiceEvents: in.IncludeGlobalServiceEvents,
		IsMultiRegionTrail:         in.IsMultiRegionTrail,
		EnableLogFileValidation:    in.EnableLogFileValidation,
		IsOrganizationTrail:        in.IsOrganizationTrail,
	})
	if err != nil {
		return nil, err
	}
	return settingsOf(&t), nil
}

// trailNameArg is the input of the operations that take only Name.
type trailNameArg struct {
	Name *string `json:"Name"`
}

type trailEmptyOutput struct{}

func (h trailHandlers) deleteTrail(ctx context.Context, req *Request, in *trailNameArg) (*trailEmptyOutput, error) {
	if err := trailRequired("Name", in.Name); err != nil {
		return nil, err
	}
	if err := h.svc.Delete(ctx, req.Region, *in.Name); err != nil {
		return nil, err
	}
	return &trailEmptyOutput{}, nil
}

type getTrailOutput struct {
	Trail trailShape `json:"Trail"`
}

func (h trailHandlers) getTrail(ctx context.Context, req *Request, in *trailNameArg) (*getTrailOutput, error) {
	if err := trailRequired("Name", in.Name); err != nil {
		return nil, err
	}
	t, err := h.svc.Get(ctx, req.Region, *in.Name)
	if err != nil {
		return nil, err
	}
	return &getTrailOutput{Trail: shapeOf(&t)}, nil
}

// describeTrailsInput is DescribeTrailsRequest, whose members are the only
// camelCase ones in the API.
type describeTrailsInput struct {
	TrailNameList       []string `json:"trailNameList"`
	IncludeShadowTrails *bool    `json:"includeShadowTrails"`
}

type describeTrailsOutput struct {
	TrailList []trailShape `json:"trailList"`
}

func (h trailHandlers) describeTrails(ctx context.Context, req *Request, in *describeTrailsInput) (*describeTrailsOutput, error) {
	include := in.IncludeShadowTrails == nil || *in.IncludeShadowTrails
	ts, err := h.svc.Describe(ctx, req.Region, in.TrailNameList, include)
	if err != nil {
		return nil, err
	}
	out := &describeTrailsOutput{TrailList: make([]trailShape, 0, len(ts))}
	for i := range ts {
		out.TrailList = append(out.TrailList, shapeOf(&ts[i]))
	}
	return out, nil
}

type listTrailsInput struct {
	NextToken *string `json:"NextToken"`
}

type trailInfo struct {
	TrailARN   string `json:"TrailARN"`
	Name       string `json:"Name"`
	HomeRegion string `json:"HomeRegion"`
}

type listTrailsOutput struct {
	Trails    []trailInfo `json:"Trails"`
	NextToken *string     `json:"NextToken,omitempty"`
}

func (h trailHandlers) listTrails(ctx context.Context, req *Request, in *listTrailsInput) (*listTrailsOutput, error) {
	ts, next, err := h.svc.List(ctx, trailString(in.NextToken))
	if err != nil {
		return nil, err
	}
	out := &listTrailsOutput{Trails: make([]trailInfo, 0, len(ts)), NextToken: trailOptString(next)}
	for i := range ts {
		out.Trails = append(out.Trails, trailInfo{TrailARN: ts[i].ARN(), Name: ts[i].Name, HomeRegion: ts[i].HomeRegion})
	}
	return out, nil
}

// getTrailStatusOutput is GetTrailStatusResponse. The Date members are
// epoch seconds and left out until they happen; the six members the model
// types as strings ("no longer in use" but still sent) are always present,
// "" until they happen, as AWS sends them.
type getTrailStatusOutput struct {
	IsLogging                          bool                `json:"IsLogging"`
	LatestDeliveryError                *string             `json:"LatestDeliveryError,omitempty"`
	LatestNotificationError            *string             `json:"LatestNotificationError,omitempty"`
	LatestDeliveryTime                 *awsproto.Timestamp `json:"LatestDeliveryTime,omitempty"`
	LatestNotificationTime             *awsproto.Timestamp `json:"LatestNotificationTime,omitempty"`
	StartLoggingTime                   *awsproto.Timestamp `json:"StartLoggingTime,omitempty"`
	StopLoggingTime                    *awsproto.Timestamp `json:"StopLoggingTime,omitempty"`
	LatestCloudWatchLogsDeliveryError  *string             `json:"LatestCloudWatchLogsDeliveryError,omitempty"`
	LatestCloudWatchLogsDeliveryTime   *awsproto.Timestamp `json:"LatestCloudWatchLogsDeliveryTime,omitempty"`
	LatestDigestDeliveryTime           *awsproto.Timestamp `json:"LatestDigestDeliveryTime,omitempty"`
	LatestDigestDeliveryError          *string             `json:"LatestDigestDeliveryError,omitempty"`
	LatestDeliveryAttemptTime          string              `json:"LatestDeliveryAttemptTime"`
	LatestNotificationAttemptTime      string              `json:"LatestNotificationAttemptTime"`
	LatestNotificationAttemptSucceeded string              `json:"LatestNotificationAttemptSucceeded"`
	LatestDeliveryAttemptSucceeded     string              `json:"LatestDeliveryAttemptSucceeded"`
	TimeLoggingStarted                 string              `json:"TimeLoggingStarted"`
	TimeLoggingStopped                 string              `json:"TimeLoggingStopped"`
}

func (h trailHandlers) getTrailStatus(ctx context.Context, req *Request, in *trailNameArg) (*getTrailStatusOutput, error) {
	if err := trailRequired("Name", in.Name); err != nil {
		return nil, err
	}
	t, err := h.svc.GetStatus(ctx, req.Region, *in.Name)
	if err != nil {
		return nil, err
	}
	st := &t.Status
	return &getTrailStatusOutput{
		IsLogging:                          st.IsLogging,
		LatestDeliveryError:                trailOptString(st.LatestDeliveryError),
		LatestNotificationError:            trailOptString(st.LatestNotificationError),
		LatestDeliveryTime:                 awsproto.NewTimestamp(st.LatestDeliveryTime),
		LatestNotificationTime:             awsproto.NewTimestamp(st.LatestNotificationTime),
		StartLoggingTime:                   awsproto.NewTimestamp(st.StartLoggingTime),
		StopLoggingTime:                    awsproto.NewTimestamp(st.StopLoggingTime),
		LatestCloudWatchLogsDeliveryError:  trailOptString(st.LatestCloudWatchLogsDeliveryError),
		LatestCloudWatchLogsDeliveryTime:   awsproto.NewTimestamp(st.LatestCloudWatchLogsDeliveryTime),
		LatestDigestDeliveryTime:           awsproto.NewTimestamp(st.LatestDigestDeliveryTime),
		LatestDigestDeliveryError:          trailOptString(st.LatestDigestDeliveryError),
		LatestDeliveryAttemptTime:          trail.FormatStatusTime(st.LatestDeliveryAttemptTime),
		LatestNotificationAttemptTime:      trail.FormatStatusTime(st.LatestNotificationAttemptTime),
		LatestNotificationAttemptSucceeded: trail.FormatStatusTime(st.LatestNotificationAttemptSucceeded),
		LatestDeliveryAttemptSucceeded:     trail.FormatStatusTime(st.LatestDeliveryAttemptSucceeded),
		TimeLoggingStarted:                 trail.FormatStatusTime(st.StartLoggingTime),
		TimeLoggingStopped:                 trail.FormatStatusTime(st.StopLoggingTime),
	}, nil
}

func (h trailHandlers) startLogging(ctx context.Context, req *Request, in *trailNameArg) (*trailEmptyOutput, error) {
	if err := trailRequired("Name", in.Name); err != nil {
		return nil, err
	}
	if err := h.svc.StartLogging(ctx, req.Region, *in.Name); err != nil {
		return nil, err
	}
	return &trailEmptyOutput{}, nil
}

func (h trailHandlers) stopLogging(ctx context.Context, req *Request, in *trailNameArg) (*trailEmptyOutput, error) {
	if err := trailRequired("Name", in.Name); err != nil {
		return nil, err
	}
	if err := h.svc.StopLogging(ctx, req.Region, *in.Name); err != nil {
		return nil, err
	}
	return &trailEmptyOutput{}, nil
}

type putEventSelectorsInput struct {
	TrailName              *string                          `json:"TrailName"`
	EventSelectors         []selector.EventSelector         `json:"EventSelectors"`
	AdvancedEventSelectors []selector.AdvancedEventSelector `json:"AdvancedEventSelectors"`
}

// eventSelectorsOutput is the output of Put- and GetEventSelectors: the
// trail's ARN and whichever kind of selectors it has.
type eventSelectorsOutput struct {
	TrailARN               string                           `json:"TrailARN"`
	EventSelectors         []selector.EventSelector         `json:"EventSelectors,omitempty"`
	AdvancedEventSelectors []selector.AdvancedEventSelector `json:"AdvancedEventSelectors,omitempty"`
}

func selectorsOf(t *trail.Trail) *eventSelectorsOutput {
	basic, advanced := t.Selectors()
	return &eventSelectorsOutput{TrailARN: t.ARN(), EventSelectors: basic, AdvancedEventSelectors: advanced}
}

func (h trailHandlers) putEventSelectors(ctx context.Context, req *Request, in *putEventSelectorsInput) (*eventSelectorsOutput, error) {
	if err := trailRequired("TrailName", in.TrailName); err != nil {
		return nil, err
	}
	t, err := h.svc.PutEventSelectors(ctx, req.Region, *in.TrailName, in.EventSelectors, in.AdvancedEventSelectors)
	if err != nil {
		return nil, err
	}
	return selectorsOf(&t), nil
}

type selectorTrailInput struct {
	TrailName *string `json:"TrailName"`
}

func (h trailHandlers) getEventSelectors(ctx context.Context, req *Request, in *selectorTrailInput) (*eventSelectorsOutput, error) {
	if err := trailRequired("TrailName", in.TrailName); err != nil {
		return nil, err
	}
	t, err := h.svc.Get(ctx, req.Region, *in.TrailName)
	if err != nil {
		return nil, err
	}
	return selectorsOf(&t), nil
}

type putInsightSelectorsInput struct {
	TrailName           *string                    `json:"TrailName"`
	InsightSelectors    []selector.InsightSelector `json:"InsightSelectors"`
	EventDataStore      *string                    `json:"EventDataStore"`
	InsightsDestination *string                    `json:"InsightsDestination"`
}

type insightSelectorsOutput struct {
	TrailARN         string                     `json:"TrailARN"`
	InsightSelectors []selector.InsightSelector `json:"InsightSelectors"`
}

// trailLakeInsightsUnsupported answers Insights calls aimed at event data
// stores, which need CloudTrail Lake.
func trailLakeInsightsUnsupported() error {
	return awsproto.Errorf("UnsupportedOperationException",
		"Insights on event data stores (a source store's Insights events written to a destination store) is not supported by Cairn yet. Use TrailName to manage a trail's Insights selectors.")
}

func (h trailHandlers) putInsightSelectors(ctx context.Context, req *Request, in *putInsightSelectorsInput) (*insightSelectorsOutput, error) {
	if in.TrailName != nil && (in.EventDataStore != nil || in.InsightsDestination != nil) {
		return nil, awsproto.Errorf("InvalidParameterCombinationException",
			"TrailName cannot be used with EventDataStore or InsightsDestination. Specify TrailName for a trail, or EventDataStore and InsightsDestination for an event data store.")
	}
	if in.TrailName == nil {
		if in.EventDataStore != nil || in.InsightsDestination != nil {
			return nil, trailLakeInsightsUnsupported()
		}
		return nil, awsproto.Errorf("InvalidParameterCombinationException", "Specify TrailName, or EventDataStore and InsightsDestination.")
	}
	if in.InsightSelectors == nil {
		return nil, awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'InsightSelectors' failed to satisfy constraint: Member must not be null")
	}
	t, err := h.svc.PutInsightSelectors(ctx, req.Region, *in.TrailName, in.InsightSelectors)
	if err != nil {
		return nil, err
	}
	return &insightSelectorsOutput{TrailARN: t.ARN(), InsightSelectors: trailNonNil(t.InsightSelectors)}, nil
}

type getInsightSelectorsInput struct {
	TrailName      *string `json:"TrailName"`
	EventDataStore *string `json:"EventDataStore"`
}

func (h trailHandlers) getInsightSelectors(ctx context.Context, req *Request, in *getInsightSelectorsInput) (*insightSelectorsOutput, error) {
	switch {
	case in.TrailName != nil && in.EventDataStore != nil:
		return nil, awsproto.Errorf("InvalidParameterCombinationException", "Specify either TrailName or EventDataStore, but not both.")
	case in.EventDataStore != nil:
		return nil, trailLakeInsightsUnsupported()
	case in.TrailName == nil:
		return nil, awsproto.Errorf("InvalidParameterCombinationException", "Specify either TrailName or EventDataStore.")
	}
	t, err := h.svc.GetInsightSelectors(ctx, req.Region, *in.TrailName)
	if err != nil {
		return nil, err
	}
	return &insightSelectorsOutput{TrailARN: t.ARN(), InsightSelectors: t.InsightSelectors}, nil
}

func trailNonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
