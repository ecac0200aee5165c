package holdover_test

// The README's two examples, verbatim (TestReadmeExamplesAreTheseFunctions checks that), run
// against the real gateway.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	holdover "github.com/holdover/holdover/sdks/go"
)

func produce(ctx context.Context) error {
	producer, err := holdover.NewProducer(holdover.ProducerOptions{
		URL:   os.Getenv("HOLDOVER_URL"),   // http://localhost:8080
		Token: os.Getenv("HOLDOVER_TOKEN"), // a JWT with the publish scope
	})
	if err != nil {
		return err
	}
	result, err := producer.Send(ctx, holdover.Outgoing{To: "alice", Priority: holdover.High, Payload: map[string]int{"order": 42}})
	if err != nil {
		return err // an *holdover.Error: errors.Is(err, holdover.ErrQueueFull), …
	}
	fmt.Println(result.ID, result.Status) // retries on 503 and 429 reuse the id: queued once
	return nil
}

func receive(ctx context.Context, handle func(json.RawMessage) error) error {
	receiver, err := holdover.NewReceiver(holdover.ReceiverOptions{
		URL:   os.Getenv("HOLDOVER_WS_URL"),         // ws://localhost:8080/v1/ws
		Token: os.Getenv("HOLDOVER_RECEIVER_TOKEN"), // sub: the recipient, scope: receive
	})
	if err != nil {
		return err
	}
	defer receiver.Close(context.Background())
	for msg, err := range receiver.Messages(ctx) { // critical first, FIFO within a priority
		if err != nil {
			return err // ctx is done, or the receiver stopped for good (e.g. 4409 taken over)
		}
		if handle(msg.Payload) == nil {
			msg.Ack(ctx) // an unacked message comes back on the next session
		}
	}
	return nil
}

func TestReadmeExamplesRunAgainstTheGateway(t *testing.T) {
	g := needGateway(t)
	t.Setenv("HOLDOVER_TOKEN", g.token(t, "producer", "publish", time.Hour))
	t.Setenv("HOLDOVER_WS_URL", g.wsURL())
	t.Setenv("HOLDOVER_RECEIVER_TOKEN", g.token(t, "alice", "receive", time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := produce(ctx); err != nil {
		t.Fatal(err)
	}
	handled := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- receive(ctx, func(payload json.RawMessage) error {
			handled <- string(payload)
			return nil
		})
	}()
	select {
	case payload := <-handled:
		if payload != `{"order":42}` {
			t.Fatalf("handled %s", payload)
		}
	case err := <-done:
		t.Fatalf("receive returned %v before handling anything", err)
	}
	waitUntil(t, "the ack reached the queue", 20*time.Second, func() bool { return total(g.depth(t, "alice")) == 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("receive returned %v, want context.Canceled", err)
	}
}

func TestReadmeExamplesAreTheseFunctions(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	source, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) != 2 {
		t.Fatalf("%d Go blocks in README.md, want the producer and the receiver", len(blocks))
	}
	for _, block := range blocks {
		if !strings.Contains(string(source), block[1]) {
			t.Errorf("README.md shows code that example_test.go does not run:\n%s", block[1])
		}
	}
}
