"""Context classes in a dataset build: every image gets the COCO checkpoint's people, vehicles
and furniture boxes beside its own labels, cached by content for the next build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from datasets.build import build_dataset, is_built
from datasets.recipe import RecipeError, load_recipe
from tests.datasets.test_recipe import make_yolo_source, write_recipe

ROOT = Path(__file__).resolve().parents[2]
YOLOV5N = ROOT.parent / "shared" / "weights" / "yolov5n-coco" / "yolov5n.pt"
CLASSES = ["vending", "clutter", "flooding", "garbage_bin", "person", "bus"]


def _recipe(tmp_path: Path, **context) -> Path:
    from ultralytics.utils import ASSETS

    src = make_yolo_source(tmp_path / "src", {"c": ""})
    shutil.copy(ASSETS / "bus.jpg", src / "train" / "images" / "bus.jpg")
    (src / "train" / "labels" / "bus.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # its own (made-up) garbage box
    spec = {"weights": str(YOLOV5N), "conf": 0.4, "classes": {"person": "person", "bus": "bus"}, **context}
    return write_recipe(tmp_path, classes=CLASSES, splits={"train": 1.0, "val": 0.0, "test": 0.0},
                        sources=[{"kind": "yolo", "name": "real", "path": "src",
                                  "class_map": {"garbage": "clutter", "garbage_bin": None, "overflow": None}}],
                        context=spec)


def test_every_image_gets_the_context_boxes_beside_its_own(tmp_path):
    recipe = load_recipe(_recipe(tmp_path))
    data, summary = build_dataset(recipe, tmp_path / "out")
    lines = (tmp_path / "out" / "labels" / "train" / "real__bus.txt").read_text().splitlines()
    classes = [CLASSES[int(line.split()[0])] for line in lines]
    assert classes[0] == "clutter"  # the source's own label comes first, untouched
    assert classes.count("person") == 4 and classes.count("bus") == 1  # the four people (0.48-0.87) and the bus
    assert (tmp_path / "out" / "labels" / "train" / "real__c.txt").read_text() == ""  # a grey image: nothing
    assert "person" in summary.table() and is_built(recipe, tmp_path / "out")
    cached = list((tmp_path / ".context-cache").rglob("*.json"))
    assert len(cached) == 2
    # a second build reads the cache: with its entry for bus.jpg emptied, the bus is gone
    for entry in cached:
        if '"person"' in entry.read_text():
            entry.write_text('{"shape": [1080, 810], "boxes": []}')
    build_dataset(recipe, tmp_path / "out2")
    assert (tmp_path / "out2" / "labels" / "train" / "real__bus.txt").read_text().splitlines() == lines[:1]


def test_context_mistakes_are_one_line(tmp_path):
    with pytest.raises(RecipeError, match=r"context: classes targets \['cat'\] are not in classes"):
        load_recipe(_recipe(tmp_path, classes={"cat": "cat"}))
    shutil.rmtree(tmp_path / "src")
    with pytest.raises(RecipeError, match="context: weights: file not found"):
        load_recipe(_recipe(tmp_path, weights="nowhere/yolov5n.pt"))
    shutil.rmtree(tmp_path / "src")
    from datasets.yolo_labels import LabelError

    with pytest.raises(LabelError, match=r"context: \['zebra crossing'\] are not classes of yolov5n.pt"):
        build_dataset(load_recipe(_recipe(tmp_path, classes={"zebra crossing": "person"})), tmp_path / "out")
    assert not (tmp_path / "out").exists()
