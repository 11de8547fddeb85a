// Package api holds Cairn's CloudTrail operations. Each operation is thin:
// decode the JSON 1.1 input, call the domain package that owns the data
// (trail, history, channel...), encode the output. Transport concerns —
// authentication, routing, auditing, error framing — live in package server,
// so an operation is a plain function that tests can call directly.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/event"
)

// Caller is the authenticated principal behind a request.
type Caller struct {
	AccessKeyID string
	UserName    string
	PrincipalID string
	ARN         string
	AccountID   string
	// ReadOnlyKey is true for keys that may call only read-only operations.
	ReadOnlyKey bool
}

// Identity is how the caller appears in the records of its calls: the
// IAM user of its access key, as CloudTrail names the signer of an API
// call. The API, PutAuditEvents, imports and the console all record it so.
func (c Caller) Identity() event.UserIdentity {
	return event.UserIdentity{
		Type:        "IAMUser",
		PrincipalID: c.PrincipalID,
		ARN:         c.ARN,
		AccountID:   c.AccountID,
		AccessKeyID: c.AccessKeyID,
		UserName:    c.UserName,
	}
}

// Request is everything an operation may know about the call besides its
// input: the region comes from the SigV4 credential scope, so one Cairn
// serves every region.
type Request struct {
	Operation string
	Region    string
	AccountID string
	Caller    Caller
	RequestID string
	SourceIP  string
	UserAgent string
	Time      time.Time
}

// Operation is one API action.
type Operation struct {
	Name string
	// ReadOnly operations are allowed for read-only keys and recorded with
	// readOnly=true and a null responseElements, as CloudTrail does.
	ReadOnly bool
	// Decode reads a request body into the operation's input. Errors are
	// *awsproto.Error (SerializationException).
	Decode func(body []byte) (*Input, error)
	// Perform performs the action on an input Decode returned and returns
	// the output to encode. Errors should be *awsproto.Error; anything else
	// becomes InternalFailure.
	Perform func(ctx context.Context, req *Request, in *Input) (any, error)
}

// Input is an operation's decoded input together with the document it was
// decoded from.
type Input struct {
	// Params is the canonical JSON document the operation acts on
	// (awsproto.CanonicalJSON11): the members of the input named exactly as
	// the model spells them, each once. The audit record's
	// requestParameters are built from it and never from the raw body, so
	// the record names exactly what the operation was given.
	Params json.RawMessage
	// Value points to the operation's input type, decoded from Params.
	Value any
}

// Handle decodes body and performs the action, for callers that do not
// record the call (console page reads, tests).
func (o Operation) Handle(ctx context.Context, req *Request, body []byte) (any, error) {
	in, err := o.Decode(body)
	if err != nil {
		return nil, err
	}
	return o.Perform(ctx, req, in)
}

// Op adapts a typed function to an Operation, decoding the input with the
// strict JSON 1.1 rules (SerializationException on malformed or mistyped
// input and on duplicate members; members not named exactly as the input's
// json tags are ignored).
func Op[In, Out any](name string, readOnly bool, fn func(ctx context.Context, req *Request, in *In) (*Out, error)) Operation {
	return Operation{
		Name:     name,
		ReadOnly: readOnly,
		Decode: func(body []byte) (*Input, error) {
			in := new(In)
			doc, err := awsproto.DecodeJSON11(body, in)
			if err != nil {
				return nil, err
			}
			return &Input{Params: doc, Value: in}, nil
		},
		Perform: func(ctx context.Context, req *Request, input *Input) (any, error) {
			in, ok := input.Value.(*In)
			if !ok {
				return nil, awsproto.Internal(fmt.Errorf("api: %s was given a %T input", name, input.Value))
			}
			out, err := fn(ctx, req, in)
			if err != nil {
				return nil, err
			}
			if out == nil {
				return struct{}{}, nil
			}
			return out, nil
		},
	}
}

// Registry maps operation names to operations. It is built once at start-up
// and only read afterwards.
type Registry struct {
	ops map[string]Operation
}

// NewRegistry builds a registry from groups of operations; a duplicate name
// is a programming error.
func NewRegistry(groups ...[]Operation) (*Registry, error) {
	r := &Registry{ops: make(map[string]Operation)}
	for _, g := range groups {
		for _, op := range g {
			if _, dup := r.ops[op.Name]; dup {
				return nil, fmt.Errorf("api: operation %s registered twice", op.Name)
			}
			r.ops[op.Name] = op
		}
	}
	return r, nil
}

// Lookup finds an operation by its name.
func (r *Registry) Lookup(name string) (Operation, bool) {
	op, ok := r.ops[name]
	return op, ok
}

// Names lists the registered operations in order.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.ops))
	for n := range r.ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Encode marshals an operation's output; used by the server and by tests
// that pin responses with golden files.
func Encode(out any) ([]byte, error) {
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("api: encode output: %w", err)
	}
	return b, nil
}
