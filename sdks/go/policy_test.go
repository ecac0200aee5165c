package holdover_test

// The pure parts, table-tested: full-jitter backoff, the close-code table, the dedup window.

import (
	"testing"
	"time"

	holdover "github.com/holdover/holdover/sdks/go"
)

func TestBackoffDelayIsFullJitterUnderACappedExponentialCeiling(t *testing.T) {
	b := holdover.Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second}
	cases := []struct {
		attempt int
		random  float64
		want    time.Duration
	}{
		{0, 0, 0},
		{0, 0.5, 125 * time.Millisecond},
		{0, 0.999999, 249 * time.Millisecond}, // below the ceiling, never at it
		{1, 0.5, 250 * time.Millisecond},
		{3, 0.5, time.Second},
		{7, 0.5, 15 * time.Second}, // 250 × 2^7 = 32 s is capped at 30 s
		{1000, 0.999999, 29999 * time.Millisecond},
		{-1, 0.5, 125 * time.Millisecond},
	}
	for _, c := range cases {
		if got := holdover.BackoffDelay(c.attempt, b, func() float64 { return c.random }); got != c.want {
			t.Errorf("attempt %d, random %v: %v, want %v", c.attempt, c.random, got, c.want)
		}
	}
	for range 1000 {
		if d := holdover.BackoffDelay(2, b, nil); d < 0 || d >= time.Second {
			t.Fatalf("attempt 2 waited %v, outside [0, 1 s)", d)
		}
	}
}

func TestReconnectPolicyIsTheContractsCloseCodeTable(t *testing.T) {
	want := map[int]holdover.ReconnectPolicy{
		1000: holdover.ReconnectNo, 4400: holdover.ReconnectNo, 4403: holdover.ReconnectNo, 4409: holdover.ReconnectNo,
		1012: holdover.ReconnectImmediately,
		4401: holdover.ReconnectFreshToken,
		1006: holdover.ReconnectBackoff, 1007: holdover.ReconnectBackoff, 1009: holdover.ReconnectBackoff,
		1011: holdover.ReconnectBackoff, 4429: holdover.ReconnectBackoff, 4000: holdover.ReconnectBackoff, 3999: holdover.ReconnectBackoff,
	}
	for code, policy := range want {
		if got := holdover.ReconnectPolicyOf(code); got != policy {
			t.Errorf("%d: %s, want %s", code, got, policy)
		}
	}
}

func TestDedupWindowForgetsTheOldestIDWhenFull(t *testing.T) {
	d, err := holdover.NewDedupWindow(2)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Add("a") || !d.Add("b") || d.Add("a") {
		t.Fatal("a and b are new, a again is not")
	}
	d.Add("c")
	if d.Has("a") || !d.Has("b") || !d.Has("c") || d.Len() != 2 {
		t.Fatalf("after c: a %v, b %v, c %v, len %d", d.Has("a"), d.Has("b"), d.Has("c"), d.Len())
	}
	if _, err := holdover.NewDedupWindow(0); err == nil {
		t.Fatal("a window of 0 ids was accepted")
	}
}
