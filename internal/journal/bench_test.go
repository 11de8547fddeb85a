package journal

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// benchEntries returns n realistic CloudTrail records as compact JSON: the
// real Stratus Red Team records from shared/datasets when present (their
// eventID and eventTime rewritten so that no two entries are identical),
// otherwise synthetic records of the same shape.
func benchEntries(tb testing.TB, n int) [][]byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var seeds []map[string]any
	files, _ := filepath.Glob("../../../shared/datasets/stratus-red-team-detonation-logs/*.json")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var recs []map[string]any
		if json.Unmarshal(raw, &recs) == nil {
			seeds = append(seeds, recs...)
		}
	}
	if len(seeds) == 0 {
		tb.Logf("dataset not found; using synthetic records")
		for i := range 64 {
			seeds = append(seeds, syntheticRecord(rng, i))
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		rec := seeds[i%len(seeds)]
		rec["eventID"] = uuid.NewString()
		rec["eventTime"] = t0.Add(time.Duration(i) * 7 * time.Millisecond).Format(time.RFC3339)
		b, err := json.Marshal(rec)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func syntheticRecord(rng *rand.Rand, i int) map[string]any {
	return map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{
			"type": "AssumedRole", "principalId": fmt.Sprintf("AROA%016X:session-%d", rng.Uint64(), i),
			"arn":       fmt.Sprintf("arn:aws:sts::%012d:assumed-role/role-%d/session-%d", rng.IntN(1e12), i%7, i),
			"accountId": fmt.Sprintf("%012d", rng.IntN(1e12)), "accessKeyId": fmt.Sprintf("ASIA%016X", rng.Uint64()),
			"sessionContext": map[string]any{"attributes": map[string]any{"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"}},
		},
		"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": "us-east-1",
		"sourceIPAddress": fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256)),
		"userAgent":       "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.171.0",
		"requestParameters": map[string]any{
			"instancesSet": map[string]any{"items": []any{map[string]any{"instanceId": fmt.Sprintf("i-%017x", rng.Uint64()>>4)}}},
			"filterSet":    map[string]any{},
		},
		"responseElements": nil, "requestID": uuid.NewString(), "readOnly": true, "eventType": "AwsApiCall",
		"managementEvent": true, "recipientAccountId": fmt.Sprintf("%012d", rng.IntN(1e12)), "eventCategory": "Management",
		"tlsDetails": map[string]any{"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "ec2.us-east-1.amazonaws.com"},
	}
}

func avgLen(entries [][]byte) int {
	total := 0
	for _, e := range entries {
		total += len(e)
	}
	return total / len(entries)
}

// BenchmarkAppend measures the intake path: 16 goroutines each appending
// 100-entry batches of realistic records, every Append waiting for its
// fsync. One op is one Append of 100 entries.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{16, 1} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			benchAppend(b, appenders, Options{})
		})
	}
}

func benchAppend(b *testing.B, appenders int, opts Options) {
	benchAppendPool(b, appenders, opts, benchEntries(b, 8192))
}

func benchAppendPool(b *testing.B, appenders int, opts Options, pool [][]byte) {
	const batchSize = 100
	b.Logf("average entry %d bytes", avgLen(pool))
	opts.Logger = testLogger(b)
	j, err := Open(context.Background(), b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	b.SetBytes(int64(avgLen(pool) * batchSize))
	var (
		ops  atomic.Int64 // Appends handed out so far
		next atomic.Int64 // rotates through the pool
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([][]byte, batchSize)
			for ops.Add(1) <= int64(b.N) {
				off := int(next.Add(batchSize))
				for k := range batch {
					batch[k] = pool[(off+k)%len(pool)]
				}
				if _, err := j.Append(context.Background(), batch); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	events := float64(j.LastSeq())
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	g, s := histMean(b, j.metrics.groupEntries), histMean(b, j.metrics.syncSeconds)
	b.ReportMetric(g, "entries/sync")
	b.ReportMetric(s*1000, "ms/sync")
}

func histMean(tb testing.TB, h prometheus.Histogram) float64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		tb.Fatal(err)
	}
	if m.GetHistogram().GetSampleCount() == 0 {
		return 0
	}
	return m.GetHistogram().GetSampleSum() / float64(m.GetHistogram().GetSampleCount())
}

// BenchmarkRead measures a consumer catching up: Read in chunks of 1000
// through 200,000 stored records. One op is one entry.
func BenchmarkRead(b *testing.B) {
	const stored = 200_000
	pool := benchEntries(b, 8192)
	ctx := context.Background()
	j, err := Open(ctx, b.TempDir(), Options{Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for off := 0; off < stored; off += 1000 {
		batch := make([][]byte, 1000)
		for k := range batch {
			batch[k] = pool[(off+k)%len(pool)]
		}
		if _, err := j.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(avgLen(pool)))
	b.ResetTimer()
	var pos uint64
	var sink int
	for done := 0; done < b.N; {
		if pos >= stored {
			pos = 0
		}
		last, err := j.Read(ctx, pos, min(1000, b.N-done), func(seq uint64, e []byte) error {
			sink += len(e)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += int(last - pos)
		pos = last
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if sink == 0 && b.N > 0 {
		b.Fatal("read nothing")
	}
}
