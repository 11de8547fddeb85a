package channel

import (
	"bytes"
	"encoding/json"

	"github.com/cairn-audit/cairn/internal/event"
)

// PutAuditEvents' per-event work is on the ingestion hot path: up to 100
// events per request. Decoding eventData into a map with encoding/json cost
// half of it (reflection and an allocation per member), so eventData is
// made compact by one validating pass (json.Compact) and then walked
// directly: on compact, valid JSON a member's value is simply the bytes
// up to the next ',' or '}' at its nesting level.

// compactJSON appends the compact form of src to dst; ok is false when src
// is not one valid JSON value.
func compactJSON(dst, src []byte) ([]byte, bool) {
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, src); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// member is one member of a compact JSON object.
type member struct {
	key []byte // unescaped
	val []byte // compact JSON
}

// members are an object's members in document order.
type members []member

// get returns the value of the last member named name (the last one wins
// for duplicate keys, as in encoding/json and JavaScript), or nil.
func (ms members) get(name string) []byte {
	var v []byte
	for i := range ms {
		if string(ms[i].key) == name {
			v = ms[i].val
		}
	}
	return v
}

// splitObject appends the members of obj, which must be compact valid JSON,
// to ms; ok is false when it is not an object. Callers pass a stack array's
// slice, so that the common eventData needs no allocation.
func splitObject(ms members, obj []byte) (members, bool) {
	if len(obj) < 2 || obj[0] != '{' {
		return nil, false
	}
	i := 1
	for i < len(obj) && obj[i] != '}' {
		ke := event.SkipString(obj, i)
		key := obj[i+1 : ke-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(obj[i:ke], &s); err != nil {
				return nil, false
			}
			key = []byte(s)
		}
		vs := ke + 1 // past ':'
		ve := event.SkipValue(obj, vs)
		ms = append(ms, member{key: key, val: obj[vs:ve]})
		i = ve
		if i < len(obj) && obj[i] == ',' {
			i++
		}
	}
	return ms, true
}

// membersAt appends the members of the compact object obj that spans
// locate (event.AppendCompactObject's) to ms, decoding escaped keys as
// splitObject does; ok is false only for a key that does not decode.
func membersAt(ms members, obj []byte, spans []event.Member) (members, bool) {
	for _, sp := range spans {
		key := obj[sp.KeyStart:sp.KeyEnd]
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(obj[sp.KeyStart-1:sp.KeyEnd+1], &s); err != nil {
				return nil, false
			}
			key = []byte(s)
		}
		ms = append(ms, member{key: key, val: obj[sp.ValueStart:sp.ValueEnd]})
	}
	return ms, true
}

// stringValue decodes a compact JSON string token; ok is false for any
// other value. A string without escapes, the common case, is returned as
// a slice of raw, with no copy.
func stringValue(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}
