package holdover

// Sends over the session (the contract's `send` frame) that the gateway has not confirmed yet,
// in the order they were made. Each entry keeps one message id for its whole life (the caller's,
// or a generated UUID): it is the gateway's dedup key, so sending the entry again on a new
// session cannot queue it twice. Each attempt gets a fresh ref, which is how the `sent` / `error`
// answer finds its entry. Lifecycle, as in the TypeScript SDK's Outbox.ts: add (bounded; beyond
// it OUTBOX_FULL) → attemptAll on every welcomed session, oldest first → settle / fail by ref,
// or rejectAll when the Receiver stops; detach forgets the refs of a session that ended, so the
// next attemptAll sends those entries again. The Receiver's mutex guards it.

import (
	"context"
	"fmt"
)

// CodeOutboxFull: Send while MaxOutbox sends are already unconfirmed.
const CodeOutboxFull ErrorCode = "OUTBOX_FULL"

type outcome struct {
	result SendResult
	err    *Error
}

type outboxEntry struct {
	frame wireMessage
	ref   string // of the current attempt; "" when not sent on the current session
	done  chan outcome
}

type outbox struct {
	capacity int
	entries  []*outboxEntry // insertion order is the send order
	byRef    map[string]*outboxEntry
	refs     int
	added    int // entries ever added
}

func newOutbox(capacity int) *outbox {
	return &outbox{capacity: capacity, byRef: map[string]*outboxEntry{}}
}

func (o *outbox) add(frame wireMessage) (*outboxEntry, *Error) {
	if len(o.entries) >= o.capacity {
		return nil, &Error{Code: CodeOutboxFull, Message: fmt.Sprintf("the outbox already holds %d unconfirmed sends", o.capacity)}
	}
	entry := &outboxEntry{frame: frame, done: make(chan outcome, 1)}
	o.entries = append(o.entries, entry)
	o.added++
	return entry, nil
}

// unsent takes a ref for every entry not yet sent on the current session, oldest first, and
// returns the frames to write.
func (o *outbox) unsent() []map[string]any {
	var frames []map[string]any
	for _, entry := range o.entries {
		if entry.ref != "" {
			continue
		}
		o.refs++
		entry.ref = fmt.Sprintf("r%d", o.refs)
		o.byRef[entry.ref] = entry
		frames = append(frames, entry.frame.sendFrame(entry.ref))
	}
	return frames
}

// detach: the session ended, answers to its refs can no longer arrive; everything is unsent again.
func (o *outbox) detach() {
	for _, entry := range o.entries {
		entry.ref = ""
	}
	clear(o.byRef)
}

// settle ends the entry sent with ref; false if no entry has that ref.
func (o *outbox) settle(ref string, result outcome) bool {
	entry, ok := o.byRef[ref]
	if !ok {
		return false
	}
	o.remove(entry)
	entry.done <- result
	return true
}

func (o *outbox) remove(entry *outboxEntry) {
	delete(o.byRef, entry.ref)
	for i, e := range o.entries {
		if e == entry {
			o.entries = append(o.entries[:i], o.entries[i+1:]...)
			return
		}
	}
}

func (o *outbox) rejectAll(err *Error) {
	for _, entry := range o.entries {
		entry.done <- outcome{err: err}
	}
	o.entries = nil
	clear(o.byRef)
}

func (w wireMessage) sendFrame(ref string) map[string]any {
	frame := map[string]any{"type": "send", "ref": ref, "to": w.To, "id": w.ID, "payload": w.Payload}
	if w.Priority != "" {
		frame["priority"] = w.Priority
	}
	if w.TTLMs > 0 {
		frame["ttlMs"] = w.TTLMs
	}
	return frame
}

// Send enqueues a message over the session, like Producer.Send over HTTP (it needs the publish
// scope). While disconnected it waits in the outbox and goes out after the next welcome with the
// same id, so the gateway never queues it twice. It returns the gateway's answer, an *Error with
// its code (QUEUE_FULL, FORBIDDEN, …), OUTBOX_FULL, CLIENT_CLOSED when the Receiver stops first,
// or ctx's error: then the message may or may not have been queued, and sending it again with
// the same ID is safe.
func (r *Receiver) Send(ctx context.Context, msg Outgoing) (SendResult, error) {
	wire, err := toWire(msg)
	if err != nil {
		return SendResult{}, err
	}
	r.mu.Lock()
	if r.final != nil {
		r.mu.Unlock()
		return SendResult{}, r.final
	}
	entry, full := r.outbox.add(wire)
	r.mu.Unlock()
	if full != nil {
		return SendResult{}, full
	}
	r.writeSends()
	select {
	case out := <-entry.done:
		if out.err != nil {
			return SendResult{}, out.err
		}
		return out.result, nil
	case <-ctx.Done():
		r.mu.Lock()
		r.outbox.remove(entry)
		r.mu.Unlock()
		return SendResult{}, ctx.Err()
	}
}

// writeSends sends the outbox's unsent entries on the welcomed session, if there is one. A write
// that fails means the session is ending: detach makes them unsent again for the next one.
func (r *Receiver) writeSends() {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.mu.Lock()
	conn := r.conn
	if conn == nil {
		r.mu.Unlock()
		return
	}
	frames := r.outbox.unsent()
	r.mu.Unlock()
	for _, frame := range frames {
		if writeFrame(conn, frame) != nil {
			return
		}
	}
}
