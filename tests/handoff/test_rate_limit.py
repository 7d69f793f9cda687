from __future__ import annotations

from handoff.rate_limit import RateLimiter


def test_bursts_then_refills_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, per_seconds=1, burst=3, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.retry_after("a") == 0.5  # empty: one token every half second
    assert limiter.retry_after("b") == 0  # other keys are not affected
    now[0] = 0.5
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("a") > 0


def test_idle_keys_are_forgotten() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1, per_seconds=1, clock=lambda: now[0])
    for i in range(10_001):
        limiter.retry_after(str(i))
    now[0] = 100.0
    limiter.retry_after("late")
    assert len(limiter._buckets) == 1
