package awsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ContentTypeJSON11 is the media type of AWS JSON 1.1 requests and responses.
const ContentTypeJSON11 = "application/x-amz-json-1.1"

// Timestamp is a time that crosses the JSON 1.1 wire as epoch seconds. The
// Go SDK refuses ISO-8601 strings here, so we always write numbers; on input
// we also take the ISO strings botocore tolerates, because some hand-written
// clients send them.
type Timestamp struct{ time.Time }

// NewTimestamp wraps t; a zero t yields nil so that `omitempty` drops it.
func NewTimestamp(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	return &Timestamp{t}
}

// MarshalJSON writes epoch seconds with millisecond precision, as AWS does.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return strconv.AppendInt(nil, ms/1000, 10), nil
	}
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', 3, 64), nil
}

// UnmarshalJSON accepts epoch seconds (integer or fractional) and ISO-8601.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02"} {
			if v, err := time.Parse(layout, s); err == nil {
				t.Time = v.UTC()
				return nil
			}
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return t.setEpoch(f)
		}
		return fmt.Errorf("timestamp %q is neither epoch seconds nor ISO-8601", s)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s is not a number", b)
	}
	return t.setEpoch(f)
}

func (t *Timestamp) setEpoch(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < -62135596800 || f > 253402300799 {
		return fmt.Errorf("timestamp %v is out of range", f)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
	return nil
}

// DecodeJSON11 decodes a JSON 1.1 request body into v (a pointer) and
// returns the canonical document it decoded (see CanonicalJSON11): only
// members v's type names exactly, none given twice. An empty body is the
// empty object (botocore sends "{}" but some clients send nothing). Unknown
// members are ignored as AWS does; syntax or type errors and duplicate
// members become SerializationException, the code the SDKs expect for
// bodies the service cannot read. The canonical document is nil when the
// body could not be decoded: nothing was read from it.
func DecodeJSON11(body []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, Internal(fmt.Errorf("DecodeJSON11: target is %T, not a non-nil pointer", v))
	}
	doc, err := CanonicalJSON11(body, rv.Type().Elem())
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return nil, &Error{Code: "SerializationException", Message: serializationMessage(err)}
	}
	return doc, nil
}

func serializationMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "request body"
		}
		return fmt.Sprintf("Cannot deserialize %s: expected %s, got JSON %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("Malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return "Malformed request body: " + msg
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "a list"
	case "map", "struct", "ptr":
		return "a structure"
	default:
		return "a number"
	}
}

// WriteJSON11 sends a successful JSON 1.1 response.
func WriteJSON11(w http.ResponseWriter, requestID string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteError(w, requestID, ContentTypeJSON11, Internal(fmt.Errorf("encode response: %w", err)))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeJSON11)
	h.Set("x-amzn-RequestId", requestID)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// WriteError sends err in the JSON error shape clients decode: the bare
// exception name in __type (and in the X-Amzn-ErrorType header that
// REST-JSON clients read first), and the text in the member the service's
// model names: Message for the JSON 1.1 CloudTrail API, message for the
// REST-JSON cloudtrail-data API.
func WriteError(w http.ResponseWriter, requestID, contentType string, err error) {
	e := AsError(err)
	msgKey := "message"
	if contentType == ContentTypeJSON11 {
		msgKey = "Message"
	}
	body, _ := json.Marshal(map[string]string{"__type": e.Code, msgKey: e.Message})
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("x-amzn-RequestId", requestID)
	h.Set("X-Amzn-ErrorType", e.Code)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.HTTPStatus())
	_, _ = w.Write(body)
}
