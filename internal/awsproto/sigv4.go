package awsproto

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SigV4 constants. They are the values AWS documents for Signature Version 4;
// changing any of them breaks every client.
const (
	// SigV4Algorithm is the only signing algorithm Cairn accepts. SigV4a
	// (AWS4-ECDSA-P256-SHA256) and SigV2 are refused as malformed.
	SigV4Algorithm = "AWS4-HMAC-SHA256"
	// UnsignedPayload is the payload hash a presigned URL may carry instead
	// of the body's digest. Header-signed requests must sign their body.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// MaxClockSkew is how far X-Amz-Date may be from the server's clock, in
	// either direction, before AWS reports "Signature expired" or
	// "Signature not yet current".
	MaxClockSkew = 15 * time.Minute
	// MaxPresignExpires is the largest X-Amz-Expires AWS accepts: one week.
	MaxPresignExpires = 604800

	amzDateLayout   = "20060102T150405Z"
	scopeDateLayout = "20060102"
	scopeTerminator = "aws4_request"
)

// Error messages that AWS sends verbatim; clients and humans grep for them.
const (
	msgMissingToken      = "Missing Authentication Token"
	msgUnrecognized      = "The security token included in the request is invalid."
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgHostNotSigned     = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgDateRequired      = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)

// Credential is what a verified request proved: that its sender holds the
// secret of AccessKeyID, and the scope it chose to sign for.
type Credential struct {
	AccessKeyID string
	Region      string
	Service     string
	// SignedAt is the request's X-Amz-Date (or Date) as the client sent it.
	SignedAt time.Time
	// Presigned is true for the query-string form.
	Presigned bool
	// UnsignedPayload is true when a presigned URL was signed with
	// UNSIGNED-PAYLOAD, so the body is NOT covered by the signature.
	UnsignedPayload bool
}

// SecretLookup returns the secret for an access key; ok=false for an unknown
// key. err is for failures of the store itself and becomes InternalFailure.
type SecretLookup func(ctx context.Context, accessKeyID string) (secret string, ok bool, err error)

// VerifyOptions narrows what VerifyRequestWith accepts.
type VerifyOptions struct {
	// Service, when set, is the only signing name accepted (for example
	// "cloudtrail" or "cloudtrail-data"). Without it a signature made for one
	// service could be replayed against the other.
	Service string
	// Region, when set, is the only region accepted in the credential scope.
	Region string
}

// Authorization is a parsed SigV4 Authorization header (or the equivalent
// X-Amz-* query parameters of a presigned URL).
type Authorization struct {
	AccessKeyID string
	// Date is the YYYYMMDD of the credential scope.
	Date    string
	Region  string
	Service string
	// SignedHeaders are the names exactly as the client listed them.
	SignedHeaders []string
	// Signature is the client's hex signature, unvalidated.
	Signature string
}

// Scope is the credential scope "date/region/service/aws4_request".
func (a *Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + scopeTerminator
}

// String formats a as the Authorization header the AWS SDKs send.
func (a *Authorization) String() string {
	return SigV4Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope() +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") +
		", Signature=" + a.Signature
}

// ParseAuthorization parses "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/
// cloudtrail/aws4_request, SignedHeaders=a;b, Signature=hex". Errors are
// IncompleteSignatureException with AWS's wording.
func ParseAuthorization(h string) (*Authorization, error) {
	a, problems, err := parseAuthorization(h)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, incompleteHeader(problems, h)
	}
	return a, nil
}

// parseAuthorization returns the problems separately so that VerifyRequest
// can add its own (a missing date) and report them together, as AWS does.
// err is set for a syntax error that stops parsing altogether.
func parseAuthorization(h string) (*Authorization, []string, error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != SigV4Algorithm {
		// AWS's own wording for an unknown scheme is not documented; this
		// names the problem plainly.
		return nil, nil, Errorf("IncompleteSignatureException",
			"Unsupported AWS 'algorithm': '%s'; only '%s' is accepted. Authorization=%s", alg, SigV4Algorithm, h)
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for p := range strings.SplitSeq(rest, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			sum := sha256.Sum256([]byte(h))
			return nil, nil, Errorf("IncompleteSignatureException",
				"Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with Base64): '%s'.",
				base64.StdEncoding.EncodeToString(sum[:]))
		}
		var dup bool
		switch k {
		case "Credential":
			dup, haveCred, cred = haveCred, true, v
		case "SignedHeaders":
			dup, haveSigned, signed = haveSigned, true, v
		case "Signature":
			dup, haveSig, sig = haveSig, true, v
		}
		if dup {
			return nil, nil, Errorf("IncompleteSignatureException",
				"Authorization header has more than one '%s' parameter. Authorization=%s", k, h)
		}
	}

	a := &Authorization{Signature: sig}
	var problems []string
	if cred == "" {
		problems = append(problems, "Authorization header requires 'Credential' parameter.")
	} else if p := a.setCredential(cred); p != "" {
		problems = append(problems, p)
	}
	if sig == "" {
		problems = append(problems, "Authorization header requires 'Signature' parameter.")
	}
	if signed == "" {
		problems = append(problems, "Authorization header requires 'SignedHeaders' parameter.")
	} else if p := a.setSignedHeaders(signed); p != "" {
		problems = append(problems, p)
	}
	return a, problems, nil
}

