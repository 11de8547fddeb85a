package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cairn-audit/cairn/internal/api"
	"github.com/cairn-audit/cairn/internal/awsproto"
)

// authenticated is a request whose SigV4 signature checked out against a
// key that still exists.
type authenticated struct {
	body   []byte
	cred   *awsproto.Credential
	caller api.Caller
}

// authenticate reads the body (at most maxBody bytes) and verifies the
// request's signature for service. Every Cairn endpoint goes through here,
// so that no handler can forget a step: the body is read once, hashed into
// the signature check, and the key is looked up again after verification in
// case it was deleted in between. Errors are the AWS codes clients expect.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, service string, maxBody int64) (*authenticated, error) {
	if err := s.regions.refuse(r, service); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, awsproto.Errorf("RequestEntityTooLargeException", "Request body is larger than %d bytes.", maxBody)
		}
		return nil, awsproto.Errorf("SerializationException", "Could not read the request body: %v", err)
	}
	cred, err := awsproto.VerifyRequestWith(r.Context(), r, body, s.secretFor, s.cfg.Now(), awsproto.VerifyOptions{Service: service})
	if err != nil {
		return nil, err
	}
	key, _, ok, err := s.keys.Lookup(r.Context(), cred.AccessKeyID)
	if err != nil {
		return nil, awsproto.Internal(fmt.Errorf("look up access key: %w", err))
	}
	if !ok {
		return nil, awsproto.Errorf("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	return &authenticated{body: body, cred: cred, caller: callerOf(key, s.cfg.AccountID)}, nil
}
