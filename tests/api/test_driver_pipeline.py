"""Statements sent together (api/driver_pipeline.py): rows per statement in order, the commit
with them, an error stops the rest and the transaction rolls back whole; on PostgreSQL a query
sent after a lock sees what was committed while it waited for the lock."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.db import begin_write, get_engine, upgrade_database
from api.driver_pipeline import run_together
from api.driver_sql import DriverStatement
from api.models import Camera, utcnow
from api.settings import Settings

CAMERAS = Camera.__table__  # type: ignore[attr-defined]
ADD_CAMERA = DriverStatement(insert(CAMERAS).values(name=bindparam("name"), first_seen=bindparam("now"),
                                                    last_seen=bindparam("now")).returning(CAMERAS.c.id))
NAMES = DriverStatement(select(CAMERAS.c.name).order_by(CAMERAS.c.name))


def _names(settings: Settings) -> list[str]:
    with Session(get_engine(settings.database_url)) as s:
        return list(s.exec(select(CAMERAS.c.name).order_by(CAMERAS.c.name)).scalars())  # type: ignore[call-overload]


def test_rows_come_back_per_statement_and_the_commit_goes_with_them(backend):
    now = utcnow()
    with Session(get_engine(backend.database_url)) as session:
        begin_write(session)
        (first,), (second,), names = run_together(session.connection(), [
            (ADD_CAMERA, {"name": "cam-a", "now": now}), (ADD_CAMERA, {"name": "cam-b", "now": now}),
            (NAMES, {})], commit=True)
        session.commit()  # nothing left to send
    assert first[0] != second[0]
    assert names == [("cam-a",), ("cam-b",)]  # the query ran after both inserts
    assert _names(backend) == ["cam-a", "cam-b"]


def test_an_error_stops_the_rest_and_nothing_of_the_transaction_stays(backend):
    now = utcnow()
    with Session(get_engine(backend.database_url)) as session:
        begin_write(session)
        run_together(session.connection(), [(ADD_CAMERA, {"name": "cam-a", "now": now})])
        with pytest.raises(IntegrityError):  # as SQLAlchemy raises it: the app's handlers know it
            run_together(session.connection(), [(ADD_CAMERA, {"name": "cam-b", "now": now}),
                                                (ADD_CAMERA, {"name": "cam-b", "now": now}),
                                                (ADD_CAMERA, {"name": "cam-c", "now": now})], commit=True)
        session.rollback()
    assert _names(backend) == []


def test_a_query_sent_with_a_lock_sees_what_was_committed_while_it_waited(postgres_url):
    # PostgreSQL only: SQLite has no advisory locks, its writers queue on BEGIN IMMEDIATE.
    with get_engine(postgres_url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade_database(postgres_url)
    engine = get_engine(postgres_url)
    lock = DriverStatement(text("SELECT pg_advisory_xact_lock(:k)"))
    holder_has_lock, seen = threading.Event(), []

    def holder() -> None:
        with Session(engine) as session:
            run_together(session.connection(), [(lock, {"k": 42})])
            holder_has_lock.set()
            time.sleep(0.5)  # the other transaction's pipeline waits on the lock meanwhile
            run_together(session.connection(), [(ADD_CAMERA, {"name": "cam-late", "now": utcnow()})], commit=True)
            session.commit()

    thread = threading.Thread(target=holder)
    thread.start()
    holder_has_lock.wait(10)
    with Session(engine) as session:
        _, names = run_together(session.connection(), [(lock, {"k": 42}), (NAMES, {})])
        seen.extend(names)
        session.rollback()
    thread.join(10)
    assert seen == [("cam-late",)]
