"""Pacing: the token bucket holds the rate, a 429 pauses every worker, backoff stays bounded, Retry-After parses."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.sending import RetryPolicy, TokenBucket, backoff_delay, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_bucket_lets_a_burst_through_then_holds_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        bucket.acquire(1)
    assert clock.now == 0.0
    for _ in range(20):
        bucket.acquire(1)
    assert clock.now == pytest.approx(2.0)  # 20 more messages at 10/s


def test_a_batch_bigger_than_the_bucket_waits_for_a_full_bucket_and_pays_its_debt():
    clock = FakeClock()
    bucket = TokenBucket(rate=100, capacity=100, clock=clock, sleep=clock.sleep)
    bucket.acquire(300)  # a full bucket is there: it goes, 200 messages in debt
    assert clock.now == 0.0
    bucket.acquire(100)
    assert clock.now == pytest.approx(3.0)  # 200 of debt + 100 for itself, at 100/s


def test_a_pause_holds_every_caller_until_it_ends():
    clock = FakeClock()
    bucket = TokenBucket(rate=1000, clock=clock, sleep=clock.sleep)
    bucket.pause(5)
    bucket.acquire(1)
    assert clock.now == pytest.approx(5.0)


@given(retry=st.integers(1, 30), base=st.floats(0.01, 5), cap=st.floats(0.01, 60), seed=st.integers(0, 1000))
def test_backoff_grows_exponentially_never_beyond_its_cap_and_keeps_half_of_it(retry, base, cap, seed):
    policy = RetryPolicy(backoff_seconds=base, backoff_max_seconds=cap)
    ceiling = min(cap, base * 2 ** (retry - 1))
    delay = backoff_delay(retry, policy, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 2, 10, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Tue, 10 Feb 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Tue, 10 Feb 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
