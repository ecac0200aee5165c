package holdover

// The one error type the SDK returns: producer calls, Receiver.Next after the Receiver stopped,
// and the error events. Code is a wire code of the contract (an HTTP error body's or an error
// frame's code, e.g. QUEUE_FULL) or one of the SDK's own codes, for failures on this side.

import (
	"fmt"
	"time"
)

// ErrorCode is a contract code or an SDK code. The contract may add codes: one not listed here
// comes through as the gateway sent it.
type ErrorCode string

// The contract's codes (docs/protocol.md).
const (
	CodeInvalidMessage   ErrorCode = "INVALID_MESSAGE"
	CodeInvalidFrame     ErrorCode = "INVALID_FRAME"
	CodeUnauthorized     ErrorCode = "UNAUTHORIZED"
	CodeForbidden        ErrorCode = "FORBIDDEN"
	CodeNotFound         ErrorCode = "NOT_FOUND"
	CodeMethodNotAllowed ErrorCode = "METHOD_NOT_ALLOWED"
	CodeMessageTooLarge  ErrorCode = "MESSAGE_TOO_LARGE"
	CodeQueueFull        ErrorCode = "QUEUE_FULL"
	CodeRateLimited      ErrorCode = "RATE_LIMITED"
	CodeInternal         ErrorCode = "INTERNAL"
	CodeQueueUnavailable ErrorCode = "QUEUE_UNAVAILABLE"
)

// The SDK's own codes, as in the TypeScript SDK.
const (
	// CodeClientClosed: Close was called, or the Receiver stopped for good (see Error.CloseCode).
	CodeClientClosed ErrorCode = "CLIENT_CLOSED"
	// CodeInvalidServerFrame: a frame or an HTTP answer that is not what the contract says.
	CodeInvalidServerFrame ErrorCode = "INVALID_SERVER_FRAME"
	// CodeTokenFailed: TokenFunc returned an error or an empty token.
	CodeTokenFailed ErrorCode = "TOKEN_FAILED"
	// CodeConnectionLost: a transport error, no welcome in time, or no frame within twice heartbeatMs.
	CodeConnectionLost ErrorCode = "CONNECTION_LOST"
)

// Error is what the SDK's calls fail with. Compare codes with errors.Is against the Err*
// values (errors.Is(err, holdover.ErrQueueFull)) or read Code with errors.As.
type Error struct {
	Code    ErrorCode
	Message string
	// Path is the contract's pointer to the offending field of an INVALID_MESSAGE, if any.
	Path string
	// Status is the HTTP status of a producer call's answer; 0 when there was none.
	Status int
	// RetryAfter is the answer's Retry-After, when it had one.
	RetryAfter time.Duration
	// CloseCode is the close code after which a Receiver stopped (CLIENT_CLOSED only).
	CloseCode int
	// Cause is the underlying error (transport, JSON, TokenFunc), if any.
	Cause error
}

func (e *Error) Error() string {
	switch {
	case e.Path != "":
		return fmt.Sprintf("holdover: %s: %s (at %s)", e.Code, e.Message, e.Path)
	case e.Status != 0:
		return fmt.Sprintf("holdover: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
	default:
		return fmt.Sprintf("holdover: %s: %s", e.Code, e.Message)
	}
}

func (e *Error) Unwrap() error { return e.Cause }

// Is matches another *Error with the same Code, so errors.Is(err, ErrQueueFull) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is, one per code.
var (
	ErrInvalidMessage     = &Error{Code: CodeInvalidMessage}
	ErrUnauthorized       = &Error{Code: CodeUnauthorized}
	ErrForbidden          = &Error{Code: CodeForbidden}
	ErrMessageTooLarge    = &Error{Code: CodeMessageTooLarge}
	ErrQueueFull          = &Error{Code: CodeQueueFull}
	ErrRateLimited        = &Error{Code: CodeRateLimited}
	ErrQueueUnavailable   = &Error{Code: CodeQueueUnavailable}
	ErrClientClosed       = &Error{Code: CodeClientClosed}
	ErrInvalidServerFrame = &Error{Code: CodeInvalidServerFrame}
	ErrTokenFailed        = &Error{Code: CodeTokenFailed}
	ErrConnectionLost     = &Error{Code: CodeConnectionLost}
)
