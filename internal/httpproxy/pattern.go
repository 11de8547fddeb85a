package httpproxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Reserved template names are filled from the proxy's configuration, so a
// path wildcard may not take them: a request could otherwise choose the
// region or account its own event names.
const (
	nameRegion  = "region"
	nameAccount = "account"
)

// pattern is a route's path pattern: literal segments, {name} wildcards
// that match one non-empty segment, and an optional final {name...} that
// matches the rest of the path (possibly empty). Whole segments only, so
// what a wildcard captured is never ambiguous.
type pattern struct {
	raw  string
	segs []patternSeg
	// rest names the final {name...} wildcard; "" when there is none.
	rest string
}

type patternSeg struct {
	lit  string // the literal, when name is ""
	name string
}

// parsePattern compiles a path pattern such as "/v1/users/{id}" or
// "/files/{path...}".
func parsePattern(s string) (*pattern, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("path pattern %q: must start with /", s)
	}
	p := &pattern{raw: s}
	seen := map[string]bool{}
	parts := strings.Split(s[1:], "/")
	for i, part := range parts {
		if !strings.ContainsAny(part, "{}") {
			if part == "." || part == ".." {
				return nil, fmt.Errorf("path pattern %q: dot segment %q never matches (requests with dot segments are refused)", s, part)
			}
			if _, err := url.PathUnescape(part); err != nil {
				return nil, fmt.Errorf("path pattern %q: segment %q: %w", s, part, err)
			}
			lit, _ := url.PathUnescape(part)
			p.segs = append(p.segs, patternSeg{lit: lit})
			continue
		}
		if !strings.HasPrefix(part, "{") || !strings.HasSuffix(part, "}") || strings.Count(part, "{") != 1 || strings.Count(part, "}") != 1 {
			return nil, fmt.Errorf("path pattern %q: segment %q: a wildcard must be a whole segment, {name} or {name...}", s, part)
		}
		name := part[1 : len(part)-1]
		rest := strings.HasSuffix(name, "...")
		if rest {
			name = strings.TrimSuffix(name, "...")
			if i != len(parts)-1 {
				return nil, fmt.Errorf("path pattern %q: {%s...} must be the last segment", s, name)
			}
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("path pattern %q: %w", s, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("path pattern %q: wildcard {%s} appears twice", s, name)
		}
		seen[name] = true
		if rest {
			p.rest = name
		} else {
			p.segs = append(p.segs, patternSeg{name: name})
		}
	}
	return p, nil
}

// checkName accepts wildcard names that are plain identifiers and not
// reserved for the proxy's own values.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty wildcard name")
	}
	for i, c := range name {
		ok := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (i > 0 && '0' <= c && c <= '9')
		if !ok {
			return fmt.Errorf("wildcard name %q: letters, digits and _ only, not starting with a digit", name)
		}
	}
	if name == nameRegion || name == nameAccount {
		return fmt.Errorf("wildcard name %q is reserved for the proxy's %s", name, name)
	}
	return nil
}

// names lists the pattern's wildcards in order.
func (p *pattern) names() []string {
	var out []string
	for _, s := range p.segs {
		if s.name != "" {
			out = append(out, s.name)
		}
	}
	if p.rest != "" {
		out = append(out, p.rest)
	}
	return out
}

// param is one captured wildcard.
type param struct{ name, value string }

// match reports whether the request path, already split into unescaped
// segments (see splitPath), matches, with what the wildcards captured;
// {name...} captures the rest of the path joined with slashes.
func (p *pattern) match(segs []string) ([]param, bool) {
	// {name...} needs the slash after the fixed segments ("/files/" but
	// not "/files" for "/files/{path...}"), as net/http's patterns do.
	if (p.rest == "" && len(segs) != len(p.segs)) || (p.rest != "" && len(segs) <= len(p.segs)) {
		return nil, false
	}
	var out []param
	for i, s := range p.segs {
		switch {
		case s.name == "":
			if segs[i] != s.lit {
				return nil, false
			}
		case segs[i] == "":
			return nil, false
		default:
			out = append(out, param{s.name, segs[i]})
		}
	}
	if p.rest != "" {
		rest := make([]string, 0, len(segs)-len(p.segs))
		rest = append(rest, segs[len(p.segs):]...)
		out = append(out, param{p.rest, strings.Join(rest, "/")})
	}
	return out, true
}

// splitPath splits an escaped request path into unescaped segments. It
// refuses what would make the recorded route differ from what the upstream
// serves: a path not starting with /, bad escapes, and dot segments (an
// upstream that normalises "/a/../admin" would serve /admin while the
// proxy recorded /a/..).
func splitPath(escaped string) ([]string, error) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, fmt.Errorf("path %q does not start with /", escaped)
	}
	raw := strings.Split(escaped[1:], "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		s, err := url.PathUnescape(r)
		if err != nil {
			return nil, fmt.Errorf("path segment %q: %w", r, err)
		}
		if hasDotSegment(s) {
			return nil, fmt.Errorf("path has a dot segment %q", r)
		}
		segs[i] = s
	}
	return segs, nil
}

// hasDotSegment reports whether an unescaped segment is "." or "..", or
// holds one between the slashes or backslashes an escape put in it: an
// upstream that decodes %2F (or treats \ as a separator) before
// normalising would serve "/v1/users/..%2Fadmin" as /admin.
func hasDotSegment(s string) bool {
	for {
		i := strings.IndexAny(s, `/\`)
		part := s
		if i >= 0 {
			part = s[:i]
		}
		if part == "." || part == ".." {
			return true
		}
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
}

// template is a string with {name} placeholders, such as a resource ARN
// template "arn:example:users:{region}:{account}:user/{id}".
type template struct {
	parts []templatePart
}

type templatePart struct {
	lit  string
	name string // a placeholder when not ""
}

// parseTemplate compiles s; every placeholder must be one of names or
// {region}/{account}, so a typo is a configuration error rather than an
// ARN with a hole in it.
func parseTemplate(s string, names []string) (*template, error) {
	known := map[string]bool{nameRegion: true, nameAccount: true}
	for _, n := range names {
		known[n] = true
	}
	t := &template{}
	for s != "" {
		open := strings.IndexByte(s, '{')
		close := strings.IndexByte(s, '}')
		if close >= 0 && (open < 0 || close < open) {
			return nil, fmt.Errorf("template: unmatched } at %q", s[close:])
		}
		if open < 0 {
			t.parts = append(t.parts, templatePart{lit: s})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{lit: s[:open]})
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("template: unclosed { at %q", s[open:])
		}
		name := s[open+1 : open+end]
		if strings.IndexByte(name, '{') >= 0 {
			return nil, fmt.Errorf("template: nested { in %q", s[open:open+end+1])
		}
		if !known[name] {
			return nil, fmt.Errorf("template: unknown placeholder {%s} (the route's path has %s; {region} and {account} are always known)", name, describeNames(names))
		}
		t.parts = append(t.parts, templatePart{name: name})
		s = s[open+end+1:]
	}
	return t, nil
}

func describeNames(names []string) string {
	if len(names) == 0 {
		return "no wildcards"
	}
	return "{" + strings.Join(names, "}, {") + "}"
}

// expand fills the placeholders.
func (t *template) expand(params []param, region, account string) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.name {
		case "":
			b.WriteString(p.lit)
		case nameRegion:
			b.WriteString(region)
		case nameAccount:
			b.WriteString(account)
		default:
			for _, q := range params {
				if q.name == p.name {
					b.WriteString(q.value)
					break
				}
			}
		}
	}
	return b.String()
}
