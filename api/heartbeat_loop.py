"""A heartbeat in which nothing changed, written on the event loop: no thread hand-off.

On this VM a thread's wake-up and a database round trip after an idle pause cost more CPU
than the work (bench fleet: 1.1 ms per heartbeat back to back, 2.7-3.0 ms after a 100 ms
pause). So the ~98 % of heartbeats that change nothing run one statement (UNCHANGED_BOX,
api/heartbeats.py) right here, on a connection this process's event loop owns: not one of
the pool's, so no checkout ever waits, and never used by two threads at once (a lock taken
without waiting; a test's second event loop thread takes it in turn).

Nothing here waits. SQLite: this process's writer slot taken without waiting, then the UPDATE
in autocommit with a busy timeout of 0. PostgreSQL: the UPDATE in autocommit, one round trip,
skipping a locked box row, under a short statement timeout, sent through libpq itself
(`PreparedUpdate`). Neither waits for its commit to
reach the disk: a heartbeat's times are rewritten by the next one. Whatever is not
a clean "one row updated" (the slot or the file taken, a locked or changed box, a broken
connection) answers False with nothing written, and the caller runs the full
record_heartbeat in a thread, as before; a broken connection is closed and opened anew on a
later heartbeat (after a failed connect, not before RECONNECT_AFTER_S).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Engine

from api.db import _writer_slot
from api.fleet_schemas import HeartbeatIn
from api.driver_sql import DriverStatement
from api.heartbeats import UNCHANGED_BOX, box_values, states_digest

log = logging.getLogger("streetwatch.api")

RECONNECT_AFTER_S = 5.0
# A PostgreSQL statement that takes longer than this is not worth holding the loop for: it
# fails, and the heartbeat goes the full way in a thread.
PG_STATEMENT_TIMEOUT_MS = 250
PG_CONNECT_TIMEOUT_S = 2  # libpq's least
WARN_EVERY_S = 60.0


class PreparedUpdate:
    """UNCHANGED_BOX on PostgreSQL through libpq itself: prepared once per connection, its
    parameters sent as text for the server to cast (the SQL casts each one). psycopg's
    cursor.execute (adapting each value, its Python wait loop) cost 0.4 ms more CPU than this
    after an idle pause (in-process, 100 ms pauses: 1.3-1.7 ms against 0.9-1.3), 0.02 ms back
    to back: few instructions, but many pages of Python touched again after the pause."""

    NAME = b"streetwatch_unchanged_box"

    def __init__(self, statement: DriverStatement):
        compiled = statement.statement.compile(dialect=PGDialect_psycopg(paramstyle="numeric_dollar"),
                                               column_keys=statement.column_keys)
        self.sql = compiled.string.encode()
        self.order = tuple(compiled.positiontup or ())

    def prepare(self, conn: Any) -> None:
        self._check(conn.pgconn.prepare(self.NAME, self.sql))

    def rowcount(self, conn: Any, params: Mapping[str, Any]) -> int:
        result = conn.pgconn.exec_prepared(self.NAME, [as_text(params[name]) for name in self.order])
        self._check(result)
        return result.command_tuples or 0

    @staticmethod
    def _check(result: Any) -> None:
        from psycopg import pq

        if result.status != pq.ExecStatus.COMMAND_OK:
            raise RuntimeError((result.error_message or b"no message").decode(errors="replace").strip())


def as_text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text input form, for the types box_values holds. libpq ends
    a text parameter at a NUL, so one with a NUL is refused, never cut short (the request's
    validation refuses them first: api/nul_guard.py)."""
    if value is None:
        return None
    if isinstance(value, str):
        if "\0" in value:
            raise ValueError("a NUL in a text parameter")
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, float)):
        return repr(value).encode()
    if isinstance(value, datetime):
        if value.tzinfo is None:  # would be read in the session's time zone
            raise ValueError("a datetime without a time zone")
        return value.isoformat().encode()
    if isinstance(value, (dict, list)):
        return json.dumps(value).encode()  # SQLAlchemy's JSON type writes json.dumps too
    raise TypeError(f"no text form for {type(value).__name__}")


