package httpproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// statusCodes name error statuses the way AWS error codes read. Statuses
// not listed become "Http<status>"; below 400 there is no error.
var statusCodes = map[int]string{
	400: "BadRequest",
	401: "Unauthorized",
	402: "PaymentRequired",
	403: "Forbidden",
	404: "NotFound",
	405: "MethodNotAllowed",
	406: "NotAcceptable",
	407: "ProxyAuthenticationRequired",
	408: "RequestTimeout",
	409: "Conflict",
	410: "Gone",
	411: "LengthRequired",
	412: "PreconditionFailed",
	413: "PayloadTooLarge",
	414: "URITooLong",
	415: "UnsupportedMediaType",
	416: "RangeNotSatisfiable",
	417: "ExpectationFailed",
	421: "MisdirectedRequest",
	422: "UnprocessableEntity",
	423: "Locked",
	424: "FailedDependency",
	425: "TooEarly",
	426: "UpgradeRequired",
	428: "PreconditionRequired",
	429: "TooManyRequests",
	431: "RequestHeaderFieldsTooLarge",
	451: "UnavailableForLegalReasons",
	500: "InternalServerError",
	501: "NotImplemented",
	502: "BadGateway",
	503: "ServiceUnavailable",
	504: "GatewayTimeout",
	505: "HTTPVersionNotSupported",
	507: "InsufficientStorage",
	508: "LoopDetected",
	511: "NetworkAuthenticationRequired",
}

// statusError is the errorCode and errorMessage of a status; both empty
// below 400.
func statusError(status int) (code, msg string) {
	if status < 400 {
		return "", ""
	}
	code, ok := statusCodes[status]
	if !ok {
		code = fmt.Sprintf("Http%d", status)
	}
	msg = http.StatusText(status)
	if msg == "" {
		msg = fmt.Sprintf("HTTP status %d", status)
	}
	return code, msg
}

// jsonField finds a dotted path ("error.code") in a JSON document and
// renders a string or number found there; "" when absent or of another
// type.
func jsonField(doc []byte, path string) string {
	if path == "" {
		return ""
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return ""
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// isJSON says whether a Content-Type is JSON (application/json or a
// +json type).
func isJSON(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "application/json" || (strings.HasPrefix(ct, "application/") && strings.HasSuffix(ct, "+json"))
}
