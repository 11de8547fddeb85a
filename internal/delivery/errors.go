package delivery

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"syscall"

	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/objstore"
)

// Delivery error texts Cairn adds to S3's own error codes.
const (
	// CodeKMSUnsupported: the trail has a KMS key and the object store
	// cannot encrypt with SSE-KMS (the file store). Cairn never falls back
	// to writing the log file unencrypted.
	CodeKMSUnsupported = "KMS.UnsupportedByStore"
	// CodeStoreUnreachable: no answer from the object store (connection
	// refused, DNS, network).
	CodeStoreUnreachable = "StoreUnreachable"
	// CodeTimeout: the store did not finish the write in time.
	CodeTimeout = "RequestTimeout"
	// CodeInternal: anything else; the log has the details.
	CodeInternal = "InternalError"
)

// ErrorCode turns a failed log file write into the short text GetTrailStatus
// shows as LatestDeliveryError. Like CloudTrail, it is the S3 error code
// when there is one ("NoSuchBucket", "AccessDenied",
// "InvalidAccessKeyId"...).
func ErrorCode(err error, kms bool) string {
	var ae smithy.APIError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case kms && errors.Is(err, objstore.ErrUnsupported):
		return CodeKMSUnsupported
	case errors.Is(err, objstore.ErrNoSuchBucket):
		return "NoSuchBucket"
	case errors.As(err, &ae) && ae.ErrorCode() != "":
		return ae.ErrorCode()
	case errors.Is(err, fs.ErrPermission):
		return "AccessDenied"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return CodeTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, new(*net.OpError)), errors.As(err, new(*net.DNSError)):
		return CodeStoreUnreachable
	case errors.Is(err, objstore.ErrInvalidKey):
		return "InvalidKey"
	}
	return CodeInternal
}
