package api

import (
	"context"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/lake/imports"
)

// ImportOperations returns CloudTrail Lake's import operations (copying
// trail log files into an event data store), backed by svc.
func ImportOperations(svc *imports.Service) []Operation {
	h := importHandlers{svc: svc}
	return []Operation{
		Op("StartImport", false, h.start),
		Op("GetImport", true, h.get),
		Op("ListImports", true, h.list),
		Op("ListImportFailures", true, h.listFailures),
		Op("StopImport", false, h.stop),
	}
}

type importHandlers struct{ svc *imports.Service }

// importSource is ImportSource.
type importSource struct {
	S3 *imports.S3Source `json:"S3"`
}

// importStatistics is ImportStatistics; every member is always sent.
type importStatistics = imports.Statistics

// importOutput is the shape StartImport, GetImport and StopImport share.
// StartImport sends no ImportStatistics.
type importOutput struct {
	ImportId         string              `json:"ImportId"`
	Destinations     []string            `json:"Destinations"`
	ImportSource     importSource        `json:"ImportSource"`
	StartEventTime   *awsproto.Timestamp `json:"StartEventTime,omitempty"`
	EndEventTime     *awsproto.Timestamp `json:"EndEventTime,omitempty"`
	ImportStatus     string              `json:"ImportStatus"`
	CreatedTimestamp *awsproto.Timestamp `json:"CreatedTimestamp,omitempty"`
	UpdatedTimestamp *awsproto.Timestamp `json:"UpdatedTimestamp,omitempty"`
	ImportStatistics *importStatistics   `json:"ImportStatistics,omitempty"`
}

func importOut(im imports.Import, withStats bool) *importOutput {
	src := im.Source
	out := &importOutput{
		ImportId: im.ID, Destinations: im.Destinations, ImportSource: importSource{S3: &src},
		ImportStatus: im.Status, CreatedTimestamp: awsproto.NewTimestamp(im.Created), UpdatedTimestamp: awsproto.NewTimestamp(im.Updated),
	}
	if im.Start != nil {
		out.StartEventTime = awsproto.NewTimestamp(*im.Start)
	}
	if im.End != nil {
		out.EndEventTime = awsproto.NewTimestamp(*im.End)
	}
	if withStats {
		st := im.Stats
		out.ImportStatistics = &st
	}
	return out
}

// startImportInput is StartImportRequest.
type startImportInput struct {
	Destinations   []string            `json:"Destinations"`
	ImportSource   *importSource       `json:"ImportSource"`
	StartEventTime *awsproto.Timestamp `json:"StartEventTime"`
	EndEventTime   *awsproto.Timestamp `json:"EndEventTime"`
	ImportId       *string             `json:"ImportId"`
}

func (h importHandlers) start(ctx context.Context, req *Request, in *startImportInput) (*importOutput, error) {
	si := imports.StartInput{Destinations: in.Destinations}
	if in.ImportSource != nil {
		if in.ImportSource.S3 == nil {
			return nil, awsproto.Errorf("InvalidParameterException", "ImportSource needs its S3 member.")
		}
		si.Source = in.ImportSource.S3
	}
	if in.StartEventTime != nil {
		si.Start = &in.StartEventTime.Time
	}
	if in.EndEventTime != nil {
		si.End = &in.EndEventTime.Time
	}
	if in.ImportId != nil {
		si.ImportID = *in.ImportId
	}
	im, err := h.svc.Start(ctx, req.Region, si)
	if err != nil {
		return nil, err
	}
	return importOut(im, false), nil
}

// importIDInput is the input of GetImport and StopImport.
type importIDInput struct {
	ImportId *string `json:"ImportId"`
}

func requiredImportID(in *importIDInput) (string, error) {
	if in.ImportId == nil {
		return "", awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'importId' failed to satisfy constraint: Member must not be null")
	}
	return *in.ImportId, nil
}

func (h importHandlers) get(ctx context.Context, _ *Request, in *importIDInput) (*importOutput, error) {
	id, err := requiredImportID(in)
	if err != nil {
		return nil, err
	}
	im, err := h.svc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return importOut(im, true), nil
}

