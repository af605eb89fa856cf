"""The client address behind proxies, and the rate limit that counts by it (issue 19, items 3
and 12): X-Forwarded-For from anyone let every report claim a new address (8 of 8 passed a
limit of 6), and past 100,000 tracked clients each new one cost ~16 ms under a lock."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

import streetwatch_cli
from api.client_address import client_ip, parse_networks
from api.main import create_app
from api.rate_limit import RateLimiter, client_key
from api.settings import Settings
from tests.api.factories import jpeg


def _reports(client: TestClient, n: int, forwarded: list[str] | None = None) -> list[int]:
    codes = []
    for i in range(n):
        headers = {"X-Forwarded-For": forwarded[i]} if forwarded else {}
        codes.append(client.post("/api/v1/reports", data={"issue_type": "clutter", "lat": 31.2, "lon": 121.4},
                                 files={"photo": ("p.jpg", jpeg(), "image/jpeg")}, headers=headers).status_code)
    return codes


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(sqlite_backend):
    with TestClient(create_app(sqlite_backend), client=("127.0.0.1", 5000)) as client:
        codes = _reports(client, 8, [f"198.51.100.{i}" for i in range(8)])
    assert codes == [201] * 6 + [429] * 2


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(sqlite_backend):
    settings = sqlite_backend.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as client:
        # Two residents behind the proxy: the first one's flood does not stop the second.
        assert _reports(client, 7, ["203.0.113.5"] * 7) == [201] * 6 + [429]
        assert _reports(client, 1, ["203.0.113.9"]) == [201]
        # A resident who writes their own X-Forwarded-For: the proxy appends the real address.
        assert _reports(client, 1, ["10.9.9.9, 203.0.113.5"]) == [429]


def test_the_client_is_the_right_most_untrusted_hop():
    trusted = parse_networks(["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"])
    assert client_ip("198.51.100.1", ["203.0.113.5"], trusted) == "198.51.100.1"  # untrusted peer
    assert client_ip("127.0.0.1", ["203.0.113.5"], trusted) == "203.0.113.5"
    assert client_ip("127.0.0.1", ["1.2.3.4, 203.0.113.5, 10.1.1.1"], trusted) == "203.0.113.5"
    assert client_ip("127.0.0.1", ["1.2.3.4", "203.0.113.5"], trusted) == "203.0.113.5"  # two headers
    assert client_ip("127.0.0.1", ["garbage-0"], trusted) == "127.0.0.1"  # not an address: the proxy
    assert client_ip("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_ip("127.0.0.1", ["10.0.0.2, 10.0.0.3"], trusted) == "10.0.0.2"  # all trusted: left-most
    assert client_ip("2001:db8:ffff::1", ["[2001:db8::7]:443"], trusted) == "2001:db8::7"
    assert client_ip("127.0.0.1", ["203.0.113.5:5000"], trusted) == "203.0.113.5"


def test_trusted_proxies_are_addresses_or_networks():
    assert Settings(trusted_proxies=["127.0.0.1", "10.0.0.0/8", "::1"]).trusted_proxies == ["127.0.0.1", "10.0.0.0/8", "::1"]
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies=["proxy.local"])


def test_api_serve_turns_uvicorns_own_proxy_headers_off(monkeypatch, tmp_path):
    from api import db, huge_pages, serve

    seen = []
    monkeypatch.setattr(huge_pages, "serve_with_huge_pages", lambda workers: None)  # it would re-execute pytest
    monkeypatch.setenv("STREETWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'sw.db'}")
    monkeypatch.setattr(db, "check_migrated", lambda engine, url: None)
    monkeypatch.setattr(serve, "run", seen.append)
    assert streetwatch_cli.main(["api", "serve", "--port", "8123"]) == 0
    assert seen[0].proxy_headers is False


def test_ipv6_clients_are_counted_by_their_64():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:198.51.100.7") == client_key("198.51.100.7") == "198.51.100.7"
    limiter = RateLimiter(per_minute=2)
    assert [limiter.take(f"2001:db8:1:2::{i:x}", now=0) for i in range(3)] == [0, 0, pytest.approx(30)]


def test_the_limiter_forgets_the_stalest_client_at_its_bound_in_constant_time():
    limiter = RateLimiter(per_minute=1, max_clients=1000)
    limiter.take("198.51.100.1", now=0)  # spent: must wait a minute
    for i in range(999):
        limiter.take(f"10.0.{i // 250}.{i % 250}", now=1)
    limiter.take("198.51.100.1", now=2)  # still refused, and now the most recently seen
    started = time.perf_counter()
    for i in range(20_000):  # 20x the bound of new clients
        limiter.take(f"172.16.{i // 250}.{i % 250}", now=3)
    per_client = (time.perf_counter() - started) / 20_000
    assert len(limiter._buckets) == 1000
    assert per_client < 200e-6, f"{per_client * 1e6:.0f} µs per new client"
    assert limiter.take("10.0.0.0", now=4) == 0  # long forgotten: a fresh bucket
