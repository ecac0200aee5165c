"""A receiver process for the kill -9 test (sdks/test/python.test.ts drives it; not a pytest file).

Connects to HOLDOVER_WS_URL with HOLDOVER_TOKEN and reports on stdout, one JSON object a line:
``{"event": "open"}`` on every welcome, ``{"event": "message", "id", "priority", "payload",
"redelivered"}`` for every message handed over. Exits 0 once HOLDOVER_EXPECT messages were handed
over (and acked), 1 if that has not happened within HOLDOVER_DEADLINE_S seconds (default 90).
"""

import asyncio
import json
import os
import sys

from holdover import BackoffOptions, Receiver


def report(event: dict) -> None:
    print(json.dumps(event), flush=True)


async def main() -> int:
    expected = int(os.environ["HOLDOVER_EXPECT"])
    receiver = Receiver(
        os.environ["HOLDOVER_WS_URL"],
        token=os.environ["HOLDOVER_TOKEN"],
        backoff=BackoffOptions(initial_ms=100, max_ms=1000),
        on_state_change=lambda state: report({"event": state}),
        on_error=lambda error: report({"event": "error", "code": error.code, "message": error.message}),
    )
    handed = 0

    async def receive() -> None:
        nonlocal handed
        async with receiver:
            async for m in receiver:
                report(
                    {
                        "event": "message",
                        "id": m.id,
                        "priority": m.priority,
                        "payload": m.payload,
                        "redelivered": m.redelivered,
                    }
                )
                handed += 1
                if handed >= expected:
                    break  # leaving `async with` acks it and closes with 1000

    try:
        await asyncio.wait_for(receive(), float(os.environ.get("HOLDOVER_DEADLINE_S", "90")))
    except TimeoutError:
        report({"event": "timeout", "handed": handed})
        return 1
    return 0


sys.exit(asyncio.run(main()))
