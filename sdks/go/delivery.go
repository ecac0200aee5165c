package holdover

// Handing messages over and acking them. The session's reader appends each message to the inbox,
// tagged with its session; Next takes them in arrival order (the gateway sends in strict
// priority order, FIFO within a priority) and drops those of a session that has ended (the
// gateway redelivers what is unacked) and those already handed over (DedupWindow) — acking such a
// redelivery again when the caller had acked it, so the gateway can delete it. An ack goes only to
// the session that sent the message (the gateway knows no other session's ids); one made after
// that session ended is remembered and applied to the redelivery. Acks are coalesced: whatever
// piles up while one ack frame is written goes out in the next.

import (
	"context"
	"iter"
)

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
				r.goLocked(r.flushAcks)
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
