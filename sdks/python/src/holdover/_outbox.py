"""WebSocket sends the gateway has not confirmed yet, in the order they were made.

Each entry keeps one message id for its whole life (the gateway's dedup key), so sending it
again on a new session cannot queue it twice; each attempt gets a fresh ``ref``, which is how
the ``sent`` / ``error`` answer finds its entry. Lifecycle: ``add`` (at most ``capacity``,
beyond it OUTBOX_FULL) → ``attempt_all`` after every welcome, oldest first → ``settle`` /
``fail`` by ref, or ``reject_all`` when the receiver stops. ``detach`` forgets the refs of a
session that ended, so the next ``attempt_all`` sends those entries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import HoldoverError
from ._frames import SendResult


@dataclass
class _Entry:
    frame: dict[str, Any]
    future: asyncio.Future[SendResult]
    ref: str | None = None


class Outbox:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"max_outbox must be a positive integer, got {capacity}")
        self._capacity = capacity
        self._entries: list[_Entry] = []
        self._by_ref: dict[str, _Entry] = {}
        self._refs = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, request: dict[str, Any]) -> asyncio.Future[SendResult]:
        """Queues a send frame (without ref); the future settles when the gateway answers."""
        if len(self._entries) >= self._capacity:
            raise HoldoverError("OUTBOX_FULL", f"the outbox already holds {self._capacity} unconfirmed sends")
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._entries.append(_Entry({"type": "send", **request}, future))
        return future

    def attempt_all(self, write: Callable[[dict[str, Any]], bool]) -> None:
        """Hands every entry not yet sent on this session to ``write``; stops at the first refusal."""
        for entry in list(self._entries):
            if entry.ref is not None:
                continue
            self._refs += 1
            ref = f"r{self._refs}"
            if not write({**entry.frame, "ref": ref}):
                return
            entry.ref = ref
            self._by_ref[ref] = entry

    def detach(self) -> None:
        for entry in self._entries:
            entry.ref = None
        self._by_ref.clear()

    def settle(self, ref: str, result: SendResult) -> bool:
        entry = self._take(ref)
        if entry is not None and not entry.future.done():
            entry.future.set_result(result)
        return entry is not None

    def fail(self, ref: str, error: HoldoverError) -> bool:
        entry = self._take(ref)
        if entry is not None and not entry.future.done():
            entry.future.set_exception(error)
        return entry is not None

    def reject_all(self, error: HoldoverError) -> None:
        entries, self._entries = self._entries, []
        self._by_ref.clear()
        for entry in entries:
            if not entry.future.done():
                entry.future.set_exception(error)

    def _take(self, ref: str) -> _Entry | None:
        entry = self._by_ref.pop(ref, None)
        if entry is not None:
            self._entries.remove(entry)
        return entry
