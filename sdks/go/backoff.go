package holdover

// Reconnect and retry delays: capped exponential backoff with full jitter ("Exponential Backoff
// And Jitter", AWS Architecture Blog), the same formula as the TypeScript SDK's Backoff.ts.

import (
	"math/rand/v2"
	"time"
)

// Backoff bounds the delays of one outage (or one producer call's retries).
type Backoff struct {
	// Initial is the ceiling of the first delay (attempt 0). Default 250 ms.
	Initial time.Duration
	// Max is the ceiling of every delay. Default 30 s.
	Max time.Duration
}

// DefaultBackoff is what a zero Backoff in the options means.
var DefaultBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second}

func (b Backoff) orDefault() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	return b
}

// BackoffDelay is the delay before attempt (0-based): a uniformly random whole number of
// milliseconds in [0, min(Max, Initial × 2^attempt)). Full jitter spreads a crowd of clients
// that lost the same gateway over the whole window instead of sending them back together.
// random returns a number in [0, 1); nil means math/rand/v2.
func BackoffDelay(attempt int, b Backoff, random func() float64) time.Duration {
	if random == nil {
		random = rand.Float64
	}
	maxMs := max(0, b.Max.Milliseconds())
	initialMs := min(max(0, b.Initial.Milliseconds()), maxMs)
	ceiling := initialMs
	for i := 0; i < max(0, attempt) && ceiling < maxMs; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, maxMs)
	r := min(max(random(), 0), 1)
	ms := min(int64(r*float64(ceiling)), max(0, ceiling-1))
	return time.Duration(ms) * time.Millisecond
}
