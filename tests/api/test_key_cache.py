"""Looked-up keys are remembered for STREETWATCH_KEY_CACHE_SECONDS: longer than a box's
heartbeat interval, so heartbeats cost no key lookup, and bounded, so a key revoked by
another process (or the CLI, or straight in the database) stops working within that time;
one revoked through this process stops at once."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from api.auth import forget_keys, hash_key
from api.db import get_engine
from api.main import create_app
from api.models import ApiKey, utcnow
from api.settings import Settings
from tests.api.factories import auth, make_key
from tests.api.fleet_helpers import beat, box_key, camera


@pytest.fixture(autouse=True)
def _fresh_cache():
    forget_keys()  # the cache is per process: another test's keys must not answer for ours
    yield
    forget_keys()


def _revoke_elsewhere(settings: Settings, key: str) -> None:
    """What another API process or `streetwatch api keys revoke` does: the row only."""
    with Session(get_engine(settings.database_url)) as s:
        s.exec(update(ApiKey).where(ApiKey.key_hash == hash_key(key))  # type: ignore[call-overload]
               .values(revoked_at=utcnow()))
        s.commit()


def _client(settings: Settings, **overrides) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=overrides)))


def test_default_outlives_the_heartbeat_interval() -> None:
    assert Settings().key_cache_seconds > 30  # the edge's default heartbeat_s


def test_a_remembered_key_needs_no_lookup_until_its_time_is_up(sqlite_backend: Settings) -> None:
    key = box_key(sqlite_backend, "box-1")
    with _client(sqlite_backend, key_cache_seconds=1.5) as client:
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 200
        _revoke_elsewhere(sqlite_backend, key)
        # Remembered: this process has not heard of the revocation yet.
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 200
        time.sleep(1.6)
        answer = beat(client, "box-1", key, camera("cam-1"))
        assert answer.status_code == 401 and "revoked" in answer.json()["detail"]


def test_zero_looks_every_key_up(sqlite_backend: Settings) -> None:
    key = box_key(sqlite_backend, "box-1")
    with _client(sqlite_backend, key_cache_seconds=0) as client:
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 200
        _revoke_elsewhere(sqlite_backend, key)
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 401


def test_a_revocation_through_this_process_takes_effect_at_once(sqlite_backend: Settings) -> None:
    key = box_key(sqlite_backend, "box-1")
    admin = make_key(sqlite_backend, "admin")
    with _client(sqlite_backend, key_cache_seconds=3600) as client:
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 200
        with Session(get_engine(sqlite_backend.database_url)) as s:
            key_id = s.exec(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key))).one()
        assert client.delete(f"/api/v1/keys/{key_id}", headers=auth(admin)).status_code == 204
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 401