// setCredential parses "AK/YYYYMMDD/region/service/aws4_request" into a and
// returns a problem description, or "".
func (a *Authorization) setCredential(cred string) string {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return fmt.Sprintf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'.", cred)
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	switch {
	case a.AccessKeyID == "":
		return "Credential must name an access key ID."
	case !isScopeDate(a.Date):
		return fmt.Sprintf("Credential should be scoped to a valid date in YYYYMMDD form, not '%s'.", a.Date)
	case a.Region == "" || strings.ContainsAny(a.Region, " \t"):
		return fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", a.Region)
	case a.Service == "" || strings.ContainsAny(a.Service, " \t"):
		return fmt.Sprintf("Credential should be scoped to a valid service, not '%s'.", a.Service)
	case parts[4] != scopeTerminator:
		return fmt.Sprintf("Credential should be scoped with a valid terminator: '%s', not '%s'.", scopeTerminator, parts[4])
	}
	return ""
}

func (a *Authorization) setSignedHeaders(s string) string {
	a.SignedHeaders = strings.Split(s, ";")
	if slices.Contains(a.SignedHeaders, "") {
		return fmt.Sprintf("SignedHeaders must be a ';'-separated list of header names, got '%s'.", s)
	}
	return ""
}

func isScopeDate(s string) bool {
	_, ok := parseStrict(scopeDateLayout, s)
	return ok
}

// parseStrict parses s in layout and accepts it only if it is exactly the
// form layout produces; time.Parse alone tolerates one-digit hours.
func parseStrict(layout, s string) (time.Time, bool) {
	t, err := time.Parse(layout, s)
	if err != nil || t.Format(layout) != s {
		return time.Time{}, false
	}
	return t, true
}

func incompleteHeader(problems []string, h string) *Error {
	return Errorf("IncompleteSignatureException", "%s Authorization=%s", strings.Join(problems, " "), h)
}

func incompleteQuery(problems []string) *Error {
	return Errorf("IncompleteSignatureException", "%s Re-examine the query-string parameters.", strings.Join(problems, " "))
}

func invalidSignature(format string, args ...any) *Error {
	return Errorf("InvalidSignatureException", format, args...)
}

// VerifyRequest checks the SigV4 signature of r, whose body has already been
// read into body, and returns the credential it proves. It accepts any
// service and region; servers should prefer VerifyRequestWith.
func VerifyRequest(ctx context.Context, r *http.Request, body []byte, lookup SecretLookup, now time.Time) (*Credential, error) {
	return VerifyRequestWith(ctx, r, body, lookup, now, VerifyOptions{})
}

