"""Builders for test events and images, and probes of what got stored."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image, ImageDraw
from sqlmodel import Session, func, select

from api.auth import create_key
from api.db import get_engine
from api.evidence_store import LocalEvidenceStore, S3EvidenceStore, make_store
from api.models import AuditEntry, Camera, Event, Evidence, Order, Role
from api.settings import Settings


def jpeg(color: tuple[int, int, int] = (200, 60, 40), size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> bytes:
    """A small street-ish picture: grey road, a coloured stall, so encoders do real work."""
    img = Image.new("RGB", size, (90, 90, 95))
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.rectangle((0, 0, w, h // 3), fill=(150, 180, 210))
    draw.rectangle((w // 3, h // 3, w // 2, h * 2 // 3), fill=color)
    buf = io.BytesIO()
    img.save(buf, fmt, quality=85) if fmt == "JPEG" else img.save(buf, fmt)
    return buf.getvalue()


def make_key(settings: Settings, role: str, worker_id: int | None = None, name: str | None = None) -> str:
    with Session(get_engine(settings.database_url)) as s:
        return create_key(s, name or f"test-{role}", Role(role), worker_id)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def camera_position(camera: str) -> tuple[float, float]:
    """Cameras of the tests stand about 1 km apart (by the digits in their name), far beyond
    any dedup radius, unless a test places them itself."""
    n = int("".join(c for c in camera if c.isdigit()) or 0)
    return 31.2 + 0.01 * n, 121.4


def event_json(bbox: tuple[float, float, float, float] = (100, 100, 200, 200), issue_type: str = "clutter",
               camera: str = "cam-1", event_id: uuid.UUID | str | None = None, **extra: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    lat, lon = camera_position(camera)
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "camera": {"name": camera, "lat": lat, "lon": lon, "grid_id": "g-1"},
        "issue_type": issue_type,
        "class_name": issue_type,
        "confidence": 0.8,
        "bbox": list(bbox),
        "frame_width": 320,
        "frame_height": 240,
        "first_seen": (now - timedelta(seconds=30)).isoformat(),
        "confirmed_at": now.isoformat(),
        "track_id": 3,
        "model": {"name": "test", "version": "1"},
        **extra,
    }


def post(client: TestClient, event: dict[str, Any], frame: bytes | None = None,
         headers: dict[str, str] | None = None, **parts: bytes) -> Response:
    """POST /api/v1/events the way the edge does: `event` JSON field plus image parts."""
    files = {"frame": ("frame.jpg", frame if frame is not None else jpeg(), "image/jpeg")}
    for kind, data in parts.items():
        files[kind] = (f"{kind}.jpg", data, "image/jpeg")
    return client.post("/api/v1/events", data={"event": json.dumps(event)}, files=files, headers=headers or {})


def counts(settings: Settings) -> dict[str, int]:
    with Session(get_engine(settings.database_url)) as s:
        return {t.__name__.lower(): s.exec(select(func.count()).select_from(t)).one()
                for t in (Camera, Order, Event, Evidence)}


def stored_objects(settings: Settings) -> list[str]:
    """Every evidence object in the store, whatever the backend."""
    store = make_store(settings)
    if isinstance(store, LocalEvidenceStore):
        root = store.root
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
    assert isinstance(store, S3EvidenceStore)
    if not store.client.bucket_exists(store.bucket):
        return []
    return sorted(o.object_name for o in store.client.list_objects(store.bucket, recursive=True))


def nothing_stored(settings: Settings) -> bool:
    return all(n == 0 for n in counts(settings).values()) and stored_objects(settings) == []


def place_camera(client: TestClient, name: str, lat: float, lon: float, **extra: Any) -> None:
    resp = client.put(f"/api/v1/cameras/{name}", json={"lat": lat, "lon": lon, **extra})
    assert resp.status_code == 200, resp.text


def add_grid(client: TestClient, grid_id: str, **fields: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/grids", json={"id": grid_id, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def add_worker(client: TestClient, name: str, grid_ids: list[str] | None = None, on_duty: bool = True,
               lat: float | None = None, lon: float | None = None) -> int:
    resp = client.post("/api/v1/workers", json={"name": name, "grid_ids": grid_ids or [], "on_duty": on_duty,
                                                "lat": lat, "lon": lon})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def order_row(settings: Settings, order_id: int) -> Order:
    with Session(get_engine(settings.database_url)) as s:
        order = s.get(Order, order_id)
        assert order is not None
        s.expunge(order)
        return order


def set_order(settings: Settings, order_id: int, **fields: Any) -> None:
    """Put an order into a state directly, as if earlier steps had happened."""
    with Session(get_engine(settings.database_url)) as s:
        order = s.get(Order, order_id)
        assert order is not None
        for name, value in fields.items():
            setattr(order, name, value)
        s.add(order)
        s.commit()


def audit_count(settings: Settings, order_id: int | None = None) -> int:
    with Session(get_engine(settings.database_url)) as s:
        query = select(func.count()).select_from(AuditEntry)
        if order_id is not None:
            query = query.where(AuditEntry.order_id == order_id)
        return s.exec(query).one()


# A street corner in Shanghai, and points due north of it, for the distance tests.
BASE = (31.2304, 121.4737)


def metres_north(m: float) -> tuple[float, float]:
    return BASE[0] + m / 111_195, BASE[1]  # metres per degree on the spherical Earth


def seen_by(camera: str, **fields: Any) -> dict[str, Any]:
    """An event from a camera placed by the test (the event does not move the camera)."""
    ev = event_json(camera=camera, **fields)
    ev["camera"] = {"name": camera}
    return ev
