// Package ratelog bounds how often one message is logged. A failure that
// repeats for every request (the journal refusing appends on a full disk)
// would otherwise write one line per request, tens of thousands a second,
// and fill the very disk that is short; the count of what was left out
// keeps the log truthful about how often it happened.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the interval for failures every request repeats.
const DefaultInterval = 10 * time.Second

// Limiter logs each message at most once per interval. Messages are told
// apart by their text, which must be a constant of the code, never input
// (the set of states stays bounded). Safe for concurrent use.
type Limiter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	state map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed int
}

// New returns a Limiter writing to log at most one line per message per
// interval; now is the clock (nil means time.Now).
func New(log *slog.Logger, every time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{log: log, every: every, now: now, state: make(map[string]*entry)}
}

// Error logs msg at Error level unless it was logged less than an interval
// ago; the line that is written carries "suppressed", the number of lines
// left out since the previous one.
func (l *Limiter) Error(msg string, args ...any) { l.Log(slog.LevelError, msg, args...) }

// Log is Error at any level.
func (l *Limiter) Log(level slog.Level, msg string, args ...any) {
	now := l.now()
	l.mu.Lock()
	e := l.state[msg]
	if e == nil {
		e = &entry{}
		l.state[msg] = e
	} else if now.Sub(e.last) < l.every {
		e.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := e.suppressed
	e.last, e.suppressed = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed, "suppressed_over", l.every.String())
	}
	l.log.Log(context.Background(), level, msg, args...)
}