// ClaimedScope returns the credential scope r claims to be signed for,
// read from its Authorization header or presigned query alone, without
// checking the signature, so that a server can refuse what the scope alone
// rules out (an unknown region) before it reads a body. It picks the
// signature exactly as VerifyRequestWith does; ok is false when r carries
// no single well-formed one, and VerifyRequestWith then says what is wrong.
func ClaimedScope(r *http.Request) (a *Authorization, ok bool) {
	query := parseQuery(r.URL.RawQuery)
	presign := query.has("X-Amz-Algorithm") || query.has("X-Amz-Credential") || query.has("X-Amz-Signature")
	authz := r.Header.Values("Authorization")
	var req *sigRequest
	var err *Error
	switch {
	case len(authz) > 0 && presign, len(authz) > 1:
		return nil, false
	case len(authz) == 1 && strings.TrimSpace(authz[0]) != "":
		req, err = fromHeader(r, authz[0], query)
	case presign:
		req, err = fromQuery(query)
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	return req.auth, true
}

// sigRequest is everything the signature check needs, whichever form the
// signature arrived in.
type sigRequest struct {
	auth      *Authorization
	amzDate   string // the timestamp of the string to sign, ISO-8601 basic
	signedAt  time.Time
	presigned bool
	expires   int64 // seconds; -1 when the URL has no X-Amz-Expires
	query     queryValues
	dateField string // lower-case header name the date came from, "" for the query
}

// VerifyRequestWith is VerifyRequest restricted by opts. Every refusal is an
// *Error in the vocabulary of the AWS JSON services:
// MissingAuthenticationTokenException, IncompleteSignatureException,
// UnrecognizedClientException, InvalidSignatureException; a failing lookup
// becomes InternalFailure. It is PreVerify followed by Verify.
func VerifyRequestWith(ctx context.Context, r *http.Request, body []byte, lookup SecretLookup, now time.Time, opts VerifyOptions) (*Credential, error) {
	p, err := PreVerify(ctx, r, lookup, now, opts)
	if err != nil {
		return nil, err
	}
	return p.Verify(body)
}

// PendingRequest is a request whose signature checked out as far as it can
// be checked without the body: its form, scope, time and signed headers
// are acceptable and its access key exists. Verify finishes the check.
type PendingRequest struct {
	r        *http.Request
	req      *sigRequest
	secret   string
	declared string // the x-amz-content-sha256 the client sent, or ""
}

// AccessKeyID is the access key the request claims to be signed with: it
// exists, but until Verify nothing says the caller holds its secret.
func (p *PendingRequest) AccessKeyID() string { return p.req.auth.AccessKeyID }

// PreVerify checks everything about r's signature that does not need the
// body, so that a server can refuse a request before reading (and holding)
// a body that cannot pass: an unsigned, malformed, stale or replayed-scope
// request, an unknown access key, a malformed x-amz-content-sha256, or
// UNSIGNED-PAYLOAD on a request that declares a body. Errors are those of
// VerifyRequestWith.
func PreVerify(ctx context.Context, r *http.Request, lookup SecretLookup, now time.Time, opts VerifyOptions) (*PendingRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verify request signature: %w", err)
	}
	query := parseQuery(r.URL.RawQuery)
	presign := query.has("X-Amz-Algorithm") || query.has("X-Amz-Credential") || query.has("X-Amz-Signature")
	authz := r.Header.Values("Authorization")

	var (
		req *sigRequest
		err *Error
	)
	switch {
	case len(authz) > 0 && presign:
		return nil, Errorf("IncompleteSignatureException",
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	case len(authz) > 1:
		return nil, Errorf("IncompleteSignatureException", "Only one Authorization header is allowed.")
	case len(authz) == 1 && strings.TrimSpace(authz[0]) != "":
		req, err = fromHeader(r, authz[0], query)
	case presign:
		req, err = fromQuery(query)
	default:
		return nil, Errorf("MissingAuthenticationTokenException", msgMissingToken)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSignedHeaders(r, req); err != nil {
		return nil, err
	}
	if err := checkTime(req, now); err != nil {
		return nil, err
	}
	a := req.auth
	if a.Date != req.amzDate[:8] {
		return nil, invalidSignature(
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.Date, req.amzDate[:8], req.amzDate)
	}
	if opts.Service != "" && a.Service != opts.Service {
		return nil, invalidSignature("Credential should be scoped to correct service: '%s'. ", opts.Service)
	}
	if opts.Region != "" && a.Region != opts.Region {
		return nil, invalidSignature("Credential should be scoped to a valid region, not '%s'. ", a.Region)
	}
	// Cairn issues no temporary credentials, so any session token names a
	// credential we cannot know.
	if r.Header.Get("X-Amz-Security-Token") != "" || query.has("X-Amz-Security-Token") {
		return nil, Errorf("UnrecognizedClientException", msgUnrecognized)
	}

	declared, perr := declaredPayloadHash(r, req)
	if perr != nil {
		return nil, perr
	}

	secret, ok, lerr := lookup(ctx, a.AccessKeyID)
	if lerr != nil {
		return nil, Internal(fmt.Errorf("look up secret of access key %s: %w", a.AccessKeyID, lerr))
	}
	if !ok {
		return nil, Errorf("UnrecognizedClientException", msgUnrecognized)
	}
	return &PendingRequest{r: r, req: req, secret: secret, declared: declared}, nil
}

// Verify checks the signature over body, the request's whole body, and
// returns the credential it proves.
func (p *PendingRequest) Verify(body []byte) (*Credential, error) {
	r, req, a := p.r, p.req, p.req.auth
	candidates, perr := payloadHashes(req, p.declared, body)
	if perr != nil {
		return nil, perr
	}
	provided, decErr := hex.DecodeString(a.Signature)
	if decErr != nil || len(provided) != sha256.Size {
		provided = nil // hmac.Equal is then false, at the same cost
	}
	key := signingKey(p.secret, a.Date, a.Region, a.Service)
	prefix := canonicalPrefix(r, req)
	scope := a.Scope()
	for _, ph := range candidates {
		sts := stringToSign(req.amzDate, scope, prefix+ph)
		if hmac.Equal(hmacSHA256(key, []byte(sts)), provided) {
			return &Credential{
				AccessKeyID:     a.AccessKeyID,
				Region:          a.Region,
				Service:         a.Service,
				SignedAt:        req.signedAt,
				Presigned:       req.presigned,
				UnsignedPayload: ph == UnsignedPayload,
			}, nil
		}
	}
	return nil, &Error{Code: "InvalidSignatureException", Message: msgSignatureMismatch,
		Err: fmt.Errorf("signature mismatch for access key %s, scope %s", a.AccessKeyID, scope)}
}

// fromHeader collects the Authorization-header form.
func fromHeader(r *http.Request, h string, query queryValues) (*sigRequest, *Error) {
	a, problems, err := parseAuthorization(h)
	if err != nil {
		return nil, AsError(err)
	}
	req := &sigRequest{auth: a, expires: -1, query: query}
	amz := r.Header.Values("X-Amz-Date")
	switch {
	case len(amz) > 1:
		problems = append(problems, "Only one 'X-Amz-Date' header is allowed.")
	case len(amz) == 1:
		t, ok := parseStrict(amzDateLayout, amz[0])
		if !ok {
			return nil, Errorf("IncompleteSignatureException",
				"Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", amz[0])
		}
		req.amzDate, req.signedAt, req.dateField = amz[0], t, "x-amz-date"
	case r.Header.Get("Date") != "":
		t, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return nil, Errorf("IncompleteSignatureException",
				"Date must be in RFC 1123 format when X-Amz-Date is absent. Got '%s'.", r.Header.Get("Date"))
		}
		t = t.UTC()
		req.amzDate, req.signedAt, req.dateField = t.Format(amzDateLayout), t, "date"
	default:
		problems = append(problems, msgDateRequired)
	}
	if len(problems) > 0 {
		return nil, incompleteHeader(problems, h)
	}
	return req, nil
}

// fromQuery collects the presigned-URL form.
func fromQuery(q queryValues) (*sigRequest, *Error) {
	var problems []string
	one := func(name string) string {
		switch vs := q.get(name); len(vs) {
		case 0:
			problems = append(problems, fmt.Sprintf("AWS query-string parameters must include '%s'.", name))
			return ""
		case 1:
			if vs[0] == "" {
				problems = append(problems, fmt.Sprintf("AWS query-string parameters must include '%s'.", name))
			}
			return vs[0]
		default:
			problems = append(problems, fmt.Sprintf("AWS query-string parameter '%s' must appear only once.", name))
			return ""
		}
	}
	alg := one("X-Amz-Algorithm")
	cred := one("X-Amz-Credential")
	date := one("X-Amz-Date")
	signed := one("X-Amz-SignedHeaders")
	sig := one("X-Amz-Signature")
	if len(problems) > 0 {
		return nil, incompleteQuery(problems)
	}
	if alg != SigV4Algorithm {
		return nil, Errorf("IncompleteSignatureException",
			"X-Amz-Algorithm only supports '%s', got '%s'.", SigV4Algorithm, alg)
	}
	a := &Authorization{Signature: sig}
	if p := a.setCredential(cred); p != "" {
		problems = append(problems, p)
	}
	if p := a.setSignedHeaders(signed); p != "" {
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return nil, incompleteQuery(problems)
	}
	t, ok := parseStrict(amzDateLayout, date)
	if !ok {
		return nil, Errorf("IncompleteSignatureException",
			"X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", got '%s'.", date)
	}
	req := &sigRequest{auth: a, amzDate: date, signedAt: t, presigned: true, expires: -1}
	if vs := q.get("X-Amz-Expires"); len(vs) > 0 {
		n, err := strconv.ParseInt(vs[0], 10, 64)
		if len(vs) > 1 || err != nil || n < 0 {
			return nil, Errorf("IncompleteSignatureException", "X-Amz-Expires should be a non-negative number of seconds, got '%s'.", vs[0])
		}
		if n > MaxPresignExpires {
			return nil, Errorf("IncompleteSignatureException",
				"X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less than %d seconds", MaxPresignExpires)
		}
		req.expires = n
	}
	// The signature itself is not part of what it signs.
	for _, p := range q {
		if p.key != "X-Amz-Signature" {
			req.query = append(req.query, p)
		}
	}
	return req, nil
}

// checkSignedHeaders enforces what must be signed: the host, the header the
// date came from, and every x-amz-* header present. Without the last rule a
// captured request could be replayed with another X-Amz-Target, that is, as
// a different operation on the same body.
func checkSignedHeaders(r *http.Request, req *sigRequest) *Error {
	signed := make(map[string]bool, len(req.auth.SignedHeaders))
	for _, h := range req.auth.SignedHeaders {
		signed[strings.ToLower(h)] = true
	}
	if !signed["host"] {
		return Errorf("IncompleteSignatureException", "%s", msgHostNotSigned)
	}
	if req.dateField != "" && !signed[req.dateField] {
		return Errorf("IncompleteSignatureException", "'%s' must be a 'SignedHeader' in the AWS Authorization.", req.dateField)
	}
	var unsigned []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") && !signed[lk] {
			unsigned = append(unsigned, lk)
		}
	}
	if len(unsigned) > 0 {
		slices.Sort(unsigned)
		return Errorf("IncompleteSignatureException",
			"There were headers present in the request which were not signed: %s", strings.Join(unsigned, ", "))
	}
	return nil
}

