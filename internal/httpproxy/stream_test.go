package httpproxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/httpproxy"
)

// TestStreaming shows that bodies are not buffered either way: the
// upstream reads the first bytes of an upload before the client has sent
// the rest, and the client reads the first bytes of a download before the
// upstream has written the rest. It also shows the durability order: the
// event is in the journal by the time the client has the response
// headers, while the upstream is still writing the body.
func TestStreaming(t *testing.T) {
	const chunk = 64 << 10
	gotFirst := make(chan struct{})
	release := make(chan struct{})
	s := startStack(t, httpproxy.Config{Routes: []httpproxy.Route{
		{Method: "PUT", Path: "/files/{path...}", EventName: "PutFile", DataEvent: true},
		{Method: "GET", Path: "/files/{path...}", EventName: "GetFile", ReadOnly: true, DataEvent: true},
	}})
	var up http.ServeMux
	up.HandleFunc("PUT /files/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadFull(r.Body, make([]byte, chunk)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(gotFirst)
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = fmt.Fprint(w, n+chunk)
	})
	up.HandleFunc("GET /files/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("a"), chunk))
		w.(http.Flusher).Flush()
		<-release
		_, _ = w.Write(bytes.Repeat([]byte("b"), chunk))
	})
	var h http.Handler = &up
	s.up.handler.Store(&h)

	// Upload: 64 KiB, then wait until the upstream has them, then 8 MiB.
	pr, pw := io.Pipe()
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("PUT", s.url+"/files/big/blob.bin", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	if _, err := pw.Write(bytes.Repeat([]byte("x"), chunk)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gotFirst:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream did not get the first bytes of the upload before the client finished sending: the proxy buffers request bodies")
	}
	for range 128 {
		if _, err := pw.Write(bytes.Repeat([]byte("y"), chunk)); err != nil {
			t.Fatal(err)
		}
	}
	_ = pw.Close()
	res := <-done
	if res.err != nil || res.body != strconv.Itoa(129*chunk) {
		t.Fatalf("upload: %q %v, want %d bytes received", res.body, res.err, 129*chunk)
	}
	if r := s.lastRecord(t); r.EventName != "PutFile" || r.str("requestParameters.path") != "big/blob.bin" || r.EventCategory != "Data" {
		t.Errorf("upload recorded as %s", r.Raw)
	}

	// Download: the first half arrives while the upstream holds the rest.
	resp, err := http.Get(s.url + "/files/big/blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if r := s.lastRecord(t); r.EventName != "GetFile" {
		t.Errorf("the event was not durable when the response headers arrived: last event %s", r.Raw)
	}
	first := make([]byte, chunk)
	if _, err := io.ReadFull(resp.Body, first); err != nil || first[0] != 'a' || first[chunk-1] != 'a' {
		t.Fatalf("first half of the download: %v", err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != chunk || rest[0] != 'b' {
		t.Fatalf("rest of the download: %d bytes, %v", len(rest), err)
	}
}
