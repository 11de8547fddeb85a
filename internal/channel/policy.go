package channel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/state"
)

// Resource policy limits from the model (ResourcePolicy, ResourceArn).
const (
	MaxPolicyLen      = 8192
	minResourceARNLen = 3
	maxResourceARNLen = 256
)

// ExternalIDConditionKey is the condition key whose StringEquals values a
// PutAuditEvents caller must present as externalId.
const ExternalIDConditionKey = "cloudtrail:ExternalId"

// parseResourceARN checks a ResourceArn and returns the channel it names.
// CloudTrail's resource policies also cover event data stores and
// dashboards; those are ResourceTypeNotSupportedException until the
// packages that own them land (they add their case to the API's dispatch
// on the ARN's resource type, not here).
func parseResourceARN(arn string) (ref, error) {
	invalid := func(why string) error {
		return awsproto.Errorf("ResourceARNNotValidException", "Resource ARN %q is not valid: %s.", arn, why)
	}
	if len(arn) < minResourceARNLen || len(arn) > maxResourceARNLen {
		return ref{}, invalid(fmt.Sprintf("it must be %d to %d characters", minResourceARNLen, maxResourceARNLen))
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" {
		return ref{}, invalid("the format is arn:<partition>:<service>:<region>:<account-id>:<resource>")
	}
	for i := 0; i < len(arn); i++ {
		c := arn[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._/-:", c) >= 0) {
			return ref{}, invalid("it contains characters other than letters, numbers and . _ / - :")
		}
	}
	typ, _, _ := strings.Cut(parts[5], "/")
	if parts[2] != "cloudtrail" || typ != "channel" {
		return ref{}, awsproto.Errorf("ResourceTypeNotSupportedException",
			"Resource-based policies are supported for CloudTrail channels; %q is not a channel ARN.", arn)
	}
	r, ok := parseARN(arn)
	if !ok {
		return ref{}, invalid(fmt.Sprintf("a channel ARN has the form arn:%s:cloudtrail:<region>:<account-id>:channel/<uuid>", Partition))
	}
	return r, nil
}

// resolvePolicyTarget finds the channel a ResourceArn names; a missing one
// is ResourceNotFoundException, as the policy operations model it.
func (s *Service) resolvePolicyTarget(r state.Reader, arn string) (Channel, error) {
	ref, err := parseResourceARN(arn)
	if err != nil {
		return Channel{}, err
	}
	c, ok, err := s.find(r, ref.region, ref)
	if err != nil {
		return Channel{}, err
	}
	if !ok {
		return Channel{}, awsproto.Errorf("ResourceNotFoundException", "The channel %s does not exist.", arn)
	}
	return c, nil
}

// PutResourcePolicy attaches (or replaces) the resource-based policy of the
// channel arn names and returns the policy as stored.
//
// Cairn has one account and every access key belongs to it, so principals
// are not evaluated; what the policy does change is PutAuditEvents'
// external-ID check (see ExternalIDs).
func (s *Service) PutResourcePolicy(ctx context.Context, arn, policy string) (string, error) {
	if _, err := parseResourceARN(arn); err != nil {
		return "", err
	}
	ids, err := ParsePolicy(policy)
	if err != nil {
		return "", err
	}
	err = s.store.Update(ctx, func(tx *state.Tx) error {
		c, err := s.resolvePolicyTarget(tx, arn)
		if err != nil {
			return err
		}
		c.ResourcePolicy = policy
		c.ExternalIDs = ids
		return put(tx, &c)
	})
	if err != nil {
		return "", err
	}
	return policy, nil
}

// GetResourcePolicy returns the channel's policy document as it was put.
func (s *Service) GetResourcePolicy(ctx context.Context, arn string) (string, error) {
	var policy string
	err := s.store.View(ctx, func(r state.Reader) error {
		c, err := s.resolvePolicyTarget(r, arn)
		if err != nil {
			return err
		}
		if c.ResourcePolicy == "" {
			return policyNotFound(arn)
		}
		policy = c.ResourcePolicy
		return nil
	})
	return policy, err
}

