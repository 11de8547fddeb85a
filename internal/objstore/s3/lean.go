package s3

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
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
	mu         sync.Mutex
	keyDay     string
	keySecret  string
	signingKey []byte
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
	creds, err := l.creds.Retrieve(ctx)
	if err != nil {
		return nil, objstore.ObjectInfo{}, fmt.Errorf("objstore/s3: get %s/%s: retrieve credentials: %w", bucket, key, err)
	}
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
	host := u.Host
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		// An empty URL parses for free; the one built above is used as
		// is, keeping the exact escaping that is signed.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "", nil)
		if err != nil {
			return nil, objstore.ObjectInfo{}, fmt.Errorf("objstore/s3: get %s/%s: %w", bucket, key, err)
		}
		uu := u
		req.URL, req.Host = &uu, host
		// Objects are returned as stored: without this, net/http would
		// ask for gzip and silently inflate a Content-Encoding: gzip
		// object (a log file), whose stored bytes are what is hashed.
		req.Header["Accept-Encoding"] = []string{"identity"}
		l.sign(req, creds, time.Now())
		resp, err = l.client.Do(req)
		retry := false
		if err != nil {
			if ctx.Err() != nil || attempt >= leanAttempts {
				return nil, objstore.ObjectInfo{}, fmt.Errorf("objstore/s3: get %s/%s: %w", bucket, key, err)
			}
			retry = true
		} else if resp.StatusCode >= 500 && attempt < leanAttempts {
			drain(resp.Body)
			retry = true
		}
		if !retry {
			break
		}
		select {
		case <-ctx.Done():
			return nil, objstore.ObjectInfo{}, ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
		}
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

// sign adds SigV4 headers (AWS4-HMAC-SHA256) to a GET of req.URL, the
// URL's escaped path being the canonical URI (S3 does not escape it
// twice) and its host, without a default port, the signed Host. It signs
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
	canon.WriteString("\n\nhost:")
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
	mac := hmac.New(sha256.New, l.key(creds.SecretAccessKey, day))
	mac.Write([]byte("AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(ch[:])))
	req.Header["X-Amz-Content-Sha256"] = []string{emptySHA256}
	req.Header["X-Amz-Date"] = []string{amzDate}
	req.Header["Authorization"] = []string{"AWS4-HMAC-SHA256 Credential=" + creds.AccessKeyID + "/" + scope +
		", SignedHeaders=" + signed + ", Signature=" + hex.EncodeToString(mac.Sum(nil))}
}

// key returns the signing key of day (YYYYMMDD) for secret.
func (l *lean) key(secret, day string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keyDay == day && l.keySecret == secret {
		return l.signingKey
	}
	k := hmacSHA256([]byte("AWS4"+secret), day)
	k = hmacSHA256(k, l.region)
	k = hmacSHA256(k, "s3")
	k = hmacSHA256(k, "aws4_request")
	l.keyDay, l.keySecret, l.signingKey = day, secret, k
	return k
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
