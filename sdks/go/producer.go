package holdover

// The producer: POST /v1/messages and /v1/messages/batch with a Bearer token. Every message gets
// an id before its first attempt (the caller's, or a generated UUID): it is the gateway's dedup
// key, so a retry — after 503 QUEUE_UNAVAILABLE, after 429 with a Retry-After, or after a
// transport error — cannot queue it twice. The delay is the answer's Retry-After when it has one,
// else full-jitter backoff; a retry that could not start before ctx's deadline is not made.
// Every other answer is final: the result, or an *Error with the contract's code and status.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ProducerOptions configure a Producer. URL and one of Token or TokenFunc are required.
type ProducerOptions struct {
	// URL is the gateway's base URL, e.g. http://localhost:8080.
	URL string
	// Token is a static JWT with the publish scope.
	Token string
	// TokenFunc is called before every request instead (a token that rotates).
	TokenFunc func(ctx context.Context) (string, error)
	// HTTPClient defaults to a client of its own with a 30 s timeout.
	HTTPClient *http.Client
	// MaxRetries is how many times one call is retried; 0 means 5, a negative value none.
	MaxRetries int
	// Backoff bounds the delays of retries without a Retry-After.
	Backoff Backoff
}

// Producer enqueues messages. It is safe for concurrent use.
type Producer struct {
	base    *url.URL
	token   tokenSource
	client  *http.Client
	retries int
	backoff Backoff
}

// MaxBatch is the most messages one SendBatch call takes (the contract's limit).
const MaxBatch = 1000

