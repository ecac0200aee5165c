package holdover

// One WebSocket connection from dial to close: the reader that waits for the welcome (until the
// connect deadline) and then for frames (each within twice heartbeatMs), the heartbeat that pings
// every heartbeatMs, the decoding of the server's frames against the contract, and what each
// frame does to the Receiver (welcome opens the session and sends the outbox, message goes to
// the inbox, sent/error settle a Send). A session that looks dead is closed with 4000 and
// reported as lost (1006); a close frame's code goes to the close-code table in receiver.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// session is one connection from dial to close.
type session struct {
	r        *Receiver
	conn     *websocket.Conn
	welcomed bool
	lastRead atomic.Int64 // when the last frame arrived (UnixNano), for the heartbeat's watchdog

	mu        sync.Mutex
	abandoned string // why this side gave the session up, once it has
}

// run reads frames until the session ends; the welcome must come before welcomeBy.
func (s *session) run(welcomeBy time.Time) (int, string) {
	r := s.r
	// The timer's callback is counted from now; stopping the timer before it fires releases it.
	r.mu.Lock()
	r.tasks.Add(1)
	r.mu.Unlock()
	connectTimer := time.AfterFunc(time.Until(welcomeBy), func() {
		defer r.tasks.Done()
		s.abandon(fmt.Sprintf("no welcome within %v", r.opts.ConnectTimeout))
	})
	stopConnectTimer := func() bool {
		stopped := connectTimer.Stop()
		if stopped {
			r.tasks.Done()
		}
		return stopped
	}
	stopHeartbeat := func() {}
	defer func() {
		stopConnectTimer()
		stopHeartbeat()
	}()
	for {
		// No deadline on the read itself: the websocket package drops a connection whose read is
		// cancelled, without a close frame. Close and abandon end a session with a handshake.
		kind, data, err := s.conn.Read(context.Background())
		if err != nil {
			if r.stopCtx.Err() != nil {
				closeConn(s.conn, CloseNormal, "closed by the client")
				return CloseNormal, "closed by the client"
			}
			if reason := s.abandonedFor(); reason != "" {
				r.emitError(CodeConnectionLost, reason, nil)
				return CloseAbnormal, reason
			}
			if status := websocket.CloseStatus(err); status != -1 {
				var closeErr websocket.CloseError
				errors.As(err, &closeErr)
				return int(status), closeErr.Reason
			}
			r.emitError(CodeConnectionLost, "WebSocket error: "+err.Error(), err)
			return CloseAbnormal, ""
		}
		s.lastRead.Store(time.Now().UnixNano())
		if kind != websocket.MessageText {
			r.emitError(CodeInvalidServerFrame, "a binary frame", nil)
			continue
		}
		if welcome := s.receive(data); welcome != nil && stopConnectTimer() {
			s.welcomed = true
			stopHeartbeat = s.startHeartbeat(time.Duration(welcome.HeartbeatMs) * time.Millisecond)
			r.writeSends() // before the open event, so a Send made in OnEvent queues behind them
			r.emit(Event{Kind: EventOpen, Welcome: welcome})
		}
	}
}

// abandon gives up on a session that looks dead: it closes it with 4000, and the reader reports
// it as lost (1006), after which the Receiver reconnects with backoff.
func (s *session) abandon(reason string) {
	s.mu.Lock()
	first := s.abandoned == ""
	if first {
		s.abandoned = reason
	}
	s.mu.Unlock()
	if first {
		closeConn(s.conn, closeGivingUp, reason)
	}
}

func (s *session) abandonedFor() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abandoned
}

// closeConn closes with a closing handshake, which waits for the server's answer at most 5 s
// (the websocket package's bound); a second close of the same connection is harmless.
func closeConn(conn *websocket.Conn, code int, reason string) {
	if len(reason) > 123 {
		reason = reason[:123] // a close frame's reason is at most 123 bytes
	}
	_ = conn.Close(websocket.StatusCode(code), reason)
}

// startHeartbeat keeps a welcomed session honest, as the TypeScript SDK's Heartbeat.ts does: a
// ping every interval (the server answers pong), and a watchdog that abandons the session when no
// frame at all has arrived for twice that — a half-open TCP connection otherwise looks alive for
// minutes. A watchdog that fires late means this process was starved (the server's answer may
// be sitting unread), so it pings once more and judges after another interval instead of
// dropping a healthy session. The returned func stops both and waits for them.
func (s *session) startHeartbeat(interval time.Duration) func() {
	if interval <= 0 {
		return func() {}
	}
	stopped, done := make(chan struct{}), make(chan struct{})
	ping := func() { _ = writeFrame(s.conn, map[string]string{"type": "ping"}) }
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		deadline := 2 * interval
		dueAt := time.Now().Add(deadline)
		watchdog := time.NewTimer(deadline)
		defer watchdog.Stop()
		for {
			select {
			case <-stopped:
				return
			case <-ticker.C:
				ping()
			case <-watchdog.C:
				now := time.Now()
				silent := now.Sub(time.Unix(0, s.lastRead.Load()))
				wait := deadline - silent
				switch {
				case silent >= deadline && now.Sub(dueAt) > interval/2:
					ping()
					wait = interval
				case silent >= deadline:
					reason := fmt.Sprintf("no frame within %v (2 × heartbeatMs)", deadline)
					s.r.mu.Lock()
					s.r.goLocked(func() { s.abandon(reason) })
					s.r.mu.Unlock()
					return
				}
				dueAt = now.Add(wait)
				watchdog.Reset(wait)
			}
		}
	}()
	return func() {
		close(stopped)
		<-done
	}
}

