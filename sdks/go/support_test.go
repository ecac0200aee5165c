package holdover_test

// What the tests share: the environment the vitest driver (sdks/test/go.test.ts) hands over,
// HS256 tokens minted like libs/protocol's mintToken, unique recipient ids, the admin's queue
// depth, and a deadline-bound wait.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	holdover "github.com/holdover/holdover/sdks/go"
)

// gatewayEnv is a running gateway: its base URL and the secret its tokens are signed with.
type gatewayEnv struct {
	url    string
	secret string
}

// needGateway skips the test unless the driver handed over a gateway (HOLDOVER_URL and
// HOLDOVER_JWT_SECRET), so that `go test` by hand passes without one.
func needGateway(t *testing.T) gatewayEnv {
	t.Helper()
	env := gatewayEnv{url: os.Getenv("HOLDOVER_URL"), secret: os.Getenv("HOLDOVER_JWT_SECRET")}
	if env.url == "" || env.secret == "" {
		t.Skip("no gateway: set HOLDOVER_URL and HOLDOVER_JWT_SECRET (sdks/test/go.test.ts does)")
	}
	return env
}

func (g gatewayEnv) wsURL() string {
	return "ws" + strings.TrimPrefix(g.url, "http") + "/v1/ws"
}

// token mints an HS256 JWT for sub with the given space-separated scopes, valid for ttl
// (negative: already expired).
func (g gatewayEnv) token(t *testing.T, sub, scope string, ttl time.Duration) string {
	t.Helper()
	now := time.Now().Unix()
	claims, err := json.Marshal(map[string]any{"sub": sub, "scope": scope, "iat": now, "exp": now + int64(ttl/time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(g.secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func (g gatewayEnv) producer(t *testing.T) *holdover.Producer {
	t.Helper()
	p, err := holdover.NewProducer(holdover.ProducerOptions{URL: g.url, Token: g.token(t, "producer", "publish", time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// depth is GET /v1/recipients/{id}/queue's depth per priority (admin scope).
func (g gatewayEnv) depth(t *testing.T, recipient string) map[holdover.Priority]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/v1/recipients/"+url.PathEscape(recipient)+"/queue", nil)
	req.Header.Set("Authorization", "Bearer "+g.token(t, "admin", "admin", time.Hour))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Depth map[holdover.Priority]int `json:"depth"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&body) != nil {
		t.Fatalf("GET queue of %s answered %d", recipient, res.StatusCode)
	}
	return body.Depth
}

func total(depth map[holdover.Priority]int) int {
	sum := 0
	for _, n := range depth {
		sum += n
	}
	return sum
}

var counter atomic.Int64

// unique is a recipient id no other test (or earlier run against the same server) uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s-go-%x-%d", prefix, time.Now().UnixNano(), counter.Add(1))
}

// waitUntil polls condition every 20 ms and fails the test with what after timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// numbered is the payload the ordering tests send: its priority and its place in that lane.
type numbered struct {
	Priority holdover.Priority `json:"priority"`
	Seq      int               `json:"seq"`
}

func payloadOf(t *testing.T, msg *holdover.Message) numbered {
	t.Helper()
	var n numbered
	if err := json.Unmarshal(msg.Payload, &n); err != nil {
		t.Fatalf("payload %s: %v", msg.Payload, err)
	}
	return n
}

// orderProblem checks that got is in strict priority order and FIFO within each priority
// (seq ascending); what is wrong, or "".
func orderProblem(got []numbered) string {
	rank := map[holdover.Priority]int{holdover.Critical: 0, holdover.High: 1, holdover.Normal: 2, holdover.Low: 3}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if rank[a.Priority] > rank[b.Priority] || (a.Priority == b.Priority && a.Seq >= b.Seq) {
			return fmt.Sprintf("%v came after %v (position %d of %v)", b, a, i, got)
		}
	}
	return ""
}

// recorder keeps a Receiver's events for assertions.
type recorder struct {
	events chan holdover.Event
}

func newRecorder() *recorder { return &recorder{events: make(chan holdover.Event, 1024)} }

func (r *recorder) onEvent(e holdover.Event) {
	select {
	case r.events <- e:
	default: // a test that ignores its events must not block the Receiver
	}
}

// waitFor returns the next event of kind, failing the test after timeout.
func (r *recorder) waitFor(t *testing.T, kind holdover.EventKind, timeout time.Duration) holdover.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-r.events:
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", kind, timeout)
		}
	}
}

func closeReceiver(t *testing.T, r *holdover.Receiver) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// mixedBacklog is rounds × (low, normal, critical, high, low, critical, normal, high) for to,
// each payload numbered in its lane; seq carries the numbering on across calls.
func mixedBacklog(to string, seq map[holdover.Priority]int, rounds int) []holdover.Outgoing {
	pattern := []holdover.Priority{holdover.Low, holdover.Normal, holdover.Critical, holdover.High, holdover.Low, holdover.Critical, holdover.Normal, holdover.High}
	var backlog []holdover.Outgoing
	for range rounds {
		for _, priority := range pattern {
			backlog = append(backlog, holdover.Outgoing{To: to, Priority: priority, Payload: numbered{priority, seq[priority]}})
			seq[priority]++
		}
	}
	return backlog
}
