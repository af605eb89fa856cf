"""Alembic migrations keep data: a database with orders made under 0001 upgrades to head,
its orders come through with defaults, and head downgrades back to 0001."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

import pytest

from api.db import alembic_config, get_engine

ROW_0001 = {"x1": 1, "y1": 2, "x2": 30, "y2": 40, "frame_width": 320, "frame_height": 240,
            "issue_type": "clutter", "state": "dispatched", "event_count": 3, "model_name": "m", "model_version": "1"}


def test_upgrade_from_0001_keeps_orders_and_downgrade_works(backend):
    url = backend.database_url
    cfg = alembic_config(url)
    command.downgrade(cfg, "0001")
    engine = get_engine(url)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO camera (name, first_seen, last_seen) VALUES ('old-cam', :t, :t)"), {"t": now})
        conn.execute(text('INSERT INTO "order" (x1, y1, x2, y2, frame_width, frame_height, issue_type, state, '
                          "first_seen, last_seen, event_count, model_name, model_version, camera_id, created_at, "
                          "updated_at) VALUES (:x1, :y1, :x2, :y2, :frame_width, :frame_height, :issue_type, :state, "
                          ":t, :t, :event_count, :model_name, :model_version, 1, :t, :t)"), {**ROW_0001, "t": now})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        row = conn.execute(text('SELECT state, source, unassigned, cleared_by_camera, event_count FROM "order"')).one()
    assert tuple(row) == ("dispatched", "camera", False, False, 3)
    assert {"audit_entry", "worker", "grid", "report", "api_key", "notification"} <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_entry (order_id, action, actor, role, at) "
                          "VALUES (1, 'transition', 'me', 'admin', :t)"), {"t": now})
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry"))

    command.downgrade(cfg, "0001")
    tables = set(inspect(engine).get_table_names())
    assert "audit_entry" not in tables and "order" in tables
    with engine.connect() as conn:
        assert conn.execute(text('SELECT count(*) FROM "order"')).scalar_one() == 1
    command.upgrade(cfg, "head")
