package holdover_test

// The acceptance test for the Go receiver: a mixed-priority backlog reaches it in strict
// priority order, FIFO within a priority, each message once, after the gateway it was connected
// to is killed with SIGKILL and a new one comes up in its place. The driver (sdks/test/go.test.ts)
// runs the gateways: HOLDOVER_KILL_URL is the one to kill, HOLDOVER_KILL_CONTROL the driver's
// endpoint that kills it (POST /kill) and starts a new gateway on the same port (POST /restart);
// HOLDOVER_URL is another gateway on the same NATS, which takes producers meanwhile.

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	holdover "github.com/holdover/holdover/sdks/go"
)

func TestKilledGatewayBacklogArrivesInPriorityOrderAfterReconnect(t *testing.T) {
	g := needGateway(t)
	doomed, control := os.Getenv("HOLDOVER_KILL_URL"), os.Getenv("HOLDOVER_KILL_CONTROL")
	if doomed == "" || control == "" {
		t.Skip("no gateway to kill: set HOLDOVER_KILL_URL and HOLDOVER_KILL_CONTROL (sdks/test/go.test.ts does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	kim := unique("kim")
	p := g.producer(t)
	seq := map[holdover.Priority]int{}
	post := func(rounds int) {
		results, err := p.SendBatch(ctx, mixedBacklog(kim, seq, rounds))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if r.Err != nil || r.Status != "queued" {
				t.Fatalf("batch: %+v %v", r, r.Err)
			}
		}
	}
	post(3) // 6 of each priority
	all := 24

	rec := newRecorder()
	r, err := holdover.NewReceiver(holdover.ReceiverOptions{
		URL:     "ws" + strings.TrimPrefix(doomed, "http") + "/v1/ws",
		Token:   g.token(t, kim, "receive", time.Hour),
		Backoff: holdover.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		OnEvent: rec.onEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReceiver(t, r)
	rec.waitFor(t, holdover.EventOpen, 20*time.Second)
	var got []numbered
	var lateAck *holdover.Message
	for range 5 {
		msg, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, payloadOf(t, msg))
		if len(got) < 5 {
			if err := msg.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		} else {
			lateAck = msg // acked only after the reconnect
		}
	}

	callControl(t, ctx, control+"/kill")
	lost := rec.waitFor(t, holdover.EventReconnecting, 20*time.Second)
	post(2) // 4 more of each while the receiver's gateway is down
	all += 16
	callControl(t, ctx, control+"/restart")
	rec.waitFor(t, holdover.EventOpen, 30*time.Second)

	for len(got) < all {
		msg, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d: %v", len(got), all, err)
		}
		got = append(got, payloadOf(t, msg))
		if err := msg.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		if lateAck != nil {
			if err := lateAck.Ack(ctx); err != nil {
				t.Fatal(err)
			}
			lateAck = nil
		}
	}
	if lost.Code != holdover.CloseAbnormal {
		t.Errorf("the session ended with %d (%s), want 1006", lost.Code, lost.Reason)
	}
	if problem := orderProblem(got); problem != "" {
		t.Fatal(problem)
	}
	for _, priority := range holdover.Priorities {
		n := 0
		for _, m := range got {
			if m.Priority == priority {
				n++
			}
		}
		if n != seq[priority] {
			t.Fatalf("%d %s messages handed over, %d sent: %v", n, priority, seq[priority], got)
		}
	}
	waitUntil(t, "every ack reached the queue", 30*time.Second, func() bool { return total(g.depth(t, kim)) == 0 })
	t.Logf("%d messages in priority order across a SIGKILL: %v", len(got), got)
}

func callControl(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s answered %d", url, res.StatusCode)
	}
}
