"""Starting the API: settings, migrations, import weight, OpenAPI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.db import DatabaseNotMigrated, DatabaseUnavailable, normalize_url, upgrade_database
from api.main import create_app
from api.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_unmigrated_database_is_refused(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", evidence_dir=tmp_path / "e",
                        secret_key="x" * 32)
    with pytest.raises(DatabaseNotMigrated, match="at migration none.*run `streetwatch api migrate`"):
        create_app(settings)
    upgrade_database(settings.database_url)
    upgrade_database(settings.database_url)  # a second run is a no-op
    create_app(settings)


def test_unreachable_database_is_refused(tmp_path):
    settings = Settings(database_url="postgresql://nobody:pw@127.0.0.1:1/none", evidence_dir=tmp_path / "e",
                        secret_key="x" * 32)
    with pytest.raises(DatabaseUnavailable, match="cannot open database") as info:
        create_app(settings)
    assert "pw" not in str(info.value)  # passwords stay out of logs


def test_uvicorn_target_refuses_in_one_line_and_imports_nothing_heavy(tmp_path):
    """`uvicorn api.main:app` on an unmigrated database: one line on stderr, exit 1; and
    importing the API pulls in no torch, OpenCV, ultralytics, vision/ or streams/."""
    code = ("import sys, api.main\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'cv2', 'ultralytics', 'vision', 'streams'})\n"
            "print(heavy, flush=True)\n"
            "api.main.app\n")
    env = {**os.environ, "STREETWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
           "STREETWATCH_EVIDENCE_DIR": str(tmp_path / "e"), "STREETWATCH_SECRET_KEY": "x" * 32}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]"
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "streetwatch api migrate" in lines[0], done.stderr


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STREETWATCH_POLICIES__FLOODING__DEDUP_IOU", "0.5")
    monkeypatch.setenv("STREETWATCH_POLICIES__CLUTTER__SLA_HOURS", "48")
    monkeypatch.setenv("STREETWATCH_S3_ENDPOINT", "https://minio.example.org:9000")
    monkeypatch.setenv("STREETWATCH_API_KEY", "k")
    s = Settings()
    assert s.policy("flooding").dedup_iou == 0.5 and s.api_key == "k"
    # Overrides merge per field over the per-type defaults.
    assert s.policy("flooding").sla_hours == 2 and s.policy("clutter").sla_hours == 48
    assert s.s3_endpoint == "minio.example.org:9000" and s.s3_secure is True
    for bad in ({"policies": {"flooding": {"dedup_iou": 0}}}, {"policies": {"clutter": {"dedup_iou": 1.5}}},
                {"policies": {"cluter": {"sla_hours": 1}}}, {"policies": {"clutter": {"sla_hourz": 1}}},
                {"presign_expiry_seconds": 8 * 24 * 3600},
                {"max_upload_bytes": 0}, {"s3_endpoint": "ftp://x:1"}):
        with pytest.raises(ValidationError):
            Settings(**bad)


def test_secret_key_file_is_made_once_and_shared(tmp_path):
    path = tmp_path / "var" / "secret_key"
    a = Settings(secret_key_file=path).signing_key()
    b = Settings(secret_key_file=path).signing_key()  # another worker process, say
    assert a == b and len(a) >= 32 and oct(path.stat().st_mode)[-3:] == "600"
    assert Settings(secret_key="given-" * 6, secret_key_file=path).signing_key() == b"given-" * 6


def test_database_urls_use_psycopg3():
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://u@h:5433/db") == "postgresql+psycopg://u@h:5433/db"
    assert normalize_url("sqlite:///var/streetwatch.db") == "sqlite:///var/streetwatch.db"


def test_openapi_docs(sqlite_client):
    assert sqlite_client.get("/docs").status_code == 200
    spec = sqlite_client.get("/openapi.json").json()
    post = spec["paths"]["/api/v1/events"]["post"]
    assert "idempotency key" in post["description"]
    assert {"200", "201", "401", "413", "422", "503"} <= set(post["responses"])
    assert {"/api/v1/orders", "/api/v1/orders/{order_id}", "/api/v1/evidence/{key}", "/healthz"} <= set(spec["paths"])
