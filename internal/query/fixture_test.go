package query

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-audit/cairn/internal/lake"
	"github.com/cairn-audit/cairn/internal/query/querytest"
)

// The fixture's records and writer are querytest's.
type record = querytest.Record

var (
	writeStore  = querytest.WriteStore
	str         = querytest.Str
	mapValue    = querytest.MapValue
	asList      = querytest.AsList
	lakeColumns = func() []Column {
		out := make([]Column, len(querytest.Columns))
		for i, c := range querytest.Columns {
			out[i] = Column{Name: c[0], Type: c[1]}
		}
		return out
	}()
)

// testCatalog is a Catalog over fixed stores.
type testCatalog struct {
	stores map[string]lake.Spec
	files  map[string][]string
}

func newTestCatalog() *testCatalog {
	return &testCatalog{stores: map[string]lake.Spec{}, files: map[string][]string{}}
}

const (
	testRegion  = "us-east-1"
	testAccount = "123456789012"
)

func (c *testCatalog) add(id string, files []string, queryable bool) lake.Spec {
	s := lake.Spec{
		ID: id, ARN: fmt.Sprintf("arn:aws:cloudtrail:%s:%s:eventdatastore/%s", testRegion, testAccount, id),
		Region: testRegion, AccountID: testAccount, Status: lake.StatusEnabled,
		Category: lake.CategoryManagement, Queryable: queryable,
	}
	if !queryable {
		s.Status = lake.StatusPendingDeletion
	}
	c.stores[id] = s
	c.files[id] = files
	return s
}

func (c *testCatalog) Lookup(_ context.Context, region, account, ref string) (lake.Spec, bool, error) {
	for _, s := range c.stores {
		if s.Region == region && s.AccountID == account && (strings.EqualFold(ref, s.ID) || ref == s.ARN) {
			return s, true, nil
		}
	}
	return lake.Spec{}, false, nil
}

func (c *testCatalog) Files(_ context.Context, id string) ([]string, error) { return c.files[id], nil }

func (c *testCatalog) Columns(string) []Column { return lakeColumns }
