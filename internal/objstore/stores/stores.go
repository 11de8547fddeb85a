// Package stores opens an objstore backend from the URL an operator writes
// in --store, so that the rest of Cairn never names a backend.
//
// URL forms:
//
//	file:///var/lib/cairn/buckets    a directory (absolute path)
//	file://cairn-data/buckets        a directory relative to the working directory
//	s3://HOST[:PORT]                 an S3 server over HTTPS
//	s3://HOST:PORT?tls=false         the same over plain HTTP (loopback, test servers)
//
// Everything after "file://" is the path, verbatim (no percent-decoding).
// s3:// takes the query parameters region (default us-east-1), tls
// (default true) and path_style (default true; false sends
// virtual-hosted-style requests, BUCKET.HOST); unknown parameters, a path
// or credentials in the URL are errors. Credentials never go in the URL,
// which ends up in logs and process listings: pass them in Options (the
// command line reads them from CAIRN_S3_ACCESS_KEY_ID and
// CAIRN_S3_SECRET_ACCESS_KEY); without them the AWS SDK's default chain
// applies.
package stores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/file"
	"github.com/cairn-audit/cairn/internal/objstore/s3"
)

// Options carry what must not be in the URL, and shared plumbing.
type Options struct {
	// AccessKeyID and SecretAccessKey are for s3:// stores; both or
	// neither (then the AWS SDK's default credential chain).
	AccessKeyID     string
	SecretAccessKey string
	// HTTPClient, when set, carries s3:// requests.
	HTTPClient *http.Client
	// Logger receives the file store's warnings; nil means slog.Default().
	Logger *slog.Logger
}

// Open returns the store rawURL names. It checks the URL and, for file://,
// creates the directory; it does not contact an S3 server.
func Open(ctx context.Context, rawURL string, opts Options) (objstore.Store, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("store URL %q: want file://DIR or s3://HOST[:PORT][?region=R&tls=false&path_style=false]", redact(rawURL))
	}
	switch scheme {
	case "file":
		if rest == "" {
			return nil, fmt.Errorf("store URL %q: no directory after file://", rawURL)
		}
		s, err := file.New(rest, file.Options{Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", rawURL, err)
		}
		return s, nil
	case "s3":
		so, err := ParseS3(rawURL)
		if err != nil {
			return nil, err
		}
		so.AccessKeyID, so.SecretAccessKey = opts.AccessKeyID, opts.SecretAccessKey
		so.HTTPClient = opts.HTTPClient
		s, err := s3.New(ctx, so)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", redact(rawURL), err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("store URL %q: unknown scheme %q; want file:// or s3://", redact(rawURL), scheme)
}

// ParseS3 turns an s3:// URL into backend options (without credentials).
func ParseS3(rawURL string) (s3.Options, error) {
	bad := func(why string) (s3.Options, error) {
		return s3.Options{}, fmt.Errorf("store URL %q: %s", redact(rawURL), why)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return bad("not a URL: " + errors.Unwrap(err).Error())
	}
	if u.Scheme != "s3" {
		return bad("not an s3:// URL")
	}
	if u.User != nil {
		return bad("credentials do not belong in the URL; set CAIRN_S3_ACCESS_KEY_ID and CAIRN_S3_SECRET_ACCESS_KEY")
	}
	if u.Host == "" {
		return bad("no host; want s3://HOST[:PORT]")
	}
	if u.Path != "" && u.Path != "/" {
		return bad("no path allowed: the bucket comes from each trail's S3BucketName")
	}
	if u.Fragment != "" {
		return bad("no #fragment allowed")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("port " + port + " is not a number from 1 to 65535")
		}
	}
	o := s3.Options{Region: s3.DefaultRegion}
	useTLS, pathStyle := true, true
	for k, vs := range u.Query() {
		if len(vs) != 1 {
			return bad("parameter " + k + " given more than once")
		}
		v := vs[0]
		switch k {
		case "region":
			if v == "" {
				return bad("empty region")
			}
			o.Region = v
		case "tls":
			if useTLS, err = strconv.ParseBool(v); err != nil {
				return bad("tls=" + v + ": want true or false")
			}
		case "path_style":
			if pathStyle, err = strconv.ParseBool(v); err != nil {
				return bad("path_style=" + v + ": want true or false")
			}
		default:
			return bad("unknown parameter " + strconv.Quote(k) + "; known: region, tls, path_style")
		}
	}
	scheme := "https"
	if !useTLS {
		scheme = "http"
	}
	o.Endpoint = scheme + "://" + u.Host
	o.VirtualHostedStyle = !pathStyle
	return o, nil
}

// redact hides userinfo so an error never repeats a secret someone put in
// the URL by mistake.
func redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	authority, _, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		return scheme + "://REDACTED@" + rest[at+1:]
	}
	return rawURL
}