// checkTime applies AWS's 15-minute skew window, and for presigned URLs
// with X-Amz-Expires, their validity period instead of the past half.
func checkTime(req *sigRequest, now time.Time) *Error {
	now = now.UTC()
	nowS := now.Format(amzDateLayout)
	if req.signedAt.After(now.Add(MaxClockSkew)) {
		return invalidSignature("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			req.amzDate, now.Add(MaxClockSkew).Format(amzDateLayout), nowS)
	}
	if req.presigned && req.expires >= 0 {
		// AWS's JSON services document no message for an expired presigned
		// URL; this follows the shape of the clock-skew one.
		limit := now.Add(-time.Duration(req.expires) * time.Second)
		if req.signedAt.Before(limit) {
			return invalidSignature("Signature expired: %s is now earlier than %s (%s - %d sec.)",
				req.amzDate, limit.Format(amzDateLayout), nowS, req.expires)
		}
		return nil
	}
	if req.signedAt.Before(now.Add(-MaxClockSkew)) {
		return invalidSignature("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			req.amzDate, now.Add(-MaxClockSkew).Format(amzDateLayout), nowS)
	}
	return nil
}

// msgBodyNotSigned refuses UNSIGNED-PAYLOAD on a request with a body.
const msgBodyNotSigned = "The request has a body, so its signature must cover it: '%s' is accepted only on a request without a body. Sign the payload's SHA-256."

// declaredPayloadHash returns the x-amz-content-sha256 the client declared
// (header, or query for a presigned URL), "" when none, after checking its
// form. UNSIGNED-PAYLOAD is refused here already when the request declares
// a body: a signature that does not cover the body would let whoever holds
// the URL (presigned URLs live up to a week) send any body with it.
func declaredPayloadHash(r *http.Request, req *sigRequest) (string, *Error) {
	declared := r.Header.Values("X-Amz-Content-Sha256")
	if req.presigned && len(declared) == 0 {
		declared = req.query.get("X-Amz-Content-Sha256")
	}
	switch {
	case len(declared) == 0:
		return "", nil
	case len(declared) > 1:
		return "", invalidSignature("Only one 'x-amz-content-sha256' value is allowed.")
	case declared[0] == UnsignedPayload:
		if !req.presigned {
			return "", invalidSignature("'x-amz-content-sha256' may be '%s' only in a presigned URL; sign the payload.", UnsignedPayload)
		}
		if r.ContentLength != 0 {
			return "", invalidSignature(msgBodyNotSigned, UnsignedPayload)
		}
		return UnsignedPayload, nil
	case len(declared[0]) == hex.EncodedLen(sha256.Size) && isHex(declared[0]):
		return declared[0], nil
	default:
		return "", invalidSignature("'x-amz-content-sha256' must be the hex SHA-256 of the payload, got '%s'.", declared[0])
	}
}

// payloadHashes returns the payload hashes to try in the canonical request.
// The body is always hashed here, so a client's claim is never trusted:
// x-amz-content-sha256 must match the body, and only a presigned URL
// without a body may leave the payload unsigned.
func payloadHashes(req *sigRequest, declared string, body []byte) ([]string, *Error) {
	sum := sha256.Sum256(body)
	bodyHash := hex.EncodeToString(sum[:])
	switch {
	case declared == "":
		if req.presigned && len(body) == 0 {
			// S3-style presigned URLs sign UNSIGNED-PAYLOAD without saying
			// so. Only without a body: a URL signed that way covers no
			// body, so it must not carry one.
			return []string{bodyHash, UnsignedPayload}, nil
		}
		return []string{bodyHash}, nil
	case declared == UnsignedPayload:
		if len(body) > 0 {
			return nil, invalidSignature(msgBodyNotSigned, UnsignedPayload)
		}
		return []string{UnsignedPayload}, nil
	case !strings.EqualFold(declared, bodyHash):
		return nil, invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return []string{declared}, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// canonicalPrefix is the canonical request up to, not including, the
// payload hash: method, URI, query, headers and the signed-header list.
func canonicalPrefix(r *http.Request, req *sigRequest) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(req.query))
	b.WriteByte('\n')
	headers := lowerHeaders(r.Header)
	for _, name := range req.auth.SignedHeaders {
		name = strings.ToLower(name)
		b.WriteString(name)
		b.WriteByte(':')
		var values []string
		switch {
		case name == "host":
			host := r.Host
			if host == "" {
				host = r.URL.Host
			}
			values = []string{host}
		case name == "content-length" && len(headers[name]) == 0 && r.ContentLength >= 0:
			// net/http may keep the length only in ContentLength.
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			values = headers[name]
		}
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.TrimSpace(collapseSpaces(v)))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(req.auth.SignedHeaders, ";"))
	b.WriteByte('\n')
	return b.String()
}

// canonicalURI URI-encodes the path as the client sent it, keeping '/': the
// non-S3 services sign the already-escaped path escaped once more, as
// aws-sdk-go-v2 and botocore both do.
func canonicalURI(r *http.Request) string {
	p := ""
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ = strings.Cut(r.RequestURI, "?")
	} else {
		p = r.URL.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return uriEncode(p, false)
}

// lowerHeaders indexes h by lower-case name. Keys are visited in sorted order
// so that values of keys differing only in case join deterministically.
func lowerHeaders(h http.Header) map[string][]string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string][]string, len(h))
	for _, k := range keys {
		lk := strings.ToLower(k)
		out[lk] = append(out[lk], h[k]...)
	}
	return out
}

