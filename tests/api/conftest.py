"""API test fixtures: every `backend` test runs twice, on SQLite + a local evidence folder and
on a real PostgreSQL + a real S3 server (SeaweedFS), started once per session.

Each test gets a database of its own, migrated: a copy of one migrated once per session (a file
copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL, ~60 ms) rather than running every
migration again per test (~0.3 s each, 344 tests)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

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


TEMPLATE_DB = "sw_migrated_template"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """An empty SQLite database at the newest migration, for `backend` to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "sw.db"
    upgrade_database(f"sqlite:///{path}")  # alembic's own NullPool engine: nothing left open
    return path


@pytest.fixture(scope="session")
def _postgres_admin(postgres_url) -> Iterator:
    """An autocommit engine on the cluster's `postgres` database, with an empty database at the
    newest migration made there (alembic's NullPool engine leaves no session open on it, which
    CREATE DATABASE ... TEMPLATE needs)."""
    admin = create_engine(make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {TEMPLATE_DB}"))
    upgrade_database(make_url(postgres_url).set(database=TEMPLATE_DB).render_as_string(hide_password=False))
    yield admin
    admin.dispose()


def _copied_sqlite(template: Path, tmp_path) -> Settings:
    settings = sqlite_settings(tmp_path)
    shutil.copyfile(template, tmp_path / "sw.db")
    return settings


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
    if request.param == "sqlite-local":
        yield _copied_sqlite(request.getfixturevalue("_sqlite_template"), tmp_path)
        return
    url, s3 = request.getfixturevalue("postgres_url"), request.getfixturevalue("s3")
    admin = request.getfixturevalue("_postgres_admin")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    db_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    settings = Settings(database_url=db_url, s3_endpoint=s3.endpoint, s3_access_key=s3.access_key,
                        s3_secret_key=s3.secret_key, s3_bucket=f"t-{uuid.uuid4().hex[:12]}",
                        sweep_interval_seconds=0)
    yield settings
    s3.drop_bucket(settings.s3_bucket)  # a bucket holds a volume; weed has a fixed number
    get_engine(db_url).dispose()  # this test's pool (the engine cache keeps the last few)
    with admin.connect() as conn:  # FORCE: a connection a test left open does not keep it
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
def sqlite_backend(_sqlite_template, tmp_path) -> Settings:
    return _copied_sqlite(_sqlite_template, tmp_path)


@pytest.fixture
def client(backend: Settings) -> Iterator[TestClient]:
    """A client holding an admin key (admin may make every call)."""
    with TestClient(create_app(backend), headers=auth(make_key(backend, "admin"))) as c:
        yield c


@pytest.fixture
def sqlite_client(sqlite_backend: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_backend), headers=auth(make_key(sqlite_backend, "admin"))) as c:
        yield c
