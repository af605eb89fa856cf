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


def test_unassign_withdraws_a_canary_and_names_a_box_without_one(tmp_path, capsys):
    from tests.api.fleet_helpers import beat, box_key, camera
    from vision.model_push import _print_unassign, unassign_model

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'sw.db'}", evidence_dir=tmp_path / "evidence",
                        secret_key="test-secret-key-test-secret-key-0123", sweep_interval_seconds=0)
    upgrade_database(settings.database_url)
    with TestClient(create_app(settings), headers=auth(make_key(settings, "admin"))) as client:
        for box in ("box-1", "box-2"):
            assert beat(client, box, box_key(settings, box), camera(f"cam-{box}")).status_code == 200
        push_model(_copy(tmp_path, version="7"), client=client)
        for boxes in (None, ["box-1", "box-2"]):
            client.put("/api/v1/models/assignment", json={"name": "streetwatch-demo", "version": "7", "boxes": boxes})
        answer = unassign_model(["box-1", "box-2"], client=client)
        assert answer == {"all": {"name": "streetwatch-demo", "version": "7"}, "boxes": {}}
        with pytest.raises(PushError, match=r"^404 from .*/assignment/box-1: box 'box-1' has no model assignment"):
            unassign_model(["box-1"], client=client)
        assert unassign_model(None, client=client) == {"all": None, "boxes": {}}

    class Args:
        box, all, api_url, key = None, False, "http://127.0.0.1:9", "k"

    assert _print_unassign(Args()) == 2 and "--box B" in capsys.readouterr().err  # neither --box nor --all
    Args.all = True
    assert _print_unassign(Args()) == 1 and "API unreachable" in capsys.readouterr().err
