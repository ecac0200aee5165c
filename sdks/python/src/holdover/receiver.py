"""The receiver: one WebSocket session at a time, and the reconnect loop around it.

    connecting ──welcome──▶ open ──socket lost──▶ reconnecting ──delay──▶ connecting …
         any state ──close(), or a close code after which the contract says stop──▶ closed

Messages come out of ``async for message in receiver`` in arrival order (the gateway's strict
priority order), each once: redeliveries of handled ids are dropped (``DedupWindow``) and acked
again. A message is acked when the loop asks for the next one, or when ``async with`` is left
without an exception — so a loop body that raises leaves it unacked, and the gateway hands it
over again on the next session. With ``manual_ack=True`` only ``receiver.ack(message)`` acks.

Sessions: Bearer token on the upgrade (``token``, or ``get_token`` before every attempt),
subprotocol ``holdover.v1``; a welcome within ``connect_timeout_ms``; then a ``ping`` every
``heartbeatMs`` and the session is given up when no frame arrived for twice that. A lost session
leads to what the contract's close-code table says (``reconnect_policy``): reconnect after a
full-jitter backoff delay, at once (1012 after a welcome, or 4401 with a token provider), or stop
for good — then iteration raises ``SessionClosed``. Handing over and acking is ``Delivery``'s
(``_delivery.py``), liveness ``heartbeat``'s, unconfirmed sends the ``Outbox``'s; this module owns
the socket, the token, the timers and the state. Nothing else is raised at the caller after
``start``: errors of the session (error frames, bad frames, lost connections) go to ``on_error``
(default: logged), send failures to the ``send`` caller. ``close()`` ends everything.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Unpack
from urllib.parse import urlparse

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.typing import Subprotocol

from ._backoff import DEFAULT_BACKOFF, Backoff, BackoffOptions
from ._delivery import Delivery
from ._errors import HoldoverError, SessionClosed, describe_close, reconnect_policy
from ._frames import ErrorFrame, Message, SendResult, Sent, Welcome, parse_server_frame
from ._heartbeat import heartbeat
from ._outbox import Outbox
from ._outgoing import OutgoingMessage, SendOptions, message_request

ReceiverState = Literal["connecting", "open", "reconnecting", "closed"]
TokenProvider = Callable[[], str | Awaitable[str]]

SUBPROTOCOL = "holdover.v1"
_ABNORMAL = 1006  # a connection that ended without a close frame
_GAVE_UP = 4000  # the close code we send when we give a session up ourselves
_log = logging.getLogger("holdover")


def _log_error(error: HoldoverError) -> None:
    _log.warning("holdover receiver: %s", error)


class Receiver:
    """Receives a recipient's messages; see the module docstring. Use with ``async with``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        get_token: TokenProvider | None = None,
        backoff: BackoffOptions = DEFAULT_BACKOFF,
        connect_timeout_ms: float = 10_000,
        dedup_window: int = 10_000,
        manual_ack: bool = False,
        max_outbox: int = 1000,
        on_error: Callable[[HoldoverError], None] = _log_error,
        on_state_change: Callable[[ReceiverState], None] | None = None,
    ) -> None:
        if urlparse(url).scheme not in ("ws", "wss"):
            raise ValueError(f"url must be ws://… or wss://…, got {url!r}")
        if token is None and get_token is None:
            raise ValueError("Receiver needs token or get_token")
        self.url = url
        self._token = token
        self._get_token = get_token
        self._backoff = Backoff(backoff)
        self._connect_timeout = connect_timeout_ms / 1000
        self._delivery = Delivery(manual_ack=manual_ack, dedup_window=dedup_window, write=self._write)
        self._outbox = Outbox(max_outbox)
        self._on_error = on_error
        self._on_state_change = on_state_change
        self.state: ReceiverState = "connecting"
        #: The welcome of the current (or last) session.
        self.welcome: Welcome | None = None
        #: Set when the gateway stopped the receiver for good (4409, 4403, …).
        self.closed_by: SessionClosed | None = None
        self._ws: ClientConnection | None = None
        self._writes: asyncio.Queue[str] | None = None
        self._last_frame = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Starts connecting (``async with`` calls this)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def __aenter__(self) -> Receiver:
        self.start()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self._delivery.complete()  # the loop body finished with it (e.g. after a `break`)
        await self.close()

    async def close(self) -> None:
        """Acks what was handled, closes with 1000, stops reconnecting; unconfirmed sends fail."""
        if self._task is None:
            self._finish("closed by the client")
            return
        if not self._stop.is_set():
            self._delivery.flush_acks()
            writes = self._writes
            if writes is not None:
                try:  # let the acks go out before the close frame
                    await asyncio.wait_for(writes.join(), 1.0)
                except TimeoutError:
                    pass
            self._stop.set()
            ws = self._ws
            if ws is not None:
                await ws.close(1000, "closed by the client")
            else:
                self._task.cancel()  # connecting, or fetching a token: nothing to close cleanly
        await asyncio.gather(self._task, return_exceptions=True)

    # -- receiving ---------------------------------------------------------------------------

    def __aiter__(self) -> Receiver:
        self.start()
        return self

    async def __anext__(self) -> Message:
        message = await self._delivery.next()
        if message is not None:
            return message
        if self.closed_by is not None:
            raise self.closed_by
        raise StopAsyncIteration

    def ack(self, message: Message | str) -> None:
        """Acks a message (needed with ``manual_ack``; harmless otherwise)."""
        self._delivery.ack(message)

    # -- sending -----------------------------------------------------------------------------

    async def send(
        self,
        to: str,
        payload: Any,
        **options: Unpack[SendOptions],
    ) -> SendResult:
        """Enqueues a message over this session (needs the ``publish`` scope); options as ``Producer.send``.

        Waits while disconnected and goes out after the next welcome with the same id, so the
        gateway never queues it twice. Raises ``HoldoverError`` with the gateway's code
        (QUEUE_FULL, FORBIDDEN, …), INVALID_MESSAGE, OUTBOX_FULL or CLIENT_CLOSED.
        """
        if self.state == "closed":
            raise HoldoverError("CLIENT_CLOSED", "the receiver is closed")
        request = message_request(OutgoingMessage(to, payload, **options))
        result = self._outbox.add(request)
        if self.state == "open":
            self._outbox.attempt_all(self._write)
        return await result

    def _write(self, frame: dict[str, Any]) -> bool:
        ws, writes = self._ws, self._writes
        if ws is None or writes is None or ws.state is not State.OPEN:
            return False
        writes.put_nowait(json.dumps(frame))
        return True

    # -- the connection loop -----------------------------------------------------------------

    async def _run(self) -> None:
        reason = "closed by the client"
        try:
            while not self._stop.is_set():
                code, server_reason, welcomed = await self._attempt()
                if self._stop.is_set():
                    break
                reason = describe_close(code, server_reason)
                delay_ms = self._next_delay_ms(code, reason, welcomed)
                if delay_ms is None:
                    break
                self._set_state("reconnecting")
                try:
                    await asyncio.wait_for(self._stop.wait(), delay_ms / 1000)
                except TimeoutError:
                    pass
        finally:
            self._finish(reason if self.closed_by is not None else "closed by the client")

    def _next_delay_ms(self, code: int, reason: str, welcomed: bool) -> int | None:
        """What the close-code table says: a delay, or None to stop for good."""
        policy = reconnect_policy(code)
        if policy == "no" or (policy == "fresh-token" and self._get_token is None):
            extra = "" if policy == "no" else "; no get_token was given to fetch a fresh token"
            self.closed_by = SessionClosed(code, reason + extra)
            return None
        if policy in ("immediately", "fresh-token") and welcomed:
            return 0  # only after a welcomed session, so a failing gateway is not hammered
        return self._backoff.next_delay_ms()

    async def _fetch_token(self) -> str:
        if self._get_token is None:
            token: Any = self._token
        else:
            token = self._get_token()
            if inspect.isawaitable(token):
                token = await token
        if not isinstance(token, str) or token == "":
            raise TypeError("the token is empty")
        return token

    async def _attempt(self) -> tuple[int, str, bool]:
        """One connection attempt and its session; returns (close code, reason, welcomed)."""
        self._set_state("connecting")
        try:
            token = await self._fetch_token()
        except Exception as cause:  # the caller's provider: anything it raises is reported
            self._report(HoldoverError("TOKEN_FAILED", f"get_token() failed: {cause!r}"))
            return _ABNORMAL, "no token", False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        try:
            ws = await asyncio.wait_for(
                connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {token}"},
                    subprotocols=[Subprotocol(SUBPROTOCOL)],
                    ping_interval=None,  # the contract's own heartbeat is used instead
                    close_timeout=1,
                    max_size=16 * 1024 * 1024,
                    open_timeout=None,
                ),
                self._connect_timeout,
            )
        except TimeoutError:
            self._report(
                HoldoverError("CONNECTION_LOST", f"no connection within {self._connect_timeout * 1000:.0f} ms")
            )
            return _ABNORMAL, "connect timeout", False
        except Exception as cause:  # refused, reset, DNS, HTTP answer instead of an upgrade …
            self._report(HoldoverError("CONNECTION_LOST", f"cannot open a WebSocket: {cause!r}"))
            return _ABNORMAL, str(cause), False
        if self._stop.is_set():
            await ws.close(1000, "closed by the client")
            return 1000, "closed by the client", False
        return await self._session_on(ws, deadline)

    async def _session_on(self, ws: ClientConnection, welcome_deadline: float) -> tuple[int, str, bool]:
        loop = asyncio.get_running_loop()
        self._ws = ws
        session = self._delivery.start_session()
        writes: asyncio.Queue[str] = asyncio.Queue()
        self._writes = writes
        writer = loop.create_task(self._writer(ws, writes))
        beats: asyncio.Task[None] | None = None
        welcomed = False
        gave_up: str | None = None
        closing: asyncio.Task[None] | None = None  # held: the loop keeps only weak task references

        def give_up(reason: str) -> None:
            nonlocal gave_up, closing
            if gave_up is not None:
                return
            gave_up = reason
            self._report(HoldoverError("CONNECTION_LOST", reason))
            self._end_session()
            closing = loop.create_task(ws.close(_GAVE_UP, reason[:120]))

        connect_timer = loop.call_at(
            welcome_deadline, give_up, f"no welcome within {self._connect_timeout * 1000:.0f} ms"
        )
        self._last_frame = loop.time()
        try:
            while True:
                try:
                    raw = await ws.recv()
                except ConnectionClosed:
                    break
                if gave_up is not None:
                    continue
                self._last_frame = loop.time()
                try:
                    frame = parse_server_frame(raw)
                except HoldoverError as error:
                    self._report(error)
                    continue
                if isinstance(frame, Welcome):
                    if welcomed:
                        continue
                    welcomed = True
                    connect_timer.cancel()
                    self.welcome = frame
                    self._backoff.reset()
                    self._delivery.welcomed(frame.max_in_flight)
                    if frame.heartbeat_ms > 0:
                        beats = loop.create_task(
                            heartbeat(frame.heartbeat_ms / 1000, self._last_frame_at, self._ping, give_up)
                        )
                    self._set_state("open")
                    self._outbox.attempt_all(self._write)
                elif isinstance(frame, Message):
                    self._delivery.receive(session, frame)
                elif isinstance(frame, Sent):
                    if frame.ref is not None:
                        self._outbox.settle(frame.ref, frame.result)
                elif isinstance(frame, ErrorFrame):
                    if frame.ref is None or not self._outbox.fail(frame.ref, frame.error):
                        self._report(frame.error)
        finally:
            connect_timer.cancel()
            for task in (beats, writer):
                if task is not None:
                    task.cancel()
            if gave_up is None:
                self._end_session()
            self._ws = None
            self._writes = None
            if closing is not None:
                await asyncio.gather(closing, return_exceptions=True)  # within close_timeout
        if gave_up is not None:
            return _ABNORMAL, gave_up, welcomed
        return ws.close_code or _ABNORMAL, ws.close_reason or "", welcomed

    def _end_session(self) -> None:
        """Drops what belongs to the session: undelivered messages, unsent acks, send refs."""
        self._delivery.end_session()
        self._outbox.detach()

    def _last_frame_at(self) -> float:
        return self._last_frame

    def _ping(self) -> None:
        self._write({"type": "ping"})

    async def _writer(self, ws: ClientConnection, writes: asyncio.Queue[str]) -> None:
        """The session's frames, in order, one writer so acks, sends and pings never interleave."""
        while True:
            text = await writes.get()
            try:
                await ws.send(text)
            except ConnectionClosed:
                pass  # the reader sees the close and ends the session
            finally:
                writes.task_done()

    def _finish(self, reason: str) -> None:
        if self.state == "closed":
            return
        self._outbox.detach()
        self._set_state("closed")
        self._outbox.reject_all(HoldoverError("CLIENT_CLOSED", f"the receiver stopped: {reason}"))
        self._delivery.stop()

    def _report(self, error: HoldoverError) -> None:
        try:
            self._on_error(error)
        except Exception:  # a failing error handler must not break the session
            _log.exception("holdover receiver: on_error raised")

    def _set_state(self, state: ReceiverState) -> None:
        if state == self.state and state != "connecting":
            return
        self.state = state
        if self._on_state_change is not None:
            try:
                self._on_state_change(state)
            except Exception:
                _log.exception("holdover receiver: on_state_change raised")
