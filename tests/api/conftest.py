"""API test fixtures: every `backend` test runs twice, on SQLite + a local evidence folder and
on a real PostgreSQL + a real S3 server (SeaweedFS), started once per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.box_binding import forget_owners
from api.db import get_engine, upgrade_database
from api.main import create_app
from api.settings import Settings
from tests.api.factories import auth, make_key
from tests.support.postgres import ThrowawayPostgres
from tests.support.s3 import LocalS3Server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with ThrowawayPostgres() as url:
        yield url


@pytest.fixture(scope="session")
def s3() -> Iterator[LocalS3Server]:
    with LocalS3Server() as server:
        yield server


def sqlite_settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'sw.db'}", evidence_dir=tmp_path / "evidence",
                    secret_key="test-secret-key-test-secret-key-0123", sweep_interval_seconds=0)


@pytest.fixture(autouse=True)
def _no_remembered_owners() -> Iterator[None]:
    """Each test's database is new, but this process's cache of camera owners is not: a
    camera's box from test_fleet made test_orphans' event a 403 when they ran within
    OWNER_CACHE_SECONDS of each other."""
    forget_owners()
    yield
    forget_owners()


@pytest.fixture(params=["sqlite-local", "postgres-s3"])
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Settings]:
    """Settings for an empty, migrated database and an empty evidence store."""
    s3 = None
    if request.param == "sqlite-local":
        settings = sqlite_settings(tmp_path)
    else:
        url, s3 = request.getfixturevalue("postgres_url"), request.getfixturevalue("s3")
        settings = Settings(database_url=url, s3_endpoint=s3.endpoint, s3_access_key=s3.access_key,
                            s3_secret_key=s3.secret_key, s3_bucket=f"t-{uuid.uuid4().hex[:12]}",
                            sweep_interval_seconds=0)
        with get_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade_database(settings.database_url)
    yield settings
    if s3 is not None:
        s3.drop_bucket(settings.s3_bucket)  # a bucket holds a volume; weed has a fixed number


@pytest.fixture
def sqlite_backend(tmp_path) -> Settings:
    settings = sqlite_settings(tmp_path)
    upgrade_database(settings.database_url)
    return settings


@pytest.fixture
def client(backend: Settings) -> Iterator[TestClient]:
    """A client holding an admin key (admin may make every call)."""
    with TestClient(create_app(backend), headers=auth(make_key(backend, "admin"))) as c:
        yield c


@pytest.fixture
def sqlite_client(sqlite_backend: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_backend), headers=auth(make_key(sqlite_backend, "admin"))) as c:
        yield c
