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

from api.db import get_engine
from api.evidence_store import LocalEvidenceStore, S3EvidenceStore, make_store
from api.models import Camera, Event, Evidence, Order
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


def event_json(bbox: tuple[float, float, float, float] = (100, 100, 200, 200), issue_type: str = "clutter",
               camera: str = "cam-1", event_id: uuid.UUID | str | None = None, **extra: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "camera": {"name": camera, "lat": 31.2, "lon": 121.4, "grid_id": "g-1"},
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
