"""Retries with exponential backoff and jitter, for rate-limited embedding APIs.

A remote API answers HTTP 429 ("too many requests") when a client exceeds its quota, and
occasionally 5xx when a server is overloaded. Both are transient: the same request succeeds
a little later. The standard remedy is *exponential backoff with jitter*: wait `base`, then
`2 base`, `4 base`, ... (capped at `max_delay`) between attempts, and randomise each wait so
that many clients rate-limited together do not all retry at the same instant.

Here the wait before retry `k` (k = 1, 2, ...) is drawn uniformly from `[d_k / 2, d_k]`
with `d_k = min(max_delay, base_delay * 2 ** (k - 1))` ("equal jitter", see Brooker,
"Exponential Backoff And Jitter", AWS Architecture Blog, 2015).

The SDKs' own retry loops are switched off by the providers so that this one, whose `sleep`
can be replaced in tests, is the only one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class RetriesExhaustedError(RuntimeError):
    """A transient API error (rate limit, 5xx) persisted through every attempt."""


@dataclass
class RetryPolicy:
    """How often and how long to retry. `sleep` and `rng` are injectable for tests."""

    max_attempts: int = 5
    base_delay: float = 1.0  # seconds before the first retry (upper bound)
    max_delay: float = 16.0  # cap on any single wait, in seconds
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based): uniform in `[d/2, d]`."""
        d = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return d / 2 + self.rng.uniform(0.0, d / 2)


def call_with_retries(
    fn: Callable[[], T],
    *,
    is_transient: Callable[[BaseException], bool],
    describe: Callable[[BaseException], str],
    policy: RetryPolicy,
    what: str,
) -> T:
    """Call `fn()`; on an error for which `is_transient` holds, back off and try again.

    Errors that are not transient (a bad request, a wrong key) propagate at once. After
    `policy.max_attempts` transient failures in a row, raise `RetriesExhaustedError`, with
    the last error as its `__cause__` and `describe(last_error)` in the message.
    """
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt >= policy.max_attempts:
                raise RetriesExhaustedError(
                    f"{what}: gave up after {attempt} attempts, last error: {describe(exc)}; "
                    "wait a minute, lower batch_size, or use get_provider('local') offline"
                ) from exc
            policy.sleep(policy.delay(attempt))
            attempt += 1
