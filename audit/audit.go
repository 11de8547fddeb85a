// Package audit sends a net/http service's own API calls to Cairn (or to AWS
// CloudTrail Lake) as audit events, through the cloudtrail-data
// PutAuditEvents API of a channel.
//
// Wrap a handler with [Client.Middleware]: every request becomes one audit
// event, built after the handler returns and put in a bounded in-memory
// buffer without blocking the request longer than [Config.EnqueueBudget].
// One background goroutine sends the buffer in batches of at most 100
// events and 1 MB, retrying with exponential backoff and jitter. Auditing
// never fails a request: when Cairn is unreachable for longer than the
// buffer can absorb, events are dropped and counted ([Client.Stats],
// [Config.OnDrop]) instead.
//
// What is buffered is lost if the process dies before it is sent; call
// [Client.Close] on shutdown to flush it. See docs/middleware.md.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Limits of PutAuditEvents (reference §2.1), which batches never exceed.
const (
	// MaxBatchEvents is the most events one PutAuditEvents call carries.
	MaxBatchEvents = 100
	// MaxBatchBytes is the largest PutAuditEvents request body.
	MaxBatchBytes = 1 << 20
)

// Defaults of the zero Config fields.
const (
	DefaultFlushInterval     = time.Second
	DefaultMaxBufferedEvents = 10000
	DefaultRequestTimeout    = 10 * time.Second
	DefaultVersion           = "1.0"
)

// Identity is who made a request: the event's userIdentity.
type Identity struct {
	// Type is userIdentity.type (at most 128 characters), e.g. "User",
	// "ServiceAccount". Empty means "Unknown".
	Type string
	// PrincipalID is userIdentity.principalId (at most 1024 characters).
	// Empty means "anonymous".
	PrincipalID string
	// Details is userIdentity.details, any JSON object; nil leaves it out.
	Details map[string]any
}

// RetryPolicy is how a batch is retried when Cairn is unavailable, throttles,
// fails internally or cannot be reached. The wait before retry n (n = 1, 2,
// …) is a random duration in [0, min(MaxBackoff, InitialBackoff·2^(n-1))]
// ("full jitter"), so that many instances recovering together do not retry
// in lockstep.
type RetryPolicy struct {
	// MaxAttempts is how many times a batch is sent at most, the first
	// included. Zero means 8; 1 disables retries.
	MaxAttempts int
	// InitialBackoff is the upper bound of the first wait. Zero means 100 ms.
	InitialBackoff time.Duration
	// MaxBackoff caps one wait. Zero means 5 s.
	MaxBackoff time.Duration
	// MaxElapsed bounds the time spent on one batch, waits included; a
	// batch still failing then is given up. Zero means 1 minute.
	MaxElapsed time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 8
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Second
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = time.Minute
	}
	return p
}

// DropReason says why events were lost.
type DropReason string

// Reasons passed to Config.OnDrop.
const (
	// DropBufferFull: the buffer stayed full for the whole EnqueueBudget.
	DropBufferFull DropReason = "buffer_full"
	// DropClosed: the event came after Close, or Close's context ended
	// before it could be sent.
	DropClosed DropReason = "closed"
	// DropTooLarge: the event alone does not fit in a PutAuditEvents call.
	DropTooLarge DropReason = "too_large"
	// DropRejected: Cairn refused the event or the whole call for a reason
	// a retry cannot fix (failed[] entry, 4xx answer).
	DropRejected DropReason = "rejected"
	// DropRetriesExhausted: every attempt allowed by the RetryPolicy failed.
	DropRetriesExhausted DropReason = "retries_exhausted"
)

