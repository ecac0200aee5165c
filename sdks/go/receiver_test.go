package holdover_test

// The receiver against an in-process WebSocket server (no gateway needed): an ack reaches only
// the session that sent the message — a message handed over before its session ended is acked on
// the session that redelivered it — and Close ends the session with a 1000 closing handshake and
// leaves no goroutine behind when it returns.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	holdover "github.com/holdover/holdover/sdks/go"
)

const welcomeFrame = `{"type":"welcome","session":"s_1","recipient":"alice","pending":{"critical":0,"high":0,"normal":0,"low":0},"maxInFlight":16,"heartbeatMs":0}`

func messageFrame(id string, redelivered bool) string {
	frame, _ := json.Marshal(map[string]any{
		"type": "message", "id": id, "priority": "normal", "payload": map[string]string{"id": id},
		"enqueuedAt": "2026-01-01T00:00:00.000Z", "expiresAt": "2099-01-01T00:00:00.000Z", "redelivered": redelivered,
	})
	return string(frame)
}

// scriptedConn is one connection of scriptedGateway: what the client sent, and how it ended.
type scriptedConn struct {
	conn   *websocket.Conn
	frames chan map[string]any
	closed chan websocket.StatusCode
}

func (c *scriptedConn) send(t *testing.T, frames ...string) {
	for _, frame := range frames {
		if err := c.conn.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
			t.Errorf("write: %v", err)
		}
	}
}

// next is the next client frame of type kind (others are passed over).
func (c *scriptedConn) next(t *testing.T, kind string) map[string]any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case frame := <-c.frames:
			if frame["type"] == kind {
				return frame
			}
		case <-deadline:
			t.Fatalf("no %s frame within 5 s", kind)
		}
	}
}

// scriptedGateway accepts WebSocket connections and hands each to the test.
func scriptedGateway(t *testing.T) (string, <-chan *scriptedConn) {
	conns := make(chan *scriptedConn, 4)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{holdover.Subprotocol}})
		if err != nil {
			return
		}
		c := &scriptedConn{conn: conn, frames: make(chan map[string]any, 64), closed: make(chan websocket.StatusCode, 1)}
		conns <- c
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				c.closed <- websocket.CloseStatus(err)
				return
			}
			var frame map[string]any
			_ = json.Unmarshal(data, &frame)
			c.frames <- frame
		}
	}))
	t.Cleanup(server.Close)
	return "ws" + strings.TrimPrefix(server.URL, "http"), conns
}

func TestAnAckGoesOnlyToTheSessionThatSentTheMessage(t *testing.T) {
	url, conns := scriptedGateway(t)
	goroutines := runtime.NumGoroutine() // the server's listener is counted; its handlers end with their connections
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := holdover.NewReceiver(holdover.ReceiverOptions{URL: url, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	first := <-conns
	first.send(t, welcomeFrame, messageFrame("m1", false))
	m1, err := r.Next(ctx)
	if err != nil || m1.ID != "m1" {
		t.Fatalf("Next: %v %v", m1, err)
	}
	_ = first.conn.Close(holdover.CloseRestarting, "draining") // m1 handed over, not acked yet

	second := <-conns
	second.send(t, welcomeFrame, messageFrame("m1", true), messageFrame("m2", false))
	m2, err := r.Next(ctx)
	if err != nil || m2.ID != "m2" {
		t.Fatalf("Next after the reconnect: %v %v (m1 must not come twice)", m2, err)
	}
	if err := m1.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	var acked []any
	for len(acked) < 2 {
		acked = append(acked, second.next(t, "ack")["ids"].([]any)...)
	}
	if acked[0] != "m1" || acked[1] != "m2" {
		t.Fatalf("the second session got acks for %v", acked)
	}
	select {
	case frame := <-first.frames:
		t.Fatalf("the first session got %v after it ended", frame)
	default:
	}

	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-second.closed; code != websocket.StatusNormalClosure {
		t.Fatalf("the session ended with %d, want 1000", code)
	}
	var closed *holdover.Error
	if _, err := r.Next(ctx); !errors.As(err, &closed) || closed.Code != holdover.CodeClientClosed || closed.CloseCode != 1000 {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := m2.Ack(ctx); !errors.Is(err, holdover.ErrClientClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	// Close has waited for every goroutine the receiver started (its closing handshake, ack
	// flushes, timers): none is left the moment it returns.
	if stacks := receiverGoroutines(); len(stacks) > 0 {
		t.Fatalf("goroutines of the receiver still running after Close:\n%s", strings.Join(stacks, "\n\n"))
	}
	// The server's handlers end with their connections; then the count is back to before.
	waitUntil(t, "the server's handlers to end", 5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines })
}

// receiverGoroutines are the stacks of goroutines with a frame of the holdover package (not of
// its tests) that are inside a callee: waiting on the network, a lock, a timer. One whose top
// frame is the package's own code is returning (run, after it told Close that all has ended; a
// counted goroutine after its Done).
func receiverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, stack := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(stack, "\n")
		returning := len(lines) > 1 && strings.Contains(lines[1], "holdover/sdks/go.")
		if strings.Contains(stack, "holdover/sdks/go.") && !returning {
			found = append(found, stack)
		}
	}
	return found
}
