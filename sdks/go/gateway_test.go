package holdover_test

// The SDK against a real gateway and a real nats-server (started by sdks/test/go.test.ts):
// enqueue, idempotency, the contract's error codes, a backlog handed over in priority order and
// acked, and the close codes that stop a Receiver.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	holdover "github.com/holdover/holdover/sdks/go"
)

func TestGatewayBacklogArrivesInPriorityOrderAndAckEmptiesTheQueue(t *testing.T) {
	g := needGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := unique("alice")
	p := g.producer(t)
	mixed := mixedBacklog(alice, map[holdover.Priority]int{}, 1)
	for _, msg := range mixed[:4] { // the first half one by one, the second in a batch
		result, err := p.Send(ctx, msg)
		if err != nil || result.Status != "queued" || result.Priority != msg.Priority || result.ExpiresAt.IsZero() {
			t.Fatalf("Send: %+v, %v", result, err)
		}
	}
	results, err := p.SendBatch(ctx, mixed[4:])
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	for i, r := range results {
		if r.Err != nil || r.Status != "queued" || r.ID == "" {
			t.Fatalf("batch result %d: %+v %v", i, r, r.Err)
		}
	}

	rec := newRecorder()
	r, err := holdover.NewReceiver(holdover.ReceiverOptions{URL: g.wsURL(), Token: g.token(t, alice, "receive", time.Hour), OnEvent: rec.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReceiver(t, r)
	welcome := rec.waitFor(t, holdover.EventOpen, 20*time.Second).Welcome
	if welcome.Recipient != alice || welcome.Pending[holdover.Critical] != 2 || welcome.Pending[holdover.Low] != 2 || welcome.MaxInFlight < 1 {
		t.Fatalf("welcome %+v", welcome)
	}
	var got []numbered
	for msg, err := range r.Messages(ctx) {
		if err != nil {
			t.Fatalf("Messages: %v", err)
		}
		got = append(got, payloadOf(t, msg))
		if err := msg.Ack(ctx); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if len(got) == len(mixed) {
			break
		}
	}
	if problem := orderProblem(got); problem != "" {
		t.Fatal(problem)
	}
	waitUntil(t, "every ack reached the queue", 20*time.Second, func() bool { return total(g.depth(t, alice)) == 0 })
}

func TestGatewaySameIDQueuesOnce(t *testing.T) {
	g := needGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob := unique("bob")
	p := g.producer(t)
	msg := holdover.Outgoing{To: bob, Priority: holdover.High, ID: "order-42", Payload: map[string]int{"n": 1}}
	first, err := p.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	results, err := p.SendBatch(ctx, []holdover.Outgoing{msg})
	if err != nil || results[0].Err != nil {
		t.Fatalf("SendBatch: %v %+v", err, results)
	}
	if first.ID != "order-42" || again != first || results[0].ID != "order-42" {
		t.Fatalf("first %+v, again %+v, batch %+v", first, again, results[0])
	}
	if depth := g.depth(t, bob); total(depth) != 1 || depth[holdover.High] != 1 {
		t.Fatalf("depth %v, want one high message", depth)
	}
}

func TestGatewayRefusalsCarryTheContractsCodes(t *testing.T) {
	g := needGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	carol := unique("carol")
	newProducer := func(token string) *holdover.Producer {
		p, err := holdover.NewProducer(holdover.ProducerOptions{URL: g.url, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	msg := holdover.Outgoing{To: carol, Payload: "hi"}
	cases := []struct {
		name     string
		producer *holdover.Producer
		msg      holdover.Outgoing
		want     *holdover.Error
		status   int
	}{
		{"an expired token", newProducer(g.token(t, "p", "publish", -time.Minute)), msg, holdover.ErrUnauthorized, 401},
		{"a token without the publish scope", newProducer(g.token(t, "p", "receive", time.Hour)), msg, holdover.ErrForbidden, 403},
		{"a payload over 64 KiB", g.producer(t), holdover.Outgoing{To: carol, Payload: strings.Repeat("x", 70_000)}, holdover.ErrMessageTooLarge, 413},
		{"a TTL above the priority's max age", g.producer(t), holdover.Outgoing{To: carol, Priority: holdover.Low, TTL: 48 * time.Hour, Payload: 1}, holdover.ErrInvalidMessage, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.producer.Send(ctx, c.msg)
			var e *holdover.Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) || e.Status != c.status || e.Message == "" {
				t.Fatalf("got %v, want %s with HTTP %d", err, c.want.Code, c.status)
			}
		})
	}
	t.Run("each message of a batch has its own outcome", func(t *testing.T) {
		invalid := holdover.Outgoing{To: carol, Priority: "urgent", Payload: 1} // refused here, not sent
		results, err := g.producer(t).SendBatch(ctx, []holdover.Outgoing{msg, invalid, cases[3].msg, msg})
		if err != nil {
			t.Fatal(err)
		}
		refusedAt := func(r holdover.BatchResult, path string) bool {
			return r.Err != nil && r.Err.Code == holdover.CodeInvalidMessage && r.Err.Path == path
		}
		if len(results) != 4 || results[0].Status != "queued" || !refusedAt(results[1], "messages.1.priority") ||
			!refusedAt(results[2], "messages.2.ttlMs") || results[3].Status != "queued" {
			t.Fatalf("results %+v; errors %v, %v", results, results[1].Err, results[2].Err)
		}
	})
}

func TestGatewayTakeoverStopsTheOlderReceiverWith4409(t *testing.T) {
	g := needGateway(t)
	dave := unique("dave")
	older, newer := newRecorder(), newRecorder()
	connect := func(rec *recorder) *holdover.Receiver {
		r, err := holdover.NewReceiver(holdover.ReceiverOptions{URL: g.wsURL(), Token: g.token(t, dave, "receive", time.Hour), OnEvent: rec.onEvent})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := connect(older)
	defer closeReceiver(t, first)
	older.waitFor(t, holdover.EventOpen, 20*time.Second)
	second := connect(newer)
	defer closeReceiver(t, second)
	newer.waitFor(t, holdover.EventOpen, 20*time.Second)

	older.waitFor(t, holdover.EventTakenOver, 20*time.Second)
	closed := older.waitFor(t, holdover.EventClosed, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := first.Next(ctx)
	var e *holdover.Error
	if closed.Code != 4409 || !errors.As(err, &e) || e.Code != holdover.CodeClientClosed || e.CloseCode != 4409 {
		t.Fatalf("closed %+v, Next: %v", closed, err)
	}
	if first.State() != holdover.StateClosed || second.State() != holdover.StateOpen {
		t.Fatalf("states %s and %s", first.State(), second.State())
	}
}

func TestGatewayExpiredTokenStopsAReceiverWithoutTokenFunc(t *testing.T) {
	g := needGateway(t)
	rec := newRecorder()
	r, err := holdover.NewReceiver(holdover.ReceiverOptions{URL: g.wsURL(), Token: g.token(t, unique("erin"), "receive", -time.Minute), OnEvent: rec.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReceiver(t, r)
	closed := rec.waitFor(t, holdover.EventClosed, 20*time.Second)
	if closed.Code != 4401 || !strings.Contains(closed.Reason, "no TokenFunc") {
		t.Fatalf("closed %+v", closed)
	}
}

func TestGatewayTokenFuncBringsAFreshTokenAfter4401(t *testing.T) {
	g := needGateway(t)
	frank := unique("frank")
	var calls atomic.Int32
	rec := newRecorder()
	r, err := holdover.NewReceiver(holdover.ReceiverOptions{
		URL: g.wsURL(),
		TokenFunc: func(context.Context) (string, error) {
			if calls.Add(1) == 1 {
				return g.token(t, frank, "receive", -time.Minute), nil
			}
			return g.token(t, frank, "receive", time.Hour), nil
		},
		Backoff: holdover.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		OnEvent: rec.onEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReceiver(t, r)
	reconnecting := rec.waitFor(t, holdover.EventReconnecting, 20*time.Second)
	welcome := rec.waitFor(t, holdover.EventOpen, 20*time.Second).Welcome
	if reconnecting.Code != 4401 || welcome.Recipient != frank || calls.Load() != 2 {
		t.Fatalf("reconnecting %+v, welcome %+v, %d tokens asked for", reconnecting, welcome, calls.Load())
	}
}

func TestGatewayUnackedMessageComesBackOnceToTheNextReceiver(t *testing.T) {
	g := needGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gina := unique("gina")
	if _, err := g.producer(t).Send(ctx, holdover.Outgoing{To: gina, Payload: numbered{holdover.Normal, 0}}); err != nil {
		t.Fatal(err)
	}
	receive := func() *holdover.Message {
		r, err := holdover.NewReceiver(holdover.ReceiverOptions{URL: g.wsURL(), Token: g.token(t, gina, "receive", time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		defer closeReceiver(t, r)
		msg, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	first := receive() // not acked
	second := receive()
	if first.ID != second.ID || first.Redelivered || !second.Redelivered {
		t.Fatalf("first %+v, second %+v", first, second)
	}
}
