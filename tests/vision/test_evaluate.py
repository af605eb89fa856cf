from pathlib import Path

from datasets.build import build_dataset
from datasets.recipe import load_recipe
from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe
from vision.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]


def test_eval_reports_real_and_synthetic_apart(tmp_path):
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    recipe = write_recipe(tmp_path, splits={"train": 0.0, "val": 1.0, "test": 0.0})
    data, _ = build_dataset(load_recipe(recipe), tmp_path / "ds")
    report = evaluate(ROOT / "models" / "streetwatch-demo", data, "val", tmp_path / "report")
    text = report.read_text()
    assert "## real images (3)" in text and "## synthetic images (4)" in text
    assert "| clutter |" in text and "image precision" in text
    assert (tmp_path / "report" / "real.txt").read_text().count("\n") == 3
