"""Builders for fleet tests: heartbeats, box keys, row counts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, func, select

from api.db import get_engine
from api.fleet_models import CameraStateChange, CameraStatus, EdgeBox
from api.models import Notification
from api.settings import Settings
from tests.api.factories import auth, make_key


def camera(name: str, state: str = "streaming", **extra: Any) -> dict[str, Any]:
    return {"name": name, "state": state, "last_frame_at": datetime.now(timezone.utc).isoformat(), "fps": 0.5,
            "damaged_packets": 0, **extra}


def heartbeat(*cameras: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"software_version": "0.1.0", "interval_s": 30, "outbox_depth": 0,
            "model": {"name": "streetwatch-v2", "version": "2", "sha256": "ab" * 32}, "cameras": list(cameras), **extra}


def beat(client: TestClient, box_id: str, key: str, *cameras: dict[str, Any], **extra: Any) -> Response:
    return client.post(f"/api/v1/boxes/{box_id}/heartbeat", json=heartbeat(*cameras, **extra), headers=auth(key))


def box_key(settings: Settings, box_id: str) -> str:
    from api.auth import create_key
    from api.models import Role

    with Session(get_engine(settings.database_url)) as s:
        return create_key(s, f"edge-{box_id}", Role.edge, box_id=box_id)


def unbound_edge_key(settings: Settings) -> str:
    return make_key(settings, "edge")


def fleet_rows(settings: Settings) -> dict[str, int]:
    with Session(get_engine(settings.database_url)) as s:
        return {t.__name__: s.exec(select(func.count()).select_from(t)).one()
                for t in (EdgeBox, CameraStatus, CameraStateChange, Notification)}


def notifications(settings: Settings, kind: str | None = None) -> list[Notification]:
    with Session(get_engine(settings.database_url)) as s:
        query = select(Notification).order_by(Notification.id)  # type: ignore[arg-type]
        if kind is not None:
            query = query.where(Notification.kind == kind)
        rows = list(s.exec(query).all())
        for r in rows:
            s.expunge(r)
        return rows