// serverFrame is every server → client frame's fields in one struct (the contract's union).
type serverFrame struct {
	Type string `json:"type"`
	Welcome
	Message
	Code   ErrorCode `json:"code"`
	Text   string    `json:"message"`
	Ref    string    `json:"ref"`
	Status string    `json:"status"`
}

// requiredFields of each server frame type (the contract's schema, libs/protocol Frame.ts).
var requiredFields = map[string][]string{
	"welcome": {"session", "recipient", "pending", "maxInFlight", "heartbeatMs"},
	"message": {"id", "priority", "payload", "enqueuedAt", "expiresAt", "redelivered"},
	"sent":    {"id", "status"},
	"error":   {"code", "message"},
	"pong":    {},
}

// decodeServerFrame parses a frame and checks it against the contract: a known type, its
// fields present and of the right JSON types, a known priority and status.
func decodeServerFrame(data []byte) (serverFrame, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return serverFrame{}, err
	}
	var frame serverFrame
	if err := json.Unmarshal(data, &frame); err != nil {
		return serverFrame{}, err
	}
	required, ok := requiredFields[frame.Type]
	if !ok {
		return serverFrame{}, fmt.Errorf("unknown type %q", frame.Type)
	}
	for _, field := range required {
		if value, ok := fields[field]; !ok || string(value) == "null" && field != "payload" {
			return serverFrame{}, fmt.Errorf("a %s frame without %s", frame.Type, field)
		}
	}
	switch frame.Type {
	case "message":
		if !slices.Contains(Priorities, frame.Message.Priority) {
			return serverFrame{}, fmt.Errorf("unknown priority %q", frame.Message.Priority)
		}
	case "sent":
		if frame.Status != "queued" && frame.Status != "dropped" {
			return serverFrame{}, fmt.Errorf("unknown status %q", frame.Status)
		}
	case "welcome":
		for _, priority := range Priorities {
			if _, ok := frame.Pending[priority]; !ok {
				return serverFrame{}, fmt.Errorf("a welcome without a pending count for %s", priority)
			}
		}
	}
	return frame, nil
}

// receive handles one text frame; the welcome, if it was one.
func (s *session) receive(data []byte) *Welcome {
	r := s.r
	frame, err := decodeServerFrame(data)
	if err != nil {
		r.emitError(CodeInvalidServerFrame, "not a frame of the contract: "+err.Error(), err)
		return nil
	}
	switch frame.Type {
	case "welcome":
		if s.welcomed {
			return nil
		}
		welcome := frame.Welcome
		r.mu.Lock()
		if r.final != nil {
			r.mu.Unlock()
			return nil
		}
		r.session++
		r.conn = s.conn
		r.welcome = &welcome
		r.state = StateOpen
		r.mu.Unlock()
		return &welcome
	case "message":
		if !s.welcomed {
			r.emitError(CodeInvalidServerFrame, "a message frame before the welcome", nil)
			return nil
		}
		msg := frame.Message
		msg.receiver = r
		r.mu.Lock()
		if r.conn == s.conn && r.final == nil { // not after Close: Next says CLIENT_CLOSED from then on
			r.unacked[msg.ID] = struct{}{}
			r.inbox = append(r.inbox, inboxEntry{msg: &msg, session: r.session})
		}
		r.mu.Unlock()
		r.wake()
	case "sent":
		r.mu.Lock()
		r.outbox.settle(frame.Ref, outcome{result: SendResult{ID: frame.Message.ID, Status: frame.Status}})
		r.mu.Unlock()
	case "error":
		err := &Error{Code: frame.Code, Message: frame.Text}
		r.mu.Lock()
		settled := frame.Ref != "" && r.outbox.settle(frame.Ref, outcome{err: err})
		r.mu.Unlock()
		if !settled {
			r.emit(Event{Kind: EventError, Err: err})
		}
	}
	return nil
}

func writeFrame(conn *websocket.Conn, frame any) error {
	data, err := json.Marshal(frame)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, data)
}
