"""Reconnect and retry delays: capped exponential backoff with full jitter.

``backoff_delay`` is the pure formula (the TypeScript SDK's): attempt ``n`` (0-based) waits a
uniformly random whole number of milliseconds in ``[0, min(max_ms, initial_ms * 2**n))``.
``Backoff`` counts the attempts of one outage; a receiver resets it on every welcome.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffOptions:
    #: Ceiling of the first delay (attempt 0).
    initial_ms: float = 250
    #: Ceiling of every delay.
    max_ms: float = 30_000


#: 250 ms, then doubling, up to 30 s: the TypeScript SDK's default.
DEFAULT_BACKOFF = BackoffOptions()


def backoff_delay(attempt: int, options: BackoffOptions, rand: Callable[[], float] = random.random) -> int:
    max_ms = max(0.0, options.max_ms)
    initial_ms = min(max(0.0, options.initial_ms), max_ms)
    ceiling = max_ms if attempt >= 64 else min(max_ms, initial_ms * 2 ** max(0, attempt))
    r = min(max(rand(), 0.0), 1.0)
    return int(min(r * ceiling, max(0.0, ceiling - 1)))


class Backoff:
    """The attempt counter of one outage."""

    def __init__(self, options: BackoffOptions, rand: Callable[[], float] = random.random) -> None:
        self._options = options
        self._rand = rand
        self.attempt = 0

    def next_delay_ms(self) -> int:
        """The delay for the next attempt; counts the attempt."""
        delay = backoff_delay(self.attempt, self._options, self._rand)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
