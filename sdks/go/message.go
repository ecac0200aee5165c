package holdover

// The contract's values as Go types: priorities, what a producer sends and gets back, and what a
// receiver is welcomed with and handed.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"
)

// Priority is "critical", "high", "normal" or "low"; the zero value means the gateway's default
// (normal).
type Priority string

const (
	Critical Priority = "critical"
	High     Priority = "high"
	Normal   Priority = "normal"
	Low      Priority = "low"
)

// Priorities in delivery order, highest first.
var Priorities = []Priority{Critical, High, Normal, Low}

// Outgoing is one message for a Producer to enqueue.
type Outgoing struct {
	// To is the recipient (a token's sub claim); 1 to 256 bytes.
	To       string
	Priority Priority
	// TTL is the message's own time to live (whole milliseconds; never above its priority's max
	// age); 0 means the priority's max age.
	TTL time.Duration
	// ID is the idempotency key; the same ID within the gateway's dedup window queues once.
	// Empty means the Producer generates one, so its retries cannot queue the message twice.
	ID string
	// Payload is any value encoding/json can marshal (a json.RawMessage is sent as is).
	Payload any
}

// SendResult is the gateway's answer to one enqueued message.
type SendResult struct {
	ID string `json:"id"`
	// Status is "queued", or "dropped" when the recipient's queue was full under drop_newest.
	Status    string    `json:"status"`
	Priority  Priority  `json:"priority,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Reason is why a message was dropped (QUEUE_FULL).
	Reason string `json:"reason,omitempty"`
}

// BatchResult is one message's outcome in SendBatch: Err is set when the gateway refused it.
type BatchResult struct {
	SendResult
	Err *Error
}

// Welcome is the frame that opens a session.
type Welcome struct {
	Session     string           `json:"session"`
	Recipient   string           `json:"recipient"`
	Pending     map[Priority]int `json:"pending"`
	MaxInFlight int              `json:"maxInFlight"`
	HeartbeatMs int              `json:"heartbeatMs"`
}

// Message is what a Receiver hands over. Ack it once handled; an unacked message comes back on
// the next session (with Redelivered set), and the gateway sends at most maxInFlight unacked.
type Message struct {
	ID          string          `json:"id"`
	Priority    Priority        `json:"priority"`
	Payload     json.RawMessage `json:"payload"`
	EnqueuedAt  time.Time       `json:"enqueuedAt"`
	ExpiresAt   time.Time       `json:"expiresAt"`
	Redelivered bool            `json:"redelivered"`

	receiver *Receiver
}

// Ack tells the gateway the message is handled, so it is gone from the queue. Outside a session
// (the connection is down) the ack is remembered and the redelivery is acked instead of handed
// over again. It fails only with ctx's error or when the Receiver is closed.
func (m *Message) Ack(ctx context.Context) error {
	if m.receiver == nil {
		return &Error{Code: CodeClientClosed, Message: "the message did not come from a Receiver"}
	}
	return m.receiver.ack(ctx, m.ID)
}

// tokenSource is the Token / TokenFunc pair of the options.
type tokenSource struct {
	token string
	fn    func(context.Context) (string, error)
}

func (t tokenSource) get(ctx context.Context) (string, error) {
	if t.fn == nil {
		return t.token, nil
	}
	token, err := t.fn(ctx)
	if err == nil && token == "" {
		err = fmt.Errorf("the token is empty")
	}
	return token, err
}

// newID is a random (version 4) UUID, the id of a message sent without one.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on the platforms Go supports
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
