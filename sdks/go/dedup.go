package holdover

// A bounded memory of recently handled message ids, so that a redelivered message (the server
// did not get the ack before the session ended) is not handed over twice. It remembers the last
// `capacity` ids: a ring gives the eviction order, a map gives O(1) lookups. An id older than the
// window is forgotten, which is fine: the server only redelivers messages still unacked, and
// those are at most maxInFlight per session. Not safe for concurrent use (the Receiver locks).

import "fmt"

// DedupWindow remembers the last Capacity ids added.
type DedupWindow struct {
	ring []string
	seen map[string]struct{}
	next int
}

// NewDedupWindow returns a window of capacity ids; capacity must be positive.
func NewDedupWindow(capacity int) (*DedupWindow, error) {
	if capacity < 1 {
		return nil, fmt.Errorf("holdover: the dedup window must hold at least one id, got %d", capacity)
	}
	return &DedupWindow{ring: make([]string, capacity), seen: make(map[string]struct{}, capacity)}, nil
}

// Capacity is how many ids the window remembers.
func (d *DedupWindow) Capacity() int { return len(d.ring) }

// Len is how many ids it remembers now.
func (d *DedupWindow) Len() int { return len(d.seen) }

// Has reports whether id is in the window.
func (d *DedupWindow) Has(id string) bool {
	_, ok := d.seen[id]
	return ok
}

// Add remembers id, evicting the oldest one when full; false if id was already there.
func (d *DedupWindow) Add(id string) bool {
	if d.Has(id) {
		return false
	}
	if evicted := d.ring[d.next]; evicted != "" {
		delete(d.seen, evicted)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % len(d.ring)
	d.seen[id] = struct{}{}
	return true
}
