"""Statements run on the database driver's own cursor, inside the session's transaction.

A heartbeat in which no camera changed runs three statements (the box's locked read, its
cameras, the box's UPDATE). Through SQLAlchemy's execution (cache key, execution context,
parameter and result processing) they cost more CPU than SQLite took to run them. Here each
is compiled once per dialect by SQLAlchemy itself (its SQL, its parameter order, its bind
casts and its type conversions for parameters, so what is stored is what Core would store),
and then run on the DBAPI cursor. Results come back as the driver's plain tuples: only for
columns the caller compares as they are (ids, names, states stored as strings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement


class DriverStatement:
    """One statement for every dialect it meets, compiled at first use on that dialect."""

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple]:
        dialect = conn.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect, self.column_keys)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, compiled.parameters(params))
            return cursor.fetchall() if cursor.description is not None else []
        finally:
            cursor.close()


class _Compiled:
    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: list[str] | None):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        # qmark (sqlite3): parameters in the order of the SQL's question marks; psycopg: by name.
        self.order: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.convert: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.convert[name] = process

    def parameters(self, params: Mapping[str, Any]) -> tuple | dict[str, Any]:
        values = {k: (self.convert[k](v) if k in self.convert else v) for k, v in params.items()}
        return tuple(values[k] for k in self.order) if self.order is not None else values
