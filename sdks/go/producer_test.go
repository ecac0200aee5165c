package holdover_test

// The producer's retries against a scripted HTTP server (httptest): what the contract says a
// gateway answers under load — 503 QUEUE_UNAVAILABLE and 429 RATE_LIMITED with Retry-After, 429
// QUEUE_FULL without — and a connection that drops before the answer.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	holdover "github.com/holdover/holdover/sdks/go"
)

// script answers the n-th request with answers[n] (the last one from then on) and records the
// bodies it was sent.
type script struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	bodies  []map[string]any
	at      []time.Time
}

func (s *script) serve(t *testing.T) *httptest.Server {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		s.mu.Lock()
		n := len(s.bodies)
		s.bodies = append(s.bodies, body)
		s.at = append(s.at, time.Now())
		answer := s.answers[min(n, len(s.answers)-1)]
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		answer(w)
	}))
	t.Cleanup(server.Close)
	return server
}

func refuse(status int, code, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"not now"}}`))
	}
}

func queued(w http.ResponseWriter) {
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"id":"m-1","status":"queued","priority":"high","expiresAt":"2030-01-01T00:00:00.000Z"}`))
}

func hangUp(w http.ResponseWriter) {
	conn, _, _ := w.(http.Hijacker).Hijack()
	_ = conn.Close()
}

func scriptedProducer(t *testing.T, s *script) *holdover.Producer {
	p, err := holdover.NewProducer(holdover.ProducerOptions{
		URL:     s.serve(t).URL,
		Token:   "tok",
		Backoff: holdover.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProducerRetriesWithTheSameIDHonouringRetryAfter(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){refuse(503, "QUEUE_UNAVAILABLE", "1"), refuse(429, "RATE_LIMITED", "1"), hangUp, queued}}
	result, err := scriptedProducer(t, s).Send(context.Background(), holdover.Outgoing{To: "alice", Priority: holdover.High, Payload: 1})
	if err != nil || result.Status != "queued" || result.ExpiresAt.Year() != 2030 {
		t.Fatalf("Send: %+v, %v", result, err)
	}
	if len(s.bodies) != 4 {
		t.Fatalf("%d requests, want 4", len(s.bodies))
	}
	id := s.bodies[0]["id"]
	for i, body := range s.bodies {
		if body["id"] != id || id == "" || body["to"] != "alice" || body["priority"] != "high" {
			t.Fatalf("request %d: %v (first id %v)", i, body, id)
		}
	}
	for i := range 2 { // the two Retry-After: 1 answers were waited out
		if gap := s.at[i+1].Sub(s.at[i]); gap < 900*time.Millisecond {
			t.Fatalf("retry %d came after %v, Retry-After said 1 s", i+1, gap)
		}
	}
}

func TestProducerDoesNotRetryQueueFull(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){refuse(429, "QUEUE_FULL", ""), queued}}
	_, err := scriptedProducer(t, s).Send(context.Background(), holdover.Outgoing{To: "alice", Payload: 1})
	var e *holdover.Error
	if !errors.Is(err, holdover.ErrQueueFull) || !errors.As(err, &e) || e.Status != 429 || len(s.bodies) != 1 {
		t.Fatalf("got %v after %d requests", err, len(s.bodies))
	}
}

func TestProducerGivesUpWhenRetryAfterOutlastsTheDeadline(t *testing.T) {
	// A producer that waited would return at the deadline, 20 s in; one that gave up at once
	// returns well before, however slow a loaded machine's first request is.
	s := &script{answers: []func(http.ResponseWriter){refuse(503, "QUEUE_UNAVAILABLE", "30"), queued}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	started := time.Now()
	_, err := scriptedProducer(t, s).Send(ctx, holdover.Outgoing{To: "alice", Payload: 1})
	var e *holdover.Error
	if !errors.As(err, &e) || e.Code != holdover.CodeQueueUnavailable || e.RetryAfter != 30*time.Second || time.Since(started) > 10*time.Second || len(s.bodies) != 1 {
		t.Fatalf("got %v after %v and %d requests", err, time.Since(started), len(s.bodies))
	}
}

func TestProducerStopsAfterMaxRetries(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){refuse(503, "QUEUE_UNAVAILABLE", "")}}
	p := scriptedProducer(t, s)
	_, err := p.SendBatch(context.Background(), []holdover.Outgoing{{To: "a", Payload: 1}, {To: "b", Payload: 2}})
	if !errors.Is(err, holdover.ErrQueueUnavailable) || len(s.bodies) != 6 {
		t.Fatalf("got %v after %d requests, want QUEUE_UNAVAILABLE after 1 + 5 retries", err, len(s.bodies))
	}
	messages := s.bodies[5]["messages"].([]any)
	if messages[0].(map[string]any)["id"] != s.bodies[0]["messages"].([]any)[0].(map[string]any)["id"] {
		t.Fatal("a retried batch carried other ids")
	}
}

func TestProducerSendsNothingForAnEmptyBatch(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){queued}}
	results, err := scriptedProducer(t, s).SendBatch(context.Background(), nil)
	if err != nil || len(results) != 0 || len(s.bodies) != 0 {
		t.Fatalf("got %v, %v after %d requests; want no results, no error, no request", results, err, len(s.bodies))
	}
}

func TestProducerRefusesAnInvalidMessageBeforeSendingIt(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){queued}}
	p := scriptedProducer(t, s)
	cases := []struct {
		send func() error
		path string
	}{
		{func() error {
			_, err := p.Send(context.Background(), holdover.Outgoing{To: "", Payload: 1})
			return err
		}, "to"},
		{func() error {
			_, err := p.Send(context.Background(), holdover.Outgoing{To: "a", TTL: 1500 * time.Microsecond, Payload: 1})
			return err
		}, "ttlMs"},
		{func() error {
			_, err := p.Send(context.Background(), holdover.Outgoing{To: "a", Payload: func() {}})
			return err
		}, "payload"},
		{func() error {
			results, err := p.SendBatch(context.Background(), []holdover.Outgoing{{To: "b", Priority: "urgent", Payload: 2}})
			if err != nil || results[0].Err == nil {
				return err
			}
			return results[0].Err
		}, "messages.0.priority"},
	}
	for _, c := range cases {
		var e *holdover.Error
		if err := c.send(); !errors.As(err, &e) || e.Code != holdover.CodeInvalidMessage || e.Path != c.path {
			t.Errorf("got %v, want INVALID_MESSAGE at %s", err, c.path)
		}
	}
	if len(s.bodies) != 0 {
		t.Fatalf("%d requests were made", len(s.bodies))
	}
}
