package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/query"
)

// QueryOperations returns the CloudTrail Lake query operations (StartQuery,
// DescribeQuery, GetQueryResults, CancelQuery, ListQueries), the sample
// query search and GenerateQuery, backed by svc (see package query for
// how to build it).
func QueryOperations(svc *query.Service) []Operation {
	h := queryHandlers{svc: svc}
	return []Operation{
		Op("StartQuery", false, h.startQuery),
		Op("DescribeQuery", true, h.describeQuery),
		Op("GetQueryResults", true, h.getQueryResults),
		Op("CancelQuery", false, h.cancelQuery),
		Op("ListQueries", true, h.listQueries),
		Op("SearchSampleQueries", true, searchSampleQueries),
		Op("GenerateQuery", false, generateQuery),
	}
}

type queryHandlers struct{ svc *query.Service }

// queryRequired reports a missing required member as AWS's request
// validation does.
func queryRequired(member string, present bool) error {
	if !present {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return nil
}

// queryAccount is the account whose stores a request reads: the caller's,
// unless EventDataStoreOwnerAccountId names another (a delegated
// administrator's view of an organization's stores, which Cairn answers
// only for the caller's own account).
func queryAccount(req *Request, owner *string) (string, error) {
	if owner == nil || *owner == "" || *owner == req.AccountID {
		return req.AccountID, nil
	}
	if !awsproto.ValidAccountID(*owner) {
		return "", awsproto.Errorf("InvalidParameterException", "EventDataStoreOwnerAccountId %s is not a valid account ID.", *owner)
	}
	return "", awsproto.Errorf("EventDataStoreNotFoundException", "The account %s has no event data store this caller can query.", *owner)
}

// checkQueryID checks a QueryId's form (36 characters of [a-f0-9-]).
func checkQueryID(id string) error {
	if len(id) != 36 || strings.Trim(id, "0123456789abcdef-") != "" {
		return awsproto.Errorf("InvalidParameterException", "QueryId %s is not valid: it must be 36 characters of lower-case hex digits and dashes.", id)
	}
	return nil
}

// startQueryInput is StartQueryRequest.
type startQueryInput struct {
	QueryStatement               *string  `json:"QueryStatement"`
	DeliveryS3Uri                *string  `json:"DeliveryS3Uri"`
	QueryAlias                   *string  `json:"QueryAlias"`
	QueryParameters              []string `json:"QueryParameters"`
	EventDataStoreOwnerAccountId *string  `json:"EventDataStoreOwnerAccountId"`
}

// startQueryOutput is StartQueryResponse.
type startQueryOutput struct {
	QueryId                      string  `json:"QueryId"`
	EventDataStoreOwnerAccountId *string `json:"EventDataStoreOwnerAccountId,omitempty"`
}

func (h queryHandlers) startQuery(ctx context.Context, req *Request, in *startQueryInput) (*startQueryOutput, error) {
	hasStmt, hasAlias := in.QueryStatement != nil, in.QueryAlias != nil
	switch {
	case !hasStmt && !hasAlias:
		return nil, awsproto.Errorf("InvalidParameterException", "Specify either QueryStatement, or QueryAlias and QueryParameters.")
	case hasStmt && hasAlias:
		return nil, awsproto.Errorf("InvalidParameterException", "Specify either QueryStatement or QueryAlias, not both.")
	case in.QueryParameters != nil && !hasAlias:
		return nil, awsproto.Errorf("InvalidParameterException", "QueryParameters are only for a QueryAlias.")
	case in.QueryParameters != nil && (len(in.QueryParameters) < 1 || len(in.QueryParameters) > 10):
		return nil, awsproto.Errorf("InvalidParameterException", "QueryParameters must hold 1 to 10 values; it holds %d.", len(in.QueryParameters))
	}
	account, err := queryAccount(req, in.EventDataStoreOwnerAccountId)
	if err != nil {
		return nil, err
	}
	si := query.StartInput{Region: req.Region, AccountID: account, Parameters: in.QueryParameters}
	if hasStmt {
		si.Statement = *in.QueryStatement
	}
	if hasAlias {
		si.Alias = *in.QueryAlias
	}
	if in.DeliveryS3Uri != nil {
		si.DeliveryS3Uri = *in.DeliveryS3Uri
	}
	rec, err := h.svc.Start(ctx, si)
	if err != nil {
		return nil, err
	}
	return &startQueryOutput{QueryId: rec.ID, EventDataStoreOwnerAccountId: in.EventDataStoreOwnerAccountId}, nil
}

// describeQueryInput is DescribeQueryRequest.
type describeQueryInput struct {
	EventDataStore               *string `json:"EventDataStore"`
	QueryId                      *string `json:"QueryId"`
	QueryAlias                   *string `json:"QueryAlias"`
	RefreshId                    *string `json:"RefreshId"`
	EventDataStoreOwnerAccountId *string `json:"EventDataStoreOwnerAccountId"`
}

// queryStatisticsForDescribe is QueryStatisticsForDescribeQuery.
type queryStatisticsForDescribe struct {
	EventsMatched         int64               `json:"EventsMatched"`
	EventsScanned         int64               `json:"EventsScanned"`
	BytesScanned          int64               `json:"BytesScanned"`
	ExecutionTimeInMillis int64               `json:"ExecutionTimeInMillis"`
	CreationTime          *awsproto.Timestamp `json:"CreationTime"`
}

// describeQueryOutput is DescribeQueryResponse.
type describeQueryOutput struct {
	QueryId                      string                     `json:"QueryId"`
	QueryString                  string                     `json:"QueryString"`
	QueryStatus                  string                     `json:"QueryStatus"`
	QueryStatistics              queryStatisticsForDescribe `json:"QueryStatistics"`
	ErrorMessage                 *string                    `json:"ErrorMessage,omitempty"`
	DeliveryS3Uri                *string                    `json:"DeliveryS3Uri,omitempty"`
	DeliveryStatus               *string                    `json:"DeliveryStatus,omitempty"`
	EventDataStoreOwnerAccountId *string                    `json:"EventDataStoreOwnerAccountId,omitempty"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lookupQuery finds a query, checking the deprecated EventDataStore
// member when it is given.
func (h queryHandlers) lookupQuery(ctx context.Context, req *Request, id string, store, owner *string) (*query.Record, error) {
	account, err := queryAccount(req, owner)
	if err != nil {
		return nil, err
	}
	if store != nil {
		if _, err := h.svc.Engine().Store(ctx, req.Region, account, *store); err != nil {
			return nil, err
		}
	}
	if err := checkQueryID(id); err != nil {
		return nil, err
	}
	return h.svc.Get(ctx, req.Region, account, id)
}

func (h queryHandlers) describeQuery(ctx context.Context, req *Request, in *describeQueryInput) (*describeQueryOutput, error) {
	if in.QueryId == nil {
		if in.QueryAlias == nil {
			return nil, awsproto.Errorf("InvalidParameterException", "Specify QueryId, or QueryAlias and RefreshId.")
		}
		if in.RefreshId == nil {
			return nil, awsproto.Errorf("InvalidParameterException", "DescribeQuery by QueryAlias needs the RefreshId of the dashboard refresh.")
		}
		id, err := h.svc.QueryForAlias(ctx, req.Region, *in.QueryAlias, *in.RefreshId)
		if err != nil {
			return nil, err
		}
		in.QueryId = &id
	}
	rec, err := h.lookupQuery(ctx, req, *in.QueryId, in.EventDataStore, in.EventDataStoreOwnerAccountId)
	if err != nil {
		return nil, err
	}
	return &describeQueryOutput{
		QueryId:     rec.ID,
		QueryString: rec.Statement,
		QueryStatus: rec.Status,
		QueryStatistics: queryStatisticsForDescribe{
			EventsMatched:         rec.EventsMatched,
			EventsScanned:         rec.EventsScanned,
			BytesScanned:          rec.BytesScanned,
			ExecutionTimeInMillis: rec.ExecutionMS,
			CreationTime:          awsproto.NewTimestamp(rec.Created),
		},
		ErrorMessage:                 optString(rec.ErrorMessage),
		DeliveryS3Uri:                optString(rec.DeliveryS3Uri),
		DeliveryStatus:               optString(rec.DeliveryStatus),
		EventDataStoreOwnerAccountId: in.EventDataStoreOwnerAccountId,
	}, nil
}

// getQueryResultsInput is GetQueryResultsRequest.
type getQueryResultsInput struct {
	QueryId                      *string `json:"QueryId"`
	EventDataStore               *string `json:"EventDataStore"`
	NextToken                    *string `json:"NextToken"`
	MaxQueryResults              *int    `json:"MaxQueryResults"`
	EventDataStoreOwnerAccountId *string `json:"EventDataStoreOwnerAccountId"`
}

// queryStatistics is QueryStatistics.
type queryStatistics struct {
	ResultsCount      int64 `json:"ResultsCount"`
	TotalResultsCount int64 `json:"TotalResultsCount"`
	BytesScanned      int64 `json:"BytesScanned"`
}

// queryResultColumn is one single-entry map of a result row: the column
// and its value as a string. A NULL is sent as JSON null (the SDKs read
// it as an empty string; the AWS CLI shows null).
type queryResultColumn map[string]*string

// getQueryResultsOutput is GetQueryResultsResponse.
type getQueryResultsOutput struct {
	QueryStatus     string                `json:"QueryStatus"`
	QueryStatistics queryStatistics       `json:"QueryStatistics"`
	QueryResultRows [][]queryResultColumn `json:"QueryResultRows"`
	NextToken       *string               `json:"NextToken,omitempty"`
	ErrorMessage    *string               `json:"ErrorMessage,omitempty"`
}

// maxQueryResults is the model's bound on MaxQueryResults, and the page
// size when it is absent.
const maxQueryResults = 1000

func (h queryHandlers) getQueryResults(ctx context.Context, req *Request, in *getQueryResultsInput) (*getQueryResultsOutput, error) {
	if err := queryRequired("queryId", in.QueryId != nil); err != nil {
		return nil, err
	}
	max := maxQueryResults
	if in.MaxQueryResults != nil {
		max = *in.MaxQueryResults
		if max < 1 || max > maxQueryResults {
			return nil, awsproto.Errorf("InvalidMaxResultsException", "MaxQueryResults must be between 1 and %d; it was %d.", maxQueryResults, max)
		}
	}
	rec, err := h.lookupQuery(ctx, req, *in.QueryId, in.EventDataStore, in.EventDataStoreOwnerAccountId)
	if err != nil {
		return nil, err
	}
	tok := ""
	if in.NextToken != nil {
		tok = *in.NextToken
	}
	page, err := h.svc.Results(ctx, rec, tok, max)
	if err != nil {
		return nil, err
	}
	out := &getQueryResultsOutput{
		QueryStatus:     rec.Status,
		QueryResultRows: make([][]queryResultColumn, 0, len(page.Rows)),
		NextToken:       optString(page.NextToken),
		ErrorMessage:    optString(rec.ErrorMessage),
	}
	for _, row := range page.Rows {
		r := make([]queryResultColumn, len(row))
		for i, c := range row {
			r[i] = queryResultColumn{c.Column: c.Value}
		}
		out.QueryResultRows = append(out.QueryResultRows, r)
	}
	out.QueryStatistics = queryStatistics{
		ResultsCount:      int64(len(page.Rows)),
		TotalResultsCount: rec.ResultsCount,
		BytesScanned:      rec.BytesScanned,
	}
	return out, nil
}

// cancelQueryInput is CancelQueryRequest.
type cancelQueryInput struct {
	QueryId                      *string `json:"QueryId"`
	EventDataStore               *string `json:"EventDataStore"`
	EventDataStoreOwnerAccountId *string `json:"EventDataStoreOwnerAccountId"`
}

// cancelQueryOutput is CancelQueryResponse.
type cancelQueryOutput struct {
	QueryId                      string  `json:"QueryId"`
	QueryStatus                  string  `json:"QueryStatus"`
	EventDataStoreOwnerAccountId *string `json:"EventDataStoreOwnerAccountId,omitempty"`
}

func (h queryHandlers) cancelQuery(ctx context.Context, req *Request, in *cancelQueryInput) (*cancelQueryOutput, error) {
	if err := queryRequired("queryId", in.QueryId != nil); err != nil {
		return nil, err
	}
	rec, err := h.lookupQuery(ctx, req, *in.QueryId, in.EventDataStore, in.EventDataStoreOwnerAccountId)
	if err != nil {
		return nil, err
	}
	rec, err = h.svc.Cancel(ctx, req.Region, rec.AccountID, rec.ID)
	if err != nil {
		return nil, err
	}
	return &cancelQueryOutput{QueryId: rec.ID, QueryStatus: rec.Status, EventDataStoreOwnerAccountId: in.EventDataStoreOwnerAccountId}, nil
}

// listQueriesInput is ListQueriesRequest.
type listQueriesInput struct {
	EventDataStore *string             `json:"EventDataStore"`
	NextToken      *string             `json:"NextToken"`
	MaxResults     *int                `json:"MaxResults"`
	StartTime      *awsproto.Timestamp `json:"StartTime"`
	EndTime        *awsproto.Timestamp `json:"EndTime"`
	QueryStatus    *string             `json:"QueryStatus"`
}

// querySummary is Query.
type querySummary struct {
	QueryId      string              `json:"QueryId"`
	QueryStatus  string              `json:"QueryStatus"`
	CreationTime *awsproto.Timestamp `json:"CreationTime"`
}

// listQueriesOutput is ListQueriesResponse; Queries is always a list.
type listQueriesOutput struct {
	Queries   []querySummary `json:"Queries"`
	NextToken *string        `json:"NextToken,omitempty"`
}

var queryStatuses = map[string]bool{
	query.StatusQueued: true, query.StatusRunning: true, query.StatusFinished: true,
	query.StatusFailed: true, query.StatusCancelled: true, query.StatusTimedOut: true,
}

func (h queryHandlers) listQueries(ctx context.Context, req *Request, in *listQueriesInput) (*listQueriesOutput, error) {
	if err := queryRequired("eventDataStore", in.EventDataStore != nil); err != nil {
		return nil, err
	}
	max := maxQueryResults
	if in.MaxResults != nil {
		max = *in.MaxResults
		if max < 1 || max > maxQueryResults {
			return nil, awsproto.Errorf("InvalidMaxResultsException", "MaxResults must be between 1 and %d; it was %d.", maxQueryResults, max)
		}
	}
	f := query.ListFilter{}
	if in.StartTime != nil {
		f.Start = in.StartTime.Time
	}
	if in.EndTime != nil {
		f.End = in.EndTime.Time
	}
	if !f.Start.IsZero() && !f.End.IsZero() && f.Start.After(f.End) {
		return nil, awsproto.Errorf("InvalidDateRangeException", "StartTime %s is after EndTime %s.", f.Start.UTC().Format(time.RFC3339), f.End.UTC().Format(time.RFC3339))
	}
	if in.QueryStatus != nil {
		if !queryStatuses[*in.QueryStatus] {
			return nil, awsproto.Errorf("InvalidQueryStatusException", "QueryStatus %s is not valid: use QUEUED, RUNNING, FINISHED, FAILED, CANCELLED or TIMED_OUT.", *in.QueryStatus)
		}
		f.Status = *in.QueryStatus
	}
	spec, err := h.svc.Engine().Store(ctx, req.Region, req.AccountID, *in.EventDataStore)
	if err != nil {
		return nil, err
	}
	f.StoreARN = spec.ARN
	recs, err := h.svc.List(ctx, req.Region, req.AccountID, f)
	if err != nil {
		return nil, err
	}
	// The token is the position and a digest of the request's other
	// members: a token is only good with the parameters that produced it.
	digest := listDigest(in)
	start := 0
	if in.NextToken != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		d, pos, ok := strings.Cut(string(raw), ":")
		n, perr := strconv.Atoi(pos)
		if err != nil || !ok || d != digest || perr != nil || n < 0 || n > len(recs) {
			return nil, awsproto.Errorf("InvalidNextTokenException", "A token that is not valid, or a token that was previously used in a request with different parameters.")
		}
		start = n
	}
	end := min(start+max, len(recs))
	out := &listQueriesOutput{Queries: make([]querySummary, 0, end-start)}
	for _, r := range recs[start:end] {
		out.Queries = append(out.Queries, querySummary{QueryId: r.ID, QueryStatus: r.Status, CreationTime: awsproto.NewTimestamp(r.Created)})
	}
	if end < len(recs) {
		tok := base64.RawURLEncoding.EncodeToString([]byte(digest + ":" + strconv.Itoa(end)))
		out.NextToken = &tok
	}
	return out, nil
}

func listDigest(in *listQueriesInput) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|", deref(in.EventDataStore))
	if in.StartTime != nil {
		fmt.Fprintf(h, "%d", in.StartTime.UnixNano())
	}
	h.Write([]byte("|"))
	if in.EndTime != nil {
		fmt.Fprintf(h, "%d", in.EndTime.UnixNano())
	}
	fmt.Fprintf(h, "|%s", deref(in.QueryStatus))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// searchSampleQueriesInput is SearchSampleQueriesRequest.
type searchSampleQueriesInput struct {
	SearchPhrase *string `json:"SearchPhrase"`
	MaxResults   *int    `json:"MaxResults"`
	NextToken    *string `json:"NextToken"`
}

// sampleQueryResult is SearchSampleQueriesSearchResult.
type sampleQueryResult struct {
	Name        string  `json:"Name"`
	Description string  `json:"Description"`
	SQL         string  `json:"SQL"`
	Relevance   float32 `json:"Relevance"`
}

// searchSampleQueriesOutput is SearchSampleQueriesResponse.
type searchSampleQueriesOutput struct {
	SearchResults []sampleQueryResult `json:"SearchResults"`
	NextToken     *string             `json:"NextToken,omitempty"`
}

// maxSampleResults is the model's bound on SearchSampleQueries'
// MaxResults; defaultSampleResults the page size when it is absent.
const (
	maxSampleResults     = 50
	defaultSampleResults = 10
)

func searchSampleQueries(_ context.Context, _ *Request, in *searchSampleQueriesInput) (*searchSampleQueriesOutput, error) {
	if err := queryRequired("searchPhrase", in.SearchPhrase != nil); err != nil {
		return nil, err
	}
	phrase := *in.SearchPhrase
	if n := len(phrase); n < 2 || n > 1000 {
		return nil, awsproto.Errorf("InvalidParameterException", "SearchPhrase must be 2 to 1000 characters long; it is %d.", n)
	}
	max := defaultSampleResults
	if in.MaxResults != nil {
		max = *in.MaxResults
		if max < 1 || max > maxSampleResults {
			return nil, awsproto.Errorf("InvalidParameterException", "MaxResults must be between 1 and %d; it was %d.", maxSampleResults, max)
		}
	}
	results, err := query.Search(phrase)
	if err != nil {
		return nil, awsproto.Internal(err)
	}
	sum := sha256.Sum256([]byte(phrase))
	digest := hex.EncodeToString(sum[:8])
	start := 0
	if in.NextToken != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		d, pos, ok := strings.Cut(string(raw), ":")
		n, perr := strconv.Atoi(pos)
		if err != nil || !ok || d != digest || perr != nil || n < 0 || n > len(results) {
			return nil, awsproto.Errorf("InvalidParameterException", "NextToken is not valid for this SearchPhrase.")
		}
		start = n
	}
	end := min(start+max, len(results))
	out := &searchSampleQueriesOutput{SearchResults: make([]sampleQueryResult, 0, end-start)}
	for _, r := range results[start:end] {
		out.SearchResults = append(out.SearchResults, sampleQueryResult{Name: r.Name, Description: r.Description, SQL: r.SQL, Relevance: r.Relevance})
	}
	if end < len(results) {
		tok := base64.RawURLEncoding.EncodeToString([]byte(digest + ":" + strconv.Itoa(end)))
		out.NextToken = &tok
	}
	return out, nil
}

// generateQueryInput is GenerateQueryRequest.
type generateQueryInput struct {
	EventDataStores []string `json:"EventDataStores"`
	Prompt          *string  `json:"Prompt"`
}

// generateQuery answers CloudTrail's modeled error for an operation a
// deployment does not offer: Lake turns the prompt into SQL with a large
// language model, and Cairn has none. A query built from keywords would
// answer a different question than the one asked while looking like an
// answer, so Cairn says no and points at what it does have.
func generateQuery(_ context.Context, _ *Request, in *generateQueryInput) (*struct{}, error) {
	if err := queryRequired("eventDataStores", in.EventDataStores != nil); err != nil {
		return nil, err
	}
	if err := queryRequired("prompt", in.Prompt != nil); err != nil {
		return nil, err
	}
	return nil, awsproto.Errorf("UnsupportedOperationException", "GenerateQuery is not supported: Cairn has no language model to turn a prompt into SQL. Search the sample queries (SearchSampleQueries) for one to start from, or write the query in SQL.")
}