// Config configures a Client. Endpoint, ChannelARN, Credentials and
// EventSource are required.
type Config struct {
	// Endpoint is the base URL of Cairn (http://127.0.0.1:4747) or of
	// cloudtrail-data (https://cloudtrail-data.us-east-1.amazonaws.com).
	Endpoint string
	// ChannelARN is the channel the events go to. Its region and account
	// are the defaults of Region and AccountID.
	ChannelARN string
	// ExternalID is sent with every call when the channel's resource
	// policy requires one.
	ExternalID string
	// Region is the region calls are signed for; empty means the channel
	// ARN's.
	Region string
	// AccountID is every event's recipientAccountId, which must be the
	// channel owner's account; empty means the channel ARN's.
	AccountID string
	// Credentials sign the calls (SigV4, service cloudtrail-data). They are
	// wrapped in an aws.CredentialsCache unless they already are one.
	Credentials aws.CredentialsProvider

	// EventSource is every event's eventSource: the application's name,
	// e.g. "notes.example.com".
	EventSource string
	// Version is every event's version (eventData.version); empty means
	// "1.0".
	Version string
	// Identify says who made a request; nil means everyone is
	// {Type: "Unknown", PrincipalID: "anonymous"}. It runs after the
	// handler, so it may read what authentication middleware put in the
	// request's context.
	Identify func(*http.Request) Identity
	// NameEvent names a request's event; nil (or an empty result) means
	// the ServeMux pattern that matched ("GET /notes/{id}"), else the
	// method and path ("GET /notes/42").
	NameEvent func(*http.Request) string
	// Skip, when it returns true, leaves a request unaudited (health
	// checks, metrics scrapes).
	Skip func(*http.Request) bool
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For is believed. Without any, sourceIPAddress is always
	// the connection's peer: a client can write any X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// SensitiveParameters are extra query parameter names (case-insensitive
	// substrings) whose values are replaced by
	// "HIDDEN_DUE_TO_SECURITY_REASONS", in addition to the built-in ones
	// (token, secret, password, passwd, signature, credential, key, auth,
	// session, code).
	SensitiveParameters []string

	// MaxBatch is the most events per PutAuditEvents call, 1–100; zero
	// means 100.
	MaxBatch int
	// FlushInterval is the longest an event waits for its batch to fill
	// before it is sent anyway; zero means 1 s.
	FlushInterval time.Duration
	// MaxBufferedEvents bounds memory: events waiting to be sent, the batch
	// in flight included. Zero means 10000. Each event holds its rendered
	// eventData (typically 0.5–2 KB; query parameter values are cut to
	// 1 KB, at most 64 of them are kept).
	MaxBufferedEvents int
	// EnqueueBudget is how long a request may wait for buffer space once
	// its handler has returned. Zero means never wait: when the buffer is
	// full the event is dropped and counted at once.
	EnqueueBudget time.Duration
	// Retry is the retry policy of a batch.
	Retry RetryPolicy
	// RequestTimeout bounds one PutAuditEvents attempt; zero means 10 s.
	RequestTimeout time.Duration
	// HTTPClient sends the calls; nil means a client of its own.
	HTTPClient *http.Client
	// Logger gets delivery problems (never credentials or event
	// contents); nil means slog.Default().
	Logger *slog.Logger
	// OnDrop, when set, is called with every loss, from the request's
	// goroutine (DropBufferFull, DropTooLarge, DropClosed before sending)
	// or from the sender (the others), so it must be fast and safe for
	// concurrent use. It must not call back into the Client.
	OnDrop func(reason DropReason, events int)
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time
}

// Stats are a Client's counters since it was made.
type Stats struct {
	// Sent events were accepted by Cairn (successful[]).
	Sent uint64
	// Failed events were sent but given up: Cairn refused them, or every
	// attempt failed.
	Failed uint64
	// Dropped events were never sent: the buffer was full, the event was
	// too large, or the Client was closed.
	Dropped uint64
	// Retried counts events sent again after a failed attempt; each resend
	// counts once.
	Retried uint64
	// Batches counts PutAuditEvents calls, retries included.
	Batches uint64
	// Buffered events are waiting to be sent or in flight now.
	Buffered int
}

// Client batches audit events to a channel. It is safe for concurrent use.
// Make one per process with NewClient and Close it on shutdown.
type Client struct {
	cfg      Config
	region   string
	account  string
	creds    aws.CredentialsProvider
	log      *slog.Logger
	http     *http.Client
	endpoint string
	now      func() time.Time
	secrets  []string
	signer   *v4.Signer

	// slots is the memory bound: a token per buffered event.
	slots chan struct{}

	mu     sync.Mutex
	queue  []item // rendered entries, oldest first
	closed bool

	kick    chan struct{} // a full batch is waiting
	closing chan struct{} // closed by Close: drain and stop
	done    chan struct{} // closed when the sender has stopped
	// stop cancels the sender's sends and waits when Close's context ends.
	stopCtx context.Context
	stop    context.CancelFunc

	sent, failed, dropped, retried, batches atomic.Uint64
}

