package holdover

// The contract's close codes and what a lost session leads to (docs/protocol.md, "Close codes"),
// exactly as the TypeScript SDK decides it (libs/protocol CloseCode.ts, reconnectPolicy).

import "fmt"

// Close codes of the contract, plus 1006 for a connection that died without a close frame.
const (
	CloseNormal            = 1000
	CloseAbnormal          = 1006
	CloseInvalidPayload    = 1007
	CloseTooLarge          = 1009
	CloseInternalError     = 1011
	CloseRestarting        = 1012
	CloseProtocolViolation = 4400
	CloseUnauthenticated   = 4401
	CloseForbidden         = 4403
	CloseTakenOver         = 4409
	CloseRateLimited       = 4429
	// closeGivingUp is what this side closes a session with when it gives up on it (no welcome
	// in time, or no frame within twice heartbeatMs), as the TypeScript SDK does.
	closeGivingUp = 4000
)

// ReconnectPolicy says what a Receiver does after a session ends with some close code.
type ReconnectPolicy string

const (
	// ReconnectNo: the Receiver stops for good (1000, 4400, 4403, 4409).
	ReconnectNo ReconnectPolicy = "no"
	// ReconnectImmediately: at once after a welcomed session, else with backoff (1012).
	ReconnectImmediately ReconnectPolicy = "immediately"
	// ReconnectFreshToken: again with a token from TokenFunc; without one the Receiver stops (4401).
	ReconnectFreshToken ReconnectPolicy = "fresh-token"
	// ReconnectBackoff: after a full-jitter delay (1006, 1007, 1009, 1011, 4429 and any other code).
	ReconnectBackoff ReconnectPolicy = "backoff"
)

// ReconnectPolicyOf is the contract's table.
func ReconnectPolicyOf(code int) ReconnectPolicy {
	switch code {
	case CloseNormal, CloseProtocolViolation, CloseForbidden, CloseTakenOver:
		return ReconnectNo
	case CloseRestarting:
		return ReconnectImmediately
	case CloseUnauthenticated:
		return ReconnectFreshToken
	default:
		return ReconnectBackoff
	}
}

var closeWords = map[int]string{
	CloseNormal:            "closed by the server",
	CloseTooLarge:          "frame too large",
	CloseRestarting:        "gateway restarting",
	CloseProtocolViolation: "protocol violation",
	CloseUnauthenticated:   "not authenticated, or the token expired",
	CloseForbidden:         "forbidden (origin or scope)",
	CloseTakenOver:         "session taken over by a newer connection of the same recipient",
	CloseRateLimited:       "rate limited",
	CloseAbnormal:          "connection lost",
}

// describeClose: "4403 forbidden (origin or scope): <server's reason>".
func describeClose(code int, serverReason string) string {
	words, ok := closeWords[code]
	if !ok {
		words = "connection closed"
	}
	if serverReason == "" || serverReason == words {
		return fmt.Sprintf("%d %s", code, words)
	}
	return fmt.Sprintf("%d %s: %s", code, words, serverReason)
}
