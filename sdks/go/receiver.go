package holdover

// The receiver: one WebSocket session at a time, and the state machine around it.
//
//	connecting ──welcome──▶ open ──session lost──▶ reconnecting ──delay──▶ connecting …
//	     any state ──Close, or a close code after which the contract says stop──▶ closed (final)
//
// One goroutine (run) owns the connection attempts: it dials with the Bearer token, reads frames
// until the session ends, and asks the close-code table (ReconnectPolicyOf) what comes next; a
// session also has a heartbeat goroutine that pings every heartbeatMs. A session that sends no
// frame for twice heartbeatMs, or no welcome within ConnectTimeout, is given up (closed with 4000)
// and reopened with backoff. Messages wait in an inbox tagged with their session; Next drops the
// ones of a session that has ended (the gateway redelivers them) and those already handed over
// (DedupWindow), so the caller sees each message once, in the gateway's order. Acks of one
// session go out coalesced into one frame per write. Close stops everything the Receiver started
// and waits for it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Subprotocol is the WebSocket subprotocol of the contract.
const Subprotocol = "holdover.v1"

// State of a Receiver.
type State string

const (
	// StateConnecting: opening a socket and waiting for the welcome.
	StateConnecting State = "connecting"
	// StateOpen: welcomed; messages flow.
	StateOpen State = "open"
	// StateReconnecting: waiting out the delay before the next attempt.
	StateReconnecting State = "reconnecting"
	// StateClosed: final (Close, or a close code after which the contract says not to reconnect).
	StateClosed State = "closed"
)

// EventKind names what an Event reports; the same events as the TypeScript SDK.
type EventKind string

const (
	EventConnecting   EventKind = "connecting"
	EventOpen         EventKind = "open"
	EventReconnecting EventKind = "reconnecting"
	EventClosed       EventKind = "closed"
	EventTakenOver    EventKind = "taken-over"
	EventError        EventKind = "error"
)

// Event is what OnEvent is called with. Which fields are set depends on Kind: Attempt
// (connecting, reconnecting), Welcome (open), Delay/Code/Reason (reconnecting), Code/Reason
// (closed), Reason (taken-over), Err (error).
type Event struct {
	Kind    EventKind
	Attempt int
	Welcome *Welcome
	Delay   time.Duration
	Code    int
	Reason  string
	Err     *Error
}

// ReceiverOptions configure a Receiver. URL and one of Token or TokenFunc are required.
type ReceiverOptions struct {
	// URL is ws://…/v1/ws or wss://…/v1/ws.
	URL string
	// Token is a static JWT with the receive scope. With only this, a 4401 close (expired token)
	// stops the Receiver.
	Token string
	// TokenFunc is called before every connection attempt; after a 4401 it brings a fresh token.
	TokenFunc func(ctx context.Context) (string, error)
	// OnEvent is called with every event, from the Receiver's goroutine: it must not block.
	OnEvent func(Event)
	// DedupWindow is how many handed-over message ids are remembered to drop redeliveries.
	// Default 10 000.
	DedupWindow int
	// Backoff bounds reconnect delays. Default 250 ms initial, 30 s max.
	Backoff Backoff
	// ConnectTimeout gives up on an attempt that has no welcome after this long. Default 10 s.
	ConnectTimeout time.Duration
	// MaxFrameBytes is the largest frame read. Default 16 MiB.
	MaxFrameBytes int64
	// MaxOutbox is how many unconfirmed Sends are kept across reconnects; beyond it Send fails
	// with OUTBOX_FULL. Default 1000.
	MaxOutbox int
	// HTTPClient is used for the upgrade request (TLS settings, proxies). Default: the
	// websocket package's.
	HTTPClient *http.Client
}

// Receiver receives one recipient's messages. Next (or Messages) is meant for one goroutine;
// Ack, State, Welcome and Close may be called from any.
type Receiver struct {
	opts     ReceiverOptions
	token    tokenSource
	backoff  Backoff
	stop     context.CancelFunc
	stopCtx  context.Context // done once the Receiver is final
	finished chan struct{}   // closed when run has returned
	ready    chan struct{}   // a message arrived, or the Receiver stopped (capacity 1)
	sendMu   sync.Mutex      // one writer of send frames at a time, so they go out in order

	mu       sync.Mutex
	state    State
	welcome  *Welcome
	live     *websocket.Conn // the current attempt's connection, from dial to close
	conn     *websocket.Conn // the welcomed session's (acks go there), nil between sessions
	session  uint64          // bumped when a session is welcomed and when it ends
	inbox    []inboxEntry
	handed   *DedupWindow        // ids handed over by Next
	acked    *DedupWindow        // ids the caller acked: their redeliveries are acked again
	acks     []string            // acks of the current session not written yet
	unacked  map[string]struct{} // ids sent on the current session and not acked: where an ack may go
	outbox   *outbox
	flushing bool
	final    *Error // why the Receiver stopped; nil while it runs
}

