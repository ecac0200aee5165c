"""The producer: ``POST /v1/messages`` and ``/v1/messages/batch`` with retries.

Every message carries an id from before its first attempt (the caller's, or a fresh UUID), so a
retry cannot queue it twice: the gateway's dedup window answers a repeated id with the first
result. Retried: 503 (waiting ``Retry-After`` when the gateway sends one, else a full-jitter backoff
delay), 429 with a ``Retry-After`` (RATE_LIMITED; a 429 QUEUE_FULL without one is raised at once)
and transport errors (connection refused or reset, timeouts), up to ``RetryOptions.attempts``
attempts in all. Everything else raises ``HoldoverError`` with the
contract's code and the HTTP status at once (INVALID_MESSAGE 400, UNAUTHORIZED 401, FORBIDDEN 403,
MESSAGE_TOO_LARGE 413, …); a ``get_token`` that raises or returns no token is TOKEN_FAILED, not
retried. The last failure of a retried call is raised as it was.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, Unpack

import httpx

from ._backoff import Backoff, BackoffOptions
from ._errors import HoldoverError
from ._frames import SendResult, send_result, wire_error
from ._outgoing import OutgoingMessage, SendOptions, message_request

MAX_BATCH = 1000
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryOptions:
    #: Attempts in all, the first included (1: no retries).
    attempts: int = 4
    #: Delays between attempts when the gateway sends no Retry-After.
    backoff: BackoffOptions = field(default_factory=lambda: BackoffOptions(initial_ms=200, max_ms=5_000))
    #: A Retry-After longer than this is not waited for: the error is raised (with ``retry_after``).
    max_retry_after_ms: float = 30_000


DEFAULT_RETRY = RetryOptions()


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Producer:
    """Sends messages to recipients over HTTP; needs a token with the ``publish`` scope."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        get_token: Callable[[], str | Awaitable[str]] | None = None,
        retry: RetryOptions = DEFAULT_RETRY,
        timeout_ms: float = 10_000,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``url`` is the gateway's base URL (``http://host:8080``); ``http`` a client of your own."""
        if token is None and get_token is None:
            raise ValueError("Producer needs token or get_token")
        if retry.attempts < 1:
            raise ValueError(f"retry.attempts must be at least 1, got {retry.attempts}")
        self.url = url.rstrip("/")
        self._token = token
        self._get_token = get_token
        self._retry = retry
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout_ms / 1000)

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def send(
        self,
        to: str,
        payload: Any,
        **options: Unpack[SendOptions],
    ) -> SendResult:
        """Enqueues one message (``priority=``, ``ttl_ms=``, ``id=``); ``queued``, or ``dropped``
        (the queue is full under drop_newest)."""
        body = message_request(OutgoingMessage(to, payload, **options))
        answer = await self._post("/v1/messages", body, expect=202)
        return self._parse(lambda: send_result(answer))

    async def send_batch(self, messages: Iterable[OutgoingMessage]) -> list[SendResult | HoldoverError]:
        """Up to 1000 messages in one request; one result per message, in order.

        Each message has its own outcome, as the batch endpoint gives it: one that fails (found
        invalid here, INVALID_MESSAGE; or refused by the gateway, e.g. QUEUE_FULL) gets a
        ``HoldoverError`` in its place instead of a ``SendResult``, with ``path``
        ``messages.<i>.<field>`` where i is its index in ``messages``; the others are queued.
        """
        results: list[SendResult | HoldoverError | None] = []
        bodies: list[dict[str, Any]] = []
        for index, message in enumerate(messages):
            try:
                bodies.append(message_request(message))
                results.append(None)
            except HoldoverError as error:
                error.path = f"messages.{index}.{error.path}"  # the gateway's notation
                results.append(error)
        if len(results) > MAX_BATCH:
            raise HoldoverError("INVALID_MESSAGE", f"a batch holds at most {MAX_BATCH} messages, got {len(results)}")
        if bodies:
            answer = await self._post("/v1/messages/batch", {"messages": bodies}, expect=200)
            answered = answer.get("results")
            if not isinstance(answered, list) or len(answered) != len(bodies):
                raise HoldoverError(
                    "INVALID_SERVER_FRAME", f"a batch answer without one result per message: {answer!r}"
                )
            sent = enumerate(answered)
            results = [
                self._batch_result(*next(sent), index) if result is None else result
                for index, result in enumerate(results)
            ]
        return [r for r in results if r is not None]

    def _batch_result(self, sent: int, item: Any, index: int) -> SendResult | HoldoverError:
        """The gateway's result for the ``sent``-th message of the request, ``messages[index]``."""
        if isinstance(item, dict) and isinstance(item.get("error"), dict):
            error = self._parse(lambda: wire_error(item["error"]))
            # The gateway numbers the messages it got; the caller's numbering counts those not sent.
            prefix = f"messages.{sent}."
            if error.path is not None and error.path.startswith(prefix):
                error.path = f"messages.{index}.{error.path[len(prefix) :]}"
            return error
        result: SendResult | HoldoverError = self._parse(lambda: send_result(item))
        return result

    @staticmethod
    def _parse(read: Callable[[], _T]) -> _T:
        try:
            return read()
        except (KeyError, TypeError, AttributeError) as cause:
            raise HoldoverError("INVALID_SERVER_FRAME", f"an answer not in the contract: {cause!r}") from cause

    async def _fetch_token(self) -> str:
        try:
            token: Any = self._token if self._get_token is None else self._get_token()
            if inspect.isawaitable(token):
                token = await token
        except Exception as cause:  # the caller's provider: whatever it raises is TOKEN_FAILED
            raise HoldoverError("TOKEN_FAILED", f"get_token() failed: {cause!r}") from cause
        if not isinstance(token, str) or token == "":
            raise HoldoverError("TOKEN_FAILED", "the token is empty")
        return token

    async def _post(self, path: str, body: dict[str, Any], *, expect: int) -> dict[str, Any]:
        backoff = Backoff(self._retry.backoff)
        for attempt in range(1, self._retry.attempts + 1):
            last = attempt == self._retry.attempts
            try:
                response = await self._http.post(
                    f"{self.url}{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {await self._fetch_token()}"},
                )
            except httpx.TransportError as cause:
                if last:
                    raise HoldoverError("CONNECTION_LOST", f"POST {path}: {cause!r}") from cause
                await asyncio.sleep(backoff.next_delay_ms() / 1000)
                continue
            if response.status_code == expect:
                answer = self._json(response)
                if not isinstance(answer, dict):
                    raise HoldoverError("INVALID_SERVER_FRAME", f"POST {path} answered {answer!r}")
                return answer
            error = self._error(response)
            # 429 without Retry-After is a full queue under `reject`: retrying soon would not help.
            retryable = response.status_code == 503 or (response.status_code == 429 and error.retry_after is not None)
            if not retryable or last:
                raise error
            delay_ms = error.retry_after * 1000 if error.retry_after is not None else backoff.next_delay_ms()
            if delay_ms > self._retry.max_retry_after_ms:
                raise error
            await asyncio.sleep(delay_ms / 1000)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _error(self, response: httpx.Response) -> HoldoverError:
        answer = self._json(response)
        retry_after = _retry_after_seconds(response.headers.get("retry-after"))
        try:
            error = wire_error(answer["error"], response.status_code)
        except (HoldoverError, KeyError, TypeError):
            # Not the gateway's answer (a proxy's, say): retried or raised by its status all the same.
            error = HoldoverError(
                "INVALID_SERVER_FRAME",
                f"HTTP {response.status_code} without a contract error body: {response.text[:200]!r}",
                status=response.status_code,
            )
        error.retry_after = retry_after
        return error

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None
