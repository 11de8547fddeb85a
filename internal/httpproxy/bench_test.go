package httpproxy_test

import (
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/cairn-audit/cairn/internal/httpproxy"
)

// BenchmarkProxyOverhead compares small GETs straight to the upstream with
// the same GETs through the proxy (route match, event built and fsynced
// in the journal before the response), at 32 concurrent clients.
func BenchmarkProxyOverhead(b *testing.B) {
	for _, mode := range []string{"direct", "proxy"} {
		b.Run(mode, func(b *testing.B) {
			var url string
			if mode == "direct" {
				url = newUpstream(b).URL
			} else {
				url = startStack(b, httpproxy.Config{}).url
			}
			url += "/v1/users/42?expand=groups"
			client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