// NewProducer checks the options and returns a Producer.
func NewProducer(opts ProducerOptions) (*Producer, error) {
	base, err := url.Parse(strings.TrimSuffix(opts.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("holdover: the producer URL must be http(s)://host[:port], got %q", opts.URL)
	}
	if opts.Token == "" && opts.TokenFunc == nil {
		return nil, errors.New("holdover: NewProducer needs Token or TokenFunc")
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	retries := opts.MaxRetries
	if retries == 0 {
		retries = 5
	}
	return &Producer{
		base:    base,
		token:   tokenSource{token: opts.Token, fn: opts.TokenFunc},
		client:  client,
		retries: max(0, retries),
		backoff: opts.Backoff.orDefault(),
	}, nil
}

// wireMessage is an Outgoing as the contract spells it.
type wireMessage struct {
	To       string          `json:"to"`
	Priority Priority        `json:"priority,omitempty"`
	TTLMs    int64           `json:"ttlMs,omitempty"`
	ID       string          `json:"id"`
	Payload  json.RawMessage `json:"payload"`
}

// Send enqueues one message. The result's Status is "queued", or "dropped" when the recipient's
// queue is full under drop_newest; a refusal is an *Error (QUEUE_FULL, FORBIDDEN, …).
func (p *Producer) Send(ctx context.Context, msg Outgoing) (SendResult, error) {
	wire, err := toWire(msg)
	if err != nil {
		return SendResult{}, err
	}
	var result SendResult
	if err := p.call(ctx, "/v1/messages", wire, http.StatusAccepted, &result); err != nil {
		return SendResult{}, err
	}
	return result, nil
}

// SendBatch enqueues up to MaxBatch messages in one request. One result per message, in order,
// each its own outcome as the batch endpoint gives it: a message refused by the gateway, or found
// invalid here before sending (INVALID_MESSAGE), has Err set, with Path messages.<i>.<field> where
// i is its index in msgs; the others are sent. The error is for the call as a whole. An empty
// batch sends nothing and returns no results (as the Python SDK's send_batch does).
func (p *Producer) SendBatch(ctx context.Context, msgs []Outgoing) ([]BatchResult, error) {
	if len(msgs) > MaxBatch {
		return nil, &Error{Code: CodeInvalidMessage, Message: fmt.Sprintf("a batch holds at most %d messages, got %d", MaxBatch, len(msgs))}
	}
	results := make([]BatchResult, len(msgs))
	wires := make([]wireMessage, 0, len(msgs))
	indexes := make([]int, 0, len(msgs)) // the index in msgs of each message sent
	for i, msg := range msgs {
		wire, err := toWire(msg)
		if err != nil {
			err.Path = fmt.Sprintf("messages.%d.%s", i, err.Path) // the gateway's notation
			results[i].Err = err
			continue
		}
		wires = append(wires, wire)
		indexes = append(indexes, i)
	}
	if len(wires) == 0 {
		return results, nil
	}
	var answer struct {
		Results []struct {
			SendResult
			Error *wireError `json:"error"`
		} `json:"results"`
	}
	if err := p.call(ctx, "/v1/messages/batch", map[string]any{"messages": wires}, http.StatusOK, &answer); err != nil {
		return nil, err
	}
	if len(answer.Results) != len(wires) {
		return nil, &Error{Code: CodeInvalidServerFrame, Message: fmt.Sprintf("%d results for %d messages", len(answer.Results), len(wires))}
	}
	for sent, r := range answer.Results {
		i := indexes[sent]
		results[i] = BatchResult{SendResult: r.SendResult}
		if r.Error != nil {
			err := r.Error.toError(0, 0)
			// The gateway numbers the messages it got; the caller's numbering counts those not sent.
			if rest, ok := strings.CutPrefix(err.Path, fmt.Sprintf("messages.%d.", sent)); ok {
				err.Path = fmt.Sprintf("messages.%d.%s", i, rest)
			}
			results[i].Err = err
		}
	}
	return results, nil
}

func toWire(msg Outgoing) (wireMessage, *Error) {
	invalid := func(path, format string, args ...any) (wireMessage, *Error) {
		return wireMessage{}, &Error{Code: CodeInvalidMessage, Message: fmt.Sprintf(format, args...), Path: path}
	}
	if msg.To == "" || len(msg.To) > 256 {
		return invalid("to", "a recipient id of 1 to 256 bytes, got %d bytes", len(msg.To))
	}
	switch msg.Priority {
	case "", Critical, High, Normal, Low:
	default:
		return invalid("priority", "critical, high, normal or low, got %q", msg.Priority)
	}
	if msg.TTL < 0 || msg.TTL%time.Millisecond != 0 || (msg.TTL > 0 && msg.TTL < time.Millisecond) {
		return invalid("ttlMs", "a TTL of whole milliseconds above 0, got %v", msg.TTL)
	}
	id := msg.ID
	if id == "" {
		id = newID()
	} else if len([]rune(id)) > 256 {
		return invalid("id", "a message id of 1 to 256 characters")
	}
	payload, err := json.Marshal(msg.Payload)
	if err != nil {
		return wireMessage{}, &Error{Code: CodeInvalidMessage, Message: "the payload is not JSON: " + err.Error(), Path: "payload", Cause: err}
	}
	return wireMessage{To: msg.To, Priority: msg.Priority, TTLMs: msg.TTL.Milliseconds(), ID: id, Payload: payload}, nil
}

// wireError is the contract's {"error":{code,message,path?}}.
type wireError struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	Path    string    `json:"path"`
}

func (w *wireError) toError(status int, retryAfter time.Duration) *Error {
	return &Error{Code: w.Code, Message: w.Message, Path: w.Path, Status: status, RetryAfter: retryAfter}
}

// call POSTs body to path until it gets a final answer; want is the status of success.
func (p *Producer) call(ctx context.Context, path string, body any, want int, out any) error {
	encoded, err := json.Marshal(body)
	if err != nil {
		return &Error{Code: CodeInvalidMessage, Message: err.Error(), Cause: err}
	}
	for attempt := 0; ; attempt++ {
		err := p.attempt(ctx, path, encoded, want, out)
		var e *Error
		if err == nil || !errors.As(err, &e) || !retryable(e) || attempt >= p.retries {
			return err
		}
		delay := e.RetryAfter
		if delay == 0 {
			delay = BackoffDelay(attempt, p.backoff, nil)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// retryable: the gateway could not take the message now, or it never got the request.
func retryable(e *Error) bool {
	switch {
	case e.Code == CodeConnectionLost:
		return true
	case e.Status == http.StatusServiceUnavailable:
		return true
	case e.Status == http.StatusTooManyRequests:
		return e.RetryAfter > 0
	}
	return false
}

func (p *Producer) attempt(ctx context.Context, path string, body []byte, want int, out any) error {
	token, err := p.token.get(ctx)
	if err != nil {
		return &Error{Code: CodeTokenFailed, Message: "TokenFunc failed: " + err.Error(), Cause: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return &Error{Code: CodeInvalidMessage, Message: err.Error(), Cause: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Code: CodeConnectionLost, Message: err.Error(), Cause: err}
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return &Error{Code: CodeConnectionLost, Message: "reading the answer: " + err.Error(), Status: res.StatusCode, Cause: err}
	}
	if res.StatusCode == want {
		if err := json.Unmarshal(answer, out); err != nil {
			return &Error{Code: CodeInvalidServerFrame, Message: "the answer is not the contract's JSON: " + err.Error(), Status: res.StatusCode, Cause: err}
		}
		return nil
	}
	retryAfter := parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	var refusal struct {
		Error *wireError `json:"error"`
	}
	if json.Unmarshal(answer, &refusal) != nil || refusal.Error == nil || refusal.Error.Code == "" {
		return &Error{
			Code:       CodeInvalidServerFrame,
			Message:    fmt.Sprintf("HTTP %d without the contract's error body: %.200s", res.StatusCode, answer),
			Status:     res.StatusCode,
			RetryAfter: retryAfter,
		}
	}
	return refusal.Error.toError(res.StatusCode, retryAfter)
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(value string, now time.Time) time.Duration {
	if value == "" {
		return 0
	}
	if seconds, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && seconds >= 0 {
		return max(time.Duration(seconds)*time.Second, time.Millisecond)
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(at.Sub(now), time.Millisecond)
	}
	return 0
}
