package s3

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/cairn-audit/cairn/internal/objstore"
)

// emptySHA256 is the SHA-256 of an empty body, the signed payload hash of
// every GET.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// leanAttempts is how many times GetLean tries a request that failed
// before any of its body was read (network errors, 5xx): as the SDK's
// standard retryer does for GetObject.
const leanAttempts = 3

// lean is what GetLean needs: where to send requests and how to sign
// them. Nil when the store has no explicit endpoint (AWS itself), where
// the SDK's endpoint resolution, region redirects and retries matter more
// than a few microseconds per object.
type lean struct {
	base      *url.URL
	pathStyle bool
	region    string
	creds     aws.CredentialsProvider
	client    aws.HTTPClient

	// The SigV4 signing key derived for a day and secret: the same for
	// every request that day.
	mu        sync.Mutex
	keyDay    string
	keySecret string
	macPool   *sync.Pool // of hash.Hash: HMAC-SHA256 under the signing key
}

// GetLean is Get through one SigV4-signed net/http GET, without the SDK's
// per-request middleware stack. Validating a trail reads thousands of
// small objects; there the SDK's middleware, not the bytes, was most of
// the client's CPU. Semantics are Get's: objstore.ErrNotFound for
// NoSuchKey, ErrNoSuchBucket for NoSuchBucket, any other error wraps
// S3's error code (a smithy.APIError). Stores without an explicit
// endpoint fall back to Get.
func (s *Store) GetLean(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if s.lean == nil {
		return s.Get(ctx, bucket, key)
	}
	if err := check(bucket, key); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	l := s.lean
	u := *l.base
	basePath, baseRaw := strings.TrimSuffix(u.Path, "/"), strings.TrimSuffix(u.EscapedPath(), "/")
	escKey := escapeKey(key)
	if l.pathStyle {
		u.Path = basePath + "/" + bucket + "/" + key
		u.RawPath = baseRaw + "/" + bucket + "/" + escKey
	} else {
		u.Host = bucket + "." + u.Host
		u.Path = basePath + "/" + key
		u.RawPath = baseRaw + "/" + escKey
	}
	resp, err := l.do(ctx, u)
	if err != nil {
		return nil, objstore.ObjectInfo{}, fmt.Errorf("objstore/s3: get %s/%s: %w", bucket, key, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer drain(resp.Body)
		return nil, objstore.ObjectInfo{}, mapErr("get", bucket, key, apiError(resp))
	}
	h := resp.Header
	info := objstore.ObjectInfo{
		Key:             key,
		Size:            resp.ContentLength,
		ETag:            h.Get("ETag"),
		ContentType:     h.Get("Content-Type"),
		ContentEncoding: h.Get("Content-Encoding"),
	}
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		info.LastModified = lm.UTC()
	}
	for k, vs := range h {
		// Header keys are canonical: "X-Amz-Meta-Signature".
		if len(k) > len("X-Amz-Meta-") && strings.EqualFold(k[:len("X-Amz-Meta-")], "X-Amz-Meta-") && len(vs) > 0 {
			if info.Metadata == nil {
				info.Metadata = make(map[string]string, 2)
			}
			info.Metadata[strings.ToLower(k[len("X-Amz-Meta-"):])] = vs[0]
		}
	}
	return resp.Body, info, nil
}

// do sends a signed GET of u, trying again (as the SDK's standard
// retryer does) after network errors and 5xx answers.
func (l *lean) do(ctx context.Context, u url.URL) (*http.Response, error) {
	creds, err := l.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieve credentials: %w", err)
	}
	for attempt := 1; ; attempt++ {
		// An empty URL parses for free; u is used as is, keeping the
		// exact escaping that is signed.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "", nil)
		if err != nil {
			return nil, err
		}
		uu := u
		req.URL, req.Host = &uu, u.Host
		// Objects are returned as stored: without this, net/http would
		// ask for gzip and silently inflate a Content-Encoding: gzip
		// object (a log file), whose stored bytes are what is hashed.
		req.Header["Accept-Encoding"] = []string{"identity"}
		l.sign(req, creds, time.Now())
		resp, err := l.client.Do(req)
		if err == nil && (resp.StatusCode < 500 || attempt >= leanAttempts) {
			return resp, nil
		}
		if err != nil {
			if ctx.Err() != nil || attempt >= leanAttempts {
				return nil, err
			}
		} else {
			drain(resp.Body)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
		}
	}
}

