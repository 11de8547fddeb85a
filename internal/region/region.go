// Package region is the set of regions Cairn accepts requests for: AWS's
// regions, as the AWS SDKs' endpoint rules list them, plus the private
// region names an operator declares (`cairn serve --regions`).
//
// Why a closed set: the region a request is signed for becomes the
// awsRegion of its record, the region of the trails and channels it
// creates, and the region whose event history it reads. A request signed
// for an invented region (zz-fake-9) would file its record where no
// console picker and no single-region trail ever looks. AWS refuses such
// a request at authentication ("Credential should be scoped to a valid
// region"), and so does Cairn.
//
// The AWS list is partitions.json from aws-sdk-go-v2
// (internal/endpoints/awsrulesfn, Apache-2.0), embedded verbatim so that
// updating it is a copy of the file from a newer SDK; TestEmbeddedMatchesSDK
// says when the SDK in go.mod lists something else. Of each partition only
// the regions listed by name are taken, never its regionRegex: the regex of
// the commercial partition, ^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$, admits
// us-fake-9 as readily as a future region, which is exactly the record
// filed under a region nobody can see that this package exists to prevent.
// A region AWS opens before Cairn's SDK knows it can be declared with
// --regions meanwhile.
package region

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

//go:embed partitions.json
var partitionsJSON []byte

// Default is the region a client reaches when it names none: the AWS CLI's
// and SDKs' implicit global region, and the console's first choice.
const Default = "us-east-1"

// MaxDeclared bounds the regions an operator may declare, so that the
// console's picker and the set stay small.
const MaxDeclared = 100

// nameRE is the shape of a region name Cairn can use everywhere a region
// goes: trail and channel ARNs (internal/trail, internal/channel), S3 keys
// of delivered log files, and the history's keys. It is the shape of every
// AWS region name but the European Sovereign Cloud's (eusc-de-east-1),
// which those ARN parsers do not accept and which is therefore left out.
var nameRE = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-\d+$`)

// maxNameLen bounds a region name (the S3 key component limit of delivery).
const maxNameLen = 63

// ValidName reports whether name has the shape of a region name.
func ValidName(name string) bool {
	return len(name) <= maxNameLen && nameRE.MatchString(name)
}

type partitionsFile struct {
	Partitions []struct {
		ID          string                     `json:"id"`
		RegionRegex string                     `json:"regionRegex"`
		Regions     map[string]json.RawMessage `json:"regions"`
	} `json:"partitions"`
}

// awsRegions is the embedded list, parsed once: the explicitly listed
// regions of every partition that match their partition's regionRegex
// (which drops the pseudo-regions such as aws-global that no request is
// ever scoped to) and Cairn's region shape.
var awsRegions = sync.OnceValues(func() ([]string, error) {
	return parsePartitions(partitionsJSON)
})

func parsePartitions(raw []byte) ([]string, error) {
	var f partitionsFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("region: parse embedded partitions.json: %w", err)
	}
	var out []string
	for _, p := range f.Partitions {
		re, err := regexp.Compile(p.RegionRegex)
		if err != nil {
			return nil, fmt.Errorf("region: partition %s: regionRegex %q: %w", p.ID, p.RegionRegex, err)
		}
		for name := range p.Regions {
			if re.MatchString(name) && ValidName(name) {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("region: embedded partitions.json lists no regions")
	}
	slices.Sort(out)
	return out, nil
}

// AWS returns AWS's regions (every partition: commercial, China, GovCloud,
// ISO), sorted. The slice is the caller's.
func AWS() []string {
	regions, err := awsRegions()
	if err != nil {
		// The file is embedded and checked by the tests: a failure here
		// is a broken build, not a condition to handle at run time.
		panic(err)
	}
	return slices.Clone(regions)
}

// Set is the regions one Cairn accepts: AWS's and the declared ones. It is
// immutable once built, so it is shared freely between goroutines.
type Set struct {
	known    map[string]struct{}
	names    []string
	declared []string
}

// NewSet builds the set of AWS's regions plus declared, each of which must
// be a valid region name (see ParseList for the error wording).
func NewSet(declared []string) (*Set, error) {
	if len(declared) > MaxDeclared {
		return nil, fmt.Errorf("%d regions declared; at most %d may be", len(declared), MaxDeclared)
	}
	s := &Set{known: map[string]struct{}{}}
	for _, r := range AWS() {
		s.known[r] = struct{}{}
	}
	for _, r := range declared {
		if !ValidName(r) {
			return nil, invalidName(r)
		}
		if _, dup := s.known[r]; dup {
			continue
		}
		s.known[r] = struct{}{}
		s.declared = append(s.declared, r)
	}
	s.names = make([]string, 0, len(s.known))
	for r := range s.known {
		s.names = append(s.names, r)
	}
	slices.Sort(s.names)
	return s, nil
}

// Known reports whether name is a region requests may be signed for.
func (s *Set) Known(name string) bool {
	_, ok := s.known[name]
	return ok
}

// Names returns every known region, sorted. The slice is the caller's.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Declared returns the operator's regions that AWS does not list, in the
// order given. The slice is the caller's.
func (s *Set) Declared() []string { return slices.Clone(s.declared) }

// ParseList parses the value of --regions / CAIRN_REGIONS: region names
// separated by commas (spaces around them are ignored, as is an empty
// list). Each must have the shape of an AWS region name (two letters,
// words, a number: xx-private-1), because the region appears in ARNs and in
// S3 keys that require that shape.
func ParseList(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !ValidName(part) {
			return nil, invalidName(part)
		}
		if !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	if len(out) > MaxDeclared {
		return nil, fmt.Errorf("%d regions declared; at most %d may be", len(out), MaxDeclared)
	}
	return out, nil
}

func invalidName(name string) error {
	return fmt.Errorf("region %q is not a valid region name: want lower-case words joined by hyphens, starting with two letters and ending with a number (for example xx-private-1), at most %d characters", name, maxNameLen)
}