class LoopWriter:
    """The event loop's connection to one database, and the one-statement write on it."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect
        self.sqlite = engine.dialect.name == "sqlite"
        self.statement = UNCHANGED_BOX.get(engine.dialect.name)
        self.prepared = PreparedUpdate(self.statement) if engine.dialect.name == "postgresql" else None
        self.slot = _writer_slot(engine) if self.sqlite else None
        self._use = threading.Lock()
        self._conn: Any = None
        # SQLite's cursor, kept with the connection rather than made per heartbeat (a psycopg
        # cursor cost 25-40 µs of a 130 µs UPDATE that way; PostgreSQL now needs none).
        self._cursor: Any = None
        self._retry_at = 0.0
        self._quiet_until = 0.0

    def record(self, box_id: str, beat: HeartbeatIn, now: datetime) -> bool:
        """True: stored, nothing else to do. False: nothing written; record it in full."""
        if self.statement is None or not self._use.acquire(blocking=False):
            return False
        try:
            if self._conn is None and self._connect() is None:
                return False
            params = {**box_values(box_id, beat, now), "digest": states_digest(beat.cameras)}
            try:
                return self._sqlite(params) if self.sqlite else self._postgres(params)
            except Exception as exc:  # a broken or confused connection: a new one next time
                self._close()
                self._say(f"heartbeat on the event loop: {exc!r}; connection closed, heartbeats go the full way")
                return False
        finally:
            self._use.release()

    def _sqlite(self, params: dict[str, Any]) -> bool:
        assert self.slot is not None and self.statement is not None
        if not self.slot.acquire(blocking=False):  # a thread of ours writes: it goes in turn there
            return False
        try:
            # One statement, its own transaction (autocommit): it writes the row or nothing.
            try:
                return self.statement.rowcount(self._cursor, self.dialect, params) == 1
            except self.dialect.loaded_dbapi.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return False  # another process writes: the full way waits its turn
                raise
        finally:
            self.slot.release()

    def _postgres(self, params: dict[str, Any]) -> bool:
        assert self.prepared is not None
        return self.prepared.rowcount(self._conn, params) == 1  # autocommit: stored

    def _connect(self) -> Any:
        if time.monotonic() < self._retry_at:
            return None
        cargs, cparams = self.dialect.create_connect_args(self.engine.url)
        conn = None
        try:
            if self.sqlite:
                # Used by whichever event loop thread holds `_use`, never by two at once.
                cparams.update(timeout=0, isolation_level=None, check_same_thread=False)
                conn = self.dialect.connect(*cargs, **cparams)
                conn.execute("PRAGMA foreign_keys=ON")
                # No fsync at this connection's commits (WAL: the file stays whole; a power cut
                # may lose the last heartbeats' times, which the next heartbeat writes again).
                # The fsync cost 0.2 ms of CPU and ~1 ms of latency per heartbeat here.
                conn.execute("PRAGMA synchronous=NORMAL")
            else:
                cparams.update(autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_S)
                conn = self.dialect.connect(*cargs, **cparams)
                conn.execute(f"SET statement_timeout = {PG_STATEMENT_TIMEOUT_MS}")
                # As SQLite's synchronous=NORMAL above: this connection's commits do not wait
                # for the WAL flush (the server's other sessions keep their own setting).
                conn.execute("SET synchronous_commit = off")
                assert self.prepared is not None
                self.prepared.prepare(conn)
        except Exception as exc:
            if conn is not None:  # connected, but a setting or the PREPARE failed
                conn.close()
            self._retry_at = time.monotonic() + RECONNECT_AFTER_S
            self._say(f"heartbeat on the event loop: cannot connect ({exc!r}); heartbeats go the full way")
            return None
        self._conn, self._cursor = conn, conn.cursor() if self.sqlite else None
        return conn

    def _say(self, message: str) -> None:
        """A warning at most once a minute: a failure that repeats on every heartbeat (the full
        way costs ~1 ms more each) shows in the log without flooding it."""
        if time.monotonic() >= self._quiet_until:
            self._quiet_until = time.monotonic() + WARN_EVERY_S
            log.warning("%s", message)

    def _close(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: nothing to give back
                pass

    def close(self) -> None:
        """Close the connection unless a loop is using it right now."""
        if self._use.acquire(blocking=False):
            try:
                self._close()
            finally:
                self._use.release()


# One writer per process, for the engine it serves: an API process has one engine; a new one
# (a test's new database) closes the writer of the one before.
_writers: dict[Engine, LoopWriter] = {}


def loop_writer(engine: Engine) -> LoopWriter:
    writer = _writers.get(engine)
    if writer is None:
        for old in _writers.values():
            old.close()
        _writers.clear()
        writer = _writers[engine] = LoopWriter(engine)
    return writer
