package awsproto

import (
	"net/http"
	"testing"
)

// TestClaimedScope: the scope is read from whichever signature
// VerifyRequestWith would check, and from nothing else.
func TestClaimedScope(t *testing.T) {
	body := []byte(`{}`)
	header := newJSONRequest(t, "http://h/", "GetTrail", body)
	sign(t, header, body, "cloudtrail", "zz-fake-9")
	if a, ok := ClaimedScope(header); !ok || a.Region != "zz-fake-9" || a.Service != "cloudtrail" || a.AccessKeyID != testAccessKey {
		t.Fatalf("header: %+v %v", a, ok)
	}

	query := getURL(t, presign(t, "http://h/", "60", signTime))
	if a, ok := ClaimedScope(query); !ok || a.Region != "us-east-1" {
		t.Fatalf("presigned: %+v %v", a, ok)
	}

	for name, r := range map[string]*http.Request{
		"unsigned": newJSONRequest(t, "http://h/", "GetTrail", body),
		"both forms": func() *http.Request {
			r := getURL(t, presign(t, "http://h/", "60", signTime))
			r.Header.Set("Authorization", header.Header.Get("Authorization"))
			return r
		}(),
		"two headers": func() *http.Request {
			r := header.Clone(header.Context())
			r.Header.Add("Authorization", header.Header.Get("Authorization"))
			return r
		}(),
		"malformed": func() *http.Request {
			r := header.Clone(header.Context())
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20240101/zz-fake-9/cloudtrail")
			return r
		}(),
	} {
		if a, ok := ClaimedScope(r); ok {
			t.Errorf("%s: claimed %+v; VerifyRequestWith refuses it without a scope", name, a)
		}
	}
}
