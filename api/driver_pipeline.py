"""Several driver statements sent together: on PostgreSQL one round trip instead of one each.

An event on PostgreSQL made eight round trips (BEGIN, the camera upsert, the dedup locks, the
candidates, the order's UPDATE, the event and evidence INSERTs, COMMIT); now it makes three:
BEGIN with the upsert, the locks with the candidates, the writes with the COMMIT. In the API
server each round trip is a thread going to sleep and waking, which on this VM costs more CPU
than the statement: the same code used ~2 ms more of the API's CPU per event on PostgreSQL
than on SQLite.
psycopg's pipeline mode sends statements without waiting for each answer; PostgreSQL still
runs them one after the other, each with its own snapshot (READ COMMITTED), so a query sent
after a lock sees what was committed before the lock was granted, as when sent alone. The
first error stops the rest and fails the transaction, which the caller rolls back as usual.
The BEGIN psycopg sends before a transaction's first statement goes in the same round trip
in pipeline mode (its own otherwise), so even a single first statement gains one.

On SQLite (in-process, no round trips) the statements simply run in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from api.driver_sql import DriverStatement, as_sqlalchemy_raises

Step = tuple[DriverStatement, Mapping[str, Any]]


def run_together(conn: Connection, steps: Sequence[Step], commit: bool = False) -> list[list[tuple]]:
    """Each step's rows, in order. With `commit`, the transaction is committed with them (on
    PostgreSQL in the same round trip); the caller must have flushed its session first, and
    its own commit afterwards then has nothing left to send."""
    if not steps and not commit:
        return []  # an empty pipeline still costs PostgreSQL a round trip (its Sync)
    dialect = conn.dialect
    raw: Any = conn.connection.dbapi_connection
    if dialect.name != "postgresql":
        results = [statement.execute(conn, params) for statement, params in steps]
        if commit:
            raw.commit()
        return results
    compiled = [(statement.compiled_for(dialect), params) for statement, params in steps]
    cursors = [raw.cursor() for _ in compiled]
    sql = "; ".join(c.sql for c, _ in compiled)
    try:
        with as_sqlalchemy_raises(dialect, sql, [params for _, params in compiled]):
            with raw.pipeline():
                for cursor, (c, params) in zip(cursors, compiled):
                    cursor.execute(c.sql, c.parameters(params))
                if commit:
                    raw.commit()
            return [c.rows(cursor, dialect) for cursor, (c, _) in zip(cursors, compiled)]
    finally:
        for cursor in cursors:
            cursor.close()
