"""A token bucket per client for public endpoints (citizen reports), so one phone or script
cannot flood the order queue. Kept in each API process: with N processes a client gets at
most N times the rate, which is enough to stop floods without a shared store."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network

from fastapi import HTTPException, Request


@dataclass
class _Bucket:
    tokens: float
    updated: float


def client_key(host: str) -> str:
    """The bucket a client address spends from: an IPv6 address by its /64, the block one
    subscriber line or host gets (it could otherwise take a fresh address per report)."""
    try:
        addr = ip_address(host)
    except ValueError:
        return host
    if isinstance(addr, IPv6Address):
        if addr.ipv4_mapped is not None:  # ::ffff:198.51.100.7 is that IPv4 client
            return str(addr.ipv4_mapped)
        return str(ip_network(f"{addr}/64", strict=False))
    return str(addr)


class RateLimiter:
    """Buckets in least-recently-used order: past `max_clients` the stalest is forgotten in O(1)
    (it was a full bucket again after burst/rate seconds idle anyway). Rebuilding the table at
    the limit cost ~16 ms per new client under the lock past 100,000 of them."""

    def __init__(self, per_minute: float, burst: int | None = None, max_clients: int = 100_000):
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        key = client_key(client)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._buckets.popitem(last=False)
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            else:
                self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate if self.rate > 0 else 3600.0


def limit_reports(request: Request) -> None:
    """Dependency: 429 with Retry-After when a client posts reports faster than allowed. The
    client address is the one api/client_address.py settled (proxies considered)."""
    limiter: RateLimiter = request.app.state.report_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.take(client)
    if wait > 0:
        raise HTTPException(429, f"too many reports from this address; try again in {wait:.0f} s",
                            headers={"Retry-After": str(max(1, round(wait)))})
