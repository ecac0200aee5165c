"""The receiver against a real gateway on a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Gateway, mint

from holdover import BackoffOptions, HoldoverError, Message, OutgoingMessage, Producer, Receiver, SessionClosed

FAST = BackoffOptions(initial_ms=50, max_ms=500)
RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}


async def take(receiver: Receiver, count: int, timeout_s: float = 20) -> list[Message]:
    got: list[Message] = []

    async def run() -> None:
        async for message in receiver:
            got.append(message)
            if len(got) == count:
                return

    await asyncio.wait_for(run(), timeout_s)
    return got


async def wait_until(description: str, condition, timeout_s: float = 20) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting until {description}")
        await asyncio.sleep(0.02)


async def test_a_backlog_arrives_in_priority_order_fifo_within_each_and_is_acked(
    gateway: Gateway, recipient: str
) -> None:
    order = ["low", "normal", "critical", "high", "low", "critical", "normal", "high", "critical", "low"]
    async with Producer(gateway.url, token=gateway.token("producer", ["publish"])) as producer:
        results = await producer.send_batch(
            [OutgoingMessage(recipient, {"seq": seq}, priority=p) for seq, p in enumerate(order)]  # type: ignore[arg-type]
        )
    assert all(not isinstance(r, HoldoverError) for r in results)
    async with Receiver(gateway.ws_url, token=gateway.token(recipient, ["receive"]), backoff=FAST) as receiver:
        got = await take(receiver, len(order))
        assert receiver.welcome is not None and receiver.welcome.recipient == recipient
        assert sum(receiver.welcome.pending.values()) == len(order)
    wanted = sorted(enumerate(order), key=lambda e: (RANK[e[1]], e[0]))
    assert [(m.priority, m.payload["seq"]) for m in got] == [(p, seq) for seq, p in wanted]
    assert not any(m.redelivered for m in got)
    assert gateway.depth(recipient) == {"critical": 0, "high": 0, "normal": 0, "low": 0}


async def test_a_message_whose_loop_body_raised_is_not_acked_and_comes_back(gateway: Gateway, recipient: str) -> None:
    async with Producer(gateway.url, token=gateway.token("producer", ["publish"])) as producer:
        sent = await producer.send(recipient, {"n": 1})
    token = gateway.token(recipient, ["receive"])
    with pytest.raises(RuntimeError):
        async with Receiver(gateway.ws_url, token=token, backoff=FAST) as receiver:
            async for message in receiver:
                raise RuntimeError(f"the handler failed on {message.id}")
    async with Receiver(gateway.ws_url, token=token, backoff=FAST) as receiver:
        (again,) = await take(receiver, 1)
    assert again.id == sent.id
    assert again.redelivered
    assert gateway.depth(recipient)["normal"] == 0


async def test_a_newer_connection_of_the_same_recipient_takes_the_session_over(
    gateway: Gateway, recipient: str
) -> None:
    token = gateway.token(recipient, ["receive"])
    older = Receiver(gateway.ws_url, token=token, backoff=FAST)
    async with older:
        await wait_until("the older receiver is open", lambda: older.state == "open")
        async with Receiver(gateway.ws_url, token=token, backoff=FAST) as newer:
            with pytest.raises(SessionClosed) as caught:
                await asyncio.wait_for(older.__anext__(), 20)
            assert caught.value.close_code == 4409 and caught.value.taken_over
            assert older.state == "closed"
            await wait_until("the newer receiver is open", lambda: newer.state == "open")


async def test_an_expired_static_token_ends_the_session_with_4401(gateway: Gateway, recipient: str) -> None:
    short = mint(gateway.secret, recipient, ["receive"], ttl_s=2)
    async with Receiver(gateway.ws_url, token=short, backoff=FAST) as receiver:
        with pytest.raises(SessionClosed) as caught:
            await asyncio.wait_for(receiver.__anext__(), 20)
    assert caught.value.close_code == 4401 and not caught.value.taken_over


async def test_send_over_the_session_is_answered_by_the_gateway(gateway: Gateway, recipient: str) -> None:
    other = f"{recipient}-bob"
    token = gateway.token(recipient, ["receive", "publish"], holdover_to=[other])
    async with Receiver(gateway.ws_url, token=token, backoff=FAST) as receiver:
        result = await asyncio.wait_for(receiver.send(other, {"hi": 1}, priority="high", id="ws-1"), 20)
        with pytest.raises(HoldoverError) as caught:
            await asyncio.wait_for(receiver.send(f"{recipient}-carol", {"hi": 2}), 20)
    assert (result.id, result.status) == ("ws-1", "queued")
    assert caught.value.code == "FORBIDDEN"
    assert gateway.depth(other)["high"] == 1
