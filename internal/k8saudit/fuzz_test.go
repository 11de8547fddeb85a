package k8saudit_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/k8saudit"
)

// FuzzDecodeAndMap feeds webhook bodies through Decode and Map: neither may
// panic, whatever Decode accepts must map to a record that parses back as
// CloudTrail, and no Secret data may come through.
func FuzzDecodeAndMap(f *testing.F) {
	for _, s := range synthetic {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"kind": 0}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := k8saudit.Decode(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for i := range items {
			rec, err := mapper.Map(&items[i])
			if err != nil {
				continue // refused with an error: the batch gets a 400
			}
			back, err := event.Parse(rec.Raw)
			if err != nil {
				t.Fatalf("the record does not parse back: %v\n%s", err, rec.Raw)
			}
			if back.EventID != k8saudit.EventID(&items[i]) || !json.Valid(rec.Raw) {
				t.Fatalf("eventID %s", back.EventID)
			}
			if bytes.Contains(body, []byte("c2VjcmV0LXZhbHVl")) && bytes.Contains(rec.Raw, []byte("c2VjcmV0LXZhbHVl")) &&
				items[i].Event.ObjectRef != nil && items[i].Event.ObjectRef.Resource == "secrets" && items[i].Event.ObjectRef.APIGroup == "" {
				t.Fatalf("Secret data in the record of a request on secrets:\n%s", rec.Raw)
			}
		}
	})
}
