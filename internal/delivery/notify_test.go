package delivery

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/delivery/notify"
	"github.com/cairn-audit/cairn/internal/trail"
)

const testSecret = "webhook-secret-0123456789"

// webhook is a receiver that verifies signatures and can fail on demand.
type webhook struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	failNext int // answer 500 to this many more requests
	attempts []string
	got      []notify.Message
	ids      []string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{t: t}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		if err := notify.Verify([]byte(testSecret), r.Header, body, time.Now(), 0); err != nil {
			t.Errorf("webhook got a badly signed request: %v", err)
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		if r.Header.Get(notify.HeaderTopic) != "alerts" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook headers: %v", r.Header)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.attempts = append(w.attempts, r.Header.Get(notify.HeaderMessageID))
		if w.failNext > 0 {
			w.failNext--
			http.Error(rw, "try later", http.StatusInternalServerError)
			return
		}
		var m notify.Message
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		w.got = append(w.got, m)
		w.ids = append(w.ids, r.Header.Get(notify.HeaderMessageID))
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) messages() []notify.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func topicsFor(t *testing.T, url string) notify.Topics {
	t.Helper()
	topics, err := notify.NewTopics(notify.Topic{Name: "alerts", URL: url, Secret: []byte(testSecret), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return topics
}

// TestNotifications: each delivered batch POSTs CloudTrail's message
// naming the bucket and the files, signed, and the status records it.
func TestNotifications(t *testing.T) {
	hook := newWebhook(t)
	e := newEnv(t)
	e.bucket("logs")
	tr := e.trail("us-east-1", trail.CreateInput{Name: "notified", S3BucketName: "logs", SnsTopicName: "arn:aws:sns:us-east-1:123456789012:alerts", IsMultiRegionTrail: ptr(true)})
	opts := testOptions()
	opts.Topics = topicsFor(t, hook.srv.URL+"/hook")
	m := e.manager(opts)
	e.changed(m)
	e.append(rec{Region: "us-east-1"}, rec{Region: "eu-west-1"})
	e.start(m)
	e.caughtUp(tr.ARN())
	fs := files(t, e.store, "logs")
	waitFor(t, 10*time.Second, "the notifications", func() bool { return len(hook.messages()) >= len(fs) })

	// One message per log file, each naming its one key, as CloudTrail's
	// SNS notifications do.
	var keys, notified []string
	for _, f := range fs {
		keys = append(keys, f.Key)
	}
	msgs := hook.messages()
	for _, m := range msgs {
		if m.S3Bucket != "logs" || len(m.S3ObjectKey) != 1 {
			t.Errorf("notification %+v, want bucket logs and exactly one key", m)
		}
		notified = append(notified, m.S3ObjectKey...)
	}
	slices.Sort(notified)
	if !slices.Equal(notified, keys) {
		t.Errorf("notified keys %v, want one message for each of %v", notified, keys)
	}
	waitFor(t, 5*time.Second, "the notification status", func() bool {
		st := e.status(tr.ARN())
		return !st.LatestNotificationTime.IsZero() && st.LatestNotificationError == "" && !st.LatestNotificationAttemptSucceeded.IsZero()
	})
}

// TestNotificationRetried: a failing webhook is retried with the same
// message ID until it accepts; meanwhile the status shows the failure.
func TestNotificationRetried(t *testing.T) {
	hook := newWebhook(t)
	hook.failNext = 3
	e := newEnv(t)
	e.bucket("logs")
	tr := e.trail("us-east-1", trail.CreateInput{Name: "notified", S3BucketName: "logs", SnsTopicName: "alerts"})
	opts := testOptions()
	opts.RetryMin, opts.RetryMax = 50*time.Millisecond, 100*time.Millisecond
	opts.Topics = topicsFor(t, hook.srv.URL)
	m := e.manager(opts)
	e.changed(m)
	e.append(rec{})
	e.start(m)
	waitFor(t, 10*time.Second, "the failure in the status", func() bool {
		return e.status(tr.ARN()).LatestNotificationError == "Webhook.HTTP500"
	})
	waitFor(t, 10*time.Second, "the notification", func() bool { return len(hook.messages()) == 1 })
	hook.mu.Lock()
	attempts, ids := slices.Clone(hook.attempts), slices.Clone(hook.ids)
	hook.mu.Unlock()
	if len(attempts) != 4 {
		t.Errorf("%d attempts, want 3 failures and a success", len(attempts))
	}
	for _, a := range attempts {
		if a != ids[0] || len(a) != 16 {
			t.Errorf("attempt message IDs %v differ or are malformed", attempts)
			break
		}
	}
	waitFor(t, 5*time.Second, "the error to clear", func() bool {
		st := e.status(tr.ARN())
		return st.LatestNotificationError == "" && !st.LatestNotificationTime.IsZero()
	})
	// Nothing is left pending.
	keys, _, err := stateStore{e.st}.notifications(t.Context())
	if err != nil || len(keys) != 0 {
		t.Errorf("pending notifications %v, %v", keys, err)
	}
}

// TestNotificationUnknownTopic: a trail naming a topic Cairn does not have
// shows NotFound; the log files are delivered regardless.
func TestNotificationUnknownTopic(t *testing.T) {
	e := newEnv(t)
	e.bucket("logs")
	tr := e.trail("us-east-1", trail.CreateInput{Name: "orphan", S3BucketName: "logs", SnsTopicName: "nowhere"})
	m := e.manager(testOptions())
	e.changed(m)
	nums := e.append(rec{})
	e.start(m)
	e.caughtUp(tr.ARN())
	waitFor(t, 10*time.Second, "NotFound", func() bool {
		return e.status(tr.ARN()).LatestNotificationError == notify.CodeNotFound
	})
	exactlyOnce(t, delivered(t, files(t, e.store, "logs")), idsOf(nums))
}
