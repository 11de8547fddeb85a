package channel

import (
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cairn-audit/cairn/internal/event"
)

// TestPlainASCII compares the eight-bytes-at-a-time scan with the byte
// loop it replaces, for every byte value at every position.
func TestPlainASCII(t *testing.T) {
	slow := func(b []byte) int {
		for i, c := range b {
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				return i
			}
		}
		return len(b)
	}
	for n := 0; n <= 20; n++ {
		for pos := 0; pos <= n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a~ 0", n)[:n])
				if pos < n {
					b[pos] = byte(c)
				}
				if got, want := event.PlainRun(b, true), slow(b); got != want {
					t.Fatalf("%q: got %d, want %d", b, got, want)
				}
			}
		}
	}
}

// FuzzValidIPv4: whatever the allocation-free check accepts,
// netip.ParseAddr accepts as an IPv4 address.
func FuzzValidIPv4(f *testing.F) {
	for _, s := range []string{"192.0.2.10", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3", "::1", "1.2.3.4 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validIPv4([]byte(s)) {
			return
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			t.Fatalf("validIPv4(%q) but netip.ParseAddr: %v, %v", s, a, err)
		}
	})
}

// FuzzParseRecordTime: what the fast parser accepts, ParseEventTime
// accepts with the same time, and the text is that time in the record's
// form.
func FuzzParseRecordTime(f *testing.F) {
	for _, s := range []string{"2024-05-01T12:00:00Z", "0000-01-01T00:00:00Z", "9999-12-28T23:59:59Z", "2024-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:00:60Z", "2024-05-01 12:00:00Z", "+024-05-01T12:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRecordTime([]byte(s))
		if !ok {
			return
		}
		want, ok := ParseEventTime(s)
		if !ok || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("parseRecordTime(%q) = %v; ParseEventTime: %v, %v", s, got, want, ok)
		}
		if f := got.Format(recordTimeLayout); f != s {
			t.Fatalf("parseRecordTime(%q) formats back as %q", s, f)
		}
	})
}
