"""What a producer sends: one message request, checked against the contract before it leaves.

Every request gets its ``id`` here — the caller's, or a fresh UUID — *before* the first attempt,
so a retry (HTTP) or a resend on a new session (WebSocket) carries the same id and the gateway's
dedup window queues it once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, TypedDict

from ._errors import HoldoverError
from ._frames import PRIORITIES, Priority

MAX_RECIPIENT_BYTES = 256
MAX_MESSAGE_ID_LENGTH = 256


class SendOptions(TypedDict, total=False):
    """The keyword options of ``Producer.send`` and ``Receiver.send``."""

    priority: Priority
    ttl_ms: int
    #: The dedup key; the same id again within the gateway's window (at least 2 min) queues once.
    id: str


@dataclass(frozen=True)
class OutgoingMessage:
    """One message for ``Producer.send_batch`` (``Producer.send`` takes the same fields)."""

    to: str
    payload: Any
    priority: Priority | None = None
    ttl_ms: int | None = None
    id: str | None = None


def message_request(message: OutgoingMessage) -> dict[str, Any]:
    """The contract's JSON body for one message, with its id; INVALID_MESSAGE if it breaks a rule."""

    def invalid(what: str, path: str) -> HoldoverError:
        return HoldoverError("INVALID_MESSAGE", what, path=path)

    to, priority, ttl_ms, message_id = message.to, message.priority, message.ttl_ms, message.id
    if not isinstance(to, str) or not 0 < len(to.encode()) <= MAX_RECIPIENT_BYTES:
        raise invalid(f"to must be a recipient id of 1 to {MAX_RECIPIENT_BYTES} bytes of UTF-8", "to")
    if priority is not None and priority not in PRIORITIES:
        raise invalid(f"priority must be one of {', '.join(PRIORITIES)}", "priority")
    if ttl_ms is not None and (isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or ttl_ms <= 0):
        raise invalid("ttl_ms must be a positive whole number of milliseconds", "ttlMs")
    if message_id is not None and (not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH):
        raise invalid(f"id must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters", "id")
    try:
        json.dumps(message.payload, allow_nan=False)
    except (TypeError, ValueError) as cause:
        raise invalid(f"payload is not a JSON value: {cause}", "payload") from cause
    body: dict[str, Any] = {"to": to}
    if priority is not None:
        body["priority"] = priority
    if ttl_ms is not None:
        body["ttlMs"] = ttl_ms
    body["id"] = message_id if message_id is not None else str(uuid.uuid4())
    body["payload"] = message.payload
    return body
