package awsproto

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// CanonicalJSON11 reads a JSON 1.1 request body the way an AWS service
// does and returns the document the operation will act on: the members of
// the input shape named exactly as the model spells them (the Go json tags
// of the target type), in the order the caller sent them, with number text
// kept. Members the shape does not have, including wrong-case spellings of
// ones it has, are dropped, as AWS ignores them; a member given twice at
// any depth, even inside a dropped member or a free-form value, is a
// SerializationException naming it.
//
// The same document is what gets decoded into the input and what the audit
// record's requestParameters are built from, so the record can never name
// something other than what was done: encoding/json alone matches names
// without regard to case and lets the last duplicate win, which would let
// {"Name":"innocent","NAME":"victim"} act on victim while the raw body
// reads as innocent.
func CanonicalJSON11(body []byte, t reflect.Type) ([]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if body[0] != '{' {
		return nil, Errorf("SerializationException", "Start of structure or map found where not expected.")
	}
	// The syntax is checked whole first, so that malformed bodies get the
	// same messages (and byte offsets) as encoding/json gives.
	whole := json.NewDecoder(bytes.NewReader(body))
	var doc json.RawMessage
	if err := whole.Decode(&doc); err != nil {
		return nil, &Error{Code: "SerializationException", Message: serializationMessage(err)}
	}
	if _, err := whole.Token(); !errors.Is(err, io.EOF) {
		return nil, Errorf("SerializationException", "Unexpected data after the request body's JSON object.")
	}
	c := canonicalizer{dec: json.NewDecoder(bytes.NewReader(doc))}
	c.dec.UseNumber()
	if err := c.value(t, ""); err != nil {
		return nil, err
	}
	return c.out.Bytes(), nil
}

// canonicalizer copies the tokens of one document, keeping the members the
// target type names exactly.
type canonicalizer struct {
	dec *json.Decoder
	out bytes.Buffer
	// skip counts the enclosing values being read only to be dropped:
	// they are still checked for duplicates but nothing is written.
	skip int
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value copies the next value, filtered by t; a nil t, or a type that
// decodes itself, keeps the value whole (still checked for duplicates).
func (c *canonicalizer) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer && !t.Implements(jsonUnmarshaler) {
		t = t.Elem()
	}
	if t != nil && (t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		t = nil
	}
	tok, err := c.token()
	if err != nil {
		return err
	}
	d, isDelim := tok.(json.Delim)
	if !isDelim {
		return c.scalar(tok)
	}
	switch d {
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		keepAll := true
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields, keepAll = structFields(t), false
			case reflect.Map:
				elem = t.Elem()
			}
		}
		return c.object(path, func(name string) (reflect.Type, bool) {
			if keepAll {
				return elem, true
			}
			ft, ok := fields[name]
			return ft, ok
		})
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		return c.array(elem, path)
	}
	return Errorf("SerializationException", "Malformed request body: unexpected %q", string(d))
}

func (c *canonicalizer) object(path string, member func(string) (reflect.Type, bool)) error {
	c.write("{")
	seen := make(map[string]struct{})
	first := true
	for c.dec.More() {
		tok, err := c.token()
		if err != nil {
			return err
		}
		name, ok := tok.(string)
		if !ok {
			return Errorf("SerializationException", "Malformed request body: an object member name is not a string")
		}
		where := memberPath(path, name)
		if _, dup := seen[name]; dup {
			return Errorf("SerializationException", "Member %s appears more than once; each member may be given only once.", where)
		}
		seen[name] = struct{}{}
		ft, keep := member(name)
		if !keep {
			c.skip++
			err := c.value(nil, where)
			c.skip--
			if err != nil {
				return err
			}
			continue
		}
		if !first {
			c.write(",")
		}
		first = false
		c.writeString(name)
		c.write(":")
		if err := c.value(ft, where); err != nil {
			return err
		}
	}
	if _, err := c.token(); err != nil { // the closing '}'
		return err
	}
	c.write("}")
	return nil
}

func (c *canonicalizer) array(elem reflect.Type, path string) error {
	c.write("[")
	for i := 0; c.dec.More(); i++ {
		if i > 0 {
			c.write(",")
		}
		if err := c.value(elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	if _, err := c.token(); err != nil { // the closing ']'
		return err
	}
	c.write("]")
	return nil
}

func (c *canonicalizer) scalar(tok json.Token) error {
	switch v := tok.(type) {
	case nil:
		c.write("null")
	case bool:
		c.write(strconv.FormatBool(v))
	case json.Number:
		c.write(string(v))
	case string:
		c.writeString(v)
	default:
		return Internal(fmt.Errorf("canonical JSON: unexpected token %T", tok))
	}
	return nil
}

func (c *canonicalizer) token() (json.Token, error) {
	tok, err := c.dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, Errorf("SerializationException", "Malformed request body: unexpected EOF")
	}
	if err != nil {
		return nil, &Error{Code: "SerializationException", Message: serializationMessage(err)}
	}
	return tok, nil
}

func (c *canonicalizer) write(s string) {
	if c.skip == 0 {
		c.out.WriteString(s)
	}
}

func (c *canonicalizer) writeString(s string) {
	if c.skip == 0 {
		b, _ := json.Marshal(s) // a string always marshals
		c.out.Write(b)
	}
}

func memberPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// structFields lists the members encoding/json decodes into t, by their
// exact wire names: the json tag's name or else the field's name; fields
// tagged "-" and unexported fields are not members; the fields of an
// untagged embedded struct are promoted, the shallower field winning.
func structFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	addStructFields(fields, t, 0)
	return fields
}

func addStructFields(fields map[string]reflect.Type, t reflect.Type, depth int) {
	if depth > 8 { // embedding cycles through pointers
		return
	}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if !hasTag || name == "" {
			name = f.Name
		}
		if _, taken := fields[name]; !taken {
			fields[name] = f.Type
		}
	}
	for _, et := range embedded {
		addStructFields(fields, et, depth+1)
	}
}
