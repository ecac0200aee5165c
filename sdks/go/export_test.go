package holdover

// SendsAdded is how many Sends have entered r's outbox so far, for the conformance runner,
// which makes a case's sends one after another in order.
func SendsAdded(r *Receiver) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outbox.added
}
