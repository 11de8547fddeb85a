package lake

import (
	"regexp"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
)

// Partition is the ARN partition of every ARN Cairn writes.
const Partition = "aws"

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-\d+$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
	// idRE is the shape of a bare store ID. Cairn's IDs are random v4
	// UUIDs; the shape is looser (AWS's own examples use IDs such as
	// EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE), so that an ID that merely does
	// not exist is EventDataStoreNotFoundException, not a malformed ARN.
	idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-]{0,127}$`)
)

// ARN builds an event data store's ARN.
func ARN(region, account, id string) string {
	return "arn:" + Partition + ":cloudtrail:" + region + ":" + account + ":eventdatastore/" + id
}

// ref is a parsed EventDataStore argument: a bare ID, which means the
// store in the caller's region, or an ARN, which names region and account.
type ref struct {
	raw     string
	isARN   bool
	region  string
	account string
	id      string
}

// parseARN splits "arn:aws:cloudtrail:<region>:<account>:eventdatastore/<id>";
// ok is false for anything else, including ARNs of other resources.
func parseARN(s string) (ref, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != Partition || parts[2] != "cloudtrail" ||
		!regionRE.MatchString(parts[3]) || !accountRE.MatchString(parts[4]) {
		return ref{}, false
	}
	id, found := strings.CutPrefix(parts[5], "eventdatastore/")
	if !found || !idRE.MatchString(id) {
		return ref{}, false
	}
	return ref{raw: s, isARN: true, region: parts[3], account: parts[4], id: id}, true
}

// parseRef reads an EventDataStore argument (and a table name in a query):
// the store's ARN or its ID.
func parseRef(s string) (ref, error) {
	if strings.HasPrefix(s, "arn:") {
		r, ok := parseARN(s)
		if !ok {
			return ref{}, arnInvalid(s)
		}
		return r, nil
	}
	if !idRE.MatchString(s) {
		return ref{}, arnInvalid(s)
	}
	return ref{raw: s, id: s}, nil
}

func arnInvalid(s string) error {
	return awsproto.Errorf("EventDataStoreARNInvalidException",
		"The specified event data store ARN is not valid or does not map to an event data store in your account: %q. Give the event data store's ARN (arn:%s:cloudtrail:<region>:<account-id>:eventdatastore/<id>) or its ID.", s, Partition)
}
