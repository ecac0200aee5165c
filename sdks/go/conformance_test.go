package holdover_test

// The runner of the shared conformance cases (sdks/conformance/README.md, "The runner") for the
// Go SDK: each case in ../conformance/cases against the scripted server whose URL the driver
// hands over in HOLDOVER_CONFORMANCE_URL, then the server's verdict and what the application saw
// compared with the case's expect.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	holdover "github.com/holdover/holdover/sdks/go"
)

type conformanceCase struct {
	Description string `json:"description"`
	Client      struct {
		Token   string   `json:"token"`
		Tokens  []string `json:"tokens"`
		Backoff struct {
			InitialMs int `json:"initialMs"`
			MaxMs     int `json:"maxMs"`
		} `json:"backoff"`
		ConnectTimeoutMs int `json:"connectTimeoutMs"`
		DedupWindow      int `json:"dedupWindow"`
		Sends            []struct {
			To       string            `json:"to"`
			Payload  any               `json:"payload"`
			Priority holdover.Priority `json:"priority"`
			TTLMs    int               `json:"ttlMs"`
			ID       string            `json:"id"`
		} `json:"sends"`
	} `json:"client"`
	Expect struct {
		Delivered *[]map[string]any `json:"delivered"`
		Errors    []string          `json:"errors"`
		Final     *struct {
			State     string `json:"state"`
			Code      *int   `json:"code"`
			TakenOver *bool  `json:"takenOver"`
		} `json:"final"`
		Sends []map[string]any `json:"sends"`
	} `json:"expect"`
	SettleMs  int `json:"settleMs"`
	TimeoutMs int `json:"timeoutMs"`
}

type runResult struct {
	OK       bool     `json:"ok"`
	Done     bool     `json:"done"`
	Failures []string `json:"failures"`
	Log      []string `json:"log"`
}

// outcomeSeen is what the application saw, in the case format's terms.
type outcomeSeen struct {
	mu        sync.Mutex
	delivered []map[string]any
	errors    []string
	sends     []map[string]any
	closed    *holdover.Event
	takenOver bool
}

func TestConformance(t *testing.T) {
	base := os.Getenv("HOLDOVER_CONFORMANCE_URL")
	if base == "" {
		t.Skip("no conformance server: set HOLDOVER_CONFORMANCE_URL (sdks/test/go.test.ts does)")
	}
	files, err := filepath.Glob("../conformance/cases/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in ../conformance/cases: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var c conformanceCase
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runCase(t, base, name, c)
		})
	}
}