type inboxEntry struct {
	msg     *Message
	session uint64
}

// writeTimeout bounds one frame written by the Receiver (an ack, a ping). The websocket package
// closes a connection whose write is cancelled, so callers' contexts are not used for writes.
const writeTimeout = 10 * time.Second

// NewReceiver checks the options and starts connecting in the background.
func NewReceiver(opts ReceiverOptions) (*Receiver, error) {
	if !strings.HasPrefix(opts.URL, "ws://") && !strings.HasPrefix(opts.URL, "wss://") {
		return nil, fmt.Errorf("holdover: the receiver URL must be ws:// or wss://, got %q", opts.URL)
	}
	if opts.Token == "" && opts.TokenFunc == nil {
		return nil, errors.New("holdover: NewReceiver needs Token or TokenFunc")
	}
	window := opts.DedupWindow
	if window == 0 {
		window = 10_000
	}
	handed, err := NewDedupWindow(window)
	if err != nil {
		return nil, err
	}
	acked, _ := NewDedupWindow(window)
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.MaxFrameBytes <= 0 {
		opts.MaxFrameBytes = 16 << 20
	}
	if opts.MaxOutbox <= 0 {
		opts.MaxOutbox = 1000
	}
	stopCtx, stop := context.WithCancel(context.Background())
	r := &Receiver{
		opts:     opts,
		token:    tokenSource{token: opts.Token, fn: opts.TokenFunc},
		backoff:  opts.Backoff.orDefault(),
		stop:     stop,
		stopCtx:  stopCtx,
		finished: make(chan struct{}),
		ready:    make(chan struct{}, 1),
		state:    StateConnecting,
		handed:   handed,
		acked:    acked,
		outbox:   newOutbox(opts.MaxOutbox),
		unacked:  map[string]struct{}{},
	}
	go r.run()
	return r, nil
}

// State is the Receiver's state now.
func (r *Receiver) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Welcome is the welcome of the current (or last) session; nil before the first.
func (r *Receiver) Welcome() *Welcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.welcome
}

// Next blocks until the next message, ctx is done (ctx's error), or the Receiver stops: then an
// *Error with Code CLIENT_CLOSED and the close code that stopped it. Messages come in the order
// the gateway sent them, each once.
func (r *Receiver) Next(ctx context.Context) (*Message, error) {
	for {
		if msg, err := r.take(); msg != nil || err != nil {
			return msg, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.ready:
		}
	}
}

// Messages iterates over Next: each message with a nil error, then, once, the error that ended
// the iteration (the Receiver stopped, or ctx is done).
func (r *Receiver) Messages(ctx context.Context) iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		for {
			msg, err := r.Next(ctx)
			if !yield(msg, err) || err != nil {
				return
			}
		}
	}
}

// take hands over the first inbox entry that is still news, or the final error.
func (r *Receiver) take() (*Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.inbox) > 0 {
		entry := r.inbox[0]
		r.inbox[0] = inboxEntry{}
		r.inbox = r.inbox[1:]
		id := entry.msg.ID
		switch {
		case entry.session != r.session:
			continue // its session ended: the gateway sends it again if it is still unacked
		case r.handed.Has(id):
			if r.acked.Has(id) && r.queueAck(id) { // handled before the session broke: ack the redelivery
				go r.flushAcks()
			}
			continue
		}
		r.handed.Add(id)
		return entry.msg, nil
	}
	if r.final != nil {
		return nil, r.final
	}
	return nil, nil
}

func (r *Receiver) ack(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	if r.final != nil {
		r.mu.Unlock()
		return r.final
	}
	r.acked.Add(id)
	queued := r.queueAck(id)
	r.mu.Unlock()
	if queued {
		r.flushAcks()
	}
	return nil
}

// queueAck queues an ack for the current session if the gateway sent id on it (acks never go
// to a session that did not send the message); otherwise the redelivery is acked on arrival.
func (r *Receiver) queueAck(id string) bool {
	if _, ok := r.unacked[id]; !ok || r.conn == nil {
		return false
	}
	delete(r.unacked, id)
	r.acks = append(r.acks, id)
	return true
}

