package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
	"github.com/cairn-audit/cairn/internal/tlstest"
)

func TestTLSAndTLSDetails(t *testing.T) {
	certFile, keyFile, pool := tlstest.SelfSigned(t)
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
