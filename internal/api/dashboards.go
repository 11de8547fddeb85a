package api

import (
	"context"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/lake/dashboards"
	"github.com/cairn-audit/cairn/internal/tags"
)

// DashboardOperations returns CloudTrail Lake's dashboard operations,
// backed by svc. svc is also the tag resolver for dashboard ARNs.
func DashboardOperations(svc *dashboards.Service) []Operation {
	h := dashboardHandlers{svc: svc}
	return []Operation{
		Op("CreateDashboard", false, h.create),
		Op("GetDashboard", true, h.get),
		Op("UpdateDashboard", false, h.update),
		Op("DeleteDashboard", false, h.delete),
		Op("ListDashboards", true, h.list),
		Op("StartDashboardRefresh", false, h.refresh),
	}
}

type dashboardHandlers struct{ svc *dashboards.Service }

func dashboardRequired(member string, present bool) error {
	if !present {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return nil
}

type createDashboardInput struct {
	Name                         *string                    `json:"Name"`
	RefreshSchedule              *dashboards.Schedule       `json:"RefreshSchedule"`
	TagsList                     []tags.Tag                 `json:"TagsList"`
	TerminationProtectionEnabled *bool                      `json:"TerminationProtectionEnabled"`
	Widgets                      []dashboards.RequestWidget `json:"Widgets"`
}

type createDashboardOutput struct {
	DashboardArn                 string               `json:"DashboardArn"`
	Name                         string               `json:"Name"`
	Type                         string               `json:"Type"`
	Widgets                      []dashboards.Widget  `json:"Widgets"`
	TagsList                     []tags.Tag           `json:"TagsList,omitempty"`
	RefreshSchedule              *dashboards.Schedule `json:"RefreshSchedule,omitempty"`
	TerminationProtectionEnabled bool                 `json:"TerminationProtectionEnabled"`
}

func (h dashboardHandlers) create(ctx context.Context, req *Request, in *createDashboardInput) (*createDashboardOutput, error) {
	if err := dashboardRequired("name", in.Name != nil); err != nil {
		return nil, err
	}
	d, tagList, err := h.svc.Create(ctx, req.Region, dashboards.CreateInput{
		Name: *in.Name, Widgets: in.Widgets, Schedule: in.RefreshSchedule,
		TerminationProtection: in.TerminationProtectionEnabled, Tags: in.TagsList,
	})
	if err != nil {
		return nil, err
	}
	return &createDashboardOutput{
		DashboardArn: d.ARN(), Name: d.Name, Type: d.Type, Widgets: widgetsOut(d.Widgets), TagsList: tagList,
		RefreshSchedule: d.Schedule, TerminationProtectionEnabled: d.TerminationProtection,
	}, nil
}

func widgetsOut(ws []dashboards.Widget) []dashboards.Widget {
	if ws == nil {
		return []dashboards.Widget{}
	}
	return ws
}

type dashboardIDInput struct {
	DashboardId *string `json:"DashboardId"`
}

type getDashboardOutput struct {
	DashboardArn                 string               `json:"DashboardArn"`
	Type                         string               `json:"Type"`
	Status                       string               `json:"Status"`
	Widgets                      []dashboards.Widget  `json:"Widgets"`
	RefreshSchedule              *dashboards.Schedule `json:"RefreshSchedule,omitempty"`
	CreatedTimestamp             *awsproto.Timestamp  `json:"CreatedTimestamp,omitempty"`
	UpdatedTimestamp             *awsproto.Timestamp  `json:"UpdatedTimestamp,omitempty"`
	LastRefreshId                *string              `json:"LastRefreshId,omitempty"`
	LastRefreshFailureReason     *string              `json:"LastRefreshFailureReason,omitempty"`
	TerminationProtectionEnabled bool                 `json:"TerminationProtectionEnabled"`
}

func (h dashboardHandlers) get(ctx context.Context, req *Request, in *dashboardIDInput) (*getDashboardOutput, error) {
	if err := dashboardRequired("dashboardId", in.DashboardId != nil); err != nil {
		return nil, err
	}
	d, err := h.svc.Get(ctx, req.Region, *in.DashboardId)
	if err != nil {
		return nil, err
	}
	return &getDashboardOutput{
		DashboardArn: d.ARN(), Type: d.Type, Status: d.Status, Widgets: widgetsOut(d.Widgets), RefreshSchedule: d.Schedule,
		CreatedTimestamp: awsproto.NewTimestamp(d.Created), UpdatedTimestamp: awsproto.NewTimestamp(d.Updated),
		LastRefreshId: channelOptString(d.LastRefreshID), LastRefreshFailureReason: channelOptString(d.LastRefreshFailure),
		TerminationProtectionEnabled: d.TerminationProtection,
	}, nil
}

type updateDashboardInput struct {
	DashboardId                  *string                    `json:"DashboardId"`
	RefreshSchedule              *dashboards.Schedule       `json:"RefreshSchedule"`
	TerminationProtectionEnabled *bool                      `json:"TerminationProtectionEnabled"`
	Widgets                      []dashboards.RequestWidget `json:"Widgets"`
}

type updateDashboardOutput struct {
	DashboardArn                 string               `json:"DashboardArn"`
	Name                         string               `json:"Name"`
	Type                         string               `json:"Type"`
	Widgets                      []dashboards.Widget  `json:"Widgets"`
	RefreshSchedule              *dashboards.Schedule `json:"RefreshSchedule,omitempty"`
	TerminationProtectionEnabled bool                 `json:"TerminationProtectionEnabled"`
	CreatedTimestamp             *awsproto.Timestamp  `json:"CreatedTimestamp,omitempty"`
	UpdatedTimestamp             *awsproto.Timestamp  `json:"UpdatedTimestamp,omitempty"`
}

func (h dashboardHandlers) update(ctx context.Context, req *Request, in *updateDashboardInput) (*updateDashboardOutput, error) {
	if err := dashboardRequired("dashboardId", in.DashboardId != nil); err != nil {
		return nil, err
	}
	d, err := h.svc.Update(ctx, req.Region, *in.DashboardId, dashboards.UpdateInput{
		Widgets: in.Widgets, Schedule: in.RefreshSchedule, TerminationProtection: in.TerminationProtectionEnabled,
	})
	if err != nil {
		return nil, err
	}
	return &updateDashboardOutput{
		DashboardArn: d.ARN(), Name: d.Name, Type: d.Type, Widgets: widgetsOut(d.Widgets), RefreshSchedule: d.Schedule,
		TerminationProtectionEnabled: d.TerminationProtection,
		CreatedTimestamp:             awsproto.NewTimestamp(d.Created), UpdatedTimestamp: awsproto.NewTimestamp(d.Updated),
	}, nil
}

func (h dashboardHandlers) delete(ctx context.Context, req *Request, in *dashboardIDInput) (*struct{}, error) {
	if err := dashboardRequired("dashboardId", in.DashboardId != nil); err != nil {
		return nil, err
	}
	return nil, h.svc.Delete(ctx, req.Region, *in.DashboardId)
}

type listDashboardsInput struct {
	NamePrefix *string `json:"NamePrefix"`
	Type       *string `json:"Type"`
	NextToken  *string `json:"NextToken"`
	MaxResults *int    `json:"MaxResults"`
}

type dashboardDetail struct {
	DashboardArn string `json:"DashboardArn"`
	Type         string `json:"Type"`
}

type listDashboardsOutput struct {
	Dashboards []dashboardDetail `json:"Dashboards"`
	NextToken  *string           `json:"NextToken,omitempty"`
}

func (h dashboardHandlers) list(ctx context.Context, req *Request, in *listDashboardsInput) (*listDashboardsOutput, error) {
	max := 0
	if in.MaxResults != nil {
		max = *in.MaxResults
		if max < 1 || max > 1000 {
			return nil, awsproto.Errorf("InvalidParameterException", "MaxResults %d is not valid: it must be from 1 to 1000.", max)
		}
	}
	ds, next, err := h.svc.List(ctx, req.Region, strOrEmpty(in.NamePrefix), strOrEmpty(in.Type), max, strOrEmpty(in.NextToken))
	if err != nil {
		return nil, err
	}
	out := &listDashboardsOutput{Dashboards: []dashboardDetail{}, NextToken: channelOptString(next)}
	for _, d := range ds {
		out.Dashboards = append(out.Dashboards, dashboardDetail{DashboardArn: d.ARN(), Type: d.Type})
	}
	return out, nil
}

type startDashboardRefreshInput struct {
	DashboardId          *string           `json:"DashboardId"`
	QueryParameterValues map[string]string `json:"QueryParameterValues"`
}

type startDashboardRefreshOutput struct {
	RefreshId string `json:"RefreshId"`
}

func (h dashboardHandlers) refresh(ctx context.Context, req *Request, in *startDashboardRefreshInput) (*startDashboardRefreshOutput, error) {
	if err := dashboardRequired("dashboardId", in.DashboardId != nil); err != nil {
		return nil, err
	}
	id, err := h.svc.StartRefresh(ctx, req.Region, *in.DashboardId, in.QueryParameterValues)
	if err != nil {
		return nil, err
	}
	return &startDashboardRefreshOutput{RefreshId: id}, nil
}
