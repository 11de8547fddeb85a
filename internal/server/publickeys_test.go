package server_test

import (
	"context"
	"crypto/md5"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// TestListPublicKeysThroughTheSDK reads the digest-signing keys the way
// `aws cloudtrail validate-logs` does: PKCS#1 DER values whose MD5 is the
// fingerprint, covering now.
func TestListPublicKeysThroughTheSDK(t *testing.T) {
	h := servertest.Start(t)
	ctx := context.Background()
	out, err := h.ReadOnly.ListPublicKeys(ctx, &cloudtrail.ListPublicKeysInput{
		StartTime: aws.Time(time.Now().Add(-time.Hour)),
		EndTime:   aws.Time(time.Now()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.PublicKeyList) == 0 {
		t.Fatal("no public keys for the last hour")
	}
	for _, k := range out.PublicKeyList {
		pub, err := x509.ParsePKCS1PublicKey(k.Value)
		if err != nil {
			t.Fatalf("key %s is not PKCS#1 DER: %v", aws.ToString(k.Fingerprint), err)
		}
		if pub.N.BitLen() != 2048 {
			t.Errorf("key is %d bits, want 2048", pub.N.BitLen())
		}
		sum := md5.Sum(k.Value)
		if hex.EncodeToString(sum[:]) != aws.ToString(k.Fingerprint) {
			t.Errorf("fingerprint %s is not the MD5 of the key", aws.ToString(k.Fingerprint))
		}
		if k.ValidityStartTime == nil || k.ValidityEndTime == nil || !k.ValidityEndTime.After(*k.ValidityStartTime) {
			t.Errorf("validity window %v–%v", k.ValidityStartTime, k.ValidityEndTime)
		}
	}
	_, err = h.CloudTrail.ListPublicKeys(ctx, &cloudtrail.ListPublicKeysInput{
		StartTime: aws.Time(time.Now()),
		EndTime:   aws.Time(time.Now().Add(-time.Hour)),
	})
	var bad *types.InvalidTimeRangeException
	if !errors.As(err, &bad) {
		t.Fatalf("end before start: got %v, want InvalidTimeRangeException", err)
	}
}
