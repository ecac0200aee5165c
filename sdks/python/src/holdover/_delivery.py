"""Hands received messages to the application one at a time, in arrival order, and acks them.

The gateway sends in strict priority order; handing over one at a time keeps that promise.
Messages already handled (``DedupWindow``) are dropped and acked again. A message counts as
handled once the application asks for the next one (``complete``); then it is remembered and
acked — unless ``manual_ack``, where only ``ack`` acks. Acks are coalesced: ids wait for the next
turn of the event loop (or until half of ``maxInFlight`` has piled up, so the gateway's flow
control never stalls) and go out as one ``ack`` frame.

Sessions: every message is tagged with the session it came on. ``end_session`` drops messages
not yet handed over and acks not yet sent — the gateway redelivers everything unacked to the
next session, where a message handled in the meantime is recognised and acked instead of handed
over twice. ``stop`` ends ``next`` for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ._dedup import DedupWindow
from ._frames import Message

_MAX_IDS_PER_ACK = 10_000  # the contract's limit for one ack frame


class Delivery:
    def __init__(self, *, manual_ack: bool, dedup_window: int, write: Callable[[dict[str, object]], bool]) -> None:
        self._manual_ack = manual_ack
        self._write = write
        self._dedup = DedupWindow(dedup_window)
        #: Ids the application acked itself (manual mode), so a redelivery of them is acked again.
        self._user_acked: DedupWindow | None = DedupWindow(dedup_window) if manual_ack else None
        self._inbox: asyncio.Queue[tuple[int, Message] | None] = asyncio.Queue()
        self._current: tuple[int, Message] | None = None
        self._session = 0
        self._acks: list[str] = []
        self._ack_handle: asyncio.Handle | None = None
        self._ack_batch = 128
        self._stopped = False

    def start_session(self) -> int:
        """A connection opened; its messages carry the number returned."""
        self._session += 1
        return self._session

    def welcomed(self, max_in_flight: int) -> None:
        self._ack_batch = min(_MAX_IDS_PER_ACK, max(1, max_in_flight // 2))

    def end_session(self) -> None:
        self._session += 1
        self._acks = []
        self._cancel_flush()

    def receive(self, session: int, message: Message) -> None:
        self._inbox.put_nowait((session, message))

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.end_session()
        self._inbox.put_nowait(None)

    async def next(self) -> Message | None:
        """The next message to hand over, after completing the previous one; None once stopped."""
        self.complete()
        while True:
            item = await self._inbox.get()
            if item is None:
                self._inbox.put_nowait(None)  # every later call ends too
                return None
            session, message = item
            if session != self._session:
                continue  # its session ended; the gateway redelivers it to the next one
            if message.id in self._dedup:
                if self._user_acked is None or message.id in self._user_acked:
                    self._queue_ack(message.id)
                continue
            self._current = item
            return message

    def complete(self) -> None:
        """The application is done with the message it was handed last."""
        if self._current is None:
            return
        session, message = self._current
        self._current = None
        self._dedup.add(message.id)
        # A message of a session that has ended is acked when its redelivery arrives.
        if not self._manual_ack and session == self._session:
            self._queue_ack(message.id)

    def ack(self, message: Message | str) -> None:
        message_id = message if isinstance(message, str) else message.id
        if self._user_acked is not None:
            self._user_acked.add(message_id)
        self._queue_ack(message_id)

    def flush_acks(self) -> None:
        self._cancel_flush()
        if self._acks:
            ids, self._acks = self._acks, []
            self._write({"type": "ack", "ids": ids})

    def _queue_ack(self, message_id: str) -> None:
        if self._stopped:
            return
        self._acks.append(message_id)
        if len(self._acks) >= self._ack_batch:
            self.flush_acks()
        elif self._ack_handle is None:
            self._ack_handle = asyncio.get_running_loop().call_soon(self.flush_acks)

    def _cancel_flush(self) -> None:
        if self._ack_handle is not None:
            self._ack_handle.cancel()
            self._ack_handle = None
