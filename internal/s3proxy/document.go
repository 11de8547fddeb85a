package s3proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/text/encoding/ianaindex"
)

// S3 records the XML document of a configuration call among its
// requestParameters, converted to JSON under the document's root element:
// PutBucketVersioning's
//
//	<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Status></VersioningConfiguration>
//
// becomes "VersioningConfiguration": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "Status": "Suspended"}.
// Detections match on it (Sigma's "AWS S3 bucket versioning disabled"
// looks for "Suspended" in requestParameters), so the proxy writes it the
// same way: attributes (xmlns first) and child elements as members in
// document order, an element that occurs more than once as an array, a
// single one as itself, text as a string, and the members the S3 model
// types as booleans or integers as JSON booleans and numbers (as in S3's
// records of PutBucketPublicAccessBlock).

// documentOps are the operations whose XML request body S3 records, and
// the name it is recorded under: the document's root element as S3's API
// defines it. The document is recorded under that name whatever the
// client's root element is called (upstreams may not check it), so that
// a client cannot hide a configuration behind another root, nor name its
// root after one of the proxy's own members (bucketName, Host, key).
var documentOps = map[string]string{
	"CreateBucket":                             "CreateBucketConfiguration",
	"PutBucketAcl":                             "AccessControlPolicy",
	"PutBucketAccelerateConfiguration":         "AccelerateConfiguration",
	"PutBucketAnalyticsConfiguration":          "AnalyticsConfiguration",
	"PutBucketCors":                            "CORSConfiguration",
	"PutBucketEncryption":                      "ServerSideEncryptionConfiguration",
	"PutBucketIntelligentTieringConfiguration": "IntelligentTieringConfiguration",
	"PutBucketInventoryConfiguration":          "InventoryConfiguration",
	"PutBucketLifecycle":                       "LifecycleConfiguration",
	"PutBucketLogging":                         "BucketLoggingStatus",
	"PutBucketMetricsConfiguration":            "MetricsConfiguration",
	"PutBucketNotification":                    "NotificationConfiguration",
	"PutObjectLockConfiguration":               "ObjectLockConfiguration",
	"PutBucketOwnershipControls":               "OwnershipControls",
	"PutBucketPublicAccessBlock":               "PublicAccessBlockConfiguration",
	"PutBucketReplication":                     "ReplicationConfiguration",
	"PutBucketRequestPayment":                  "RequestPaymentConfiguration",
	"PutBucketTagging":                         "Tagging",
	"PutBucketVersioning":                      "VersioningConfiguration",
	"PutBucketWebsite":                         "WebsiteConfiguration",
	"PutObjectAcl":                             "AccessControlPolicy",
	"PutObjectTagging":                         "Tagging",
	"PutObjectRetention":                       "Retention",
	"PutObjectLegalHold":                       "LegalHold",
	"RestoreObject":                            "RestoreRequest",
}

// maxDocument bounds the request documents kept for the record: S3's
// largest (lifecycle and inventory configurations of up to 1,000 rules)
// stay well below it. A larger body is recorded as not recorded, with
// the reason, rather than left out silently.
const maxDocument = 1 << 20

// keepsBody is how much of the request body the proxy copies for the
// record (0: none).
func keepsBody(name string) int {
	switch {
	case documentOps[name] != "":
		return maxDocument
	case name == "PutBucketPolicy":
		return maxKept
	}
	return 0
}

// typedMembers are the members of S3's configuration documents that the
// S3 model types as booleans (true) or integers (false).
var typedMembers = map[string]bool{
	"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true,
	"BucketKeyEnabled": true, "ExpiredObjectDeleteMarker": true, "IsEnabled": true, "Quiet": true,
	"Days": false, "Years": false, "NoncurrentDays": false, "NewerNoncurrentVersions": false,
	"DaysAfterInitiation": false, "MaxAgeSeconds": false, "Minutes": false, "Priority": false,
	"ObjectSizeGreaterThan": false, "ObjectSizeLessThan": false,
}

// maxDocumentDepth bounds the nesting of a recorded document (S3's
// deepest, replication and lifecycle rules, nest about six levels).
const maxDocumentDepth = 32

// xmlNode is an element of a request document.
type xmlNode struct {
	name     string
	attrs    []xml.Attr
	children []*xmlNode
	text     []byte
}

var errBadDocument = errors.New("not a well-formed XML document")