// flushAcks writes the pending acks of the current session, coalesced: one caller writes at a
// time, and acks queued meanwhile go out in its next frame. A write that fails means the session
// is ending; the acks are remembered (acked) and the redeliveries are acked instead.
func (r *Receiver) flushAcks() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flushing {
		return
	}
	r.flushing = true
	defer func() { r.flushing = false }()
	for len(r.acks) > 0 && r.conn != nil {
		ids := r.acks[:min(len(r.acks), 10_000)] // the contract's limit per ack frame
		r.acks = r.acks[len(ids):]
		conn := r.conn
		r.mu.Unlock()
		err := writeFrame(conn, map[string]any{"type": "ack", "ids": ids})
		r.mu.Lock()
		if err != nil {
			return
		}
	}
}

// Close stops the Receiver: the session is closed with 1000, every goroutine it started ends,
// Next returns CLIENT_CLOSED. It waits for all of that until ctx is done.
func (r *Receiver) Close(ctx context.Context) error {
	r.finish(CloseNormal, "closed by the client")
	select {
	case <-r.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish makes the Receiver final (once), closes its connection and wakes everyone waiting.
func (r *Receiver) finish(code int, reason string) {
	r.mu.Lock()
	if r.final != nil {
		r.mu.Unlock()
		return
	}
	r.final = &Error{Code: CodeClientClosed, Message: reason, CloseCode: code}
	r.state = StateClosed
	r.inbox = nil
	r.acks = nil
	clear(r.unacked)
	r.outbox.rejectAll(&Error{Code: CodeClientClosed, Message: "the receiver stopped: " + reason, CloseCode: code})
	live := r.live
	r.mu.Unlock()
	r.stop()
	if live != nil {
		go closeConn(live, CloseNormal, reason) // the session's reader sees it and returns
	}
	r.wake()
}

func (r *Receiver) wake() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *Receiver) emit(event Event) {
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(event)
	}
}

func (r *Receiver) emitError(code ErrorCode, message string, cause error) {
	r.emit(Event{Kind: EventError, Err: &Error{Code: code, Message: message, Cause: cause}})
}

// setState moves to state unless the Receiver is final.
func (r *Receiver) setState(state State) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.final != nil {
		return false
	}
	r.state = state
	return true
}

// run is the connection loop: one attempt after another until the Receiver is final.
func (r *Receiver) run() {
	defer close(r.finished)
	defer func() {
		r.mu.Lock()
		final := r.final
		r.mu.Unlock()
		r.emit(Event{Kind: EventClosed, Code: final.CloseCode, Reason: final.Message})
	}()
	attempt := 0 // attempts of the current outage; a welcome resets it
	for {
		if !r.setState(StateConnecting) {
			return
		}
		r.emit(Event{Kind: EventConnecting, Attempt: attempt})
		code, reason, welcomed := r.connect()
		if welcomed {
			attempt = 0
		}
		now := false // reconnect at once: only after a welcomed session, so a failing server is not hammered
		switch ReconnectPolicyOf(code) {
		case ReconnectNo:
			if code == CloseTakenOver && r.stopCtx.Err() == nil {
				r.emit(Event{Kind: EventTakenOver, Reason: reason})
			}
			r.finish(code, reason)
		case ReconnectFreshToken:
			if r.opts.TokenFunc == nil {
				r.finish(code, reason+"; no TokenFunc was given to fetch a fresh token")
			}
			now = welcomed
		case ReconnectImmediately:
			now = welcomed
		case ReconnectBackoff:
		}
		delay, delayAttempt := time.Duration(0), attempt
		if !now {
			delay = BackoffDelay(attempt, r.backoff, nil)
			attempt++
		}
		if !r.setState(StateReconnecting) {
			return
		}
		r.emit(Event{Kind: EventReconnecting, Attempt: delayAttempt, Delay: delay, Code: code, Reason: reason})
		timer := time.NewTimer(delay)
		select {
		case <-r.stopCtx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}
}

// connect makes one attempt and runs its session to the end: the close code (1006 when the
// connection died without one), the reason in words, and whether the session was welcomed.
func (r *Receiver) connect() (code int, reason string, welcomed bool) {
	token, err := r.token.get(r.stopCtx)
	if err != nil {
		if r.stopCtx.Err() == nil {
			r.emitError(CodeTokenFailed, "TokenFunc failed: "+err.Error(), err)
		}
		return CloseAbnormal, describeClose(CloseAbnormal, "no token"), false
	}
	deadline := time.Now().Add(r.opts.ConnectTimeout)
	dialCtx, cancelDial := context.WithDeadline(r.stopCtx, deadline)
	conn, _, err := websocket.Dial(dialCtx, r.opts.URL, &websocket.DialOptions{
		Subprotocols: []string{Subprotocol},
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + token}},
		HTTPClient:   r.opts.HTTPClient,
	})
	cancelDial()
	if err != nil {
		if r.stopCtx.Err() != nil {
			return CloseNormal, "closed by the client", false
		}
		r.emitError(CodeConnectionLost, "cannot open a WebSocket: "+err.Error(), err)
		return CloseAbnormal, describeClose(CloseAbnormal, "cannot open a WebSocket"), false
	}
	conn.SetReadLimit(r.opts.MaxFrameBytes)
	r.mu.Lock()
	stopped := r.final != nil
	if !stopped {
		r.live = conn
	}
	r.mu.Unlock()
	if stopped {
		closeConn(conn, CloseNormal, "closed by the client")
		return CloseNormal, "closed by the client", false
	}
	s := &session{r: r, conn: conn}
	code, serverReason := s.run(deadline)
	r.mu.Lock()
	r.live = nil
	if r.conn == conn {
		r.conn = nil
		r.session++
		r.inbox = nil
		r.acks = nil
		clear(r.unacked)
		r.outbox.detach()
	}
	r.mu.Unlock()
	return code, describeClose(code, serverReason), s.welcomed
}

