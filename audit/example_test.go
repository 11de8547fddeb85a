package audit_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cairn-audit/cairn/audit"
)

// Wrap a service's mux, and on shutdown stop serving before closing the
// client, so that every request has been audited when Close flushes.
func ExampleClient_Middleware() {
	auditor, err := audit.NewClient(audit.Config{
		Endpoint:    "http://127.0.0.1:4747",
		ChannelARN:  "arn:aws:cloudtrail:us-east-1:000000000000:channel/0b9a7c2e-1d4f-4e6a-9b8c-7d6e5f4a3b2c",
		Credentials: credentials.NewStaticCredentialsProvider("AKIA…", "…", ""),
		EventSource: "notes.example.com",
		Identify: func(r *http.Request) audit.Identity {
			user, _, _ := r.BasicAuth() // whatever your authentication says
			return audit.Identity{Type: "User", PrincipalID: user}
		},
		EnqueueBudget: 2 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("…")) })
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: auditor.Middleware(mux)}
	go func() { _ = srv.ListenAndServe() }()

	// … on shutdown:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	if err := auditor.Close(ctx); err != nil {
		log.Printf("audit events lost: %v", err)
	}
	s := auditor.Stats()
	log.Printf("audit: %d sent, %d failed, %d dropped", s.Sent, s.Failed, s.Dropped)
}
