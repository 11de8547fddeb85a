package event

import (
	"crypto/tls"
	"testing"
)

// TestTLSDetailsNameAsCloudTrail pins the names AWS's own records use
// (the shared datasets hold both forms): OpenSSL's for TLS 1.2, IANA's for
// TLS 1.3, and "TLSv1" for TLS 1.0.
func TestTLSDetailsNameAsCloudTrail(t *testing.T) {
	for _, c := range []struct {
		version, suite uint16
		wantV, wantS   string
	}{
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "TLSv1.2", "ECDHE-RSA-AES128-SHA"},
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, "TLSv1.3", "TLS_AES_128_GCM_SHA256"},
		{tls.VersionTLS10, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "TLSv1", "ECDHE-ECDSA-AES256-GCM-SHA384"},
	} {
		d := NewTLSDetails(&tls.ConnectionState{Version: c.version, CipherSuite: c.suite}, "h.example")
		if d.TLSVersion != c.wantV || d.CipherSuite != c.wantS || d.ClientProvidedHostHeader != "h.example" {
			t.Errorf("NewTLSDetails(%#x, %#x) = %+v, want %s %s", c.version, c.suite, *d, c.wantV, c.wantS)
		}
	}
	if NewTLSDetails(nil, "h") != nil {
		t.Error("plain HTTP must have no tlsDetails")
	}
}
