"""The retraining loop end to end: events from (synthetic) cameras, reviewers confirm some and
reject some, the export writes labels and hard negatives, and the three notebooks run in SMALL
mode: a deliberately worse model is not promoted, a better one is."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import papermill
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.db import get_engine, upgrade_database
from api.evidence_store import make_store
from api.main import create_app
from api.review_export import export_reviews
from datasets.synth.scene import random_scene, render_scene
from tests.api.conftest import sqlite_settings
from tests.api.factories import add_worker, auth, event_json, make_key, post
from vision.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "models" / "streetwatch-demo"
ISSUES = {0: "street_vending", 1: "clutter", 2: "flooding"}


def _jpeg(bgr) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    """Twelve reviewed camera orders exported: nine confirmed, three rejected."""
    tmp = tmp_path_factory.mktemp("reviews")
    settings = sqlite_settings(tmp)
    upgrade_database(settings.database_url)
    with TestClient(create_app(settings), headers=auth(make_key(settings, "admin"))) as client:
        reviewer = auth(make_key(settings, "reviewer"))
        worker = add_worker(client, "W", on_duty=False)
        posted = 0
        for seed in range(200):
            image, labels = render_scene(random_scene(seed, 320, 180))
            issue = next((l for l in labels if l.class_id in ISSUES), None)
            if issue is None:
                continue
            ev = event_json(bbox=issue.box, issue_type=ISSUES[issue.class_id], camera=f"cam-{seed}",
                            frame_width=320, frame_height=180)
            order_id = post(client, ev, frame=_jpeg(image)).json()["order_id"]
            if posted % 4 == 3:
                client.post(f"/api/v1/orders/{order_id}/reject", json={"reason": "not_an_issue"}, headers=reviewer)
            else:
                client.post(f"/api/v1/orders/{order_id}/dispatch", json={"worker_id": worker}, headers=reviewer)
            posted += 1
            if posted == 12:
                break
    out = tmp / "export"
    with Session(get_engine(settings.database_url)) as session:
        summary = export_reviews(session, make_store(settings), out, progress=False)
    assert summary.new_images + summary.duplicates_skipped == 12
    return out


def _run(notebook: str, out_dir: Path, **parameters) -> None:
    papermill.execute_notebook(str(ROOT / "notebooks" / notebook), str(out_dir / notebook),
                               parameters={"SMALL": True, **parameters}, cwd=str(ROOT), kernel_name="python3",
                               progress_bar=False)


def _last_printed(out_dir: Path, notebook: str) -> str:
    """What the executed notebook's last cell printed."""
    book = json.loads((out_dir / notebook).read_text())
    return "".join("".join(o.get("text", "")) for o in book["cells"][-1]["outputs"])


def _model_copy(dest: Path, weights: Path | None = None) -> Path:
    shutil.copytree(DEMO, dest, ignore=shutil.ignore_patterns("*.onnx", "*_openvino"))
    raw = yaml.safe_load((dest / "manifest.yaml").read_text())
    raw["exports"] = {}
    (dest / "manifest.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    if weights is not None:
        shutil.copy2(weights, dest / raw["weights"])
    return dest


def test_export_has_labels_negatives_and_provenance(export_dir):
    with (export_dir / "provenance.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["verdict"] for r in rows} == {"confirmed", "rejected"}
    for row in rows:
        label = (export_dir / "labels" / f"{Path(row['image']).stem}.txt").read_text()
        assert (label == "") == (row["verdict"] == "rejected")
        assert row["camera"].startswith("cam-") and row["model_version"] == "test:1"


def test_notebooks_promote_only_a_model_that_is_not_worse(export_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("STREETWATCH_HEADLESS", "1")
    _run("01_review_data.ipynb", tmp_path, EXPORT_DIR=str(export_dir))

    # A model made worse on purpose (scrambled labels) is not promoted over the demo model.
    deployed = _model_copy(tmp_path / "deployed")
    worse = tmp_path / "worse"
    _run("02_retrain.ipynb", tmp_path, EXPORT_DIR=str(export_dir), MODEL_DIR=str(deployed), WORK_DIR=str(worse),
         SABOTAGE=True)
    _run("03_compare_and_promote.ipynb", tmp_path, MODEL_DIR=str(deployed), WORK_DIR=str(worse))
    decision = json.loads((worse / "decision.json").read_text())
    assert decision["promote"] is False and decision["worse"], decision
    assert load_manifest(deployed).version == "1" and not (deployed / "history").exists()
    assert "nothing to push: streetwatch-demo stays v1" in _last_printed(tmp_path, "03_compare_and_promote.ipynb")

    # With that bad model deployed, a model fine-tuned from the demo weights is promoted.
    bad = _model_copy(tmp_path / "bad-deployed", weights=Path(json.loads((worse / "retrain.json").read_text())["best"]))
    better = tmp_path / "better"
    _run("02_retrain.ipynb", tmp_path, EXPORT_DIR=str(export_dir), MODEL_DIR=str(bad), WORK_DIR=str(better),
         BASE_WEIGHTS=str(DEMO / "streetwatch-demo.pt"))
    _run("03_compare_and_promote.ipynb", tmp_path, MODEL_DIR=str(bad), WORK_DIR=str(better))
    decision = json.loads((better / "decision.json").read_text())
    assert decision["promote"] is True, decision
    promoted = load_manifest(bad)
    assert promoted.version == "2" and (bad / "history" / "v1" / "manifest.yaml").exists()
    assert "## Version 2" in (bad / "README.md").read_text()
    printed = _last_printed(tmp_path, "03_compare_and_promote.ipynb")  # the notebook ends with the push
    assert f"streetwatch model push {bad}\n" in printed and "streetwatch model assign streetwatch-demo 2 --box" in printed


def test_committed_notebooks_carry_no_outputs():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in book.cells if c.cell_type == "code"), \
            f"{path.name}: strip outputs before committing (scripts/clear_notebooks.py)"
        assert any("parameters" in c.metadata.get("tags", []) for c in book.cells), f"{path.name}: no parameters cell"
