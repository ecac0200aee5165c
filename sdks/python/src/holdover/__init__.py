"""Holdover's Python SDK: a producer (HTTP) and a receiver (WebSocket), asyncio and typed."""

from ._backoff import Backoff, BackoffOptions, backoff_delay
from ._dedup import DedupWindow
from ._errors import HoldoverError, SessionClosed, describe_close, reconnect_policy
from ._frames import Message, Priority, SendResult, Welcome
from ._outgoing import OutgoingMessage, SendOptions
from .producer import Producer, RetryOptions
from .receiver import Receiver, ReceiverState

__all__ = [
    "Backoff",
    "BackoffOptions",
    "DedupWindow",
    "HoldoverError",
    "Message",
    "OutgoingMessage",
    "Priority",
    "Producer",
    "Receiver",
    "ReceiverState",
    "RetryOptions",
    "SendOptions",
    "SendResult",
    "SessionClosed",
    "Welcome",
    "backoff_delay",
    "describe_close",
    "reconnect_policy",
]
