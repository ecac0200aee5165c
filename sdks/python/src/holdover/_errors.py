"""The one error type the SDK raises, and the close-code policy of the wire contract.

``HoldoverError.code`` is either a code from the contract (an HTTP error body's or an ``error``
frame's ``code``, e.g. ``QUEUE_FULL``) or one of the SDK's own codes for failures on this side
of the connection. ``SessionClosed`` is raised by a receiver that stopped for good because the
gateway said so (a close code after which the contract says not to reconnect).
"""

from __future__ import annotations

from typing import Literal

#: Codes of the contract today (PROTOCOL.md, libs/protocol/src/ErrorCode.ts); the contract may add
#: codes, which come through as they are.
WireErrorCode = Literal[
    "INVALID_MESSAGE",
    "INVALID_FRAME",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "MESSAGE_TOO_LARGE",
    "QUEUE_FULL",
    "RATE_LIMITED",
    "INTERNAL",
    "QUEUE_UNAVAILABLE",
]

#: The SDK's own codes, the same as the TypeScript SDK's.
ClientErrorCode = Literal[
    "OUTBOX_FULL",  # send() while max_outbox sends are unconfirmed
    "CLIENT_CLOSED",  # the receiver stopped before the gateway confirmed a send
    "INVALID_SERVER_FRAME",  # a frame (or HTTP answer) that is not JSON or not in the contract
    "TOKEN_FAILED",  # the token provider raised
    "CONNECTION_LOST",  # socket or HTTP transport error, heartbeat or connect timeout
    "SESSION_CLOSED",  # the gateway closed the session for good (see SessionClosed)
]


class HoldoverError(Exception):
    """An error with the contract's (or the SDK's) code; ``status`` is the HTTP status if any."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.path = path
        self.retry_after = retry_after


class SessionClosed(HoldoverError):
    """The gateway ended the session with a close code after which the SDK does not reconnect.

    ``close_code`` is that code (1000, 4400, 4401 without a token provider, 4403, 4409);
    ``taken_over`` is true for 4409: a newer connection of the same recipient took over.
    """

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__("SESSION_CLOSED", reason)
        self.close_code = close_code
        self.taken_over = close_code == TAKEN_OVER


NORMAL = 1000
RESTARTING = 1012
UNAUTHENTICATED = 4401
TAKEN_OVER = 4409

ReconnectPolicy = Literal["no", "backoff", "immediately", "fresh-token"]


def reconnect_policy(code: int) -> ReconnectPolicy:
    """The contract's "SDK reconnects?" column; codes it does not list reconnect with backoff."""
    if code in (NORMAL, 4400, 4403, TAKEN_OVER):
        return "no"
    if code == RESTARTING:
        return "immediately"
    if code == UNAUTHENTICATED:
        return "fresh-token"
    return "backoff"  # 1006 (no close frame), 1007, 1009, 1011, 4429 and anything else


_close_words = {
    1000: "closed by the server",
    1006: "connection lost",
    1009: "frame too large",
    1012: "gateway restarting",
    4400: "protocol violation",
    4401: "not authenticated, or the token expired",
    4403: "forbidden (origin or scope)",
    4409: "session taken over by a newer connection of the same recipient",
    4429: "rate limited",
}


def describe_close(code: int, reason: str) -> str:
    """``"4403 forbidden (origin or scope): <server's reason>"``."""
    words = _close_words.get(code, "connection closed")
    return f"{code} {words}" if reason in ("", words) else f"{code} {words}: {reason}"
