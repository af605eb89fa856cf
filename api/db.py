"""Database engine, sessions, and Alembic migrations."""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, AsyncIterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession, SessionTransaction
from sqlmodel import Session, create_engine

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


class StartupRefused(SystemExit):
    """The API must not serve: the message is the whole story, so it is a SystemExit and
    uvicorn (module or factory mode) and the CLI print one line instead of a traceback."""


class DatabaseNotMigrated(StartupRefused):
    pass


class DatabaseUnavailable(StartupRefused):
    pass


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here: it is the driver we install."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _prepare_sqlite_path(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


# How long a request waits for a pooled connection, and for this process's SQLite writer slot,
# before it answers 503 with Retry-After (api/errors.py) rather than hanging on.
POOL_TIMEOUT_S = 10.0
WRITER_WAIT_S = 30.0
# SQLite connections are file handles: one per thread of the request pool (anyio's 40), so a
# burst of readers never waits for one. Writers queue on the writer slot below, not in the pool.
SQLITE_POOL = {"pool_size": 10, "max_overflow": 30}
# PostgreSQL connections are server processes shared by every API process: fewer, and a wait.
POSTGRES_POOL = {"pool_size": 10, "max_overflow": 20}


class DatabaseBusy(RuntimeError):
    """No connection or writer slot came free in time: a passing overload, answered 503."""


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_timeout=POOL_TIMEOUT_S, **SQLITE_POOL)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (BEGIN IMMEDIATE for ingest)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes deciding
        # "new order or existing?" cannot both read before either writes.
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    url = normalize_url(url)
    _prepare_sqlite_path(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return _postgres_engine(url)


# A pooled connection idle for longer than this is pinged before use (the database may have
# restarted meanwhile); one checked in more recently is used as it is.
PING_IF_IDLE_S = 10.0


def _postgres_engine(url: str) -> Engine:
    # Not pool_pre_ping: it pings on *every* checkout, a round trip per request that cost 5 % of
    # the API's CPU under the event benchmark. If PostgreSQL restarts, a connection used in the
    # last PING_IF_IDLE_S can still fail once: that request answers 503 (the edge retries) and
    # SQLAlchemy drops the pool's other connections from before the restart.
    engine = create_engine(url, pool_timeout=POOL_TIMEOUT_S, **POSTGRES_POOL)

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_IF_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool drops this connection and checks out another
            raise DisconnectionError(f"stale connection: {exc}") from exc
        if not alive:
            raise DisconnectionError("stale connection")

    return engine


def alembic_config(url: str) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade_database(url: str) -> None:
    """Create or upgrade the database to the newest migration (`streetwatch api migrate`)."""
    _prepare_sqlite_path(normalize_url(url))
    command.upgrade(alembic_config(url), "head")


def check_migrated(engine: Engine, url: str) -> None:
    """Refuse to serve a database that is not at the newest migration."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseUnavailable(f"streetwatch api: cannot open database {safe_url(url)}: {reason}") from exc
    if current != head:
        raise DatabaseNotMigrated(
            f"streetwatch api: database {safe_url(url)} is at migration {current or 'none'}, this API needs "
            f"{head}: run `streetwatch api migrate` first"
        )


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def begin_write(session: Session) -> None:
    """Begin a transaction that reads, then writes: on SQLite with BEGIN IMMEDIATE. A plain
    BEGIN reads a snapshot; if another writer commits before ours writes, SQLite cannot
    upgrade the snapshot and answers "database is locked" at once, whatever the busy timeout.
    (PostgreSQL ignores the option: its writers wait on rows, not on the file.)

    On SQLite a writer first takes this process's writer slot, and only then a connection:
    writers waiting for SQLite's one write lock held a pooled connection each, so a burst of
    them starved the readers until the pool timed out (500s after 30 s). The slot is given
    back when the transaction ends (commit, rollback or close)."""
    if is_sqlite(session) and WRITER_SLOT not in session.info:
        slot = _writer_slot(session.get_bind())
        if not slot.acquire(timeout=WRITER_WAIT_S):
            raise DatabaseBusy(f"no SQLite writer slot within {WRITER_WAIT_S:.0f} s")
        session.info[WRITER_SLOT] = slot
        try:
            session.connection(execution_options={"sqlite_immediate": True})
        except BaseException:
            _release_writer_slot(session)
            raise
        return
    session.connection(execution_options={"sqlite_immediate": True})


WRITER_SLOT = "streetwatch_writer_slot"
_writer_slots: dict[str, threading.Lock] = {}
_writer_slots_lock = threading.Lock()


def _writer_slot(bind: Any) -> threading.Lock:
    # One per database file and process (a plain Lock: the transaction may end on another
    # thread than it began, e.g. get_session's close).
    engine = getattr(bind, "engine", bind)
    with _writer_slots_lock:
        return _writer_slots.setdefault(str(engine.url), threading.Lock())


def _release_writer_slot(session: OrmSession) -> None:
    slot = session.info.pop(WRITER_SLOT, None)
    if slot is not None:
        slot.release()


@event.listens_for(OrmSession, "after_transaction_end")
def _transaction_ended(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost one: its connection is back in the pool
        _release_writer_slot(session)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request, on the engine the app was built with.

    Async, so that FastAPI does not hand it to its thread pool twice per request: making a
    Session touches no connection. Closing one whose transaction is still open rolls back on
    the wire, so that close goes to a thread; after a commit it is bookkeeping only."""
    session = Session(request.app.state.engine)
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()
