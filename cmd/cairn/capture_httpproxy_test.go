package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/cairn-audit/cairn/internal/httpproxy"
)

const httpProxyExample = `
[[http_proxy]]
listen = "127.0.0.1:8081"
upstream = "http://127.0.0.1:8080/api"
event_source = "users.example.com"
region = "eu-west-1"
failure_policy = "open"
trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
unmatched = "deny"
record_request_body = true
body_limit = 4096
redact_parameters = ["password"]
error_code_field = "error.code"
upstream_timeout = "10s"
[http_proxy.identity]
kind = "jwt"
jwks_url = "http://127.0.0.1:9999/jwks"
issuer = "https://idp.example.com"
audience = "users-api"
username_claim = "email"
leeway = "5s"
[[http_proxy.route]]
method = "GET"
path = "/v1/users/{id}"
event_name = "GetUser"
read_only = true
resource_type = "Example::Users::User"
resource_arn = "arn:example:users:{region}:{account}:user/{id}"
[[http_proxy.route]]
method = "POST"
path = "/v1/users"
event_name = "CreateUser"
data_event = true
response_headers = ["Location"]

[[http_proxy]]
listen = "127.0.0.1:8082"
upstream = "https://billing.internal"
event_source = "billing.example.com"
[http_proxy.identity]
kind = "basic"
require = false
[[http_proxy.identity.user]]
name = "alice"
bcrypt = "$2a$04$3wW2cI7BH7G8p0b8cXzZ0.0aZ0kq6m8XG8Tn2m8w4y3d5R3j9gJ6e"
`

