package server

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// cloudTrailParams turns a JSON 1.1 document (a request body or an output)
// into the form CloudTrail records for its own API calls: the same document
// with every object key starting in lower case ("S3BucketName" becomes
// "s3BucketName", "TagsList" becomes "tagsList"). Values are untouched and
// number literals keep their exact text. It returns nil (recorded as JSON
// null) for an empty or empty-object document, as CloudTrail does for
// actions without parameters or results.
func cloudTrailParams(doc []byte) json.RawMessage {
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	out, err := json.Marshal(lowerKeys(m))
	if err != nil {
		return nil
	}
	return out
}

func lowerKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[lowerFirst(k)] = lowerKeys(val)
		}
		return m
	case []any:
		for i := range t {
			t[i] = lowerKeys(t[i])
		}
		return t
	default:
		return v
	}
}

// lowerFirst lower-cases the leading run of capitals the way CloudTrail's
// records do: "S3BucketName" → "s3BucketName", "KmsKeyId" → "kmsKeyId",
// "TrailARN" → "trailARN".
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || !unicode.IsUpper(r) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
