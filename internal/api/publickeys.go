package api

import (
	"context"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/digest"
)

// ListPublicKeysInput is ListPublicKeys' request.
type ListPublicKeysInput struct {
	StartTime *awsproto.Timestamp `json:"StartTime"`
	EndTime   *awsproto.Timestamp `json:"EndTime"`
	NextToken *string             `json:"NextToken"`
}

// PublicKeyOut is one PublicKeyList entry. Value is the DER PKCS#1 public
// key; encoding/json writes []byte as base64, which is the wire form.
type PublicKeyOut struct {
	Value             []byte              `json:"Value"`
	ValidityStartTime *awsproto.Timestamp `json:"ValidityStartTime"`
	ValidityEndTime   *awsproto.Timestamp `json:"ValidityEndTime"`
	Fingerprint       string              `json:"Fingerprint"`
}

// ListPublicKeysOutput is ListPublicKeys' response. NextToken is never set:
// the AWS CLI's validator does not paginate, so every key is in one page.
type ListPublicKeysOutput struct {
	PublicKeyList []PublicKeyOut `json:"PublicKeyList"`
}

// PublicKeyOperations serves the digest signing keys of the request's
// region (keys are regional, as on AWS: the CLI asks the region whose
// digests it validates).
func PublicKeyOperations(keys *digest.Keys) []Operation {
	return []Operation{
		Op("ListPublicKeys", true, func(ctx context.Context, req *Request, in *ListPublicKeysInput) (*ListPublicKeysOutput, error) {
			var start, end awsproto.Timestamp
			if in.StartTime != nil {
				start = *in.StartTime
			}
			if in.EndTime != nil {
				end = *in.EndTime
			}
			if !start.IsZero() && !end.IsZero() && end.Before(start.Time) {
				return nil, awsproto.Errorf("InvalidTimeRangeException", "Occurs if the timestamp values are invalid. Either the start time occurs after the end time, or the time range is outside the range of possible values.")
			}
			if in.NextToken != nil && *in.NextToken != "" {
				return nil, awsproto.Errorf("InvalidTokenException", "Reserved for future use.")
			}
			pks, err := keys.PublicKeys(ctx, req.Region, start.Time, end.Time)
			if err != nil {
				return nil, awsproto.Internal(err)
			}
			out := &ListPublicKeysOutput{PublicKeyList: make([]PublicKeyOut, 0, len(pks))}
			for _, pk := range pks {
				out.PublicKeyList = append(out.PublicKeyList, PublicKeyOut{
					Value:             pk.DER,
					ValidityStartTime: awsproto.NewTimestamp(pk.Start),
					ValidityEndTime:   awsproto.NewTimestamp(pk.End),
					Fingerprint:       pk.Fingerprint,
				})
			}
			return out, nil
		}),
	}
}
