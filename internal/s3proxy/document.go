package s3proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
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

// documentOps are the operations whose XML request body S3 records.
var documentOps = map[string]bool{
	"CreateBucket": true, "PutBucketAcl": true, "PutBucketAccelerateConfiguration": true,
	"PutBucketAnalyticsConfiguration": true, "PutBucketCors": true, "PutBucketEncryption": true,
	"PutBucketIntelligentTieringConfiguration": true, "PutBucketInventoryConfiguration": true,
	"PutBucketLifecycle": true, "PutBucketLogging": true, "PutBucketMetricsConfiguration": true,
	"PutBucketNotification": true, "PutObjectLockConfiguration": true, "PutBucketOwnershipControls": true,
	"PutBucketPublicAccessBlock": true, "PutBucketReplication": true, "PutBucketRequestPayment": true,
	"PutBucketTagging": true, "PutBucketVersioning": true, "PutBucketWebsite": true,
	"PutObjectAcl": true, "PutObjectTagging": true, "PutObjectRetention": true, "PutObjectLegalHold": true,
	"RestoreObject": true,
}

// keepsBody reports whether the proxy keeps a copy of the request body
// (up to maxKept) for the record.
func keepsBody(name string) bool { return documentOps[name] || name == "PutBucketPolicy" }

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

// appendDocument appends the JSON of an element's content: an object of
// its attributes and children, or, for an element with neither, its text.
func appendDocument(b []byte, n *xmlNode) []byte {
	if len(n.attrs) == 0 && len(n.children) == 0 {
		return appendLeaf(b, n)
	}
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
	seen := make(map[string]bool, len(n.attrs))
	for _, a := range n.attrs {
		k := qualified(a.Name)
		if seen[k] {
			continue
		}
		seen[k] = true
		member(k)
		b = appendString(b, a.Value)
	}
	// Children by name, in the order each name first occurs.
	var names []string
	byName := make(map[string][]*xmlNode, len(n.children))
	for _, c := range n.children {
		if seen[c.name] {
			continue // an attribute took the name
		}
		if _, ok := byName[c.name]; !ok {
			names = append(names, c.name)
		}
		byName[c.name] = append(byName[c.name], c)
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
	return append(b, '}')
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
