from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from api.db import get_engine, upgrade_database
from api.local_s3 import LocalS3Server
from api.main import create_app
from api.settings import Settings
from tests.support.postgres import ThrowawayPostgres


def jpeg(color=(200, 60, 40), size=(320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def event_json(bbox=(100, 100, 200, 200), issue_type="clutter", camera="cam-1", event_id=None, **extra) -> dict:
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


def post(client: TestClient, event: dict, frame: bytes | None = None, headers=None, **parts):
    files = {"frame": ("frame.jpg", frame if frame is not None else jpeg(), "image/jpeg")}
    for kind, data in parts.items():
        files[kind] = (f"{kind}.jpg", data, "image/jpeg")
    return client.post("/api/v1/events", data={"event": json.dumps(event)}, files=files, headers=headers or {})


@pytest.fixture(scope="session")
def postgres():
    with ThrowawayPostgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def s3():
    with LocalS3Server() as server:
        yield server


@pytest.fixture(params=["sqlite-local", "postgres-s3"])
def backend(request, tmp_path):
    """Settings for an empty, migrated database and an empty evidence store."""
    if request.param == "sqlite-local":
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'sw.db'}", evidence_dir=tmp_path / "evidence",
                            secret_key="test-secret")
    else:
        pg, s3 = request.getfixturevalue("postgres"), request.getfixturevalue("s3")
        bucket = f"t-{uuid.uuid4().hex[:12]}"
        settings = Settings(database_url=pg.url, s3_endpoint=s3.endpoint, s3_access_key=s3.access_key,
                            s3_secret_key=s3.secret_key, s3_bucket=bucket)
        with get_engine(pg.url).begin() as conn:
            for table in ("evidence", "event", '"order"', "camera", "alembic_version"):
                conn.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    upgrade_database(settings.database_url)
    return settings


@pytest.fixture
def client(backend):
    with TestClient(create_app(backend)) as c:
        yield c