// session is one connection from dial to close.
type session struct {
	r        *Receiver
	conn     *websocket.Conn
	welcomed bool
}

// run reads frames until the session ends; the welcome must come before welcomeBy.
func (s *session) run(welcomeBy time.Time) (int, string) {
	r := s.r
	var heartbeat time.Duration
	stopHeartbeat := func() {}
	defer func() { stopHeartbeat() }()
	for {
		// Not derived from stopCtx: Close ends a session with a closing handshake, not by
		// cancelling a read (which would drop the connection without a close frame).
		var readCtx context.Context
		var cancel context.CancelFunc
		switch {
		case !s.welcomed:
			readCtx, cancel = context.WithDeadline(context.Background(), welcomeBy)
		case heartbeat > 0:
			readCtx, cancel = context.WithTimeout(context.Background(), 2*heartbeat)
		default:
			readCtx, cancel = context.WithCancel(context.Background())
		}
		kind, data, err := s.conn.Read(readCtx)
		timedOut := readCtx.Err() != nil
		cancel()
		if err != nil {
			switch {
			case r.stopCtx.Err() != nil:
				closeConn(s.conn, CloseNormal, "closed by the client")
				return CloseNormal, "closed by the client"
			case timedOut && !s.welcomed:
				return s.giveUp(fmt.Sprintf("no welcome within %v", r.opts.ConnectTimeout))
			case timedOut:
				return s.giveUp(fmt.Sprintf("no frame within %v (2 × heartbeatMs)", 2*heartbeat))
			}
			if status := websocket.CloseStatus(err); status != -1 {
				var closeErr websocket.CloseError
				errors.As(err, &closeErr)
				return int(status), closeErr.Reason
			}
			r.emitError(CodeConnectionLost, "WebSocket error: "+err.Error(), err)
			return CloseAbnormal, ""
		}
		if kind != websocket.MessageText {
			r.emitError(CodeInvalidServerFrame, "a binary frame", nil)
			continue
		}
		if welcome := s.receive(data); welcome != nil {
			s.welcomed = true
			heartbeat = time.Duration(welcome.HeartbeatMs) * time.Millisecond
			stopHeartbeat = startHeartbeat(s.conn, heartbeat)
			r.writeSends() // before the open event, so a Send made in OnEvent queues behind them
			r.emit(Event{Kind: EventOpen, Welcome: welcome})
		}
	}
}

// giveUp closes a session that looks dead with 4000 and reports it as lost (1006).
func (s *session) giveUp(reason string) (int, string) {
	s.r.emitError(CodeConnectionLost, reason, nil)
	closeConn(s.conn, closeGivingUp, reason)
	return CloseAbnormal, reason
}

// closeConn closes with a closing handshake, which waits for the server's answer at most 5 s
// (the websocket package's bound); a second close of the same connection is harmless.
func closeConn(conn *websocket.Conn, code int, reason string) {
	if len(reason) > 123 {
		reason = reason[:123] // a close frame's reason is at most 123 bytes
	}
	_ = conn.Close(websocket.StatusCode(code), reason)
}

// startHeartbeat pings every interval (the server answers pong) until the returned func is called.
func startHeartbeat(conn *websocket.Conn, interval time.Duration) func() {
	if interval <= 0 {
		return func() {}
	}
	stopped, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-stopped:
				return
			case <-ticker.C:
				_ = writeFrame(conn, map[string]string{"type": "ping"})
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
		if r.conn == s.conn {
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
