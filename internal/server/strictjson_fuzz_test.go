package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/server"
	"github.com/cairn-audit/cairn/internal/server/servertest"
)

// FuzzRecordMatchesInput sends each mutated JSON 1.1 body, signed, to
// every registered operation of a real server and checks the record's
// promise: its requestParameters hold exactly the input the operation
// decoded and acted on, no member more, fewer or different, and a body
// the operation could not decode is recorded with no parameters. The seeds
// carry the shapes of issue 12's first defect: wrong-case and repeated
// members, at the top and nested.
func FuzzRecordMatchesInput(f *testing.F) {
	for _, seed := range []string{
		``, `{}`,
		`{"Name":"innocent","NAME":"victim"}`,
		`{"Name":"a","Name":"b"}`,
		`{"name":"victim"}`,
		`{"Name":"t1","S3BucketName":"logs","s3BucketName":"other","IsMultiRegionTrail":true}`,
		`{"TrailName":"t1","EventSelectors":[{"ReadWriteType":"All","readWriteType":"ReadOnly","DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]}`,
		`{"TrailName":"t1","AdvancedEventSelectors":[{"Name":"n","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"],"equals":["Data"]}]}]}`,
		`{"ResourceId":"arn:aws:cloudtrail:us-east-1:000000000000:trail/t1","TagsList":[{"Key":"k","Value":"v","value":"w"}]}`,
		`{"trailNameList":["t1"],"TrailNameList":["t2"],"includeShadowTrails":false}`,
		`{"LookupAttributes":[{"AttributeKey":"ResourceName","AttributeValue":"t1","attributeValue":"t2"}],"MaxResults":5,"StartTime":"2026-01-01T00:00:00Z"}`,
		`{"Name":"c1","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"x","Type":"y"}]}`,
		`{"Name":"x","Nope":{"a":1,"a":2}}`,
		`{"MaxResults":5.0,"NextToken":"\u0041"}`,
	} {
		f.Add([]byte(seed))
	}
	h := servertest.Start(f)
	h.CreateBucket(f, "logs")
	reg := h.Server.Registry()
	names := reg.Names()
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 64<<10 {
			return
		}
		for _, name := range names {
			op, _ := reg.Lookup(name)
			before := h.Server.Journal().LastSeq()
			rawCall(t, h, h.AdminKeyID, h.AdminSecret, name, string(body), time.Now(), nil)
			rec := recordAfter(t, h, before)
			if rec.EventName != name {
				t.Fatalf("%s: the call's record is for %s", name, rec.EventName)
			}
			var fields struct {
				RequestParameters json.RawMessage `json:"requestParameters"`
			}
			if err := json.Unmarshal(rec.Raw, &fields); err != nil {
				t.Fatal(err)
			}
			in, err := op.Decode(body)
			if err != nil {
				if rec.ErrorCode != "SerializationException" || string(fields.RequestParameters) != "null" {
					t.Fatalf("%s %q was not decoded (%v) but recorded with errorCode %q and requestParameters %s",
						name, body, err, rec.ErrorCode, fields.RequestParameters)
				}
				continue
			}
			if err := sameAsInput(fields.RequestParameters, in.Value); err != nil {
				t.Fatalf("%s %q: the record's requestParameters %s are not what the operation acted on: %v",
					name, body, fields.RequestParameters, err)
			}
		}
	})
}

// recordAfter returns the one record appended after seq.
func recordAfter(t *testing.T, h *servertest.Harness, seq uint64) *event.Record {
	t.Helper()
	var recs []*event.Record
	_, err := h.Server.Journal().Read(servertest.Context(t), seq, 2, func(_ uint64, entry []byte) error {
		rec, err := event.Parse(entry)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records after the call, want 1", len(recs))
	}
	return recs[0]
}

// sameAsInput checks that params, a record's requestParameters, decodes
// back into exactly in (a pointer to an operation's input): every recorded
// member is a member of the input spelled as the record spells it, and
// the input rebuilt from the record encodes as the decoded input does.
func sameAsInput(params json.RawMessage, in any) error {
	t := reflect.TypeOf(in).Elem()
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("requestParameters do not parse: %w", err)
	}
	restored, err := restoreNames(v, t, "")
	if err != nil {
		return err
	}
	doc, err := json.Marshal(restored)
	if err != nil {
		return err
	}
	fresh := reflect.New(t)
	if v != nil {
		rd := json.NewDecoder(bytes.NewReader(doc))
		rd.UseNumber()
		if err := rd.Decode(fresh.Interface()); err != nil {
			return fmt.Errorf("requestParameters %s do not decode into %s: %w", doc, t, err)
		}
	}
	want, err := json.Marshal(in)
	if err != nil {
		return err
	}
	got, err := json.Marshal(fresh.Interface())
	if err != nil {
		return err
	}
	if !bytes.Equal(want, got) {
		return fmt.Errorf("the operation decoded %s, the record says %s", want, got)
	}
	return nil
}

// restoreNames renames the record's members back to the input's wire
// names, guided by t, refusing any member the input does not have under
// exactly that record spelling.
func restoreNames(v any, t reflect.Type, path string) (any, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct || t.Implements(reflect.TypeFor[json.Unmarshaler]()) ||
			reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
			return v, nil
		}
		type member struct {
			wire string
			typ  reflect.Type
		}
		byRecordName := map[string]member{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			byRecordName[server.LowerFirst(name)] = member{name, f.Type}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			f, ok := byRecordName[k]
			if !ok {
				return nil, fmt.Errorf("recorded member %s%s is not a member of %s", path, k, t)
			}
			wire := f.wire
			r, err := restoreNames(val, f.typ, path+k+".")
			if err != nil {
				return nil, err
			}
			out[wire] = r
		}
		return out, nil
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return v, nil
		}
		out := make([]any, len(x))
		for i := range x {
			r, err := restoreNames(x[i], t.Elem(), path+strconv.Itoa(i)+".")
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
