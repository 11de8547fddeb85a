package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// selfSigned writes a certificate for 127.0.0.1 and returns its paths and
// a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cairn test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLSAndTLSDetails(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.TLSCert, c.TLSKey = certFile, keyFile
	}})
	if !strings.HasPrefix(h.URL, "https://") {
		t.Fatalf("server URL %s is not https", h.URL)
	}
	client := cloudtrail.New(cloudtrail.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(h.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(h.AdminKeyID, h.AdminSecret, ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	})
	if _, err := client.ListTrails(context.Background(), &cloudtrail.ListTrailsInput{}); err != nil {
		t.Fatalf("ListTrails over TLS: %v", err)
	}
	// Plain HTTP to the TLS port is refused.
	if resp, err := http.Post(strings.Replace(h.URL, "https", "http", 1)+"/", "application/x-amz-json-1.1", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP got 200 from the TLS listener")
		}
	}
	recs := records(t, h)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	var rec struct {
		AWSRegion  string `json:"awsRegion"`
		TLSDetails struct {
			TLSVersion, CipherSuite, ClientProvidedHostHeader string
		} `json:"tlsDetails"`
	}
	if err := json.Unmarshal(recs[0].Raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.AWSRegion != "eu-west-1" {
		t.Errorf("awsRegion = %q, want the signing region eu-west-1", rec.AWSRegion)
	}
	d := rec.TLSDetails
	if d.TLSVersion != "TLSv1.3" || d.CipherSuite == "" || d.ClientProvidedHostHeader != strings.TrimPrefix(h.URL, "https://") {
		t.Errorf("tlsDetails = %+v", d)
	}
}
