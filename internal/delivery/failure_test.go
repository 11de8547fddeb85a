package delivery

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-audit/cairn/internal/trail"
)

// status reads a trail's status.
func (e *env) status(arn string) trail.Status {
	e.t.Helper()
	tr, err := e.trails.ByARN(context.Background(), arn)
	if err != nil {
		e.t.Fatal(err)
	}
	return tr.Status
}

// counterValue sums a counter's series with the given label values.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestMissingBucket: while the bucket is missing, delivery retries, the
// events wait in the journal and the status says NoSuchBucket; once the
// bucket exists the events are delivered and the error clears.
func TestMissingBucket(t *testing.T) {
	e := newEnv(t)
	e.bucket("logs")
	tr := e.trail("us-east-1", trail.CreateInput{Name: "trl", S3BucketName: "logs"})
	if err := os.RemoveAll(filepath.Join(e.storeDir, "logs")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts := testOptions()
	opts.Registerer = reg
	m := e.manager(opts)
	e.changed(m)
	nums := e.append(rec{}, rec{Name: "RunInstances", ReadOnly: "false"})
	e.start(m)

	waitFor(t, 10*time.Second, "two failed attempts", func() bool {
		return counterValue(t, reg, "cairn_delivery_attempts_total", map[string]string{"result": "NoSuchBucket"}) >= 2
	})
	st := e.status(tr.ARN())
	if st.LatestDeliveryError != "NoSuchBucket" || st.LatestDeliveryAttemptTime.IsZero() || !st.LatestDeliveryTime.IsZero() || !st.LatestDeliveryAttemptSucceeded.IsZero() {
		t.Errorf("status while the bucket is missing: %+v", st)
	}
	lag, ok := m.Lag(tr.ARN())
	if !ok || lag.Entries != 2 || lag.Oldest <= 0 {
		t.Errorf("lag while failing: %+v, %v", lag, ok)
	}
	if n := seriesCount(t, reg, "cairn_delivery_oldest_undelivered_seconds"); n != 1 {
		t.Errorf("%d oldest-undelivered series, want 1", n)
	}

	e.bucket("logs")
	e.caughtUp(tr.ARN())
	st = e.status(tr.ARN())
	if st.LatestDeliveryError != "" || st.LatestDeliveryTime.IsZero() || st.LatestDeliveryAttemptSucceeded.IsZero() {
		t.Errorf("status after recovery: %+v", st)
	}
	exactlyOnce(t, delivered(t, files(t, e.store, "logs")), idsOf(nums))
	if lag, _ := m.Lag(tr.ARN()); lag.Entries != 0 || lag.Oldest != 0 {
		t.Errorf("lag after recovery: %+v", lag)
	}
}

// TestKMSOnFileStore: the file store cannot do SSE-KMS, so a trail with a
// KMS key fails visibly and writes nothing unencrypted; clearing the key
// (UpdateTrail) unblocks the waiting batch.
func TestKMSOnFileStore(t *testing.T) {
	e := newEnv(t)
	e.bucket("logs")
	ctx := context.Background()
	tr := e.trail("us-east-1", trail.CreateInput{Name: "trl", S3BucketName: "logs", KmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"})
	m := e.manager(testOptions())
	e.start(m)
	e.changed(m)
	nums := e.append(rec{}, rec{})
	waitFor(t, 10*time.Second, "the KMS error in the status", func() bool {
		return e.status(tr.ARN()).LatestDeliveryError == CodeKMSUnsupported
	})
	if fs := files(t, e.store, "logs"); len(fs) != 0 {
		t.Fatalf("wrote %d files without the requested encryption", len(fs))
	}
	if _, err := e.trails.Update(ctx, "us-east-1", trail.UpdateInput{Name: "trl", KmsKeyId: ptr("")}); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	e.caughtUp(tr.ARN())
	exactlyOnce(t, delivered(t, files(t, e.store, "logs")), idsOf(nums))
	if st := e.status(tr.ARN()); st.LatestDeliveryError != "" {
		t.Errorf("status after clearing the key: %+v", st)
	}
}

// TestBucketChangedWhileFailing: pointing a failing trail at another
// bucket delivers the waiting batch there.
func TestBucketChangedWhileFailing(t *testing.T) {
	e := newEnv(t)
	e.bucket("gone")
	e.bucket("new-home")
	ctx := context.Background()
	tr := e.trail("us-east-1", trail.CreateInput{Name: "trl", S3BucketName: "gone"})
	if err := os.RemoveAll(filepath.Join(e.storeDir, "gone")); err != nil {
		t.Fatal(err)
	}
	m := e.manager(testOptions())
	e.start(m)
	e.changed(m)
	nums := e.append(rec{}, rec{}, rec{})
	waitFor(t, 10*time.Second, "NoSuchBucket", func() bool { return e.status(tr.ARN()).LatestDeliveryError == "NoSuchBucket" })
	if _, err := e.trails.Update(ctx, "us-east-1", trail.UpdateInput{Name: "trl", S3BucketName: ptr("new-home"), S3KeyPrefix: ptr("moved")}); err != nil {
		t.Fatal(err)
	}
	e.changed(m)
	e.caughtUp(tr.ARN())
	fs := files(t, e.store, "new-home")
	for _, f := range fs {
		checkKey(t, f.Key, "moved", time.Time{})
	}
	exactlyOnce(t, delivered(t, fs), idsOf(nums))
}