// sign adds SigV4 headers (AWS4-HMAC-SHA256) to a GET of req.URL, the
// URL's escaped path being the canonical URI (S3 does not escape it
// twice), its raw query the canonical query (callers build it sorted and
// escaped as SigV4 wants) and its host, without a default port, the signed
// Host. It signs
// host, x-amz-content-sha256, x-amz-date and, with temporary credentials,
// x-amz-security-token. Written out rather than through the SDK's signer,
// which builds and sorts a canonical form of every header and was a tenth
// of a validation's CPU; TestGetLean checks it against versitygw, which
// checks every signature.
func (l *lean) sign(req *http.Request, creds aws.Credentials, now time.Time) {
	now = now.UTC()
	amzDate := now.Format("20060102T150405Z")
	day := amzDate[:8]
	host := stripDefaultPort(req.URL.Scheme, req.Host)
	req.Host = host
	scope := day + "/" + l.region + "/s3/aws4_request"
	signed := "host;x-amz-content-sha256;x-amz-date"
	var canon strings.Builder
	canon.Grow(256)
	canon.WriteString("GET\n")
	canon.WriteString(req.URL.EscapedPath())
	canon.WriteString("\n")
	canon.WriteString(req.URL.RawQuery) // built in canonical form
	canon.WriteString("\nhost:")
	canon.WriteString(host)
	canon.WriteString("\nx-amz-content-sha256:" + emptySHA256 + "\nx-amz-date:")
	canon.WriteString(amzDate)
	canon.WriteString("\n")
	if creds.SessionToken != "" {
		signed += ";x-amz-security-token"
		canon.WriteString("x-amz-security-token:")
		canon.WriteString(strings.TrimSpace(creds.SessionToken))
		canon.WriteString("\n")
		req.Header["X-Amz-Security-Token"] = []string{creds.SessionToken}
	}
	canon.WriteString("\n")
	canon.WriteString(signed)
	canon.WriteString("\n" + emptySHA256)
	ch := sha256.Sum256([]byte(canon.String()))
	macs := l.macs(creds.SecretAccessKey, day)
	mac := macs.Get().(hash.Hash)
	defer macs.Put(mac)
	mac.Reset()
	mac.Write([]byte("AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(ch[:])))
	req.Header["X-Amz-Content-Sha256"] = []string{emptySHA256}
	req.Header["X-Amz-Date"] = []string{amzDate}
	req.Header["Authorization"] = []string{"AWS4-HMAC-SHA256 Credential=" + creds.AccessKeyID + "/" + scope +
		", SignedHeaders=" + signed + ", Signature=" + hex.EncodeToString(mac.Sum(nil))}
}

// macs returns a pool of HMACs keyed with the signing key of day
// (YYYYMMDD) for secret: deriving the key takes four HMACs and keying one
// two hashes, the same for every request that day.
func (l *lean) macs(secret, day string) *sync.Pool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keyDay == day && l.keySecret == secret {
		return l.macPool
	}
	k := hmacSHA256([]byte("AWS4"+secret), day)
	k = hmacSHA256(k, l.region)
	k = hmacSHA256(k, "s3")
	k = hmacSHA256(k, "aws4_request")
	l.keyDay, l.keySecret = day, secret
	l.macPool = &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}
	return l.macPool
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// stripDefaultPort drops ":80" from an http host and ":443" from an
// https one, as HTTP clients send (and servers sign) them.
func stripDefaultPort(scheme, host string) string {
	if h, ok := strings.CutSuffix(host, ":80"); ok && scheme == "http" {
		return h
	}
	if h, ok := strings.CutSuffix(host, ":443"); ok && scheme == "https" {
		return h
	}
	return host
}

// drain reads a little of an unwanted body so its connection can be
// reused, then closes it.
func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	rc.Close()
}

