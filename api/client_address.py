"""Who the client is, behind reverse proxies that are trusted and only those.

X-Forwarded-For is written by whoever sends the request: believed blindly, every report
could claim a new address and pass the rate limit (8 of 8 did), and the access log wrote
`garbage-0` as the client. The peer is the client unless it is a trusted proxy
(STREETWATCH_TRUSTED_PROXIES); then X-Forwarded-For is read from the right, past trusted
hops, and the first address no trusted proxy stands for is the client: what a proxy appends
is true, what the client wrote before it is not.

The middleware sets scope["client"], so the rate limit, the routes and uvicorn's access log
all see that address. uvicorn's own proxy handling must be off (`streetwatch api serve` turns
it off; with plain uvicorn pass --no-proxy-headers): it trusts 127.0.0.1 by default and
would have replaced the peer before this runs.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.types import ASGIApp, Receive, Scope, Send

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def parse_networks(entries: list[str]) -> list[Network]:
    return [ip_network(e, strict=False) for e in entries]


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:5000
        text = text.split(":")[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def client_ip(peer: str, forwarded_for: list[str], trusted: list[Network]) -> str:
    """The client's address: `peer` unless it is trusted, else the right-most hop of the
    X-Forwarded-For values (`forwarded_for`, in order) that is not a trusted proxy. A hop that is
    not an address ends the walk at the last trusted one: anything left of it is hearsay."""
    def is_trusted(addr: Address | None) -> bool:
        return addr is not None and any(addr in net for net in trusted)

    current = _address(peer)
    if not is_trusted(current):
        return peer
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            break
        current = addr
        if not is_trusted(addr):
            break
    return str(current)


class TrustedProxies:
    """ASGI middleware: scope["client"] becomes the address client_ip() finds."""

    def __init__(self, app: ASGIApp, trusted: list[str]):
        self.app = app
        self.trusted = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            peer = scope["client"][0]
            forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
            host = client_ip(peer, forwarded, self.trusted) if self.trusted else peer
            if host != peer:
                scope["client"] = (host, 0)
        await self.app(scope, receive, send)
