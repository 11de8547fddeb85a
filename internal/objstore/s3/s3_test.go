package s3_test

import (
	"testing"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/objstoretest"
	"github.com/cairn-audit/cairn/internal/objstore/s3/s3test"
)

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return srv.NewStore(t) })
}
