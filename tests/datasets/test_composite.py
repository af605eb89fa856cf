"""Real photos as backgrounds: water pasted clear of their labelled objects gets a flooding box,
wet roads get none, camera conditions keep the boxes on their objects, and every composite
stays in its background's split."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.build import build_dataset
from datasets.recipe import RecipeError, load_recipe
from datasets.synth.real_paste import ALL_EFFECTS, camera_effect, paste_water, wet_road
from tests.datasets.test_recipe import make_yolo_source, write_recipe


def _street(h: int = 240, w: int = 320) -> np.ndarray:
    """Sky-ish top, textured ground below."""
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (200, 170, 140)
    img[h // 2:] = rng.integers(70, 110, (h - h // 2, w, 3), dtype=np.uint8)
    return img


def test_water_lies_on_the_ground_clear_of_labelled_objects_and_changes_only_its_pixels():
    img = _street()
    bin_box = (10.0, 150.0, 60.0, 230.0)
    for seed in range(10):
        out, water = paste_water(img, np.random.default_rng(seed), [bin_box])
        if water is None:
            continue
        x1, y1, x2, y2 = water
        assert y1 >= 0.5 * img.shape[0]  # on the ground, not in the sky
        changed = np.abs(out.astype(int) - img.astype(int)).sum(axis=2) > 8
        ys, xs = np.nonzero(changed)
        assert xs.min() >= x1 - 12 and xs.max() <= x2 + 12 and ys.min() >= y1 - 12  # the water and its wet rim only
        b = [int(v) for v in bin_box]
        assert not changed[b[1]:b[3], b[0]:b[2]].mean() > 0.05
        break
    else:
        pytest.fail("no seed placed water beside a bin in the corner")
    full = (0.0, 0.0, float(img.shape[1]), float(img.shape[0]))
    assert paste_water(img, np.random.default_rng(0), [full])[1] is None  # nowhere to put it


def test_wet_road_darkens_the_ground_only_and_each_effect_keeps_the_frame():
    img = _street()
    wet = wet_road(img, np.random.default_rng(1))
    diff = np.abs(wet.astype(int) - img.astype(int))
    assert diff[-20:].mean() > 5 and diff[:40].mean() < 1  # the ground glosses over; the sky stays
    box = [(100.0, 120.0, 200.0, 220.0)]
    for effect in ALL_EFFECTS:
        out, boxes = camera_effect(img, box, effect, np.random.default_rng(2))
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img), effect
        if effect == "small":  # the scene shrunk: the box with it, inside the frame
            x1, y1, x2, y2 = boxes[0]
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240 and (x2 - x1) < 100 * 0.61
        else:
            assert boxes == box
    with pytest.raises(ValueError, match="unknown camera effect 'fog'"):
        camera_effect(img, box, "fog", np.random.default_rng(0))


def test_composites_keep_their_backgrounds_split_and_labels(tmp_path):
    src = make_yolo_source(tmp_path / "src", {f"p{i}": "0 0.2 0.2 0.1 0.1\n" for i in range(6)})
    for image in (src / "train" / "images").iterdir():
        cv2.imwrite(str(image), _street())
    recipe = write_recipe(tmp_path, sources=[
        {"kind": "yolo", "name": "real", "path": "src", "class_map": {"garbage": "clutter", "garbage_bin": None, "overflow": None}},
        {"kind": "composite", "name": "street", "of": "real", "images": 12, "seed": 1, "water_share": 0.6}])
    build_dataset(load_recipe(recipe), tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "sources.csv").open()))
    split_of = {Path(r["image"]).stem: r["split"] for r in rows if r["origin"] == "real"}
    composites = [r for r in rows if r["origin"] == "composite"]
    assert len(composites) == 12
    flooded = 0
    for row in composites:
        background = Path(row["image"]).stem.split("__", 2)[2]
        assert row["split"] == split_of[background]
        lines = (tmp_path / "out" / "labels" / row["split"] / f"{Path(row['image']).stem}.txt").read_text().splitlines()
        assert lines[0].split()[0] == "1"  # the background's garbage, as clutter
        flooded += any(line.split()[0] == "2" for line in lines)
    assert 3 <= flooded <= 11


def test_a_composite_of_no_source_is_one_line(tmp_path):
    make_yolo_source(tmp_path / "src", {"a": ""})
    bad = write_recipe(tmp_path, sources=[
        {"kind": "yolo", "name": "real", "path": "src", "class_map": {"garbage": "clutter"}},
        {"kind": "composite", "name": "street", "of": "photos", "images": 3}])
    with pytest.raises(RecipeError, match="of: 'photos' is no yolo source of this recipe"):
        load_recipe(bad)