func runCase(t *testing.T, base, name string, c conformanceCase) {
	run := unique("go")
	seen := &outcomeSeen{sends: make([]map[string]any, len(c.Client.Sends))}
	opts := holdover.ReceiverOptions{
		URL:            fmt.Sprintf("%s/%s/%s", base, name, run),
		Token:          c.Client.Token,
		Backoff:        holdover.Backoff{Initial: time.Duration(c.Client.Backoff.InitialMs) * time.Millisecond, Max: time.Duration(c.Client.Backoff.MaxMs) * time.Millisecond},
		ConnectTimeout: time.Duration(c.Client.ConnectTimeoutMs) * time.Millisecond,
		DedupWindow:    c.Client.DedupWindow,
		OnEvent: func(e holdover.Event) {
			seen.mu.Lock()
			defer seen.mu.Unlock()
			switch e.Kind {
			case holdover.EventError:
				seen.errors = append(seen.errors, string(e.Err.Code))
			case holdover.EventTakenOver:
				seen.takenOver = true
			case holdover.EventClosed:
				seen.closed = &e
			}
		},
	}
	if tokens := c.Client.Tokens; tokens != nil {
		var attempt atomic.Int32
		opts.TokenFunc = func(context.Context) (string, error) {
			k := int(attempt.Add(1)) - 1
			return tokens[min(k, len(tokens)-1)], nil
		}
	}
	r, err := holdover.NewReceiver(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var settled atomic.Int32
	for i, send := range c.Client.Sends {
		go func() {
			result, err := r.Send(ctx, holdover.Outgoing{To: send.To, Payload: send.Payload, Priority: send.Priority, TTL: time.Duration(send.TTLMs) * time.Millisecond, ID: send.ID})
			var outcome map[string]any
			if e, ok := err.(*holdover.Error); ok {
				outcome = map[string]any{"error": string(e.Code)}
			} else if err != nil {
				outcome = map[string]any{"error": err.Error()}
			} else {
				outcome = map[string]any{"status": result.Status, "id": result.ID}
			}
			seen.mu.Lock()
			seen.sends[i] = outcome
			seen.mu.Unlock()
			settled.Add(1)
		}()
		// The case's sends are made in order, as from one thread: the next starts once this one
		// is in the outbox.
		for deadline := time.Now().Add(5 * time.Second); holdover.SendsAdded(r) <= i && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for msg, err := range r.Messages(ctx) {
			if err != nil {
				return
			}
			var payload any
			_ = json.Unmarshal(msg.Payload, &payload)
			seen.mu.Lock()
			seen.delivered = append(seen.delivered, map[string]any{"id": msg.ID, "priority": string(msg.Priority), "redelivered": msg.Redelivered, "payload": payload})
			seen.mu.Unlock()
			_ = msg.Ack(ctx)
		}
	}()

	want := 0
	if c.Expect.Delivered != nil {
		want = len(*c.Expect.Delivered)
	}
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		seen.mu.Lock()
		enough := len(seen.delivered) >= want
		seen.mu.Unlock()
		if r.State() == holdover.StateClosed ||
			(enough && int(settled.Load()) == len(c.Client.Sends) && fetchRunResult(t, base, name, run).Done) {
			break
		}
	}
	time.Sleep(time.Duration(c.SettleMs) * time.Millisecond) // the case's settleMs: a wrong reconnect shows itself
	final := "open"
	if r.State() == holdover.StateClosed {
		final = "closed"
	}
	closeReceiver(t, r)
	cancel()
	<-consumed
	result := fetchRunResult(t, base, name, run)
	if !result.OK || len(result.Failures) > 0 {
		t.Fatalf("the server's verdict: ok=%v done=%v failures=%q\nlog:\n%s", result.OK, result.Done, result.Failures, strings.Join(result.Log, "\n"))
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for _, problem := range outcomeProblems(c, seen, final) {
		t.Error(problem)
	}
}

func outcomeProblems(c conformanceCase, seen *outcomeSeen, final string) []string {
	var problems []string
	if c.Expect.Delivered != nil {
		want := *c.Expect.Delivered
		if len(seen.delivered) != len(want) {
			problems = append(problems, fmt.Sprintf("delivered %v, expected %v", ids(seen.delivered), ids(want)))
		}
		for i := range min(len(want), len(seen.delivered)) {
			for key, value := range want[i] {
				if !jsonEqual(seen.delivered[i][key], value) {
					problems = append(problems, fmt.Sprintf("delivered[%d].%s is %v, expected %v", i, key, seen.delivered[i][key], value))
				}
			}
		}
	}
	at := 0
	for _, code := range seen.errors {
		if at < len(c.Expect.Errors) && code == c.Expect.Errors[at] {
			at++
		}
	}
	if at < len(c.Expect.Errors) {
		problems = append(problems, fmt.Sprintf("errors %v do not contain %v in order", seen.errors, c.Expect.Errors))
	}
	if f := c.Expect.Final; f != nil {
		if final != f.State {
			problems = append(problems, fmt.Sprintf("final state %s, expected %s", final, f.State))
		}
		if f.Code != nil && (seen.closed == nil || final != "closed" || seen.closed.Code != *f.Code) {
			problems = append(problems, fmt.Sprintf("stopped with %+v, expected code %d", seen.closed, *f.Code))
		}
		if f.TakenOver != nil && seen.takenOver != *f.TakenOver {
			problems = append(problems, fmt.Sprintf("takenOver %v, expected %v", seen.takenOver, *f.TakenOver))
		}
	}
	for i, want := range c.Expect.Sends {
		if i >= len(seen.sends) || !jsonEqual(seen.sends[i], want) {
			problems = append(problems, fmt.Sprintf("sends[%d] is %v, expected %v", i, seen.sends[min(i, len(seen.sends)-1)], want))
		}
	}
	return problems
}

func ids(messages []map[string]any) []any {
	out := make([]any, len(messages))
	for i, m := range messages {
		out[i] = m["id"]
	}
	return out
}

// jsonEqual compares two values as JSON documents.
func jsonEqual(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

func fetchRunResult(t *testing.T, base, name, run string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "http" + strings.TrimPrefix(base, "ws") + "/result/" + name + "/" + run
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	var result runResult
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&result) != nil {
		t.Fatalf("GET %s answered %d", url, res.StatusCode)
	}
	return result
}
