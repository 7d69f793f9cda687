"""Token buckets that keep one chat window or one network from flooding the service.

In-process: each web-service instance limits what reaches it, which bounds the total at
instances × limit. Keys not seen for a while are forgotten so memory stays flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable


FORGET_IDLE_ABOVE = 10_000  # keys: beyond this many, those whose bucket is full again go


class RateLimiter:
    """`rate` events per `per_seconds`, bursts up to `burst`, per key."""

    def __init__(self, rate: float, per_seconds: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._refill = rate / per_seconds
        self._burst = burst if burst is not None else rate
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    def retry_after(self, key: str) -> float:
        """0 if `key` may act now (and counts it); otherwise seconds until it may."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._refill)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            self._forget_idle(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self._refill

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) > FORGET_IDLE_ABOVE:  # a full bucket carries no information
            full_after = self._burst / self._refill
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
