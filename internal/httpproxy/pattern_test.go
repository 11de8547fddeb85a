package httpproxy

import (
	"strings"
	"testing"
)

func TestPatternsAndTemplates(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          string // "k=v,..." or "-" for no match
	}{
		{"/v1/users/{id}", "/v1/users/42", "id=42"},
		{"/v1/users/{id}", "/v1/users/", "-"},
		{"/v1/users/{id}", "/v1/users/42/x", "-"},
		{"/v1/users/{id}", "/v1/users/a%2Fb", "id=a/b"},
		{"/v1/{kind}/{id}/tags", "/v1/users/7/tags", "kind=users,id=7"},
		{"/files/{path...}", "/files/a/b/c.txt", "path=a/b/c.txt"},
		{"/files/{path...}", "/files/", "path="},
		{"/files/{path...}", "/files", "-"},
		{"/", "/", ""},
		{"/caf%C3%A9", "/café", ""},
	} {
		p, err := parsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		segs, err := splitPath(escape(c.path))
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		ps, ok := p.match(segs)
		got := "-"
		if ok {
			var kv []string
			for _, q := range ps {
				kv = append(kv, q.name+"="+q.value)
			}
			got = strings.Join(kv, ",")
		}
		if got != c.want {
			t.Errorf("%s on %s: %q, want %q", c.pattern, c.path, got, c.want)
		}
	}
	for _, bad := range []string{"v1/users", "/v1/{id", "/v1/{}", "/v1/user-{id}", "/{a}/{a}", "/{rest...}/x", "/{region}", "/{1x}", "/a/../b", "/%zz"} {
		if _, err := parsePattern(bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	tm, err := parseTemplate("arn:example:users:{region}:{account}:user/{id}", []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tm.expand([]param{{"id", "42"}}, "eu-west-1", "123456789012"); got != "arn:example:users:eu-west-1:123456789012:user/42" {
		t.Errorf("expand: %s", got)
	}
	for _, bad := range []string{"arn:{idd}", "arn:{id", "arn:}", "arn:{{id}}"} {
		if _, err := parseTemplate(bad, []string{"id"}); err == nil {
			t.Errorf("template %q accepted", bad)
		} else if bad == "arn:{idd}" && !strings.Contains(err.Error(), "{id}") {
			t.Errorf("the error does not list the known wildcards: %v", err)
		}
	}
	for _, bad := range []string{"/a/%2e%2e/b", "/a/./b", "a", "/%zz", "/a/..%2Fadmin", "/a/x%2F..%2F..%2Fb", "/a/..%5Cb", "/a/.%2f"} {
		if _, err := splitPath(bad); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

// escape percent-encodes what a client would (only non-ASCII here).
func escape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] >= 0x80 {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[p[i]>>4])+string("0123456789abcdef"[p[i]&15])))
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// FuzzRoutePattern feeds the route pattern and ARN template parsers, and
// the matcher, arbitrary configuration and paths. Beyond not panicking: a
// path built from an accepted pattern (each wildcard replaced by a value)
// must match it and give the value back, and an accepted template expands
// without leaving placeholders of known names.
func FuzzRoutePattern(f *testing.F) {
	f.Add("/v1/users/{id}", "arn:example:users:{region}:{account}:user/{id}", "/v1/users/42", "v")
	f.Add("/files/{path...}", "arn:x:{path}", "/files/a/b", "a%2Fb")
	f.Add("/{a}/{b}/c", "{a}{b}{region}", "/x/y/c", "z")
	f.Add("/v1/{id", "arn:{", "/%zz", "")
	f.Fuzz(func(t *testing.T, pat, tmpl, path, value string) {
		p, err := parsePattern(pat)
		if err != nil {
			return
		}
		names := p.names()
		tm, terr := parseTemplate(tmpl, names)
		if segs, err := splitPath(path); err == nil {
			if ps, ok := p.match(segs); ok && terr == nil {
				_ = tm.expand(ps, "r", "a")
			}
		}
		// Build a path that must match: literals as they are (escaped),
		// wildcards replaced by value (escaped so it stays one segment).
		if value == "" || value == "." || value == ".." || strings.ContainsRune(value, '/') {
			return
		}
		var b strings.Builder
		for _, s := range p.segs {
			b.WriteByte('/')
			if s.name == "" {
				b.WriteString(pathEscape(s.lit))
			} else {
				b.WriteString(pathEscape(value))
			}
		}
		if p.rest != "" {
			b.WriteString("/" + pathEscape(value))
		}
		built := b.String()
		if built == "" {
			built = "/"
		}
		segs, err := splitPath(built)
		if err != nil {
			if strings.Contains(err.Error(), "dot segment") {
				return // a literal "." cannot occur; a value of "." was excluded
			}
			t.Fatalf("path %q built from %q does not split: %v", built, pat, err)
		}
		ps, ok := p.match(segs)
		if !ok {
			t.Fatalf("path %q built from %q does not match it", built, pat)
		}
		for _, q := range ps {
			if q.value != value {
				t.Fatalf("%s captured %q from %q, want %q", q.name, q.value, built, value)
			}
		}
	})
}

func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
	}
	return b.String()
}
