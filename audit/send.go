package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// A PutAuditEvents body is batchHead, the entries separated by commas, and
// batchTail; the entries are rendered when the request is audited, so that
// the buffer's memory and a batch's size are known exactly.
const (
	batchHead = `{"auditEvents":[`
	batchTail = `]}`
)

// signingName is PutAuditEvents' SigV4 service name.
const signingName = "cloudtrail-data"

// item is one buffered event.
type item struct {
	id   string // the PutAuditEvents id, also the event's UID
	data []byte // {"id":…,"eventData":…}
}

// run is the sender goroutine: it sends full batches as soon as they are
// full, the rest every FlushInterval, and everything when closing.
func (c *Client) run() {
	defer close(c.done)
	tick := time.NewTicker(c.cfg.FlushInterval)
	defer tick.Stop()
	for {
		min, closing := c.cfg.MaxBatch, false
		select {
		case <-c.kick:
		case <-tick.C:
			min = 1
		case <-c.closing:
			min, closing = 1, true
		}
		for {
			if c.stopCtx.Err() != nil {
				c.abandonQueue()
				return
			}
			batch := c.take(min)
			if batch == nil {
				break
			}
			c.sendBatch(batch)
		}
		if closing {
			return
		}
	}
}

// take removes the next batch from the queue when at least min events wait.
func (c *Client) take(min int) []item {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) < min || len(c.queue) == 0 {
		return nil
	}
	size := len(batchHead) + len(batchTail)
	n := 0
	for n < len(c.queue) && n < c.cfg.MaxBatch {
		add := len(c.queue[n].data)
		if n > 0 {
			add++ // comma
		}
		if size+add > MaxBatchBytes {
			break
		}
		size += add
		n++
	}
	batch := make([]item, n)
	copy(batch, c.queue[:n])
	clear(c.queue[:n])
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil // let the backing array go after a burst
	}
	return batch
}

// abandonQueue drops what is still queued when Close gave up.
func (c *Client) abandonQueue() {
	c.mu.Lock()
	n := len(c.queue)
	c.queue = nil
	c.mu.Unlock()
	c.release(n)
	c.drop(DropClosed, n)
}

func (c *Client) release(n int) {
	for range n {
		<-c.slots
	}
}

// sendBatch delivers batch, retrying what failed for a retryable reason,
// and accounts for every event in it.
func (c *Client) sendBatch(batch []item) {
	defer c.release(len(batch))
	start := c.now()
	pending := batch
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			c.retried.Add(uint64(len(pending)))
		}
		out, err := c.put(pending)
		c.batches.Add(1)
		if err == nil {
			pending = c.settle(pending, out)
			if len(pending) == 0 {
				return
			}
			err = fmt.Errorf("%d events failed with a retryable error code", len(pending))
		} else if c.stopCtx.Err() != nil {
			c.drop(DropClosed, len(pending))
			return
		} else if !retryable(err) {
			c.log.Warn("audit: PutAuditEvents refused a batch; its events are lost", "events", len(pending), "err", err)
			c.drop(DropRejected, len(pending))
			return
		}
		wait := c.backoff(attempt)
		if attempt >= c.cfg.Retry.MaxAttempts || c.now().Sub(start)+wait > c.cfg.Retry.MaxElapsed {
			c.log.Error("audit: giving up on a batch after retries; its events are lost", "events", len(pending), "attempts", attempt, "err", err)
			c.drop(DropRetriesExhausted, len(pending))
			return
		}
		c.log.Debug("audit: retrying a batch", "events", len(pending), "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.stopCtx.Done():
			t.Stop()
			c.drop(DropClosed, len(pending))
			return
		}
	}
}

// backoff is the wait after the attempt-th failure: full jitter over an
// exponentially growing cap.
func (c *Client) backoff(attempt int) time.Duration {
	p := c.cfg.Retry
	ceil := p.InitialBackoff
	for i := 1; i < attempt && ceil < p.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, p.MaxBackoff)
	return rand.N(ceil + 1)
}

