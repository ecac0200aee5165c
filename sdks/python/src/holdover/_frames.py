"""The contract's shapes as the SDK hands them out (``Message``, ``Welcome``, ``SendResult``) and
the parser of server frames: a frame that is not JSON, or not in the contract, raises
``HoldoverError("INVALID_SERVER_FRAME")`` — the caller reports it and keeps the session.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ._errors import HoldoverError

Priority = Literal["critical", "high", "normal", "low"]
PRIORITIES: tuple[str, ...] = get_args(Priority)


@dataclass(frozen=True)
class Message:
    """A ``message`` frame without its ``type``."""

    id: str
    priority: Priority
    payload: Any
    enqueued_at: str
    expires_at: str
    redelivered: bool


@dataclass(frozen=True)
class Welcome:
    session: str
    recipient: str
    pending: dict[str, int]
    max_in_flight: int
    heartbeat_ms: float


@dataclass(frozen=True)
class SendResult:
    """The gateway's answer to a send: ``queued``, or ``dropped`` (full queue under drop_newest)."""

    id: str
    status: Literal["queued", "dropped"]
    priority: Priority | None = None
    expires_at: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Sent:
    ref: str | None
    result: SendResult


@dataclass(frozen=True)
class ErrorFrame:
    ref: str | None
    error: HoldoverError


@dataclass(frozen=True)
class Pong:
    pass


ServerFrame = Welcome | Message | Sent | ErrorFrame | Pong


def _invalid(what: str) -> HoldoverError:
    return HoldoverError("INVALID_SERVER_FRAME", what)


def _field(frame: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = frame.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _invalid(f"{frame.get('type')} frame: {key} is {value!r}")
    return value


def _optional_str(frame: Mapping[str, Any], key: str) -> str | None:
    return None if key not in frame else _field(frame, key, str)


def send_result(body: Mapping[str, Any]) -> SendResult:
    """A 202 body (or a batch result without ``error``) as a ``SendResult``."""
    status = body.get("status")
    if status not in ("queued", "dropped"):
        raise _invalid(f"a send result with status {status!r}")
    priority = body.get("priority")
    return SendResult(
        id=_field(body, "id", str),
        status=status,
        priority=priority if priority in PRIORITIES else None,
        expires_at=body.get("expiresAt") if isinstance(body.get("expiresAt"), str) else None,
        reason=body.get("reason") if isinstance(body.get("reason"), str) else None,
    )


def wire_error(body: Mapping[str, Any], status: int | None = None) -> HoldoverError:
    """``{"code","message","path"?}`` (an HTTP error body's ``error``, or an ``error`` frame).

    Any code is taken as is, not only ``WireErrorCode``'s: the contract may add codes, and a newer
    gateway's code must still fail the send it refers to.
    """
    code = body.get("code")
    if not isinstance(code, str) or code == "":
        raise _invalid(f"an error with code {code!r}")
    path = body.get("path")
    return HoldoverError(
        str(code), str(body.get("message", "")), status=status, path=path if isinstance(path, str) else None
    )


def parse_server_frame(text: str | bytes) -> ServerFrame:
    if not isinstance(text, str):
        raise _invalid("a binary frame")
    try:
        frame = json.loads(text)
    except ValueError as cause:
        raise _invalid(f"not JSON: {cause}") from cause
    if not isinstance(frame, dict):
        raise _invalid("not a JSON object")
    kind = frame.get("type")
    if kind == "message":
        priority = frame.get("priority")
        if priority not in PRIORITIES:
            raise _invalid(f"message frame: priority is {priority!r}")
        if "payload" not in frame:
            raise _invalid("message frame without payload")
        return Message(
            id=_field(frame, "id", str),
            priority=priority,
            payload=frame["payload"],
            enqueued_at=_field(frame, "enqueuedAt", str),
            expires_at=_field(frame, "expiresAt", str),
            redelivered=_field(frame, "redelivered", bool),
        )
    if kind == "welcome":
        pending = _field(frame, "pending", dict)
        if any(not isinstance(pending.get(p), int) or isinstance(pending.get(p), bool) for p in PRIORITIES):
            raise _invalid(f"welcome frame: pending is {pending!r}")
        return Welcome(
            session=_field(frame, "session", str),
            recipient=_field(frame, "recipient", str),
            pending={p: pending[p] for p in PRIORITIES},
            max_in_flight=int(_field(frame, "maxInFlight", (int, float))),
            heartbeat_ms=float(_field(frame, "heartbeatMs", (int, float))),
        )
    if kind == "sent":
        return Sent(ref=_optional_str(frame, "ref"), result=send_result(frame))
    if kind == "error":
        _field(frame, "message", str)
        return ErrorFrame(ref=_optional_str(frame, "ref"), error=wire_error(frame))
    if kind == "pong":
        return Pong()
    raise _invalid(f"unknown frame type {kind!r}")
