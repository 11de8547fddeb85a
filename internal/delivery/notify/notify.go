// Package notify delivers CloudTrail's log file notifications to webhooks.
//
// On AWS a trail with an SNS topic publishes, for every log file it
// delivers, the message {"s3Bucket": "...", "s3ObjectKey": ["..."]}. Cairn
// has no SNS, so a trail's SnsTopicName names a topic declared in Cairn's
// configuration, and a topic is an HTTP(S) webhook: Cairn POSTs that same
// message body to the topic's URL.
//
// Every request is signed so that a receiver can tell Cairn's
// notifications from anyone else's POSTs: X-Cairn-Signature carries
// "sha256=" and the hex HMAC-SHA256, under the topic's secret, of the
// X-Cairn-Timestamp header value, a ".", and the body. The timestamp is
// inside the MAC so that a captured request cannot be replayed later than
// the receiver's tolerance (Verify implements the receiver's side).
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request headers of a notification.
const (
	// HeaderSignature is "sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>".
	HeaderSignature = "X-Cairn-Signature"
	// HeaderTimestamp is the signing time in Unix seconds.
	HeaderTimestamp = "X-Cairn-Timestamp"
	// HeaderTopic is the topic's name.
	HeaderTopic = "X-Cairn-Topic"
	// HeaderMessageID identifies the notification. It is the same on every
	// retry and after a restart, so receivers can drop duplicates (delivery
	// of notifications is at least once).
	HeaderMessageID = "X-Cairn-Message-Id"
)

// signaturePrefix names the MAC algorithm inside HeaderSignature.
const signaturePrefix = "sha256="

// DefaultTimeout bounds one POST unless the topic sets its own.
const DefaultTimeout = 10 * time.Second

// MinSecretLen is the shortest accepted secret: an HMAC key much shorter
// than this is guessable.
const MinSecretLen = 16

// Topic is one webhook destination.
type Topic struct {
	// Name is what trails put in SnsTopicName (or the last part of the
	// SNS topic ARN they give).
	Name string
	// URL receives the POSTs; http or https.
	URL string
	// Secret is the HMAC key shared with the receiver.
	Secret []byte
	// Timeout bounds one POST; zero means DefaultTimeout.
	Timeout time.Duration
}

// topicNameRE is SNS's rule for topic names, which is what CreateTrail
// callers already use.
var topicNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (t *Topic) validate() error {
	if !topicNameRE.MatchString(t.Name) {
		return fmt.Errorf("topic name %q: SNS topic names are 1 to 256 letters, digits, hyphens or underscores", t.Name)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return fmt.Errorf("topic %s: url %q: %w", t.Name, t.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("topic %s: url %q is not an http:// or https:// URL with a host", t.Name, t.URL)
	}
	if u.User != nil {
		return fmt.Errorf("topic %s: url must not carry credentials; the HMAC secret authenticates Cairn", t.Name)
	}
	if len(t.Secret) < MinSecretLen {
		return fmt.Errorf("topic %s: secret is %d bytes; at least %d are needed", t.Name, len(t.Secret), MinSecretLen)
	}
	if t.Timeout < 0 {
		return fmt.Errorf("topic %s: negative timeout", t.Name)
	}
	return nil
}

// Topics is the set of configured topics. The zero value has none. It is
// immutable once built, so it may be shared freely.
type Topics struct {
	byName map[string]Topic
}

// NewTopics validates the topics and builds the set; names must be unique.
func NewTopics(list ...Topic) (Topics, error) {
	m := make(map[string]Topic, len(list))
	for _, t := range list {
		if err := t.validate(); err != nil {
			return Topics{}, err
		}
		if _, dup := m[t.Name]; dup {
			return Topics{}, fmt.Errorf("topic %s is declared twice", t.Name)
		}
		t.Secret = bytes.Clone(t.Secret)
		m[t.Name] = t
	}
	return Topics{byName: m}, nil
}

// ParseTopics reads the "topics" array of tables of Cairn's TOML
// configuration, as the TOML decoder returns it (raw is nil when the file
// has none):
//
//	[[topics]]
//	name       = "security-alerts"
//	url        = "https://hooks.example.com/cairn"
//	secret_env = "CAIRN_TOPIC_SECURITY_ALERTS_SECRET"
//	timeout    = "10s"   # optional
//
// The secret is read from the environment variable secret_env names, so
// that it never sits in the configuration file.
func ParseTopics(raw any, lookupEnv func(string) (string, bool)) (Topics, error) {
	if raw == nil {
		return Topics{}, nil
	}
	var tables []map[string]any
	switch v := raw.(type) {
	case []map[string]any:
		tables = v
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return Topics{}, fmt.Errorf("topics[%d]: want a table ([[topics]]), got %T", i, e)
			}
			tables = append(tables, m)
		}
	default:
		return Topics{}, fmt.Errorf("topics: want an array of tables ([[topics]]), got %T", raw)
	}
	list := make([]Topic, 0, len(tables))
	for i, tab := range tables {
		t, err := parseTopic(tab, lookupEnv)
		if err != nil {
			return Topics{}, fmt.Errorf("topics[%d]: %w", i, err)
		}
		list = append(list, t)
	}
	return NewTopics(list...)
}

