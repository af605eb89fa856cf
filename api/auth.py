"""API keys with roles: who may call what.

Keys are long random tokens shown once at creation; only their SHA-256 is stored (a slow
password hash buys nothing for 256-bit random secrets and would cost every request).
`STREETWATCH_API_KEY`, when set, is one more key with the `edge` role, so an edge box can
be configured before any database key exists.

Each API process remembers a key it has looked up for STREETWATCH_KEY_CACHE_SECONDS (90 s),
so neither the edge boxes' stream of events nor their heartbeats (one per 30 s: a cache
shorter than that missed on every one, 0.8 ms of hash, thread hand-off and SELECT each) cost
a database round trip for the same answer. A revocation through this process takes effect at
once; in the other processes (and after `streetwatch api keys revoke`) within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Awaitable, Callable

from fastapi import Depends, Header, HTTPException
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, select

from api.deps import SessionDep, SettingsDep
from api.models import ApiKey, Role, Worker, utcnow

KEY_PREFIX = "sw_"
KEY_CACHE_SECONDS = 90.0  # the default of Settings.key_cache_seconds


@dataclass(frozen=True)
class Principal:
    """The caller of a request: the key's name, its role, and for a worker key the worker."""

    name: str
    role: Role
    worker_id: int | None = None
    box_id: str | None = None  # an edge key's box: it speaks only for that box's cameras (api/box_binding.py)


SYSTEM = Principal("system", Role.admin)

# key hash → (principal, monotonic expiry); only keys found valid are kept.
_known_keys: dict[str, tuple[Principal, float]] = {}
_known_keys_lock = threading.Lock()


def forget_keys() -> None:
    """Drop every remembered key (after a revocation: it must take effect at once here)."""
    with _known_keys_lock:
        _known_keys.clear()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, role: Role, worker_id: int | None = None,
               box_id: str | None = None) -> str:
    """Store a new key and return it: the only time the plain key exists."""
    if box_id is not None and role != Role.edge:
        raise ValueError("only edge keys belong to a box")
    if box_id is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", box_id):
        raise ValueError("a box id has 1-100 letters, digits, '_', '.' or '-'")
    if role == Role.worker:
        if worker_id is None:
            raise ValueError("a worker key needs --worker-id: the worker it belongs to")
        if session.get(Worker, worker_id) is None:
            raise ValueError(f"no worker with id {worker_id}")
    elif worker_id is not None:
        raise ValueError("only worker keys belong to a worker")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, role=role, key_hash=hash_key(key), worker_id=worker_id, box_id=box_id))
    session.commit()
    return key


def _given_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def known_principal(static_edge_key: str | None, key: str | None) -> Principal | None:
    """The caller when that needs no database: the static edge key, or a key remembered from
    a recent lookup (look_up_key). Raises 401 when no key was sent."""
    if not key:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    # compare_digest: the time taken must not tell how much of a guess was right.
    if static_edge_key and hmac.compare_digest(key.encode(), static_edge_key.encode()):
        return Principal("edge (STREETWATCH_API_KEY)", Role.edge)
    known = _known_keys.get(hash_key(key))
    if known is not None and known[1] > time.monotonic():
        return known[0]
    return None


def look_up_key(session: Session, key: str, remember_s: float = KEY_CACHE_SECONDS) -> Principal:
    """A key that known_principal() did not know: ask the database, and remember the answer
    for `remember_s` seconds."""
    digest = hash_key(key)
    row = session.exec(select(ApiKey.name, ApiKey.role, ApiKey.worker_id, ApiKey.box_id, ApiKey.revoked_at)
                       .where(ApiKey.key_hash == digest)).first()
    # End the read (plain tuples, nothing to reload): the route's write transaction must
    # begin on its own terms (SQLite's BEGIN IMMEDIATE, PostgreSQL's locks).
    session.rollback()
    if row is None or row.revoked_at is not None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    principal = Principal(row.name, Role(row.role), row.worker_id, row.box_id)
    if remember_s > 0:
        with _known_keys_lock:
            _known_keys[digest] = (principal, time.monotonic() + remember_s)
    return principal


async def current_principal(
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="alternative to Authorization")] = None,
) -> Principal:
    # Async, with the database lookup (a key not seen for key_cache_seconds) in a thread:
    # the steady stream of the same edge keys then costs no thread hand-off at all.
    key = _given_key(authorization, x_api_key)
    known = known_principal(settings.api_key, key)
    if known is not None:
        return known
    return await run_in_threadpool(look_up_key, session, key, settings.key_cache_seconds)


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through the given roles (and admin, who may do everything)."""
    allowed = set(roles) | {Role.admin}

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"role {principal.role.value} may not do this; allowed: {names}")
        return principal

    check.roles = allowed  # type: ignore[attr-defined]  # read by tests that walk the route table
    return check


def revoke_key(session: Session, key_id: int) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()
    forget_keys()
    return True