// collapseSpaces turns each run of spaces into one space.
func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' && prevSpace {
			continue
		}
		prevSpace = c == ' '
		b.WriteByte(c)
	}
	return b.String()
}

func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return SigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(scopeTerminator))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// queryPair is one decoded name=value of the query string.
type queryPair struct{ key, value string }

// queryValues keeps the query in order, with repeats, as SigV4 signs them.
type queryValues []queryPair

func (q queryValues) has(k string) bool { return len(q.get(k)) > 0 }

func (q queryValues) get(k string) []string {
	var vs []string
	for _, p := range q {
		if p.key == k {
			vs = append(vs, p.value)
		}
	}
	return vs
}

// parseQuery decodes a raw query string. Unlike url.ParseQuery it keeps
// pairs with ';' and undecodable escapes (verbatim), so that the canonical
// query covers every byte the client sent.
func parseQuery(raw string) queryValues {
	var q queryValues
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		q = append(q, queryPair{key: unescapeQuery(k), value: unescapeQuery(v)})
	}
	return q
}

func unescapeQuery(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// canonicalQuery encodes each name and value per RFC 3986 and sorts by the
// encoded name, then the encoded value ("the sorting occurs after encoding").
func canonicalQuery(q queryValues) string {
	enc := make([]queryPair, len(q))
	for i, p := range q {
		enc[i] = queryPair{uriEncode(p.key, true), uriEncode(p.value, true)}
	}
	slices.SortFunc(enc, func(a, b queryPair) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// uriEncode percent-encodes every byte outside RFC 3986's unreserved set
// with upper-case hex; '/' is kept unless encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
