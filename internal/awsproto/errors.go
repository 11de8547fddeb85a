// Package awsproto holds the AWS wire plumbing Cairn shares between its
// services: the JSON 1.1 and REST-JSON framing, the error shapes clients
// decode, epoch-second timestamps and SigV4 request verification.
//
// Everything here is about bytes on the wire; it knows nothing of trails or
// events, so that every service speaks the protocol the same way.
package awsproto

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error that reaches the client as an AWS modeled exception.
// Code is the exception name exactly as it appears on the wire, including
// the "Exception" suffix where AWS has one (TrailNotFoundException,
// ThrottlingException, UnknownOperationException, InternalFailure).
type Error struct {
	Code    string
	Message string
	// Status is the HTTP status; zero means "look it up by Code".
	Status int
	// Err is an underlying cause kept for logs; it is never sent to the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return StatusFor(e.Code)
}

// Errorf builds a modeled error; the status comes from the CloudTrail model.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure. Clients see a generic InternalFailure
// with status 500; the cause stays in the server's log.
func Internal(err error) *Error {
	return &Error{Code: "InternalFailure", Message: "An internal error occurred. Try again later.", Status: http.StatusInternalServerError, Err: err}
}

// AsError turns any error into the *Error sent to the client: modeled errors
// pass through, everything else becomes InternalFailure.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// IsCode reports whether err is a modeled error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// statusByCode lists the codes whose HTTP status is not 400, from the
// smithy.api#httpError traits of the CloudTrail and cloudtrail-data models
// plus the generic AWS authentication errors. It is never written after init.
var statusByCode = map[string]int{
	// 403
	"AccessDeniedException":                                  http.StatusForbidden,
	"InsufficientS3BucketPolicyException":                    http.StatusForbidden,
	"InsufficientSnsTopicPolicyException":                    http.StatusForbidden,
	"MaximumNumberOfTrailsExceededException":                 http.StatusForbidden,
	"NoManagementAccountSLRExistsException":                  http.StatusForbidden,
	"NotOrganizationManagementAccountException":              http.StatusForbidden,
	"MissingAuthenticationTokenException":                    http.StatusForbidden,
	"IncompleteSignatureException":                           http.StatusForbidden,
	"InvalidSignatureException":                              http.StatusForbidden,
	"UnrecognizedClientException":                            http.StatusForbidden,
	"SignatureDoesNotMatch":                                  http.StatusForbidden,
	"ChannelInsufficientPermission":                          http.StatusBadRequest,
	"InvalidClientTokenId":                                   http.StatusForbidden,
	"CloudTrailInvalidClientTokenIdException":                http.StatusBadRequest,
	"AccountNotFoundException":                               http.StatusNotFound,
	"ChannelNotFoundException":                               http.StatusNotFound,
	"EventDataStoreNotFoundException":                        http.StatusNotFound,
	"ImportNotFoundException":                                http.StatusNotFound,
	"OrganizationsNotInUseException":                         http.StatusNotFound,
	"QueryIdNotFoundException":                               http.StatusNotFound,
	"ResourcePolicyNotFoundException":                        http.StatusNotFound,
	"S3BucketDoesNotExistException":                          http.StatusNotFound,
	"TrailNotFoundException":                                 http.StatusNotFound,
	"TrailNotProvidedException":                              http.StatusNotFound,
	"ConflictException":                                      http.StatusConflict,
	"MaxConcurrentQueriesException":                          http.StatusTooManyRequests,
	"ThrottlingException":                                    http.StatusTooManyRequests,
	"InternalFailure":                                        http.StatusInternalServerError,
	"ServiceUnavailableException":                            http.StatusServiceUnavailable,
	"RequestEntityTooLargeException":                         http.StatusRequestEntityTooLarge,
	"UnknownOperationException":                              http.StatusBadRequest,
	"SerializationException":                                 http.StatusBadRequest,
	"ValidationException":                                    http.StatusBadRequest,
	"InvalidParameterException":                              http.StatusBadRequest,
	"OperationNotPermittedException":                         http.StatusBadRequest,
	"UnsupportedOperationException":                          http.StatusBadRequest,
	"InsufficientIAMAccessPermissionException":               http.StatusBadRequest,
	"InsufficientDependencyServiceAccessPermissionException": http.StatusBadRequest,
}

// StatusFor is the HTTP status AWS sends with a modeled error code.
func StatusFor(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusBadRequest
}
