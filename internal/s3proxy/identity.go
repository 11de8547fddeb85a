package s3proxy

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairn-audit/cairn/internal/event"
)

// Credential is what a request says about who signed it. The proxy does
// not check signatures (the upstream does, and it holds the secrets); it
// only reads the access key ID the client claims, so that the event names
// the caller the upstream authenticated.
type Credential struct {
	// AccessKeyID is empty for anonymous (unsigned) requests.
	AccessKeyID string
	// SignatureVersion is "SigV4", "SigV4a" or "SigV2", as CloudTrail writes it in
	// additionalEventData.
	SignatureVersion string
	// AuthenticationMethod is "AuthHeader" or "QueryString" (presigned
	// URLs).
	AuthenticationMethod string
	// Unreadable says the request may be signed but the proxy could not
	// tell by whom (a form whose credential field lies beyond what the
	// proxy reads, or two that disagree): recorded as an Unknown caller,
	// never as anonymous.
	Unreadable bool
}

// ParseCredential reads the access key ID from the Authorization header
// (SigV4 "AWS4-HMAC-SHA256 Credential=AKID/date/region/s3/aws4_request, ...",
// SigV4a "AWS4-ECDSA-P256-SHA256 Credential=AKID/date/s3/aws4_request, ..."
// or SigV2 "AWS AKID:signature") or from a presigned URL's X-Amz-Credential
// (SigV4) or AWSAccessKeyId (SigV2).
func ParseCredential(h http.Header, q url.Values) Credential {
	if a := h.Get("Authorization"); a != "" {
		// SigV4 (AWS4-HMAC-SHA256) and SigV4a (AWS4-ECDSA-P256-SHA256,
		// multi-Region access points) carry the key alike.
		version := ""
		rest, ok := strings.CutPrefix(a, "AWS4-HMAC-SHA256 ")
		if ok {
			version = "SigV4"
		} else if rest, ok = strings.CutPrefix(a, "AWS4-ECDSA-P256-SHA256 "); ok {
			version = "SigV4a"
		}
		if ok {
			for _, part := range strings.Split(rest, ",") {
				if cred, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
					akid, _, _ := strings.Cut(cred, "/")
					return Credential{AccessKeyID: akid, SignatureVersion: version, AuthenticationMethod: "AuthHeader"}
				}
			}
			return Credential{SignatureVersion: version, AuthenticationMethod: "AuthHeader"}
		}
		if rest, ok := strings.CutPrefix(a, "AWS "); ok {
			akid, _, _ := strings.Cut(rest, ":")
			return Credential{AccessKeyID: strings.TrimSpace(akid), SignatureVersion: "SigV2", AuthenticationMethod: "AuthHeader"}
		}
	}
	if cred := q.Get("X-Amz-Credential"); cred != "" {
		akid, _, _ := strings.Cut(cred, "/")
		return Credential{AccessKeyID: akid, SignatureVersion: "SigV4", AuthenticationMethod: "QueryString"}
	}
	if akid := q.Get("AWSAccessKeyId"); akid != "" {
		return Credential{AccessKeyID: akid, SignatureVersion: "SigV2", AuthenticationMethod: "QueryString"}
	}
	return Credential{}
}

// maxFormField bounds a form field read for the credential (a POST
// policy is a few KB of base64; the credential fields are short).
const maxFormField = 16 << 10

// formCredential reads the access key ID of a browser-form upload
// (PostObject) from its form fields, which come before the file: SigV4's
// x-amz-credential ("AKID/date/region/s3/aws4_request", with
// x-amz-algorithm saying SigV4 or SigV4a) or SigV2's AWSAccessKeyId. body
// is the start of the request body. Field names are matched whatever
// their case, as S3 matches them. A form that ends (or reaches its file)
// without them is anonymous; one cut off by the end of body before that,
// or with two credential fields that disagree, is Unreadable.
func formCredential(contentType string, body []byte) Credential {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return Credential{}
	}
	fields := map[string]string{}
	complete := false
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			complete = true // the form's closing boundary
			break
		}
		if err != nil {
			break // the end of the kept start of the body
		}
		name := strings.ToLower(part.FormName())
		if name == "file" {
			complete = true // the fields that count come before the file
			break
		}
		switch name {
		case "x-amz-credential", "x-amz-algorithm", "awsaccesskeyid":
			v, err := io.ReadAll(io.LimitReader(part, maxFormField))
			if err != nil {
				return Credential{Unreadable: true} // cut inside the field: do not guess
			}
			value := strings.TrimSpace(string(v))
			if old, seen := fields[name]; seen && old != value {
				return Credential{Unreadable: true} // which one the upstream takes is its choice
			}
			fields[name] = value
		}
	}
	if cred := fields["x-amz-credential"]; cred != "" {
		version := "SigV4"
		if fields["x-amz-algorithm"] == "AWS4-ECDSA-P256-SHA256" {
			version = "SigV4a"
		}
		if akid, _, _ := strings.Cut(cred, "/"); akid != "" {
			return Credential{AccessKeyID: akid, SignatureVersion: version}
		}
		return Credential{Unreadable: true}
	}
	if akid := fields["awsaccesskeyid"]; akid != "" {
		return Credential{AccessKeyID: akid, SignatureVersion: "SigV2"}
	}
	if !complete {
		return Credential{Unreadable: true}
	}
	return Credential{}
}

// Identity is who an access key belongs to, as the configuration says;
// the upstream's own user database is not readable through S3.
type Identity struct {
	AccessKeyID string
	// Type is userIdentity.type; empty means IAMUser.
	Type        string
	PrincipalID string
	ARN         string
	AccountID   string
	UserName    string
}

// anonymousAccount is the accountId CloudTrail writes for unsigned
// requests today (records from before 2019 say "ANONYMOUS_PRINCIPAL").
const anonymousAccount = "anonymous"

// userIdentity is the record's userIdentity for a credential: the
// configured identity of its key; CloudTrail's anonymous shape for
// unsigned requests; type "Unknown" for a signer the proxy could not
// read; for keys the configuration does not map, type "Unknown" with the
// access key ID, because the proxy cannot know whose
// key the upstream accepted and inventing an account would mislead.
func (p *Proxy) userIdentity(c Credential) event.UserIdentity {
	if c.Unreadable {
		return event.UserIdentity{Type: "Unknown"}
	}
	if c.AccessKeyID == "" {
		return event.UserIdentity{Type: "AWSAccount", AccountID: anonymousAccount}
	}
	id, ok := p.identities[c.AccessKeyID]
	if !ok {
		return event.UserIdentity{Type: "Unknown", AccessKeyID: c.AccessKeyID}
	}
	typ := id.Type
	if typ == "" {
		typ = "IAMUser"
	}
	return event.UserIdentity{Type: typ, PrincipalID: id.PrincipalID, ARN: id.ARN, AccountID: id.AccountID,
		AccessKeyID: c.AccessKeyID, UserName: id.UserName}
}