func (h importHandlers) stop(ctx context.Context, _ *Request, in *importIDInput) (*importOutput, error) {
	id, err := requiredImportID(in)
	if err != nil {
		return nil, err
	}
	im, err := h.svc.Stop(ctx, id)
	if err != nil {
		return nil, err
	}
	return importOut(im, true), nil
}

// listImportsInput is ListImportsRequest.
type listImportsInput struct {
	MaxResults   *int    `json:"MaxResults"`
	Destination  *string `json:"Destination"`
	ImportStatus *string `json:"ImportStatus"`
	NextToken    *string `json:"NextToken"`
}

type importsListItem struct {
	ImportId         string              `json:"ImportId"`
	ImportStatus     string              `json:"ImportStatus"`
	Destinations     []string            `json:"Destinations"`
	CreatedTimestamp *awsproto.Timestamp `json:"CreatedTimestamp,omitempty"`
	UpdatedTimestamp *awsproto.Timestamp `json:"UpdatedTimestamp,omitempty"`
}

type listImportsOutput struct {
	Imports   []importsListItem `json:"Imports"`
	NextToken *string           `json:"NextToken,omitempty"`
}

// importMaxResults checks MaxResults against the model's 1–1000.
func importMaxResults(p *int) (int, error) {
	if p == nil {
		return 0, nil
	}
	if *p < 1 || *p > 1000 {
		return 0, awsproto.Errorf("InvalidParameterException", "MaxResults %d is not valid: it must be from 1 to 1000.", *p)
	}
	return *p, nil
}

func strOrEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (h importHandlers) list(ctx context.Context, _ *Request, in *listImportsInput) (*listImportsOutput, error) {
	max, err := importMaxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	ims, next, err := h.svc.List(ctx, imports.ListInput{
		Destination: strOrEmpty(in.Destination), Status: strOrEmpty(in.ImportStatus), MaxResults: max, NextToken: strOrEmpty(in.NextToken),
	})
	if err != nil {
		return nil, err
	}
	out := &listImportsOutput{Imports: []importsListItem{}, NextToken: channelOptString(next)}
	for _, im := range ims {
		out.Imports = append(out.Imports, importsListItem{
			ImportId: im.ID, ImportStatus: im.Status, Destinations: im.Destinations,
			CreatedTimestamp: awsproto.NewTimestamp(im.Created), UpdatedTimestamp: awsproto.NewTimestamp(im.Updated),
		})
	}
	return out, nil
}

// listImportFailuresInput is ListImportFailuresRequest.
type listImportFailuresInput struct {
	ImportId   *string `json:"ImportId"`
	MaxResults *int    `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

type importFailure struct {
	Location        string              `json:"Location"`
	Status          string              `json:"Status"`
	ErrorType       string              `json:"ErrorType,omitempty"`
	ErrorMessage    string              `json:"ErrorMessage,omitempty"`
	LastUpdatedTime *awsproto.Timestamp `json:"LastUpdatedTime,omitempty"`
}

type listImportFailuresOutput struct {
	Failures  []importFailure `json:"Failures"`
	NextToken *string         `json:"NextToken,omitempty"`
}

func (h importHandlers) listFailures(ctx context.Context, _ *Request, in *listImportFailuresInput) (*listImportFailuresOutput, error) {
	id, err := requiredImportID(&importIDInput{ImportId: in.ImportId})
	if err != nil {
		return nil, err
	}
	max, err := importMaxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	fs, next, err := h.svc.ListFailures(ctx, id, max, strOrEmpty(in.NextToken))
	if err != nil {
		return nil, err
	}
	out := &listImportFailuresOutput{Failures: []importFailure{}, NextToken: channelOptString(next)}
	for _, f := range fs {
		out.Failures = append(out.Failures, importFailure{
			Location: f.Location, Status: f.Status, ErrorType: f.ErrorType, ErrorMessage: f.Message,
			LastUpdatedTime: awsproto.NewTimestamp(f.LastUpdated),
		})
	}
	return out, nil
}
