package server

import (
	"fmt"
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
	// release gives the body's bytes back to the body budget; the handler
	// calls it when it is done with body.
	release func()
}

// authenticate verifies the request's signature for service and reads its
// body (at most maxBody bytes). Every Cairn endpoint goes through here, so
// that no handler can forget a step: what the headers alone can refuse is
// refused before the body is read (see intake.go), the body's bytes are
// reserved from the shared budget and read within the deadline, hashed
// into the signature check, and the key is looked up again after
// verification in case it was deleted in between. Errors are the AWS
// codes clients expect.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, service string, maxBody int64) (_ *authenticated, err error) {
	pending, err := s.preVerify(w, r, service, maxBody, func(n int64) error {
		return awsproto.Errorf("RequestEntityTooLargeException", "Request body is larger than %d bytes.", maxBody)
	})
	if err != nil {
		return nil, err
	}
	release, err := s.admitBody(w, r, maxBody, pending.AccessKeyID())
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	body, err := readWholeBody(w, r, maxBody)
	if err != nil {
		return nil, err
	}
	cred, err := pending.Verify(body)
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
	return &authenticated{body: body, cred: cred, caller: callerOf(key, s.cfg.AccountID), release: release}, nil
}

// preVerify is everything that is refused from the headers alone, before a
// byte of the body is read: a region Cairn does not serve, a declared
// length over maxBody (tooLarge says how the endpoint words it), and every
// signature fault awsproto.PreVerify finds. A refusal closes the
// connection after the answer (refusedUnread).
func (s *Server) preVerify(w http.ResponseWriter, r *http.Request, service string, maxBody int64, tooLarge func(int64) error) (*awsproto.PendingRequest, error) {
	err := s.regions.refuse(r, service)
	if err == nil && r.ContentLength > maxBody {
		err = tooLarge(r.ContentLength)
	}
	var pending *awsproto.PendingRequest
	if err == nil {
		pending, err = awsproto.PreVerify(r.Context(), r, s.secretFor, s.cfg.Now(), awsproto.VerifyOptions{Service: service})
	}
	if err != nil {
		refusedUnread(w)
		return nil, err
	}
	return pending, nil
}
