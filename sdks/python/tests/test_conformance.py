"""The Python SDK against every conformance case (sdks/conformance/README.md, "The runner").

Needs the scripted server's URL in HOLDOVER_CONFORMANCE_URL (sdks/test/python.test.ts starts
the server and runs this file); skipped without it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from holdover import BackoffOptions, HoldoverError, Receiver, SessionClosed

CASES = {
    p.stem: json.loads(p.read_text())
    for p in sorted((Path(__file__).resolve().parents[2] / "conformance" / "cases").glob("*.json"))
}


def receiver_for(url: str, client: dict[str, Any], errors: list[str]) -> Receiver:
    tokens = client.get("tokens")
    if tokens:
        attempts = itertools.count()
        auth: dict[str, Any] = {"get_token": lambda: tokens[min(next(attempts), len(tokens) - 1)]}
    else:
        auth = {"token": client["token"]}
    options: dict[str, Any] = {}
    if "connectTimeoutMs" in client:
        options["connect_timeout_ms"] = client["connectTimeoutMs"]
    if "dedupWindow" in client:
        options["dedup_window"] = client["dedupWindow"]
    backoff = BackoffOptions(initial_ms=client["backoff"]["initialMs"], max_ms=client["backoff"]["maxMs"])
    return Receiver(url, backoff=backoff, on_error=lambda e: errors.append(e.code), **auth, **options)


def problems(expect: dict[str, Any], outcome: dict[str, Any]) -> list[str]:
    """Step 7 of the runner: what differs from ``expect``, one line each."""
    found: list[str] = []
    if "delivered" in expect:
        got, want = outcome["delivered"], expect["delivered"]
        if len(got) != len(want):
            found.append(f"delivered {[m['id'] for m in got]}, expected {[m['id'] for m in want]}")
        for i, (message, wanted) in enumerate(zip(got, want, strict=False)):
            for key, value in wanted.items():
                if message.get(key) != value:
                    found.append(f"delivered[{i}].{key} is {message.get(key)!r}, expected {value!r}")
    codes = iter(outcome["errors"])
    if not all(any(code == wanted for code in codes) for wanted in expect.get("errors", [])):
        found.append(f"errors {outcome['errors']} do not contain {expect['errors']} in order")
    final = expect.get("final")
    if final is not None:
        got_final = outcome["final"]
        for key in ("state", "code", "takenOver"):
            if key in final and got_final.get(key) != final[key]:
                found.append(f"final {key} is {got_final.get(key)!r}, expected {final[key]!r}")
    for i, wanted in enumerate(expect.get("sends", [])):
        if outcome["sends"][i] != wanted:
            found.append(f"sends[{i}] is {outcome['sends'][i]!r}, expected {wanted!r}")
    return found


@pytest.mark.parametrize("name", CASES)
async def test_conformance_case(name: str) -> None:
    base = os.environ.get("HOLDOVER_CONFORMANCE_URL")
    if not base:
        pytest.skip("HOLDOVER_CONFORMANCE_URL is not set (sdks/test/python.test.ts sets it)")
    case, run = CASES[name], f"py-{uuid.uuid4().hex[:12]}"
    result_url = f"{base.replace('ws://', 'http://', 1)}/result/{name}/{run}"
    errors: list[str] = []
    delivered: list[dict[str, Any]] = []
    receiver = receiver_for(f"{base}/{name}/{run}", case["client"], errors)

    async def consume() -> None:
        try:
            async for m in receiver:
                delivered.append(
                    {"id": m.id, "priority": m.priority, "redelivered": m.redelivered, "payload": m.payload}
                )
        except SessionClosed:
            pass  # recorded as receiver.closed_by

    planned = case["client"].get("sends", [])
    sends: list[dict[str, Any] | None] = [None] * len(planned)

    async def send(i: int, s: dict[str, Any]) -> None:
        try:
            options = {
                name: s[key] for key, name in (("priority", "priority"), ("ttlMs", "ttl_ms"), ("id", "id")) if key in s
            }
            r = await receiver.send(s["to"], s["payload"], **options)
            sends[i] = {"status": r.status, "id": r.id}
        except HoldoverError as error:
            sends[i] = {"error": error.code}

    receiver.start()
    tasks = [asyncio.create_task(consume())] + [asyncio.create_task(send(i, s)) for i, s in enumerate(planned)]
    loop = asyncio.get_running_loop()
    want = len(case["expect"].get("delivered", []))
    async with httpx.AsyncClient(timeout=5) as http:

        async def played_out() -> bool:
            if receiver.state == "closed":
                return True
            if len(delivered) < want or any(s is None for s in sends):
                return False
            return bool((await http.get(result_url)).json()["done"])

        deadline = loop.time() + case.get("timeoutMs", 10_000) / 1000
        while loop.time() < deadline and not await played_out():  # noqa: ASYNC110 (polls the server over HTTP)
            await asyncio.sleep(0.02)
        await asyncio.sleep(case.get("settleMs", 0) / 1000)
        closed_by = receiver.closed_by
        final: dict[str, Any] = {"state": "closed" if receiver.state == "closed" else "open", "takenOver": False}
        if closed_by is not None:
            final.update(code=closed_by.close_code, takenOver=closed_by.taken_over)
        await receiver.close()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        result = (await http.get(result_url)).json()
    log = "\n".join(result["log"])
    assert result["failures"] == [], log
    assert result["ok"], log
    outcome = {"delivered": delivered, "errors": errors, "final": final, "sends": sends}
    assert problems(case["expect"], outcome) == [], json.dumps(outcome)
