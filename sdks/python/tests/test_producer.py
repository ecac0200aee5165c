"""The producer against a real gateway (and, for 503, a tiny local HTTP server)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from conftest import Gateway

from holdover import BackoffOptions, HoldoverError, OutgoingMessage, Producer, RetryOptions, SendResult


async def test_send_queues_with_the_callers_id_and_the_same_id_again_queues_nothing(
    gateway: Gateway, recipient: str
) -> None:
    async with Producer(gateway.url, token=gateway.token("producer", ["publish"])) as producer:
        first = await producer.send(recipient, {"order": 42}, priority="high", id="order-42")
        again = await producer.send(recipient, {"order": 42}, priority="high", id="order-42")
    assert (first.id, first.status, first.priority) == ("order-42", "queued", "high")
    assert first.expires_at is not None
    assert again.id == "order-42"
    assert gateway.depth(recipient) == {"critical": 0, "high": 1, "normal": 0, "low": 0}


async def test_send_without_an_id_gets_a_fresh_one(gateway: Gateway, recipient: str) -> None:
    async with Producer(gateway.url, token=gateway.token("producer", ["publish"])) as producer:
        a = await producer.send(recipient, "a")
        b = await producer.send(recipient, "b")
    assert a.id != b.id and uuid.UUID(a.id) and uuid.UUID(b.id)
    assert gateway.depth(recipient)["normal"] == 2


async def test_errors_carry_the_contracts_code_and_status(gateway: Gateway, recipient: str) -> None:
    async def error_of(token: str, **send: object) -> HoldoverError:
        async with Producer(gateway.url, token=token) as producer:
            with pytest.raises(HoldoverError) as caught:
                await producer.send(**{"to": recipient, "payload": {}, **send})  # type: ignore[arg-type]
        return caught.value

    publisher = gateway.token("producer", ["publish"])
    forbidden = await error_of(gateway.token("reader", ["receive"]))
    assert (forbidden.code, forbidden.status) == ("FORBIDDEN", 403)
    not_for_them = await error_of(gateway.token("narrow", ["publish"], holdover_to=["someone-else"]))
    assert (not_for_them.code, not_for_them.status) == ("FORBIDDEN", 403)
    unauthorized = await error_of("not-a-jwt")
    assert (unauthorized.code, unauthorized.status) == ("UNAUTHORIZED", 401)
    too_large = await error_of(publisher, payload="x" * 70_000)
    assert (too_large.code, too_large.status) == ("MESSAGE_TOO_LARGE", 413)
    too_long = await error_of(publisher, priority="low", ttl_ms=86_400_000)  # low lives 10 min at most
    assert (too_long.code, too_long.status) == ("INVALID_MESSAGE", 400)
    local = await error_of(publisher, priority="urgent")
    assert (local.code, local.status, local.path) == ("INVALID_MESSAGE", None, "priority")
    assert gateway.depth(recipient) == {"critical": 0, "high": 0, "normal": 0, "low": 0}


async def test_send_batch_answers_one_result_per_message_in_order(gateway: Gateway, recipient: str) -> None:
    messages = [
        OutgoingMessage(recipient, {"n": 1}, priority="critical", id="b-1"),
        OutgoingMessage(recipient, {"n": 2}, priority="urgent"),  # type: ignore[arg-type]
        OutgoingMessage(recipient, {"n": 3}, priority="low", ttl_ms=86_400_000),
        OutgoingMessage(recipient, {"n": 4}),
    ]
    async with Producer(gateway.url, token=gateway.token("producer", ["publish"])) as producer:
        results = await producer.send_batch(messages)
    assert len(results) == 4
    first, local, remote, last = results
    assert isinstance(first, SendResult) and (first.id, first.status) == ("b-1", "queued")
    assert isinstance(local, HoldoverError) and (local.code, local.path) == ("INVALID_MESSAGE", "messages.1.priority")
    assert isinstance(remote, HoldoverError) and (remote.code, remote.path) == ("INVALID_MESSAGE", "messages.2.ttlMs")
    assert isinstance(last, SendResult) and last.status == "queued"
    assert gateway.depth(recipient) == {"critical": 1, "high": 0, "normal": 1, "low": 0}


async def test_429_is_raised_with_retry_after_when_retries_are_off(gateway: Gateway, recipient: str) -> None:
    # The rate-limited gateway allows one message per second per producer: a few in a row hit it.
    token = gateway.token(f"producer-{uuid.uuid4().hex[:8]}", ["publish"])
    async with Producer(gateway.rate_limited_url, token=token, retry=RetryOptions(attempts=1)) as once:
        with pytest.raises(HoldoverError) as caught:
            for n in range(5):
                await once.send(recipient, {"n": n})
    assert (caught.value.code, caught.value.status) == ("RATE_LIMITED", 429)
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1


async def test_429_is_retried_after_the_gateways_retry_after_with_the_same_id(gateway: Gateway, recipient: str) -> None:
    token = gateway.token(f"producer-{uuid.uuid4().hex[:8]}", ["publish"])
    seen: list[tuple[int, str | None, float, bytes]] = []  # status, Retry-After, when, request body

    async def record(response: httpx.Response) -> None:
        seen.append(
            (response.status_code, response.headers.get("retry-after"), time.monotonic(), response.request.content)
        )

    async with httpx.AsyncClient(event_hooks={"response": [record]}) as http:
        producer = Producer(gateway.rate_limited_url, token=token, http=http)
        for n in range(5):  # until a send meets the limit (one per second)
            seen.clear()
            result = await producer.send(recipient, {"n": n}, id=f"m-{n}")
            if seen[0][0] == 429:
                break
    statuses = [status for status, *_ in seen]
    assert statuses[0] == 429 and statuses[-1] == 202, statuses
    assert (result.id, result.status) == (f"m-{n}", "queued")
    assert len({body for *_, body in seen}) == 1, "a retry changed the request (and so its id)"
    retry_after = float(seen[0][1] or 0)
    waited = seen[-1][2] - seen[0][2]
    assert retry_after >= 1 and waited >= 0.9 * retry_after, (
        f"retried {waited:.3f} s after a {retry_after} s Retry-After"
    )
    assert gateway.depth(recipient)["normal"] == n + 1


async def test_503_is_retried_after_retry_after_with_the_same_id() -> None:
    bodies: list[dict] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        body = json.loads(await reader.readexactly(length))
        bodies.append(body)
        if len(bodies) == 1:
            status, extra = "503 Service Unavailable", "Retry-After: 1\r\n"
            answer = {"error": {"code": "QUEUE_UNAVAILABLE", "message": "JetStream unreachable"}}
        else:
            status, extra = "202 Accepted", ""
            answer = {"id": body["id"], "status": "queued", "priority": "normal", "expiresAt": "2099-01-01T00:00:00Z"}
        data = json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        retry = RetryOptions(attempts=3, backoff=BackoffOptions(initial_ms=10, max_ms=10))
        async with Producer(f"http://127.0.0.1:{port}", token="t", retry=retry) as producer:
            started = time.monotonic()
            result = await producer.send("alice", {"n": 1})
            waited = time.monotonic() - started
    finally:
        server.close()
        await server.wait_closed()
    assert result.status == "queued"
    assert len(bodies) == 2 and bodies[0]["id"] == bodies[1]["id"] == result.id
    assert waited >= 0.9, f"retried after {waited:.3f} s, before the 1 s Retry-After"


async def test_a_token_provider_that_raises_is_token_failed_and_nothing_is_sent() -> None:
    def sealed() -> str:
        raise RuntimeError("the vault is sealed")

    connections: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Producer(f"http://127.0.0.1:{port}", get_token=sealed) as producer:
            with pytest.raises(HoldoverError) as caught:
                await producer.send("alice", {"n": 1})
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.code == "TOKEN_FAILED"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert connections == []
