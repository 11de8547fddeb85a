package event

import (
	"crypto/tls"
	"strings"
)

// NewTLSDetails is the record's tlsDetails for a call that arrived over
// cs, naming what the client sent in its Host header; nil for plain HTTP.
func NewTLSDetails(cs *tls.ConnectionState, host string) *TLSDetails {
	if cs == nil {
		return nil
	}
	return &TLSDetails{
		TLSVersion:               TLSVersionName(cs.Version),
		CipherSuite:              CipherSuiteName(cs.CipherSuite),
		ClientProvidedHostHeader: host,
	}
}

// TLSVersionName names a TLS version as CloudTrail's records do
// ("TLSv1.2", and "TLSv1" for 1.0).
func TLSVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}

// CipherSuiteName names a suite as CloudTrail's records do: OpenSSL's names
// for TLS 1.2 and older ("ECDHE-RSA-AES128-GCM-SHA256", as in AWS's own
// records), the IANA names for TLS 1.3 ("TLS_AES_128_GCM_SHA256").
func CipherSuiteName(id uint16) string {
	switch id {
	case tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		return "ECDHE-RSA-AES128-GCM-SHA256"
	case tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return "ECDHE-RSA-AES256-GCM-SHA384"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:
		return "ECDHE-ECDSA-AES128-GCM-SHA256"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:
		return "ECDHE-ECDSA-AES256-GCM-SHA384"
	case tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return "ECDHE-RSA-CHACHA20-POLY1305"
	case tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return "ECDHE-ECDSA-CHACHA20-POLY1305"
	case tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:
		return "ECDHE-RSA-AES128-SHA"
	}
	return strings.TrimSpace(tls.CipherSuiteName(id))
}