// apiError turns an S3 error answer into the SDK's error shape, so mapErr
// and callers treat it as they treat the SDK's.
func apiError(resp *http.Response) error {
	var e struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = xml.Unmarshal(b, &e)
	if e.Code == "" {
		// A bare status (a HEAD-like 404 or a proxy's error page) names
		// nothing; keep the status as the code, as the SDK does.
		e.Code = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode == http.StatusNotFound {
			e.Code = "NotFound"
		}
		e.Message = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("HTTP %d: %w", resp.StatusCode, &smithy.GenericAPIError{Code: e.Code, Message: e.Message})
}

// escapeKey escapes a key for an S3 request path: every byte but the
// unreserved ones and '/', as S3's SigV4 canonical URI wants it (S3 does
// not double-encode).
func escapeKey(key string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(key); i++ {
		if !unreserved(key[i]) {
			n++
		}
	}
	if n == 0 {
		return key
	}
	b := make([]byte, 0, len(key)+2*n)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if unreserved(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '/'
}

// ListKeysLean calls fn with the key of every object under prefix after
// startAfter, in order, like List but with keys only: ListObjectsV2 GETs
// signed like GetLean's whose answers are scanned for keys instead of
// decoded by the SDK, whose XML decoding was a tenth of a validation's
// CPU (a validation lists every digest and log file key). fn returning
// objstore.ErrStop ends the listing without error. Stores without an
// explicit endpoint fall back to List.
func (s *Store) ListKeysLean(ctx context.Context, bucket, prefix, startAfter string, fn func(key string) error) error {
	if s.lean == nil {
		return s.List(ctx, bucket, prefix, startAfter, func(oi objstore.ObjectInfo) error { return fn(oi.Key) })
	}
	if err := objstore.ValidBucketName(bucket); err != nil {
		return err
	}
	l := s.lean
	u := *l.base
	basePath, baseRaw := strings.TrimSuffix(u.Path, "/"), strings.TrimSuffix(u.EscapedPath(), "/")
	if l.pathStyle {
		u.Path, u.RawPath = basePath+"/"+bucket, baseRaw+"/"+bucket
	} else {
		u.Host = bucket + "." + u.Host
		u.Path, u.RawPath = basePath+"/", baseRaw+"/"
	}
	token := ""
	for {
		// The canonical query: parameters sorted by name, names and
		// values escaped as SigV4 wants (RFC 3986, space as %20).
		var q []string
		if token != "" {
			q = append(q, "continuation-token="+escapeQuery(token))
		}
		q = append(q, "encoding-type=url", "list-type=2")
		if prefix != "" {
			q = append(q, "prefix="+escapeQuery(prefix))
		}
		if startAfter != "" {
			q = append(q, "start-after="+escapeQuery(startAfter))
		}
		u.RawQuery = strings.Join(q, "&")
		resp, err := l.do(ctx, u)
		if err != nil {
			return fmt.Errorf("objstore/s3: list %s: %w", bucket, err)
		}
		if resp.StatusCode != http.StatusOK {
			err := apiError(resp)
			drain(resp.Body)
			return mapErr("list", bucket, "", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("objstore/s3: list %s: read the answer: %w", bucket, err)
		}
		page, err := scanListPage(body)
		if err != nil {
			return fmt.Errorf("objstore/s3: list %s: %w", bucket, err)
		}
		for _, k := range page.keys {
			if err := fn(k); err != nil {
				if errors.Is(err, objstore.ErrStop) {
					return nil
				}
				return err
			}
		}
		if !page.truncated {
			return nil
		}
		if page.next == "" || page.next == token {
			return fmt.Errorf("objstore/s3: list %s: a truncated answer without a new continuation token", bucket)
		}
		token = page.next
	}
}

type listPage struct {
	keys      []string
	truncated bool
	next      string
}

// scanListPage reads a ListBucketResult (ListObjectsV2) for what
// ListKeysLean needs. <Key> occurs only in <Contents>; keys are decoded
// as List decodes them (URL encoding when the answer says so, form
// style, and XML escapes either way).
func scanListPage(b []byte) (listPage, error) {
	var p listPage
	text := func(tag string, from int) (string, int, bool) {
		open, closing := []byte("<"+tag+">"), []byte("</"+tag+">")
		i := bytes.Index(b[from:], open)
		if i < 0 {
			return "", from, false
		}
		i += from + len(open)
		j := bytes.Index(b[i:], closing)
		if j < 0 {
			return "", from, false
		}
		return string(b[i : i+j]), i + j + len(closing), true
	}
	if !bytes.Contains(b, []byte("<ListBucketResult")) {
		return p, fmt.Errorf("the answer is not a ListBucketResult: %.100q", b)
	}
	enc, _, _ := text("EncodingType", 0)
	for pos := 0; ; {
		k, next, ok := text("Key", pos)
		if !ok {
			break
		}
		pos = next
		k, err := xmlUnescape(k)
		if err != nil {
			return p, err
		}
		if enc == "url" {
			if k, err = url.QueryUnescape(k); err != nil {
				return p, fmt.Errorf("server sent a badly encoded key: %w", err)
			}
		}
		p.keys = append(p.keys, k)
	}
	tr, _, _ := text("IsTruncated", 0)
	p.truncated = tr == "true"
	if n, _, ok := text("NextContinuationToken", 0); ok {
		var err error
		if p.next, err = xmlUnescape(n); err != nil {
			return p, err
		}
	}
	return p, nil
}

// xmlUnescape resolves XML's character references in element text.
func xmlUnescape(s string) (string, error) {
	if !strings.Contains(s, "&") {
		return s, nil
	}
	var v struct {
		S string `xml:",chardata"`
	}
	if err := xml.Unmarshal([]byte("<x>"+s+"</x>"), &v); err != nil {
		return "", fmt.Errorf("bad XML text %q: %w", s, err)
	}
	return v.S, nil
}

// escapeQuery escapes a query parameter value for SigV4's canonical
// query: every byte but the unreserved ones.
func escapeQuery(v string) string {
	return strings.ReplaceAll(escapeKey(v), "/", "%2F")
}
