package history

import (
	"context"
	"fmt"
)

// MaxRegions bounds the regions Regions returns. Imported records keep
// whatever awsRegion they carry, so an import could otherwise make a
// console page list any number of them.
const MaxRegions = 1000

// Regions returns the regions whose history holds events, in key order
// (shorter names first, then by name), at most MaxRegions. It reads no
// event: it skips from one partition of the event store to the next, one
// seek per partition, so its cost grows with the number of regions, not
// of events. Events past the retention that the sweep has not deleted yet
// still count, so a region may be listed a little longer than it has
// events to show.
func (h *History) Regions(ctx context.Context) ([]string, error) {
	if err := h.acquire(); err != nil {
		return nil, err
	}
	defer h.release()
	var out []string
	seek := []byte{prefixEvent}
	for len(out) < MaxRegions {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list history regions: %w", err)
		}
		region, cat, ok, err := h.nextPartition(seek)
		if err != nil {
			return nil, fmt.Errorf("list history regions: %w", err)
		}
		if !ok {
			break
		}
		if len(out) == 0 || out[len(out)-1] != region {
			out = append(out, region)
		}
		seek = prefixEnd(appendPart(nil, prefixEvent, region, cat))
	}
	return out, nil
}
