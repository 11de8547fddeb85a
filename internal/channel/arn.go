package channel

import (
	"regexp"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// Partition is the ARN partition of every ARN Cairn writes. It matches the
// trail package's; channels do not import trail just for one constant.
const Partition = "aws"

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-\d+$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
	// idRE is the model's UUID shape (36 characters of lower-case hex and
	// dashes). Cairn's IDs are random v4 UUIDs in that form.
	idRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// edsIDRE is the ID part of an event data store ARN. EDS IDs are
	// UUIDs in AWS; the form is kept loose because AWS's own examples use
	// placeholders, and the Lake engineer owns the exact rule.
	edsIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-]{0,127}$`)
)

// ARN builds a channel's ARN.
func ARN(region, account, id string) string {
	return "arn:" + Partition + ":cloudtrail:" + region + ":" + account + ":channel/" + id
}

// ref is a parsed channel reference: the bare UUID, which means the channel
// in the caller's region, or an ARN, which names region and account.
type ref struct {
	raw     string
	isARN   bool
	region  string
	account string
	id      string
}

// IsARN reports whether s is meant as an ARN rather than a channel UUID.
func IsARN(s string) bool { return strings.HasPrefix(s, "arn:") }

// parseARN splits "arn:<partition>:cloudtrail:<region>:<account>:channel/<id>".
// ok is false for anything else, including ARNs of other CloudTrail
// resources.
func parseARN(s string) (r ref, ok bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != Partition || parts[2] != "cloudtrail" ||
		!regionRE.MatchString(parts[3]) || !accountRE.MatchString(parts[4]) {
		return ref{}, false
	}
	id, found := strings.CutPrefix(parts[5], "channel/")
	if !found || !idRE.MatchString(id) {
		return ref{}, false
	}
	return ref{raw: s, isARN: true, region: parts[3], account: parts[4], id: id}, true
}

// parseRef reads the Channel argument of GetChannel, UpdateChannel and
// DeleteChannel (and PutAuditEvents' channelArn): a channel ARN or the
// channel's UUID. invalid is the error to return for anything else, because
// the control plane says ChannelARNInvalidException and the data plane
// InvalidChannelARN.
func parseRef(s string, invalid func(string) error) (ref, error) {
	if IsARN(s) {
		r, ok := parseARN(s)
		if !ok {
			return ref{}, invalid(s)
		}
		return r, nil
	}
	if !idRE.MatchString(s) {
		return ref{}, invalid(s)
	}
	return ref{raw: s, id: s}, nil
}

func channelARNInvalid(s string) error {
	return awsproto.Errorf("ChannelARNInvalidException",
		"Channel %q is not valid: give the channel ARN (arn:%s:cloudtrail:<region>:<account-id>:channel/<uuid>) or the channel's UUID.", s, Partition)
}

// eventDataStoreARN checks the form of an EVENT_DATA_STORE destination:
// "arn:aws:cloudtrail:<region>:<account>:eventdatastore/<id>" of this
// account.
func eventDataStoreARN(loc, account string) error {
	bad := func(why string) error {
		return awsproto.Errorf("EventDataStoreARNInvalidException",
			"The event data store ARN %q is not valid: %s. The format is arn:%s:cloudtrail:<region>:%s:eventdatastore/<id>.", loc, why, Partition, account)
	}
	parts := strings.SplitN(loc, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != Partition || parts[2] != "cloudtrail" || !regionRE.MatchString(parts[3]) {
		return bad("it is not a CloudTrail ARN")
	}
	if parts[4] != account {
		return bad("an event data store of account " + account + " is required")
	}
	id, found := strings.CutPrefix(parts[5], "eventdatastore/")
	if !found || !edsIDRE.MatchString(id) {
		return bad("it does not name an event data store")
	}
	return nil
}
