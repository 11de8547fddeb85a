package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The operations S3Proxy measures.
const (
	OpGetObject = "GetObject"
	OpPutObject = "PutObject"
)

// S3ProxyConfig says what S3Proxy compares: the same calls made by the
// same kind of client directly to an S3 server and through Cairn's S3
// audit proxy in front of it.
type S3ProxyConfig struct {
	Direct, Proxy *s3.Client
	// Bucket is created through Direct when it does not exist.
	Bucket string
	// Sizes are the object sizes in bytes; Ops the operations
	// (OpGetObject, OpPutObject); every pair is one case.
	Sizes []int64
	Ops   []string
	// Clients make calls concurrently; Calls is the number of calls per
	// side and case, split into Rounds rounds that alternate which side
	// goes first, so that load from elsewhere on the machine hits both
	// sides alike.
	Clients, Calls, Rounds int
	// Around, when set, is called before each side's part of a round
	// with the side ("direct" or "proxy"); the function it returns is
	// called after. The go test benchmark measures CPU time with it.
	Around func(side string) func()
	// Progress, when set, is told of each case as it starts.
	Progress func(op string, size int64)
}

// S3ProxyResult is one case: an operation at one object size.
type S3ProxyResult struct {
	Op     string `json:"op"`
	Size   int64  `json:"size_bytes"`
	Calls  int    `json:"calls_per_side"`
	Direct S3Side `json:"direct"`
	Proxy  S3Side `json:"proxy"`
	// PercentDirect is the proxied rate as a percentage of the direct
	// one.
	PercentDirect float64 `json:"percent_of_direct"`
}

// S3Side is one side's figures for a case.
type S3Side struct {
	Seconds     float64 `json:"seconds"`
	CallsPerSec float64 `json:"calls_per_sec"`
	MBPerSec    float64 `json:"mb_per_sec"`
	Latency     Summary `json:"latency"`
}

// S3Proxy runs every case and returns their results. Each case warms
// both sides' connection pools with one call per client first. GetObject
// cases read one object of the case's size, put through Direct before
// the case; PutObject cases write 64 keys in turn.
func S3Proxy(ctx context.Context, cfg S3ProxyConfig) ([]S3ProxyResult, error) {
	if cfg.Direct == nil || cfg.Proxy == nil || cfg.Bucket == "" {
		return nil, errors.New("s3 proxy benchmark: both clients and a bucket are required")
	}
	if cfg.Clients < 1 || cfg.Calls < 1 {
		return nil, fmt.Errorf("s3 proxy benchmark: clients %d and calls %d must be positive", cfg.Clients, cfg.Calls)
	}
	cfg.Rounds = max(1, min(cfg.Rounds, cfg.Calls))
	if err := ensureBucket(ctx, cfg.Direct, cfg.Bucket); err != nil {
		return nil, err
	}
	var out []S3ProxyResult
	for _, size := range cfg.Sizes {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		getKey := fmt.Sprintf("cairn-bench/get-%d", size)
		for _, opName := range cfg.Ops {
			if cfg.Progress != nil {
				cfg.Progress(opName, size)
			}
			op, err := s3Op(opName, cfg.Bucket, getKey, body)
			if err != nil {
				return nil, err
			}
			if opName == OpGetObject {
				if _, err := cfg.Direct.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String(getKey), Body: bytes.NewReader(body)}); err != nil {
					return nil, fmt.Errorf("s3 proxy benchmark: put the %d-byte object to get: %w", size, err)
				}
			}
			res, err := s3Case(ctx, cfg, op)
			if err != nil {
				return nil, fmt.Errorf("s3 proxy benchmark: %s of %d bytes: %w", opName, size, err)
			}
			res.Op, res.Size = opName, size
			mb := float64(res.Calls) * float64(size) / (1 << 20)
			for _, s := range []*S3Side{&res.Direct, &res.Proxy} {
				s.CallsPerSec = float64(res.Calls) / s.Seconds
				s.MBPerSec = mb / s.Seconds
			}
			res.PercentDirect = 100 * res.Direct.Seconds / res.Proxy.Seconds
			out = append(out, res)
		}
	}
	return out, nil
}

// s3Call is one benchmark call; i numbers the calls of a run.
type s3Call func(ctx context.Context, c *s3.Client, i int64) error

func s3Op(name, bucket, getKey string, body []byte) (s3Call, error) {
	switch name {
	case OpGetObject:
		return func(ctx context.Context, c *s3.Client, _ int64) error {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(getKey)})
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, out.Body)
			out.Body.Close()
			if err == nil && n != int64(len(body)) {
				err = fmt.Errorf("read %d bytes, want %d", n, len(body))
			}
			return err
		}, nil
	case OpPutObject:
		return func(ctx context.Context, c *s3.Client, i int64) error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket),
				Key: aws.String(fmt.Sprintf("cairn-bench/put-%d-%d", len(body), i%64)), Body: bytes.NewReader(body)})
			return err
		}, nil
	}
	return nil, fmt.Errorf("s3 proxy benchmark: unknown operation %q: want %s or %s", name, OpGetObject, OpPutObject)
}

// s3Case measures one case: warm-up, then the rounds.
func s3Case(ctx context.Context, cfg S3ProxyConfig, op s3Call) (S3ProxyResult, error) {
	res := S3ProxyResult{Calls: cfg.Calls}
	for _, c := range []*s3.Client{cfg.Direct, cfg.Proxy} {
		if _, err := runCalls(ctx, cfg.Clients, cfg.Clients, c, op, nil); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	type side struct {
		name string
		c    *s3.Client
		dur  *time.Duration
		lat  *Latencies
	}
	var dDirect, dProxy time.Duration
	var lDirect, lProxy Latencies
	for i := range cfg.Rounds {
		n := cfg.Calls / cfg.Rounds
		if i < cfg.Calls%cfg.Rounds {
			n++
		}
		sides := []side{{"direct", cfg.Direct, &dDirect, &lDirect}, {"proxy", cfg.Proxy, &dProxy, &lProxy}}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			var after func()
			if cfg.Around != nil {
				after = cfg.Around(s.name)
			}
			d, err := runCalls(ctx, n, cfg.Clients, s.c, op, s.lat)
			if after != nil {
				after()
			}
			if err != nil {
				return res, fmt.Errorf("%s: %w", s.name, err)
			}
			*s.dur += d
		}
	}
	res.Direct = S3Side{Seconds: dDirect.Seconds(), Latency: lDirect.Summary()}
	res.Proxy = S3Side{Seconds: dProxy.Seconds(), Latency: lProxy.Summary()}
	return res, nil
}

// runCalls makes n calls with the given concurrency and returns how long
// they took; lat, when not nil, receives every call's latency.
func runCalls(ctx context.Context, n, clients int, c *s3.Client, op s3Call, lat *Latencies) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine Latencies
			defer func() {
				if lat != nil {
					mu.Lock()
					lat.Merge(&mine)
					mu.Unlock()
				}
			}()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				t0 := time.Now()
				err := op(ctx, c, i)
				mine.Add(time.Since(t0))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// ensureBucket creates the bucket unless it is already there.
func ensureBucket(ctx context.Context, c *s3.Client, bucket string) error {
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return nil
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3 proxy benchmark: create bucket %s: %w", bucket, err)
	}
	return nil
}
