"""Per-user rate limits: a token bucket per caller, refilled continuously."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """At most ``per_minute`` requests per user per minute on average, with bursts up to ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, user: str) -> float:
        """0 when ``user`` may go ahead (one token taken); otherwise the seconds until a token is there."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(user, _Bucket(self.capacity, now))
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate
