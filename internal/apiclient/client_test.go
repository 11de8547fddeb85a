package apiclient

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeAllSuccessful: what the fast decoder of PutAuditEvents answers
// accepts, encoding/json decodes to the same result.
func FuzzDecodeAllSuccessful(f *testing.F) {
	f.Add([]byte(`{"successful":[{"id":"e0","eventID":"6f1c4a8e-5b0d-4c1e-9a7f-2d3b4c5d6e7f"},{"id":"e1","eventID":"x"}],"failed":[]}`))
	f.Add([]byte(`{"successful":[],"failed":[]}`))
	f.Add([]byte(`{"successful":[{"id":"a\"","eventID":"x"}],"failed":[]}`))
	f.Add([]byte(`{"successful":[{"id":"a","eventID":"x"}],"failed":[{"id":"b","errorCode":"c","errorMessage":"d"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fast PutAuditEventsOutput
		if !decodeAllSuccessful(raw, &fast) {
			return
		}
		var want PutAuditEventsOutput
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses: %v", err)
		}
		if len(fast.Successful) != len(want.Successful) || len(fast.Failed) != len(want.Failed) ||
			len(want.Successful) > 0 && !reflect.DeepEqual(fast.Successful, want.Successful) {
			t.Fatalf("fast %+v, encoding/json %+v", fast, want)
		}
	})
}
