package journal_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/cairn-audit/cairn/internal/journal"
)

// A consumer follows the journal from its own durable cursor: wait for new
// entries, process a batch, commit the position. After a restart it resumes
// after the last committed position, so its processing must be idempotent
// for the entries between its last commit and a crash.
func Example_consumer() {
	dir, err := os.MkdirTemp("", "journal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	j, err := journal.Open(ctx, dir, journal.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()

	// Intake: Append returns once the entries are fsynced.
	first, err := j.Append(ctx, [][]byte{[]byte(`{"eventName":"CreateTrail"}`), []byte(`{"eventName":"StartLogging"}`)})
	if err != nil {
		log.Fatal(err) // wraps journal.ErrUnavailable: refuse the request (fail closed)
	}
	fmt.Println("appended from seq", first)

	// A consumer.
	cur := j.Cursor("history")
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := j.Wait(wctx, cur.Position()); err != nil {
		log.Fatal(err)
	}
	last, err := j.Read(ctx, cur.Position(), 1000, func(seq uint64, entry []byte) error {
		fmt.Printf("%d %s\n", seq, entry) // entry is only valid during the call
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := cur.Commit(ctx, last); err != nil {
		log.Fatal(err)
	}
	fmt.Println("cursor at", cur.Position(), "lag", cur.Lag())
	// Output:
	// appended from seq 1
	// 1 {"eventName":"CreateTrail"}
	// 2 {"eventName":"StartLogging"}
	// cursor at 2 lag 0
}
