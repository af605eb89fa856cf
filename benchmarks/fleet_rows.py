"""Rows the database wrote, per table and operation, for `streetwatch bench fleet`.

PostgreSQL counts them itself (pg_stat_user_tables: n_tup_ins/upd/del, flushed by each backend
within PG_STATS_FLUSH_S of going idle). SQLite keeps no such count, so the bench's own
throwaway database gets a counting trigger per table and operation (one extra row update in
the API's transaction per row written: a little of the measured CPU is the trigger's).
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

PG_STATS_FLUSH_S = 11.0  # PostgreSQL ≥ 15 flushes an idle backend's table counts within 10 s
COUNTS = "bench_writes"
OPS = ("insert", "update", "delete")

# Which rows follow what: a camera's row and its history row are written when its state
# changes; the box's row (last heartbeat, live figures) with every heartbeat.
STATE_CHANGE_TABLES = ("camera_status", "camera_state_change")
HEARTBEAT_TABLES = ("edge_box",)

Writes = Counter  # (table, op) → rows


def _tables(conn: sa.Connection) -> list[str]:
    return [t for t in sa.inspect(conn).get_table_names() if t != COUNTS and not t.startswith("sqlite_")]


def install_counters(engine: sa.Engine) -> None:
    """SQLite: count every row each table gets inserted, updated or deleted (a no-op for PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {COUNTS} (tbl TEXT, op TEXT, n INTEGER NOT NULL, "
                             "PRIMARY KEY (tbl, op))")
        for table in _tables(conn):
            for op in OPS:
                conn.exec_driver_sql(
                    f'CREATE TRIGGER IF NOT EXISTS "bench_{table}_{op}" AFTER {op.upper()} ON "{table}" BEGIN '
                    f"INSERT INTO {COUNTS} VALUES ('{table}', '{op}', 1) "
                    f"ON CONFLICT (tbl, op) DO UPDATE SET n = n + 1; END")


def written(engine: sa.Engine) -> Writes:
    """Rows written so far, per (table, op)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"SELECT tbl, op, n FROM {COUNTS}").all()
            return Counter({(t, op): n for t, op, n in rows})
        counts: Writes = Counter()
        for table, ins, upd, dele in conn.exec_driver_sql(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables").all():
            counts.update({(table, "insert"): ins, (table, "update"): upd, (table, "delete"): dele})
        return +counts  # zeros dropped, as SQLite's


def split(delta: Writes) -> dict[str, int]:
    """Rows written, as state-change rows, per-heartbeat rows (the box's row) and the rest."""
    out = {"state_change": 0, "heartbeat": 0, "other": 0}
    for (table, _), n in delta.items():
        kind = "state_change" if table in STATE_CHANGE_TABLES else "heartbeat" if table in HEARTBEAT_TABLES \
            else "other"
        out[kind] += n
    return out
