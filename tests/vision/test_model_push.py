"""`streetwatch model push`'s client: what it sends from a model folder, and a refusal that
names the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from api.db import upgrade_database
from api.main import create_app
from api.settings import Settings
from tests.api.factories import auth, make_key
from vision.model_push import PushError, model_files, push_model

DEMO = Path(__file__).resolve().parents[2] / "models" / "streetwatch-demo"


def _copy(tmp_path: Path, **changes) -> Path:
    folder = tmp_path / "streetwatch-demo"
    folder.mkdir()
    for name in ("streetwatch-demo.pt", "streetwatch-demo.onnx"):
        shutil.copy(DEMO / name, folder / name)
    manifest = yaml.safe_load((DEMO / "manifest.yaml").read_text())
    (folder / "manifest.yaml").write_text(yaml.safe_dump({**manifest, **changes}))
    return folder


def test_exports_the_folder_lacks_are_left_out_of_the_pushed_manifest(tmp_path):
    text, files, left_out = model_files(_copy(tmp_path))
    assert left_out == ["openvino"] and sorted(files) == ["streetwatch-demo.onnx", "streetwatch-demo.pt"]
    assert yaml.safe_load(text)["exports"] == {"onnx": "streetwatch-demo.onnx"}


def test_a_push_uploads_every_file_and_a_refusal_names_the_field(tmp_path):
    sqlite_backend = Settings(database_url=f"sqlite:///{tmp_path / 'sw.db'}", evidence_dir=tmp_path / "evidence",
                              secret_key="test-secret-key-test-secret-key-0123", sweep_interval_seconds=0)
    upgrade_database(sqlite_backend.database_url)
    with TestClient(create_app(sqlite_backend), headers=auth(make_key(sqlite_backend, "admin"))) as client:
        answer = push_model(_copy(tmp_path, version="7"), client=client)
        assert answer["status"] == "ready" and answer["missing"] == []
        assert {f["path"] for f in answer["files"]} == {"manifest.yaml", "streetwatch-demo.pt", "streetwatch-demo.onnx"}
        assert push_model(tmp_path / "streetwatch-demo", client=client)["missing"] == []  # again: nothing to send

        other = tmp_path / "other"
        other.mkdir()
        with pytest.raises(PushError, match=r"^422 from .*: body\.manifest\.version: '8 beta': 1-100 letters"):
            push_model(_copy(other, version="8 beta"), client=client)
