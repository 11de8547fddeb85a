package history

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"
)

// A NextToken is the position of the last event of a page, bound to the
// query it came from and authenticated:
//
//	base64url( version(1) | pos(16) | HMAC-SHA256(key, domain | version | pos | binding)[:16] )
//
// binding is the canonical form of every query parameter except MaxResults
// and NextToken (region, category, attributes as a set, StartTime, EndTime),
// so a token only continues the query that produced it: reused with other
// parameters, the MAC does not match and the request fails with
// InvalidNextTokenException, as CloudTrail documents. The key is random,
// generated once per history database and kept in it, so tokens survive
// restarts but cannot be forged by clients, who could otherwise page a
// query from an arbitrary position or probe the index layout. MaxResults is
// deliberately not bound: paginators may shrink the last page.
//
// The position does not name the index it came from: every index of a
// partition shares the same order, so a token stays valid whichever index
// drives the next page.
const (
	tokenVersion = 1
	tokenMACLen  = 16
	tokenRawLen  = 1 + posLen + tokenMACLen
	tokenKeyLen  = 32
	// maxTokenLen bounds what the decoder looks at; real tokens are 44
	// characters.
	maxTokenLen = 256
	tokenDomain = "cairn/history/next-token\x00"
)

var errBadToken = errors.New("malformed or foreign NextToken")

// tokenMAC computes the truncated MAC of a token body.
func tokenMAC(key []byte, body []byte, binding []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenDomain))
	m.Write(body)
	m.Write(binding)
	return m.Sum(nil)[:tokenMACLen]
}

// encodeToken returns the NextToken resuming after p.
func encodeToken(key []byte, p pos, binding []byte) string {
	raw := make([]byte, 0, tokenRawLen)
	raw = append(raw, tokenVersion)
	raw = append(raw, p[:]...)
	raw = append(raw, tokenMAC(key, raw, binding)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeToken checks a NextToken against the query binding and returns the
// position it resumes after. Any defect (encoding, length, version, MAC)
// is the same error: clients learn nothing about which check failed.
func decodeToken(key []byte, tok string, binding []byte) (pos, error) {
	var p pos
	if len(tok) == 0 || len(tok) > maxTokenLen {
		return p, errBadToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(raw) != tokenRawLen || raw[0] != tokenVersion {
		return p, errBadToken
	}
	body, mac := raw[:1+posLen], raw[1+posLen:]
	if !hmac.Equal(mac, tokenMAC(key, body, binding)) {
		return p, errBadToken
	}
	copy(p[:], body[1:])
	return p, nil
}

// queryBinding is the canonical encoding of the parameters a NextToken is
// bound to. Attributes are a set: order and repetition do not change the
// query, so they do not change the binding.
func queryBinding(q *Query) []byte {
	attrs := slices.Clone(q.Attributes)
	slices.SortFunc(attrs, func(a, b Attribute) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	attrs = slices.Compact(attrs)
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	tm := func(t time.Time) {
		if t.IsZero() {
			b = append(b, 0)
			return
		}
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, orderedTime(t))
	}
	str(q.Region)
	str(q.Category)
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	for _, a := range attrs {
		str(a.Key)
		str(a.Value)
	}
	tm(q.StartTime)
	tm(q.EndTime)
	return b
}