// putOutput is PutAuditEvents' answer.
type putOutput struct {
	Successful []struct {
		ID      string `json:"id"`
		EventID string `json:"eventID"`
	} `json:"successful"`
	Failed []struct {
		ID           string `json:"id"`
		ErrorCode    string `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	} `json:"failed"`
}

// retryableEventCodes are failed[].errorCode values worth another attempt.
func retryableEventCode(code string) bool {
	return code == "Throttling" || code == "InternalFailure"
}

// settle counts the outcome of one answer and returns the events to send
// again: those failed with a retryable code, and any the answer does not
// mention.
func (c *Client) settle(pending []item, out *putOutput) []item {
	state := make(map[string]int8, len(pending)) // 1 accepted, 2 rejected, 3 retry
	for _, s := range out.Successful {
		state[s.ID] = 1
	}
	rejected := 0
	for _, f := range out.Failed {
		if retryableEventCode(f.ErrorCode) {
			state[f.ID] = 3
			continue
		}
		state[f.ID] = 2
		rejected++
		// The message names the field at fault, never its value.
		c.log.Warn("audit: PutAuditEvents refused an event", "id", f.ID, "error_code", f.ErrorCode, "error_message", f.ErrorMessage)
	}
	var again []item
	sent := 0
	for _, it := range pending {
		switch state[it.id] {
		case 1:
			sent++
		case 2:
		default:
			again = append(again, it)
		}
	}
	c.sent.Add(uint64(sent))
	c.drop(DropRejected, rejected)
	return again
}

// apiError is an error answer of PutAuditEvents.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("PutAuditEvents: HTTP %d %s: %s", e.status, e.code, e.message)
}

// retryable reports whether err may go away on its own: the server was
// unavailable, throttled or failed, or it could not be reached at all.
// Anything else (bad credentials, a missing channel, a malformed call) will
// fail the same way again.
func retryable(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return true // transport: refused connection, reset, timeout
	}
	if ae.status >= 500 || ae.status == http.StatusTooManyRequests {
		return true
	}
	return strings.Contains(ae.code, "Throttl") || ae.code == "ServiceUnavailableException"
}

// put makes one signed PutAuditEvents call.
func (c *Client) put(items []item) (*putOutput, error) {
	size := len(batchHead) + len(batchTail) + len(items)
	for _, it := range items {
		size += len(it.data)
	}
	// A fresh body per attempt: the transport may still read the previous
	// one after Do has returned an error.
	body := make([]byte, 0, size)
	body = append(body, batchHead...)
	for i, it := range items {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.data...)
	}
	body = append(body, batchTail...)

	ctx, cancel := context.WithTimeout(c.stopCtx, c.cfg.RequestTimeout)
	defer cancel()
	q := url.Values{"channelArn": {c.cfg.ChannelARN}}
	if c.cfg.ExternalID != "" {
		q.Set("externalId", c.cfg.ExternalID)
	}
	u := c.endpoint + "/PutAuditEvents?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build PutAuditEvents request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials to sign PutAuditEvents: %w", err)
	}
	if err := c.signer.SignHTTP(ctx, creds, req, hash, signingName, c.region, c.now()); err != nil {
		return nil, fmt.Errorf("sign PutAuditEvents: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send PutAuditEvents: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read PutAuditEvents answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, decodeError(resp, raw)
	}
	var out putOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, &apiError{status: resp.StatusCode, code: "InvalidAnswer", message: fmt.Sprintf("decode PutAuditEvents answer: %v", err)}
	}
	return &out, nil
}

// decodeError reads a REST-JSON error: the type in X-Amzn-ErrorType or the
// body's __type/code, the message in message/Message.
func decodeError(resp *http.Response, raw []byte) error {
	e := &apiError{status: resp.StatusCode, code: resp.Header.Get("X-Amzn-ErrorType")}
	var shape struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	if json.Unmarshal(raw, &shape) == nil {
		if e.code == "" {
			e.code = shape.Type + shape.Code
		}
		e.message = shape.Message + shape.MessageU
	}
	if i := strings.IndexByte(e.code, ':'); i >= 0 {
		e.code = e.code[:i]
	}
	if i := strings.LastIndexByte(e.code, '#'); i >= 0 {
		e.code = e.code[i+1:]
	}
	if e.message == "" {
		e.message = strings.TrimSpace(string(raw[:min(len(raw), 256)]))
	}
	return e
}