func decodeTOML(t *testing.T, s string) map[string]any {
	t.Helper()
	var file map[string]any
	if _, err := toml.Decode(s, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestHTTPProxyConfig(t *testing.T) {
	file := decodeTOML(t, httpProxyExample)
	ts, err := tables("http_proxy", file["http_proxy"])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := httpProxyConfig(ts[0])
	if err != nil {
		t.Fatal(err)
	}
	want := httpproxy.Config{
		Listen: "127.0.0.1:8081", Upstream: "http://127.0.0.1:8080/api", EventSource: "users.example.com", Region: "eu-west-1",
		FailurePolicy: "open", TrustedProxies: []string{"10.0.0.0/8", "127.0.0.1"}, Unmatched: "deny", RecordRequestBody: true,
		BodyLimit: 4096, RedactParameters: []string{"password"}, ErrorCodeField: "error.code", UpstreamTimeout: 10 * time.Second,
		Identity: httpproxy.Identity{Kind: "jwt", JWKSURL: "http://127.0.0.1:9999/jwks", Issuer: "https://idp.example.com",
			Audience: []string{"users-api"}, UsernameClaim: "email", Leeway: 5 * time.Second},
		Routes: []httpproxy.Route{
			{Method: "GET", Path: "/v1/users/{id}", EventName: "GetUser", ReadOnly: true, ResourceType: "Example::Users::User",
				ResourceARN: "arn:example:users:{region}:{account}:user/{id}"},
			{Method: "POST", Path: "/v1/users", EventName: "CreateUser", DataEvent: true, ResponseHeaders: []string{"Location"}},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", cfg, want)
	}
	second, err := httpProxyConfig(ts[1])
	if err != nil {
		t.Fatal(err)
	}
	if !second.Identity.AllowAnonymous || len(second.Identity.Users) != 1 || second.Identity.Users[0].Name != "alice" {
		t.Errorf("second proxy's identity: %+v", second.Identity)
	}
	caps, err := captures(file, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 2 || caps[0].Name() != "http proxy 127.0.0.1:8081" || caps[1].Name() != "http proxy 127.0.0.1:8082" {
		t.Fatalf("captures: %v", caps)
	}
}

func TestHTTPProxyConfigErrors(t *testing.T) {
	base := "[[http_proxy]]\nlisten = \"127.0.0.1:8081\"\nupstream = \"http://127.0.0.1:8080\"\nevent_source = \"x.example.com\"\n"
	for _, c := range []struct{ name, toml, want string }{
		{"unknown key", base + "failure_polcy = \"open\"\n", `unknown key(s) failure_polcy`},
		{"unknown identity key", base + "[http_proxy.identity]\nkind = \"header\"\ntrusted = true\n", `identity: unknown key(s) trusted`},
		{"unknown route key", base + "[[http_proxy.route]]\npath = \"/a\"\nevent_name = \"A\"\nreadonly = true\n", `route[0]: unknown key(s) readonly`},
		{"unknown user key", base + "[http_proxy.identity]\nkind = \"basic\"\n[[http_proxy.identity.user]]\nname = \"a\"\npassword = \"pw\"\n", `user[0]: unknown key(s) password`},
		{"wrong type", base + "record_request_body = \"yes\"\n", `record_request_body: want true or false`},
		{"bad duration", base + "upstream_timeout = \"soon\"\n", `upstream_timeout: "soon" is not a positive duration`},
		{"bad policy", base + "failure_policy = \"maybe\"\n", `failure_policy "maybe"`},
		{"no upstream", "[[http_proxy]]\nlisten = \"127.0.0.1:8081\"\n", `upstream: required`},
		{"bad trusted proxy", base + "trusted_proxies = [\"10.0.0.300\"]\n", `trusted_proxies: "10.0.0.300"`},
		{"identity without kind", base + "[http_proxy.identity]\nissuer = \"x\"\n", `identity: kind: required`},
		{"jwt without audience", base + "[http_proxy.identity]\nkind = \"jwt\"\njwks_file = \"/x\"\nissuer = \"https://i\"\n", `audience required`},
		{"jwt with two key sources", base + "[http_proxy.identity]\nkind = \"jwt\"\njwks_file = \"/x\"\njwks_url = \"http://i/k\"\nissuer = \"i\"\naudience = \"a\"\n", `exactly one of jwks_file and jwks_url`},
		{"bad bcrypt", base + "[http_proxy.identity]\nkind = \"basic\"\n[[http_proxy.identity.user]]\nname = \"a\"\nbcrypt = \"plaintext\"\n", `user "a": bcrypt hash`},
		{"header without trusted proxies", base + "[http_proxy.identity]\nkind = \"header\"\n", `trusted_proxies required`},
		{"client_cert without TLS", base + "[http_proxy.identity]\nkind = \"client_cert\"\nclient_ca = \"/ca.pem\"\n", `needs tls_cert and tls_key`},
		{"unknown placeholder", base + "[[http_proxy.route]]\npath = \"/u/{id}\"\nevent_name = \"A\"\nresource_type = \"T\"\nresource_arn = \"arn:{user}\"\n", `unknown placeholder {user}`},
		{"bad pattern", base + "[[http_proxy.route]]\npath = \"/u/user-{id}\"\nevent_name = \"A\"\n", `a wildcard must be a whole segment`},
		{"route without name", base + "[[http_proxy.route]]\npath = \"/u\"\n", `event_name: required`},
		{"same listen twice", base + base, `listen 127.0.0.1:8081 is already taken by [0]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := captures(decodeTOML(t, c.toml), func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestServeWithHTTPProxy runs `cairn serve --config` with an http_proxy
// table in a child process and finds a call made through the proxy in the
// event history.
func TestServeWithHTTPProxy(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"`+strings.TrimPrefix(r.URL.Path, "/v1/users/")+`"}`)
	}))
	defer upstream.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := l.Addr().String()
	_ = l.Close()

	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	conf := filepath.Join(work, "cairn.toml")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`
[[http_proxy]]
listen = %q
upstream = %q
event_source = "users.example.com"
[http_proxy.identity]
kind = "header"
trusted_proxies = []
[[http_proxy.route]]
method = "GET"
path = "/v1/users/{id}"
event_name = "GetUser"
read_only = true
resource_type = "Example::Users::User"
resource_arn = "arn:example:users:{region}:{account}:user/{id}"
`, proxyAddr, upstream.URL)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// trusted_proxies belongs to the proxy, not its identity: the config
	// is refused with the key named.
	if out := runCairnFails(t, work, "serve", "--data-dir", dataDir, "--config", conf); !strings.Contains(out, "unknown key(s) trusted_proxies") {
		t.Fatalf("misplaced key: %s", out)
	}
	fixed, _ := os.ReadFile(conf)
	fixed = []byte(strings.Replace(string(fixed), "kind = \"header\"\ntrusted_proxies = []\n", "kind = \"header\"\n", 1))
	fixed = []byte(strings.Replace(string(fixed), "event_source = \"users.example.com\"\n", "event_source = \"users.example.com\"\ntrusted_proxies = [\"127.0.0.1\"]\n", 1))
	if err := os.WriteFile(conf, fixed, 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startCairn(t, work, "--data-dir", dataDir, "--config", conf)
	req, _ := http.NewRequest("GET", "http://"+proxyAddr+"/v1/users/42", nil)
	req.Header.Set("X-Forwarded-User", "carol")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("call through the proxy: %v\n%s", err, srv.stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"id":"42"}` {
		t.Fatalf("through the proxy: %d %s", resp.StatusCode, body)
	}
	ct := sdkClient(t, dataDir, srv.URL)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := ct.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
			{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("GetUser")}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) == 1 {
			e := out.Events[0]
			if aws.ToString(e.Username) != "carol" || aws.ToString(e.EventSource) != "users.example.com" ||
				len(e.Resources) != 1 || aws.ToString(e.Resources[0].ResourceName) != "arn:example:users:us-east-1:000000000000:user/42" {
				t.Fatalf("event: %s", aws.ToString(e.CloudTrailEvent))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxied call is not in the event history after 15s (%d events)", len(out.Events))
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.stop(t)
}