// parseDocument reads an XML document into its root element.
func parseDocument(body []byte) (*xmlNode, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	// Documents may declare another encoding (ISO-8859-1, ...), which
	// S3's parser honours; encoding/xml alone reads UTF-8 only.
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		enc, err := ianaindex.IANA.Encoding(label)
		if err != nil || enc == nil {
			return nil, fmt.Errorf("unknown encoding %q", label)
		}
		return enc.NewDecoder().Reader(in), nil
	}
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, errBadDocument // a second root
			}
			if len(stack) >= maxDocumentDepth {
				return nil, errBadDocument
			}
			n := &xmlNode{name: qualified(t.Name), attrs: t.Attr}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != qualified(t.Name) {
				return nil, errBadDocument
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				n := stack[len(stack)-1]
				n.text = append(n.text, t...)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, errBadDocument // text outside the root
			}
		}
	}
	if root == nil || len(stack) != 0 {
		return nil, errBadDocument
	}
	return root, nil
}

// qualified is a name as the document spells it, prefix included.
func qualified(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// appendDocumentRoot appends a document: its root element's content,
// always as an object (S3 records the root's xmlns even when the root is
// empty).
func appendDocumentRoot(b []byte, root *xmlNode) []byte {
	if len(root.children) == 0 && onlyNamespaces(root.attrs) && len(root.attrs) > 0 && len(bytes.TrimSpace(root.text)) == 0 {
		return appendObject(b, root)
	}
	return appendDocument(b, root)
}

// appendDocument appends the JSON of an element's content. An element
// without child elements is its text, unless it has attributes other
// than namespace declarations: then, like an element with children, an
// object of its attributes, its children and, when it has any besides
// white space, its own text as "#text" (an upstream reading the element
// as a string takes that text even around child elements, so it must be
// in the record). A child wins over an attribute of the same name: S3
// acts on elements, not attributes.
func appendDocument(b []byte, n *xmlNode) []byte {
	if len(n.children) == 0 && onlyNamespaces(n.attrs) {
		return appendLeaf(b, n)
	}
	return appendObject(b, n)
}

// appendObject appends an element as an object (see appendDocument).
func appendObject(b []byte, n *xmlNode) []byte {
	b = append(b, '{')
	first := true
	member := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
	}
	// Children by name, in the order each name first occurs.
	var names []string
	byName := make(map[string][]*xmlNode, len(n.children))
	for _, c := range n.children {
		if _, ok := byName[c.name]; !ok {
			names = append(names, c.name)
		}
		byName[c.name] = append(byName[c.name], c)
	}
	seen := make(map[string]bool, len(n.attrs))
	for _, a := range n.attrs {
		k := qualified(a.Name)
		if _, child := byName[k]; seen[k] || child || k == textMember {
			continue
		}
		seen[k] = true
		member(k)
		b = appendString(b, a.Value)
	}
	for _, name := range names {
		member(name)
		same := byName[name]
		if len(same) == 1 {
			b = appendDocument(b, same[0])
			continue
		}
		b = append(b, '[')
		for i, c := range same {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendDocument(b, c)
		}
		b = append(b, ']')
	}
	if len(bytes.TrimSpace(n.text)) > 0 && byName[textMember] == nil {
		member(textMember)
		b = appendString(b, string(n.text))
	}
	return append(b, '}')
}

// textMember holds an element's own text beside its attributes or
// children.
const textMember = "#text"

// onlyNamespaces reports whether attributes are all namespace
// declarations (xmlns, xmlns:prefix), which say nothing of the content.
func onlyNamespaces(attrs []xml.Attr) bool {
	for _, a := range attrs {
		if !(a.Name.Space == "" && a.Name.Local == "xmlns") && a.Name.Space != "xmlns" {
			return false
		}
	}
	return true
}

// appendLeaf appends an element's text, typed as the S3 model types it.
func appendLeaf(b []byte, n *xmlNode) []byte {
	text := string(n.text)
	if isBool, typed := typedMembers[n.name]; typed {
		if isBool {
			if v, err := strconv.ParseBool(text); err == nil && (text == "true" || text == "false") {
				return strconv.AppendBool(b, v)
			}
		} else if v, err := strconv.ParseInt(text, 10, 64); err == nil && strconv.FormatInt(v, 10) == text {
			return strconv.AppendInt(b, v, 10)
		}
	}
	return appendString(b, text)
}