// DeleteResourcePolicy removes the channel's policy, and with it the
// external-ID requirement.
func (s *Service) DeleteResourcePolicy(ctx context.Context, arn string) error {
	return s.store.Update(ctx, func(tx *state.Tx) error {
		c, err := s.resolvePolicyTarget(tx, arn)
		if err != nil {
			return err
		}
		if c.ResourcePolicy == "" {
			return policyNotFound(arn)
		}
		c.ResourcePolicy, c.ExternalIDs = "", nil
		return put(tx, &c)
	})
}

func policyNotFound(arn string) error {
	return awsproto.Errorf("ResourcePolicyNotFoundException", "The resource %s has no resource-based policy.", arn)
}

// ParsePolicy validates a resource-based policy document and returns the
// external IDs it requires, sorted and without duplicates.
//
// The document must be a JSON object of at most MaxPolicyLen characters
// whose Statement is a non-empty list of statements (IAM's single-statement
// object form is accepted too), each with Effect Allow or Deny, a Principal
// and an Action. The external IDs are the values of every
// Condition.StringEquals["cloudtrail:ExternalId"] (the key compared without
// regard to case, as IAM compares condition keys) in Allow statements.
//
// Deliberate simplification: when any Allow statement names external IDs,
// every PutAuditEvents call must carry one of them, even if another Allow
// statement has no such condition. IAM would let that statement through
// without one; Cairn errs on the side of the check the policy author wrote.
func ParsePolicy(policy string) ([]string, error) {
	bad := func(format string, args ...any) error {
		return awsproto.Errorf("ResourcePolicyNotValidException", "The resource policy is not valid: "+format, args...)
	}
	if n := utf8.RuneCountInString(policy); n < 1 || n > MaxPolicyLen {
		return nil, bad("it is %d characters long; the limit is %d.", n, MaxPolicyLen)
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(policy))
	if err := dec.Decode(&doc); err != nil || doc == nil || dec.More() {
		return nil, bad("it is not a JSON object.")
	}
	raw, ok := doc["Statement"]
	if !ok {
		return nil, bad("it has no Statement.")
	}
	var stmts []map[string]json.RawMessage
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &one); err != nil {
			return nil, bad("Statement is not a statement object.")
		}
		stmts = append(stmts, one)
	} else if err := json.Unmarshal(raw, &stmts); err != nil || len(stmts) == 0 {
		return nil, bad("Statement must be a non-empty list of statement objects.")
	}
	var ids []string
	for i, st := range stmts {
		if st == nil {
			return nil, bad("statement %d is not an object.", i+1)
		}
		var effect string
		if err := json.Unmarshal(st["Effect"], &effect); err != nil || (effect != "Allow" && effect != "Deny") {
			return nil, bad("statement %d needs an Effect of Allow or Deny.", i+1)
		}
		for _, member := range []string{"Principal", "Action"} {
			if v, ok := st[member]; !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				return nil, bad("statement %d has no %s.", i+1, member)
			}
		}
		found, err := externalIDs(st["Condition"])
		if err != nil {
			return nil, bad("statement %d: %v", i+1, err)
		}
		if effect == "Allow" {
			ids = append(ids, found...)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// externalIDs reads Condition.StringEquals["cloudtrail:ExternalId"], a
// string or a list of strings.
func externalIDs(cond json.RawMessage) ([]string, error) {
	if len(cond) == 0 {
		return nil, nil
	}
	var ops map[string]map[string]json.RawMessage
	if err := json.Unmarshal(cond, &ops); err != nil {
		return nil, errors.New("the Condition must map condition operators to objects of condition keys")
	}
	var out []string
	for key, v := range ops["StringEquals"] {
		if !strings.EqualFold(key, ExternalIDConditionKey) {
			continue
		}
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			out = append(out, one)
			continue
		}
		var many []string
		if err := json.Unmarshal(v, &many); err != nil || len(many) == 0 {
			return nil, fmt.Errorf("the %s condition needs a string or a list of strings", ExternalIDConditionKey)
		}
		out = append(out, many...)
	}
	return out, nil
}