// NewClient checks cfg and starts the sender goroutine.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("audit: Config.Endpoint is required")
	}
	if !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
		return nil, fmt.Errorf("audit: Config.Endpoint %q must be an http:// or https:// URL", cfg.Endpoint)
	}
	if cfg.ChannelARN == "" {
		return nil, errors.New("audit: Config.ChannelARN is required")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("audit: Config.Credentials is required")
	}
	if cfg.EventSource == "" {
		return nil, errors.New("audit: Config.EventSource is required")
	}
	region, account := cfg.Region, cfg.AccountID
	if parts := strings.Split(cfg.ChannelARN, ":"); len(parts) >= 6 && parts[0] == "arn" {
		if region == "" {
			region = parts[3]
		}
		if account == "" {
			account = parts[4]
		}
	}
	if region == "" || account == "" {
		return nil, fmt.Errorf("audit: channel %q is not an ARN: Config.Region and Config.AccountID are required", cfg.ChannelARN)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = MaxBatchEvents
	}
	if cfg.MaxBatch < 1 || cfg.MaxBatch > MaxBatchEvents {
		return nil, fmt.Errorf("audit: Config.MaxBatch %d is not within 1–%d", cfg.MaxBatch, MaxBatchEvents)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.MaxBufferedEvents <= 0 {
		cfg.MaxBufferedEvents = DefaultMaxBufferedEvents
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	cfg.Retry = cfg.Retry.withDefaults()
	c := &Client{
		cfg:      cfg,
		region:   region,
		account:  account,
		creds:    cfg.Credentials,
		log:      cfg.Logger,
		http:     cfg.HTTPClient,
		endpoint: strings.TrimRight(cfg.Endpoint, "/"),
		now:      cfg.Now,
		signer:   v4.NewSigner(),
		slots:    make(chan struct{}, cfg.MaxBufferedEvents),
		kick:     make(chan struct{}, 1),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	if _, ok := c.creds.(*aws.CredentialsCache); !ok {
		c.creds = aws.NewCredentialsCache(c.creds)
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.secrets = append([]string{"token", "secret", "password", "passwd", "signature", "credential", "key", "auth", "session", "code"}, lower(cfg.SensitiveParameters)...)
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	go c.run()
	return c, nil
}

func lower(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != "" {
			out = append(out, strings.ToLower(s))
		}
	}
	return out
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Sent:     c.sent.Load(),
		Failed:   c.failed.Load(),
		Dropped:  c.dropped.Load(),
		Retried:  c.retried.Load(),
		Batches:  c.batches.Load(),
		Buffered: len(c.slots),
	}
}

// Close stops taking events and sends what is buffered, retrying as the
// RetryPolicy allows, until ctx ends. Events still unsent then are dropped
// (DropClosed) and Close returns an error saying how many. Close is safe to
// call more than once; later calls wait for the first to finish.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.closing)
	}
	c.mu.Unlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	before := c.dropped.Load()
	c.stop() // the sender abandons its batch and the rest of the queue
	<-c.done
	lost := c.dropped.Load() - before
	return fmt.Errorf("audit: close: %d buffered events not sent: %w", lost, ctx.Err())
}

// enqueue puts a rendered entry in the buffer, waiting for space at most
// EnqueueBudget (and never after ctx ends); it reports whether the event
// was taken.
func (c *Client) enqueue(ctx context.Context, entry item) bool {
	if len(entry.data)+len(batchHead)+len(batchTail) > MaxBatchBytes {
		c.drop(DropTooLarge, 1)
		return false
	}
	select {
	case c.slots <- struct{}{}:
	default:
		if reason := c.waitSlot(ctx); reason != "" {
			c.drop(reason, 1)
			return false
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.slots
		c.drop(DropClosed, 1)
		return false
	}
	c.queue = append(c.queue, entry)
	full := len(c.queue) >= c.cfg.MaxBatch
	c.mu.Unlock()
	if full {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// waitSlot is enqueue's slow path: the buffer is full. It returns why the
// event cannot be buffered, or "" when it got a slot.
func (c *Client) waitSlot(ctx context.Context) DropReason {
	if c.cfg.EnqueueBudget <= 0 {
		return DropBufferFull
	}
	t := time.NewTimer(c.cfg.EnqueueBudget)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return ""
	case <-t.C:
		return DropBufferFull
	case <-ctx.Done():
		return DropBufferFull
	case <-c.closing:
		return DropClosed
	}
}

func (c *Client) drop(reason DropReason, n int) {
	if n == 0 {
		return
	}
	switch reason {
	case DropRejected, DropRetriesExhausted:
		c.failed.Add(uint64(n))
	default:
		c.dropped.Add(uint64(n))
	}
	if c.cfg.OnDrop != nil {
		c.cfg.OnDrop(reason, n)
	}
}
