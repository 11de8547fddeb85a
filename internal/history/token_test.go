package history

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"
)

var fuzzKey = bytes.Repeat([]byte{7}, tokenKeyLen)

func fuzzBinding() []byte {
	return queryBinding(&Query{Region: "us-east-1", Attributes: []Attribute{{"Username", "alice"}}, StartTime: testNow})
}

func TestTokenRoundTrip(t *testing.T) {
	b := fuzzBinding()
	for _, p := range []pos{{}, makePos(testNow, 1), makePos(time.Unix(0, 0), 1<<40), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		tok := encodeToken(fuzzKey, p, b)
		got, err := decodeToken(fuzzKey, tok, b)
		if err != nil || got != p {
			t.Errorf("round trip of %x: %x, %v", p, got, err)
		}
		if _, err := decodeToken(fuzzKey, tok, append(b, 0)); err == nil {
			t.Errorf("token accepted with another binding")
		}
		other := bytes.Clone(fuzzKey)
		other[0] ^= 1
		if _, err := decodeToken(other, tok, b); err == nil {
			t.Errorf("token accepted with another key")
		}
	}
}

func TestQueryBindingIsCanonical(t *testing.T) {
	a := Query{Region: "r", Attributes: []Attribute{{"Username", "a"}, {"EventName", "b"}}, MaxResults: 5, NextToken: "x"}
	b := Query{Region: "r", Attributes: []Attribute{{"EventName", "b"}, {"Username", "a"}, {"EventName", "b"}}, MaxResults: 50}
	if !bytes.Equal(queryBinding(&a), queryBinding(&b)) {
		t.Error("attribute order, repeats, MaxResults or NextToken changed the binding")
	}
	// Values that would collide if concatenated without lengths.
	c := Query{Region: "r", Attributes: []Attribute{{"Username", "ab"}}}
	d := Query{Region: "r", Attributes: []Attribute{{"Username", "a"}, {"b", ""}}}
	e := Query{Region: "rUsername", Attributes: []Attribute{{"", "ab"}}}
	if bytes.Equal(queryBinding(&c), queryBinding(&d)) || bytes.Equal(queryBinding(&c), queryBinding(&e)) {
		t.Error("distinct queries share a binding")
	}
	f := Query{Region: "r", StartTime: time.Unix(0, 0)}
	g := Query{Region: "r", EndTime: time.Unix(0, 0)}
	if bytes.Equal(queryBinding(&f), queryBinding(&g)) {
		t.Error("StartTime and EndTime are confused")
	}
}

// FuzzDecodeToken: the decoder never panics, accepts only tokens the
// encoder produces for this key and binding, and accepts them exactly.
func FuzzDecodeToken(f *testing.F) {
	b := fuzzBinding()
	f.Add(encodeToken(fuzzKey, makePos(testNow, 42), b))
	f.Add(encodeToken(fuzzKey, pos{}, b))
	f.Add("")
	f.Add("garbage")
	f.Add("AQ")
	f.Add(base64.RawURLEncoding.EncodeToString(make([]byte, tokenRawLen)))
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, tokenRawLen)))
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := decodeToken(fuzzKey, tok, b)
		if err != nil {
			return
		}
		if again := encodeToken(fuzzKey, p, b); again != tok {
			t.Fatalf("decoder accepted %q, which the encoder writes as %q", tok, again)
		}
	})
}
