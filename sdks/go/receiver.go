package holdover

// The receiver: one WebSocket session at a time, and the state machine around it.
//
//	connecting ──welcome──▶ open ──session lost──▶ reconnecting ──delay──▶ connecting …
//	     any state ──Close, or a close code after which the contract says stop──▶ closed (final)
//
// One goroutine (run) owns the connection attempts: it dials with the Bearer token, runs the
// session (session.go) until it ends, and asks the close-code table (ReconnectPolicyOf) what
// comes next, waiting out a full-jitter backoff delay where the table says so. Handing messages
// over and acking them is delivery.go's; unconfirmed Sends are outbox.go's. Close (or a close code
// after which the contract says stop) makes the Receiver final: the connection is closed with a
// closing handshake, unconfirmed Sends fail with CLIENT_CLOSED, and Close waits until every
// goroutine the Receiver started (closes, ack flushes, the connect timer's and the heartbeat's
// work) has ended: each is counted in a WaitGroup that run waits for before it is finished.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	// OnEvent is called with every event, from the Receiver's goroutine: it must not block (nor
	// call Close, which waits for that goroutine).
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
	finished chan struct{}   // closed when run and every goroutine in tasks have returned
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
	final    *Error         // why the Receiver stopped; nil while it runs
	tasks    sync.WaitGroup // goroutines besides run (closes, ack flushes, timers); Add under mu
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
	if r.live != nil {
		live := r.live
		r.goLocked(func() { closeConn(live, CloseNormal, reason) }) // the session's reader sees it and returns
	}
	r.mu.Unlock()
	r.stop()
	r.wake()
}

// goLocked runs f in a goroutine that run waits for before the Receiver counts as finished.
// r.mu must be held: a goroutine is only started while the Receiver runs, or by one that is
// itself counted, so no Add can come after run's Wait has begun.
func (r *Receiver) goLocked(f func()) {
	r.tasks.Add(1)
	go func() {
		defer r.tasks.Done()
		f()
	}()
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
	defer r.tasks.Wait()
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
