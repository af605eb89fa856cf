"""The PostgreSQL pool pings a connection only when it has been idle a while (api/db.py):
a ping per request cost a round trip each, and a connection killed while idle is still
replaced before a request sees it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import db


@pytest.fixture
def engine(postgres_url) -> Iterator[Engine]:
    engine = db._postgres_engine(db.normalize_url(postgres_url))  # not the cached one: its own pool
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_back_from_a_recent_request_is_not_pinged(engine, monkeypatch):
    pings = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or real_ping(conn))
    first = _backend_pid(engine)
    assert _backend_pid(engine) == first and pings == []  # same connection, fresh: no round trip
    monkeypatch.setattr(db, "PING_IF_IDLE_S", 0.0)  # now every connection counts as long idle
    assert _backend_pid(engine) == first and pings == [1]


def test_a_connection_killed_while_idle_is_replaced_before_use(engine, postgres_url, monkeypatch):
    stale = _backend_pid(engine)
    with db.get_engine(postgres_url).connect() as admin:  # e.g. PostgreSQL restarted meanwhile
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": stale}).scalar_one()
    monkeypatch.setattr(db, "PING_IF_IDLE_S", 0.0)
    assert _backend_pid(engine) != stale  # the ping failed, the pool connected afresh: no error
