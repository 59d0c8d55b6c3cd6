"""Pacing of requests to a provider: a token-bucket rate limit, bounded backoff with jitter, Retry-After."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from crm.sending.config import RetryPolicy


class TokenBucket:
    """At most `rate` messages per second on average, bursts up to `capacity`; shared by a provider's workers."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(rate, 1.0)
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.capacity
        self.updated = clock()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self, n: float = 1) -> float:
        """Wait until `n` messages may go (a request bigger than the bucket waits for a full one); return the wait."""
        waited = 0.0
        need = min(n, self.capacity)
        while True:
            with self.lock:
                now = self.clock()
                self._refill(now)
                if now < self.paused_until:
                    delay = self.paused_until - now
                elif self.tokens >= need - 1e-9:  # float dust must not turn into endless tiny sleeps
                    self.tokens -= n  # may go negative for an oversized request: the next ones wait for it
                    return waited
                else:
                    delay = (need - self.tokens) / self.rate
            self.sleep(delay)
            waited += delay

    def pause(self, seconds: float) -> None:
        """Nobody sends for `seconds` (a provider's 429 applies to every worker)."""
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)


def backoff_delay(retry: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Delay before retry number `retry` (1 = the first retry): exponential, capped, half of it jittered."""
    rng = rng or random
    ceiling = min(policy.backoff_max_seconds, policy.backoff_seconds * 2 ** (retry - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
