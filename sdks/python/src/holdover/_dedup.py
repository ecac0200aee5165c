"""A bounded memory of recently handled message ids, so a redelivery is not handed over twice.

It remembers the last ``capacity`` ids (insertion order gives the eviction order). An id older
than the window is forgotten, which is fine: the gateway only redelivers unacked messages, at
most ``maxInFlight`` per session.
"""

from __future__ import annotations

from collections import OrderedDict


class DedupWindow:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"dedup_window must be a positive integer, got {capacity}")
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, message_id: str) -> bool:
        """Remembers the id; False if it was already in the window (nothing changes then)."""
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True
