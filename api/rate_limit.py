"""A token bucket per client for public endpoints (citizen reports), so one phone or script
cannot flood the order queue. Kept in each API process: with N processes a client gets at
most N times the rate, which is enough to stop floods without a shared store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: float, burst: int | None = None, max_clients: int = 100_000):
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:  # forget the idle rather than grow forever
                    self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < 3600}
                bucket = self._buckets[client] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate if self.rate > 0 else 3600.0


def limit_reports(request: Request) -> None:
    """Dependency: 429 with Retry-After when a client posts reports faster than allowed."""
    limiter: RateLimiter = request.app.state.report_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.take(client)
    if wait > 0:
        raise HTTPException(429, f"too many reports from this address; try again in {wait:.0f} s",
                            headers={"Retry-After": str(max(1, round(wait)))})
