package channel

import (
	"sync"

	"github.com/cairn-audit/cairn/internal/event"
)

// maxPooledBuffer bounds the buffers kept for reuse: a request is at most
// MaxRequestBytes, its records at most about twice that plus envelopes.
const maxPooledBuffer = 4 * MaxRequestBytes

// bufferPool recycles the large byte buffers of PutAuditEvents: the
// request body, the unescaped eventData of its events and the arena of
// their records. Each is a few hundred KB per request; at tens of
// thousands of events per second, allocating them afresh cost a steady
// few hundred MB/s of garbage, every byte of it zeroed first, and GC
// cycles to match.
//
// A buffer goes back only once nothing can read it any more; when in
// doubt (a failed journal Append may still be copying the entries) it is
// left to the garbage collector instead.
type bufferPool struct{ p sync.Pool }

// get returns a buffer of length 0 and capacity at least n.
func (bp *bufferPool) get(n int) []byte {
	if v, ok := bp.p.Get().(*[]byte); ok {
		if cap(*v) >= n {
			return (*v)[:0]
		}
		bp.p.Put(v) // fits another request
	}
	return make([]byte, 0, n)
}

// put makes b available to get; b must not be used afterwards.
func (bp *bufferPool) put(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBuffer {
		return
	}
	b = b[:0]
	bp.p.Put(&b)
}

// RequestBuffer returns a buffer of length n to read a PutAuditEvents
// body of n bytes into. Give it back with ReleaseRequestBuffer once
// PrepareAuditEvents has returned: nothing PrepareAuditEvents returns
// refers to the body.
func (s *Service) RequestBuffer(n int) []byte { return s.buffers.get(n)[:n] }

// ReleaseRequestBuffer takes back a buffer from RequestBuffer.
func (s *Service) ReleaseRequestBuffer(b []byte) { s.buffers.put(b) }

// spanPool recycles the member spans the decoder finds in a request's
// eventData (compactData): some fifteen per event, fifty-odd KB per
// request, that would otherwise be allocated and grown afresh each time.
type spanPool struct{ p sync.Pool }

// get returns an empty slice to append spans to.
func (sp *spanPool) get() []event.Member {
	if v, ok := sp.p.Get().(*[]event.Member); ok {
		return (*v)[:0]
	}
	return nil
}

// put makes s available to get; s must not be used afterwards.
func (sp *spanPool) put(s []event.Member) {
	if cap(s) == 0 || cap(s) > 64*MaxEventsPerRequest {
		return
	}
	s = s[:0]
	sp.p.Put(&s)
}
