package k8saudit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Redacted replaces every value the records must not carry.
const Redacted = "<redacted>"

// lastApplied is the annotation kubectl apply stores the whole applied
// object in, Secret data included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// secretSafeKinds are the bodies of requests on Secrets that carry no
// Secret data and are kept as they are.
var secretSafeKinds = map[string]bool{"DeleteOptions": true, "Status": true}

// redact removes Secret data from a request or response object (and the
// bearer token from a TokenRequest's status, what a create on
// serviceaccounts/token answers): in any
// object of kind Secret (at the top, in a SecretList's items, in a List)
// the values of data and stringData become "<redacted>" (the keys stay, so
// the record still says which keys were written) and so does the
// last-applied-configuration annotation. When the request is about core
// Secrets (onSecrets) a body that is neither a Secret, a SecretList nor
// one of secretSafeKinds (a JSON merge or strategic patch, say, which has
// no kind but may carry data) is replaced as a whole by "<redacted>".
func redact(raw json.RawMessage, onSecrets bool) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if !onSecrets && !bytes.Contains(raw, []byte(`"Secret`)) && !bytes.Contains(raw, []byte(`"TokenRequest`)) {
		return raw, nil // fast path: nothing that could be a Secret or a token
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding for redaction: %s", jsonReason(err))
	}
	top, _ := v.(map[string]any)
	if onSecrets {
		kind, _ := top["kind"].(string)
		if top == nil || (kind != "Secret" && kind != "SecretList" && !secretSafeKinds[kind]) {
			return json.RawMessage(`"` + Redacted + `"`), nil
		}
	}
	redactTree(v)
	out, err := marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding after redaction: %w", err)
	}
	return out, nil
}

// redactTree walks v and redacts every Secret it holds.
func redactTree(v any) {
	switch t := v.(type) {
	case map[string]any:
		switch k, _ := t["kind"].(string); k {
		case "Secret":
			redactSecret(t)
		case "TokenRequest": // serviceaccounts/token: status.token is a bearer token
			if st, ok := t["status"].(map[string]any); ok {
				if _, ok := st["token"]; ok {
					st["token"] = Redacted
				}
			}
		case "SecretList": // its items usually leave out their kind
			if items, ok := t["items"].([]any); ok {
				for _, it := range items {
					if s, ok := it.(map[string]any); ok {
						redactSecret(s)
					}
				}
			}
		}
		for _, c := range t {
			redactTree(c)
		}
	case []any:
		for _, c := range t {
			redactTree(c)
		}
	}
}

func redactSecret(s map[string]any) {
	for _, field := range []string{"data", "stringData"} {
		switch d := s[field].(type) {
		case map[string]any:
			for k := range d {
				d[k] = Redacted
			}
		case nil:
		default:
			s[field] = Redacted
		}
	}
	if md, ok := s["metadata"].(map[string]any); ok {
		if ann, ok := md["annotations"].(map[string]any); ok {
			if _, ok := ann[lastApplied]; ok {
				ann[lastApplied] = Redacted
			}
		}
	}
}

// webhookPatchPrefix starts the audit annotations in which the API server
// logs the JSON patch a mutating admission webhook applied
// (patch.webhook.admission.k8s.io/round_0_index_0), at level Request and
// above; on a Secret, the patch carries the values it wrote.
const webhookPatchPrefix = "patch.webhook.admission.k8s.io/"

// redactAnnotations hides the webhook patches of requests on Secrets; the
// other annotations (authorization decisions, the webhooks' names) stay.
func redactAnnotations(ann map[string]string, onSecrets bool) map[string]string {
	if !onSecrets || len(ann) == 0 {
		return ann
	}
	var out map[string]string
	for k := range ann {
		if strings.HasPrefix(k, webhookPatchPrefix) {
			if out == nil {
				out = make(map[string]string, len(ann))
				for k, v := range ann {
					out[k] = v
				}
			}
			out[k] = Redacted
		}
	}
	if out == nil {
		return ann
	}
	return out
}
