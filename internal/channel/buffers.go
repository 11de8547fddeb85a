package channel

import (
	"math/bits"
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
// Buffers are kept by size class (powers of two), so that get finds one
// large enough at once: with one pool for all three kinds, an arena
// request often drew a body-sized buffer, put it back and allocated
// anyway (under cairn bench ingest, 370 MB of fresh buffers in 20 s).
//
// A buffer goes back only once nothing can read it any more; when in
// doubt (a failed journal Append may still be copying the entries) it is
// left to the garbage collector instead.
type bufferPool struct {
	classes [bufferClasses]sync.Pool
}

const (
	// minBufferClass is the smallest class: 4 KiB.
	minBufferClass = 12
	// bufferClasses covers 4 KiB up to maxPooledBuffer.
	bufferClasses = 23 - minBufferClass
)

// bufferClass is the class of the buffers of capacity at least n:
// ceil(log2(n)), at least minBufferClass.
func bufferClass(n int) int {
	if n <= 1<<minBufferClass {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufferClass
}

// get returns a buffer of length 0 and capacity at least n.
func (bp *bufferPool) get(n int) []byte {
	c := bufferClass(n)
	if c >= bufferClasses {
		return make([]byte, 0, n)
	}
	if v, ok := bp.classes[c].Get().(*[]byte); ok {
		return (*v)[:0]
	}
	return make([]byte, 0, 1<<(c+minBufferClass))
}

// put makes b available to get; b must not be used afterwards.
func (bp *bufferPool) put(b []byte) {
	if cap(b) < 1<<minBufferClass || cap(b) > maxPooledBuffer {
		return
	}
	// The class whose every request b can serve: floor(log2(cap)).
	c := bits.Len(uint(cap(b))) - 1 - minBufferClass
	b = b[:0]
	bp.classes[c].Put(&b)
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
