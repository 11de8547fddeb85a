package s3proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestRequestBodiesReachTheUpstreamWhole sends bodies of sizes around the
// relay buffers' through the proxy, to a plain and to an https upstream
// (whose connections write through TLS, not the relay buffers): each
// arrives whole and in order, and its event counts its bytes.
func TestRequestBodiesReachTheUpstreamWhole(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		received := make(chan []byte, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			b, err := io.ReadAll(req.Body)
			if err != nil {
				t.Errorf("upstream read: %v", err)
			}
			received <- b
			w.Header().Set("X-Amz-Request-Id", "UPSTREAMREQ00001")
			w.WriteHeader(http.StatusOK)
		})
		up := httptest.NewUnstartedServer(h)
		if useTLS {
			up.StartTLS()
		} else {
			up.Start()
		}
		t.Cleanup(up.Close)
		r := newRig(t, rigOptions{configure: func(c *Config) {
			c.Upstream = up.URL
			c.UpstreamTLS = &tls.Config{InsecureSkipVerify: true}
		}})
		for _, n := range []int{1, smallBuffer, bigBuffer - 1, bigBuffer + 1, 3*bigBuffer + 12345} {
			body := make([]byte, n)
			_, _ = rand.Read(body)
			req, err := http.NewRequest("PUT", r.p.URL()+"/b/k"+strconv.Itoa(n), bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := <-received
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Fatalf("tls=%v, %d bytes: status %d, upstream got %d bytes (equal: %v)", useTLS, n, resp.StatusCode, len(got), bytes.Equal(got, body))
			}
			evs := r.events(t)
			last := evs[len(evs)-1]
			if last["eventName"] != "PutObject" || path(last, "additionalEventData.bytesTransferredIn") != float64(n) {
				t.Fatalf("tls=%v, %d bytes: event %v", useTLS, n, last)
			}
		}
	}
}
