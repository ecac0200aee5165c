"""Keeps a welcomed session honest: a ``ping`` every ``heartbeatMs`` (the gateway answers
``pong``), and the session declared dead when no frame at all arrived for twice that — a
half-open TCP connection otherwise looks alive for minutes.

A check that runs late means this process was frozen (a loop body that blocked the event loop),
so the gateway's answer may be sitting unread: it pings once more and judges one interval later
instead of dropping a healthy session. The caller cancels the task when the session ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def heartbeat(
    interval: float, last_frame: Callable[[], float], ping: Callable[[], object], dead: Callable[[str], None]
) -> None:
    """``interval`` in seconds; ``last_frame()`` in the event loop's clock."""
    loop = asyncio.get_running_loop()
    limit = 2 * interval
    next_ping = loop.time() + interval
    alive_floor = 0.0  # a frame assumed at this time, after a late check
    while True:
        due = min(next_ping, max(last_frame(), alive_floor) + limit)
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        if now - max(last_frame(), alive_floor) >= limit:
            if now - due <= interval / 2:
                dead(f"no frame within {limit * 1000:.0f} ms (2 × heartbeatMs)")
                return
            ping()
            next_ping = now + interval
            alive_floor = now + interval - limit
            continue
        if now >= next_ping:
            ping()
            next_ping = now + interval
