// Command notes-service is a small notes API (list, get, create, delete)
// whose every call is audited into Cairn through the audit middleware: an
// example of github.com/cairn-audit/cairn/audit. See README.md.
//
// The caller's identity is the X-User header, because this example has no
// authentication; a real service takes it from its own authentication in
// Identify.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/cairn-audit/cairn/audit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Getenv, log, nil); err != nil {
		log.Error("notes-service failed", "err", err)
		os.Exit(1)
	}
}

// options are the service's settings: flags, each with an environment
// variable as its default.
type options struct {
	listen          string
	endpoint        string
	channelARN      string
	credentialsFile string
	profile         string
	flushInterval   time.Duration
}

func parseOptions(args []string, getenv func(string) string) (options, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var o options
	fs := flag.NewFlagSet("notes-service", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", env("NOTES_LISTEN", "127.0.0.1:8080"), "address to serve the notes API on ($NOTES_LISTEN)")
	fs.StringVar(&o.endpoint, "cairn-endpoint", env("CAIRN_ENDPOINT", "http://127.0.0.1:4747"), "Cairn's URL ($CAIRN_ENDPOINT)")
	fs.StringVar(&o.channelARN, "channel-arn", env("NOTES_CHANNEL_ARN", ""), "ARN of the channel the audit events go to ($NOTES_CHANNEL_ARN, required)")
	fs.StringVar(&o.credentialsFile, "credentials-file", env("CAIRN_CREDENTIALS_FILE", ""),
		"shared credentials file, e.g. <cairn data dir>/credentials ($CAIRN_CREDENTIALS_FILE); empty means the AWS SDK's usual chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, …)")
	fs.StringVar(&o.profile, "profile", env("AWS_PROFILE", "cairn"), "profile in the credentials file ($AWS_PROFILE)")
	fs.DurationVar(&o.flushInterval, "flush-interval", time.Second, "longest an audit event waits before it is sent")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.channelARN == "" {
		return o, errors.New("-channel-arn (or NOTES_CHANNEL_ARN) is required")
	}
	return o, nil
}

// credentials loads the key that signs PutAuditEvents.
func credentials(ctx context.Context, o options) (aws.CredentialsProvider, error) {
	var opts []func(*config.LoadOptions) error
	if o.credentialsFile != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{o.credentialsFile}), config.WithSharedConfigProfile(o.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS credentials: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, errors.New("load AWS credentials: none found")
	}
	return cfg.Credentials, nil
}

// eventNames are the CloudTrail-style names of the routes' events. Never
// written after init.
var eventNames = map[string]string{
	"GET /notes":         "ListNotes",
	"GET /notes/{id}":    "GetNote",
	"POST /notes":        "CreateNote",
	"DELETE /notes/{id}": "DeleteNote",
}

// run serves until ctx ends, then stops taking requests and flushes the
// audit events. ready, when not nil, receives the address it serves on.
func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger, ready chan<- string) error {
	o, err := parseOptions(args, getenv)
	if err != nil {
		return err
	}
	creds, err := credentials(ctx, o)
	if err != nil {
		return err
	}
	auditor, err := audit.NewClient(audit.Config{
		Endpoint:      o.endpoint,
		ChannelARN:    o.channelARN,
		Credentials:   creds,
		EventSource:   "notes.example.com",
		FlushInterval: o.flushInterval,
		EnqueueBudget: 5 * time.Millisecond,
		Logger:        log,
		Identify: func(r *http.Request) audit.Identity {
			// Demo only: trust a header. Real services use their own
			// authentication's result here.
			return audit.Identity{Type: "User", PrincipalID: r.Header.Get("X-User")}
		},
		NameEvent: func(r *http.Request) string { return eventNames[r.Pattern] },
		Skip:      func(r *http.Request) bool { return r.URL.Path == "/healthz" },
		OnDrop: func(reason audit.DropReason, n int) {
			log.Warn("audit events lost", "reason", reason, "events", n)
		},
	})
	if err != nil {
		return fmt.Errorf("start the audit client: %w", err)
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	srv := &http.Server{
		Handler:           auditor.Middleware(newNotes().routes()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("notes-service is serving", "url", "http://"+ln.Addr().String(), "channel", o.channelARN, "cairn", o.endpoint)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = fmt.Errorf("shut down the HTTP server: %w", serr)
		}
	}
	// After Shutdown no request is running: everything audited is
	// buffered, and Close sends it.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cerr := auditor.Close(cctx)
	s := auditor.Stats()
	log.Info("audit events", "sent", s.Sent, "failed", s.Failed, "dropped", s.Dropped, "retried", s.Retried)
	return errors.Join(err, cerr)
}

// note is one note.
type note struct {
	ID      int       `json:"id"`
	Text    string    `json:"text"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
}

// notes is the in-memory store.
type notes struct {
	mu     sync.Mutex
	nextID int
	byID   map[int]note
}

func newNotes() *notes { return &notes{nextID: 1, byID: map[int]note{}} }

func (n *notes) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes", n.list)
	mux.HandleFunc("GET /notes/{id}", n.get)
	mux.HandleFunc("POST /notes", n.create)
	mux.HandleFunc("DELETE /notes/{id}", n.delete)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

func (n *notes) list(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	out := make([]note, 0, len(n.byID))
	for _, v := range n.byID {
		out = append(out, v)
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b note) int { return a.ID - b.ID })
	writeJSON(w, http.StatusOK, out)
}

func (n *notes) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		http.Error(w, "id must be a number", http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	v, ok := n.byID[id]
	n.mu.Unlock()
	if !ok {
		http.Error(w, "no such note", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *notes) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.Text == "" {
		http.Error(w, `body must be {"text": "..."}`, http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	v := note{ID: n.nextID, Text: in.Text, Author: r.Header.Get("X-User"), Created: time.Now().UTC()}
	n.byID[v.ID] = v
	n.nextID++
	n.mu.Unlock()
	writeJSON(w, http.StatusCreated, v)
}

func (n *notes) delete(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		http.Error(w, "id must be a number", http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	_, ok := n.byID[id]
	delete(n.byID, id)
	n.mu.Unlock()
	if !ok {
		http.Error(w, "no such note", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