func parseTopic(tab map[string]any, lookupEnv func(string) (string, bool)) (Topic, error) {
	str := func(key string, required bool) (string, error) {
		v, ok := tab[key]
		if !ok {
			if required {
				return "", fmt.Errorf("%s is required", key)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s: want a string, got %T", key, v)
		}
		return s, nil
	}
	for k := range tab {
		switch k {
		case "name", "url", "secret_env", "timeout":
		default:
			return Topic{}, fmt.Errorf("unknown setting %q (want name, url, secret_env, timeout)", k)
		}
	}
	var t Topic
	var err error
	if t.Name, err = str("name", true); err != nil {
		return Topic{}, err
	}
	if t.URL, err = str("url", true); err != nil {
		return Topic{}, fmt.Errorf("topic %s: %w", t.Name, err)
	}
	env, err := str("secret_env", true)
	if err != nil {
		return Topic{}, fmt.Errorf("topic %s: %w", t.Name, err)
	}
	secret, ok := lookupEnv(env)
	if !ok || secret == "" {
		return Topic{}, fmt.Errorf("topic %s: environment variable %s (secret_env) is not set", t.Name, env)
	}
	t.Secret = []byte(secret)
	timeout, err := str("timeout", false)
	if err != nil {
		return Topic{}, fmt.Errorf("topic %s: %w", t.Name, err)
	}
	if timeout != "" {
		if t.Timeout, err = time.ParseDuration(timeout); err != nil || t.Timeout <= 0 {
			return Topic{}, fmt.Errorf("topic %s: timeout %q: want a positive duration such as \"10s\"", t.Name, timeout)
		}
	}
	return t, nil
}

// TopicName returns the topic name a trail's SnsTopicName refers to: the
// name itself, or the last field of an SNS topic ARN
// (arn:aws:sns:REGION:ACCOUNT:NAME).
func TopicName(nameOrARN string) string {
	if strings.HasPrefix(nameOrARN, "arn:") {
		return nameOrARN[strings.LastIndexByte(nameOrARN, ':')+1:]
	}
	return nameOrARN
}

// Lookup finds the topic a trail's SnsTopicName (name or ARN) refers to.
func (t Topics) Lookup(nameOrARN string) (Topic, bool) {
	tp, ok := t.byName[TopicName(nameOrARN)]
	return tp, ok
}

// Exists reports whether a trail may name this topic; the trail service
// refuses unknown topics with InsufficientSnsTopicPolicyException, as AWS
// refuses a topic that does not exist.
func (t Topics) Exists(nameOrARN string) bool {
	_, ok := t.Lookup(nameOrARN)
	return ok
}

// Names lists the configured topics, sorted.
func (t Topics) Names() []string {
	out := make([]string, 0, len(t.byName))
	for n := range t.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Message is CloudTrail's notification body for delivered log files.
type Message struct {
	S3Bucket    string   `json:"s3Bucket"`
	S3ObjectKey []string `json:"s3ObjectKey"`
}

// Sign returns the HeaderSignature value for a body sent at timestamp (the
// HeaderTimestamp value).
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// DefaultTolerance is how far a notification's timestamp may be from the
// receiver's clock for Verify to accept it.
const DefaultTolerance = 5 * time.Minute

// ErrBadSignature is returned by Verify for a request that is not an
// authentic, fresh notification.
var ErrBadSignature = errors.New("notify: bad notification signature")

// Verify is the receiver's check: the signature must be the topic
// secret's MAC of the timestamp and body, and the timestamp within
// tolerance (zero means DefaultTolerance) of now. Receivers should also
// drop HeaderMessageID values they have already processed.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrBadSignature, HeaderTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away from now, more than %s", ErrBadSignature, d.Round(time.Second), tolerance)
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(want)) {
		return fmt.Errorf("%w: %s does not match the body", ErrBadSignature, HeaderSignature)
	}
	return nil
}

// SendError is a failed notification attempt. Code is the short text
// GetTrailStatus shows as LatestNotificationError.
type SendError struct {
	Code string
	Err  error
}

func (e *SendError) Error() string { return e.Code + ": " + e.Err.Error() }
func (e *SendError) Unwrap() error { return e.Err }

// Error codes of SendError.
const (
	CodeTimeout     = "Webhook.Timeout"
	CodeUnreachable = "Webhook.Unreachable"
	CodeNotFound    = "NotFound" // the trail names a topic that is not configured
)

// Sender POSTs notifications.
type Sender struct {
	client *http.Client
	clock  func() time.Time
}

// NewSender makes a Sender. client nil means a client with no redirects
// followed (a redirect is reported as a failure rather than sending the
// signed body somewhere else); clock nil means time.Now.
func NewSender(client *http.Client, clock func() time.Time) *Sender {
	if client == nil {
		client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if clock == nil {
		clock = time.Now
	}
	return &Sender{client: client, clock: clock}
}

// Send makes one attempt to deliver msg to topic; id goes in
// HeaderMessageID. Any 2xx answer is success. Errors are *SendError.
func (s *Sender) Send(ctx context.Context, topic Topic, id string, msg Message) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return &SendError{Code: "InternalError", Err: fmt.Errorf("encode notification: %w", err)}
	}
	timeout := topic.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, topic.URL, bytes.NewReader(body))
	if err != nil {
		return &SendError{Code: "InternalError", Err: fmt.Errorf("topic %s: build request: %w", topic.Name, err)}
	}
	ts := strconv.FormatInt(s.clock().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Cairn-Notification/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(topic.Secret, ts, body))
	req.Header.Set(HeaderTopic, topic.Name)
	req.Header.Set(HeaderMessageID, id)
	resp, err := s.client.Do(req)
	if err != nil {
		code := CodeUnreachable
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			code = CodeTimeout
		}
		return &SendError{Code: code, Err: fmt.Errorf("topic %s: POST %s: %w", topic.Name, topic.URL, err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &SendError{
			Code: "Webhook.HTTP" + strconv.Itoa(resp.StatusCode),
			Err:  fmt.Errorf("topic %s: POST %s answered %s", topic.Name, topic.URL, resp.Status),
		}
	}
	return nil
}
