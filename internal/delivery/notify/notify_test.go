package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// decode reads a TOML config the way cmd/cairn does and returns its
// "topics" value.
func decode(t *testing.T, doc string) any {
	t.Helper()
	var file map[string]any
	if _, err := toml.Decode(doc, &file); err != nil {
		t.Fatal(err)
	}
	return file["topics"]
}

func TestParseTopics(t *testing.T) {
	secrets := env(map[string]string{"CAIRN_TOPIC_A": "0123456789abcdef-a", "CAIRN_TOPIC_B": "0123456789abcdef-b", "SHORT": "abc"})
	topics, err := ParseTopics(decode(t, `
listen = "127.0.0.1:4747"
[[topics]]
name = "alerts"
url = "https://hooks.example.com/cairn"
secret_env = "CAIRN_TOPIC_A"

[[topics]]
name = "soc_feed-2"
url = "http://127.0.0.1:9000/hook"
secret_env = "CAIRN_TOPIC_B"
timeout = "3s"
`), secrets)
	if err != nil {
		t.Fatal(err)
	}
	if got := topics.Names(); strings.Join(got, ",") != "alerts,soc_feed-2" {
		t.Errorf("Names = %v", got)
	}
	for _, n := range []string{"alerts", "arn:aws:sns:us-east-1:123456789012:alerts", "soc_feed-2"} {
		if !topics.Exists(n) {
			t.Errorf("Exists(%q) = false", n)
		}
	}
	for _, n := range []string{"", "nope", "arn:aws:sns:us-east-1:123456789012:nope"} {
		if topics.Exists(n) {
			t.Errorf("Exists(%q) = true", n)
		}
	}
	tp, _ := topics.Lookup("soc_feed-2")
	if tp.Timeout != 3*time.Second || string(tp.Secret) != "0123456789abcdef-b" || tp.URL != "http://127.0.0.1:9000/hook" {
		t.Errorf("topic = %+v", tp)
	}
	if none, err := ParseTopics(nil, secrets); err != nil || len(none.Names()) != 0 {
		t.Errorf("no topics: %v, %v", none.Names(), err)
	}

	bad := map[string]string{
		"missing secret env":     `[[topics]]` + "\n" + `name = "a"` + "\n" + `url = "https://x/"` + "\n" + `secret_env = "UNSET"`,
		"short secret":           `[[topics]]` + "\n" + `name = "a"` + "\n" + `url = "https://x/"` + "\n" + `secret_env = "SHORT"`,
		"no url":                 `[[topics]]` + "\n" + `name = "a"` + "\n" + `secret_env = "CAIRN_TOPIC_A"`,
		"ftp url":                `[[topics]]` + "\n" + `name = "a"` + "\n" + `url = "ftp://x/"` + "\n" + `secret_env = "CAIRN_TOPIC_A"`,
		"credentials in url":     `[[topics]]` + "\n" + `name = "a"` + "\n" + `url = "https://u:p@x/"` + "\n" + `secret_env = "CAIRN_TOPIC_A"`,
		"bad name":               `[[topics]]` + "\n" + `name = "a b"` + "\n" + `url = "https://x/"` + "\n" + `secret_env = "CAIRN_TOPIC_A"`,
		"unknown key":            `[[topics]]` + "\n" + `name = "a"` + "\n" + `url = "https://x/"` + "\n" + `secret_env = "CAIRN_TOPIC_A"` + "\n" + `secret = "inline"`,
		"bad timeout":            `[[topics]]` + "\n" + `name = "a"` + "\n" + `url = "https://x/"` + "\n" + `secret_env = "CAIRN_TOPIC_A"` + "\n" + `timeout = "soon"`,
		"duplicate":              `[[topics]]` + "\n" + `name = "a"` + "\n" + `url = "https://x/"` + "\n" + `secret_env = "CAIRN_TOPIC_A"` + "\n[[topics]]\n" + `name = "a"` + "\n" + `url = "https://y/"` + "\n" + `secret_env = "CAIRN_TOPIC_B"`,
		"a table, not a list":    `[topics]` + "\n" + `name = "a"`,
		"name of the wrong type": `[[topics]]` + "\n" + `name = 5` + "\n" + `url = "https://x/"` + "\n" + `secret_env = "CAIRN_TOPIC_A"`,
	}
	for name, doc := range bad {
		if _, err := ParseTopics(decode(t, doc), secrets); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestSignVerify(t *testing.T) {
	secret := []byte("0123456789abcdef")
	body := []byte(`{"s3Bucket":"b","s3ObjectKey":["k"]}`)
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign(secret, ts, body))
	if err := Verify(secret, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatalf("genuine request refused: %v", err)
	}
	// A known vector, so that receivers in other languages can check
	// their implementation: HMAC-SHA256("0123456789abcdef", "1700000000." + body).
	// (computed independently with Python's hmac module; docs/delivery.md
	// shows the same vector).
	const want = "sha256=4437b2a6f300240308a0e55552adb819f9ad83b5d69c3528a2ed0e66cb90f8d0"
	if got := Sign(secret, ts, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	for name, mutate := range map[string]func(h http.Header, b []byte) (http.Header, []byte, time.Time){
		"tampered body": func(h http.Header, b []byte) (http.Header, []byte, time.Time) {
			return h, []byte(strings.Replace(string(b), `"k"`, `"evil"`, 1)), now
		},
		"wrong secret": func(h http.Header, b []byte) (http.Header, []byte, time.Time) {
			h = h.Clone()
			h.Set(HeaderSignature, Sign([]byte("another-secret-0000"), ts, b))
			return h, b, now
		},
		"replayed later": func(h http.Header, b []byte) (http.Header, []byte, time.Time) {
			return h, b, now.Add(10 * time.Minute)
		},
		"timestamp changed": func(h http.Header, b []byte) (http.Header, []byte, time.Time) {
			h = h.Clone()
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return h, b, now
		},
		"no signature": func(h http.Header, b []byte) (http.Header, []byte, time.Time) {
			h = h.Clone()
			h.Del(HeaderSignature)
			return h, b, now
		},
		"no timestamp": func(h http.Header, b []byte) (http.Header, []byte, time.Time) {
			h = h.Clone()
			h.Del(HeaderTimestamp)
			return h, b, now
		},
	} {
		h2, b2, at := mutate(h, body)
		if err := Verify(secret, h2, b2, at, 0); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestSend(t *testing.T) {
	secret := []byte("0123456789abcdef")
	status := http.StatusNoContent
	var gotBody []byte
	var gotHeader http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBody, _ = io.ReadAll(r.Body)
		gotHeader = r.Header.Clone()
		if status == http.StatusFound {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	topic := Topic{Name: "alerts", URL: srv.URL, Secret: secret}
	s := NewSender(nil, nil)
	ctx := context.Background()
	msg := Message{S3Bucket: "b", S3ObjectKey: []string{"AWSLogs/1/CloudTrail/us-east-1/x.json.gz"}}
	if err := s.Send(ctx, topic, "ID0123456789abcd", msg); err != nil {
		t.Fatal(err)
	}
	if string(gotBody) != `{"s3Bucket":"b","s3ObjectKey":["AWSLogs/1/CloudTrail/us-east-1/x.json.gz"]}` {
		t.Errorf("body %s", gotBody)
	}
	if err := Verify(secret, gotHeader, gotBody, time.Now(), 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if gotHeader.Get(HeaderMessageID) != "ID0123456789abcd" || gotHeader.Get(HeaderTopic) != "alerts" {
		t.Errorf("headers %v", gotHeader)
	}
	for st, want := range map[int]string{http.StatusInternalServerError: "Webhook.HTTP500", http.StatusFound: "Webhook.HTTP302", http.StatusUnauthorized: "Webhook.HTTP401"} {
		status = st
		var se *SendError
		if err := s.Send(ctx, topic, "x", msg); !errors.As(err, &se) || se.Code != want {
			t.Errorf("status %d: %v, want code %s", st, err, want)
		}
	}
	srv.Close()
	var se *SendError
	if err := s.Send(ctx, topic, "x", msg); !errors.As(err, &se) || se.Code != CodeUnreachable {
		t.Errorf("closed server: %v, want %s", err, CodeUnreachable)
	}
}
