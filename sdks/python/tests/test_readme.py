"""The README's two examples, run as they are written, against a real gateway."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from conftest import Gateway

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def example(uses: str) -> str:
    (block,) = [b for b in BLOCKS if f"{uses}(" in b]
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) <= 10, f"the {uses} example has {len(lines)} lines; the README promises 10"
    return block


def renamed(code: str, names: dict[str, str]) -> str:
    """``code`` with each string literal ``"old"`` of ``names`` replaced by ``"new"``."""
    for old, new in names.items():
        assert f'"{old}"' in code, f"the example no longer names {old!r}"
        code = code.replace(f'"{old}"', f'"{new}"')
    return code


async def start(uses: str, names: dict[str, str], **env: str) -> asyncio.subprocess.Process:
    """Runs the README's example that uses ``uses`` in a process of its own, as it is written
    except for ``names`` (a second run against the same gateway must not meet the first one's
    recipient and message id; the receiver's recipient is its token's)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        renamed(example(uses), names),
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_the_producer_example_sends_and_the_receiver_example_receives_and_acks(
    gateway: Gateway, recipient: str
) -> None:
    greeting = f"greeting-{recipient}"
    names = {"alice": recipient, "greeting-1": greeting}
    producer = await start(
        "Producer", names, HOLDOVER_URL=gateway.url, HOLDOVER_TOKEN=gateway.token("producer", ["publish"])
    )
    try:
        out, _ = await asyncio.wait_for(producer.communicate(), 30)
    finally:
        if producer.returncode is None:  # it did not finish in time: not left running
            producer.kill()
            await producer.wait()
    assert producer.returncode == 0, out.decode()
    assert out.decode().strip() == f"queued {greeting}"
    assert gateway.depth(recipient)["high"] == 1

    receiver = await start(
        "Receiver", {}, HOLDOVER_WS_URL=gateway.ws_url, HOLDOVER_TOKEN=gateway.token(recipient, ["receive"])
    )
    try:
        assert receiver.stdout is not None
        line = await asyncio.wait_for(receiver.stdout.readline(), 30)
        assert line.decode().strip() == "high {'text': 'hello'}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while gateway.depth(recipient)["high"] != 0:  # the example acks it while it keeps running
            assert loop.time() < deadline, "the receiver example never acked the message"
            await asyncio.sleep(0.05)
    finally:
        receiver.kill()
        await receiver.wait()
