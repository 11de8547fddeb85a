// Package apiclient is the client side of Cairn's own HTTP API where no AWS
// SDK client serves: PutAuditEvents (whose aws-sdk-go-v2 module the project
// does not pull in) and /cairn/import, with the import endpoint's wire
// types. The command-line tools (cairn import, lookup, validate-logs) and
// the load generators of package bench share it.
package apiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/cairn-audit/cairn/internal/channel"
)

// Signing names of the APIs this client calls without an SDK.
const (
	// ServiceCloudTrailData is PutAuditEvents' signing name.
	ServiceCloudTrailData = "cloudtrail-data"
	// ServiceCairn is the signing name of Cairn's own extensions
	// (/cairn/import).
	ServiceCairn = "cairn"
	// ImportPath is the import endpoint.
	ImportPath = "/cairn/import"
)

// Client sends SigV4-signed requests to the Cairn APIs that have no SDK
// client here: PutAuditEvents (whose aws-sdk-go-v2 module the project does
// not pull in, and whose per-request overhead would be measured along with
// the server) and Cairn's import endpoint. It is safe for concurrent use.
type Client struct {
	endpoint string
	region   string
	creds    aws.Credentials
	http     *http.Client
	signer   *v4.Signer
}

// NewTransport is an http.Transport for load: keep-alive connections for
// every concurrent client (Go's default keeps only 2 idle per host, which
// makes a 16-client benchmark open and close connections all the time),
// no proxy (the target is local), and no transparent gzip.
func NewTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
}

// NewClient returns a Client for endpoint (a base URL) signing for region.
// hc may be nil for a client with NewTransport(16).
func NewClient(endpoint, region string, creds aws.Credentials, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: NewTransport(16)}
	}
	return &Client{
		endpoint: strings.TrimRight(endpoint, "/"),
		region:   region,
		creds:    creds,
		http:     hc,
		signer:   v4.NewSigner(),
	}
}

// APIError is an error answer from the server, in AWS's JSON error shape.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Retryable reports whether the request may succeed when sent again: the
// server was unavailable, throttled or failed internally.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// PayloadHash is the hex SHA-256 SigV4 signs a body with. Callers that
// send the same body many times compute it once.
func PayloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// post signs and sends body; hash may be "" to have it computed. It returns
// the response body of a 2xx answer and an *APIError for any other.
func (c *Client) post(ctx context.Context, service, path string, query url.Values, contentType string, body []byte, hash string) ([]byte, error) {
	u := c.endpoint + path
	if len(query) > 0 {
		u += "?" + strings.ReplaceAll(query.Encode(), "+", "%20")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request to %s: %w", u, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.ContentLength = int64(len(body))
	if hash == "" {
		hash = PayloadHash(body)
	}
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := c.signer.SignHTTP(ctx, c.creds, req, hash, service, c.region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign request to %s: %w", u, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer of POST %s: %w", path, err)
	}
	if resp.StatusCode/100 == 2 {
		return out, nil
	}
	e := &APIError{Status: resp.StatusCode, Code: resp.Header.Get("X-Amzn-ErrorType")}
	var shape struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	if json.Unmarshal(out, &shape) == nil {
		if e.Code == "" {
			e.Code = shape.Type
		}
		e.Message = shape.Message + shape.MessageU
	}
	if i := strings.IndexByte(e.Code, ':'); i >= 0 {
		e.Code = e.Code[:i]
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(out))
	}
	return nil, e
}

// ImportRejection is one record the import endpoint refused: its 0-based
// index among the request's records (non-blank lines) and why.
type ImportRejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ImportOutput is the import endpoint's answer, as the server writes it.
// Rejected is always present, possibly empty. ImportID names the import in
// the provenance of its records; SHA256 is the hex SHA-256 of the accepted
// records as stored, each followed by a newline (also in the import's
// audit record).
type ImportOutput struct {
	Accepted int               `json:"accepted"`
	Rejected []ImportRejection `json:"rejected"`
	ImportID string            `json:"importId"`
	SHA256   string            `json:"sha256"`
}

// Import sends records (JSON Lines, one compact record per line) to
// /cairn/import.
func (c *Client) Import(ctx context.Context, body []byte) (*ImportOutput, error) {
	raw, err := c.post(ctx, ServiceCairn, ImportPath, nil, "application/x-ndjson", body, "")
	if err != nil {
		return nil, err
	}
	var out ImportOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode import answer %.200q: %w", raw, err)
	}
	return &out, nil
}

// PutAuditEventsOutput is PutAuditEvents' answer, in the wire shape the
// server writes.
type PutAuditEventsOutput = channel.PutAuditEventsOutput

// PutAuditEvents sends a ready-made request body ({"auditEvents":[...]})
// to channelARN. hash is PayloadHash(body), or "".
func (c *Client) PutAuditEvents(ctx context.Context, channelARN string, body []byte, hash string) (*PutAuditEventsOutput, error) {
	raw, err := c.post(ctx, ServiceCloudTrailData, "/PutAuditEvents", url.Values{"channelArn": {channelARN}}, "application/json", body, hash)
	if err != nil {
		return nil, err
	}
	var out PutAuditEventsOutput
	if decodeAllSuccessful(raw, &out) {
		return &out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode PutAuditEvents answer %.200q: %w", raw, err)
	}
	return &out, nil
}

// decodeAllSuccessful decodes the usual answer, every event successful, in
// exactly the layout Cairn writes it:
//
//	{"successful":[{"id":"…","eventID":"…"},…],"failed":[]}
//
// with plain ASCII strings; false means "not that: use
// encoding/json". The load generator shares the server's cores, and
// reflection over a hundred entries per request was a fifth of its CPU.
func decodeAllSuccessful(raw []byte, out *PutAuditEventsOutput) bool {
	const (
		head = `{"successful":[`
		tail = `],"failed":[]}`
	)
	if !bytes.HasPrefix(raw, []byte(head)) || !bytes.HasSuffix(raw, []byte(tail)) {
		return false
	}
	list := raw[len(head) : len(raw)-len(tail)]
	// str reads a JSON string without escapes at list[i], returning its
	// value and the index after it.
	str := func(i int) (string, int, bool) {
		if i >= len(list) || list[i] != '"' {
			return "", 0, false
		}
		end := bytes.IndexByte(list[i+1:], '"')
		if end < 0 {
			return "", 0, false
		}
		v := list[i+1 : i+1+end]
		for _, c := range v {
			if c == '\\' || c < 0x20 || c >= 0x80 { // escapes, invalid JSON, maybe invalid UTF-8
				return "", 0, false
			}
		}
		return string(v), i + end + 2, true
	}
	out.Successful = out.Successful[:0]
	for i := 0; i < len(list); {
		if len(out.Successful) > 0 {
			if list[i] != ',' {
				return false
			}
			i++
		}
		if !bytes.HasPrefix(list[i:], []byte(`{"id":`)) {
			return false
		}
		id, j, ok := str(i + len(`{"id":`))
		if !ok || !bytes.HasPrefix(list[j:], []byte(`,"eventID":`)) {
			return false
		}
		eventID, k, ok := str(j + len(`,"eventID":`))
		if !ok || k >= len(list) || list[k] != '}' {
			return false
		}
		out.Successful = append(out.Successful, channel.ResultEntry{ID: id, EventID: eventID})
		i = k + 1
	}
	out.Failed = out.Failed[:0]
	return true
}

// IsRetryable reports whether err from Client is worth retrying: a
// retryable API error or a transport failure (not a cancelled context).
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var e *APIError
	if errors.As(err, &e) {
		return e.Retryable()
	}
	return true
}
