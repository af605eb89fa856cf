"""Statements run on the database driver's own cursor, inside the session's transaction.

The hot paths use them: a heartbeat in which no camera changed (the box's one UPDATE:
api/heartbeats.py, run by api/heartbeat_loop.py) and an event's statements (the camera upsert,
the dedup locks and candidates, the order's UPDATE, the event and evidence INSERTs:
api/ingest_sql.py, sent together by api/driver_pipeline.py). Through SQLAlchemy's
execution (cache key, execution context, parameter and result processing) they cost more CPU
than SQLite took to run them. Here each is compiled once per dialect by SQLAlchemy itself (its
SQL, its parameter order, its bind casts and its type conversions for parameters, so what is
stored is what Core would store), and then run on the DBAPI cursor. Results come back as
the driver's plain tuples: only for columns the caller compares as they are (ids, names,
states stored as strings), or converted by the columns' own result processors where
SQLAlchemy would convert them (datetimes and JSON on SQLite). A driver error is raised as
SQLAlchemy raises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


@contextmanager
def as_sqlalchemy_raises(dialect: Dialect, sql: str, params: Any) -> Iterator[None]:
    """A driver error raised as SQLAlchemy raises it (IntegrityError, OperationalError...), so
    callers and the app's handlers tell a duplicate from a database that is away the same way."""
    try:
        yield
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc


class DriverStatement:
    """One statement for every dialect it meets, compiled at first use on that dialect."""

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None,
                 convert_results: bool = False):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self.convert_results = convert_results
        self._compiled: dict[str, _Compiled] = {}

    def compiled_for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect, self.column_keys,
                                                                 self.convert_results)
        return compiled

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple]:
        dialect = conn.dialect
        compiled = self.compiled_for(dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with as_sqlalchemy_raises(dialect, compiled.sql, params):
                cursor.execute(compiled.sql, compiled.parameters(params))
                return compiled.rows(cursor, dialect)
        finally:
            cursor.close()

    def rowcount(self, cursor: Any, dialect: Dialect, params: Mapping[str, Any]) -> int:
        """Run on a bare DBAPI cursor of `dialect` (of a connection no SQLAlchemy Connection
        wraps: the event loop's own, api/heartbeat_loop.py, which keeps its cursor); the rows
        it touched. The driver's errors come as the driver raises them: that caller falls back
        on any of them."""
        compiled = self.compiled_for(dialect)
        cursor.execute(compiled.sql, compiled.parameters(params))
        return cursor.rowcount


class _Compiled:
    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: list[str] | None,
                 convert_results: bool):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        # qmark (sqlite3): parameters in the order of the SQL's question marks; psycopg: by name.
        self.order: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.convert: dict[str, Callable[[Any], Any]] = {}
        # Values the statement carries itself (the 1 of `event_count + 1`).
        self.fixed: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.convert[name] = process
            used = name in (self.order or ()) if self.order is not None else f"%({name})s" in self.sql
            if used and not bind.required and bind.callable is None and not bind.expanding:
                self.fixed[name] = process(bind.value) if process is not None else bind.value
        # The result columns' conversions (SQLite's datetimes and JSON come back as text), if
        # asked for, chosen by the driver's column types at the first run: None where the
        # driver's value is the value.
        self.result_types = [column[3].dialect_impl(dialect) for column in compiled._result_columns] \
            if convert_results else None
        self.results: list[Callable[[Any], Any] | None] | None = None

    def rows(self, cursor: Any, dialect: Dialect) -> list[tuple]:
        """The executed statement's rows, converted where SQLAlchemy would convert them."""
        if cursor.description is None:
            return []
        rows = cursor.fetchall()
        if self.result_types is not None and self.results is None:
            self.results = [t.result_processor(dialect, d[1]) for t, d in zip(self.result_types, cursor.description)]
        convert = self.results
        if convert and any(convert) and rows:
            rows = [tuple(f(v) if f is not None and v is not None else v for f, v in zip(convert, row))
                    for row in rows]
        return rows

    def parameters(self, params: Mapping[str, Any]) -> tuple | dict[str, Any]:
        values = {k: (self.convert[k](v) if k in self.convert else v) for k, v in params.items()}
        if self.fixed:
            values = {**self.fixed, **values}
        return tuple(values[k] for k in self.order) if self.order is not None else values
