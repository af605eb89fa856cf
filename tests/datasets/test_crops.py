"""Real garbage crops pasted into synthetic scenes (datasets/synth/crops.py)."""

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from datasets.build import build_dataset
from datasets.recipe import RecipeError, load_recipe
from datasets.synth.crops import CropBank
from datasets.synth.scene import CLASS_ID, random_scene, render_scene

RED = (250, 10, 10)  # RGB; nothing in the synthetic street is this colour


def make_garbage_source(root: Path) -> Path:
    """A garbage-cn look-alike: photos with a bright red 'garbage' box, a bin, an overflow."""
    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"names": {0: "garbage", 1: "garbage_bin", 2: "overflow"}}))
    for i in range(3):
        img = Image.new("RGB", (256, 256), (90, 90, 90))
        img.paste(RED, (64, 64, 192, 192))
        img.save(root / "train" / "images" / f"p{i}.jpg", quality=95)
        # the garbage box (cut), a bin (not clutter: never cut), a box too small to cut
        (root / "train" / "labels" / f"p{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n1 0.1 0.1 0.1 0.1\n0 0.9 0.9 0.05 0.05\n")
    Image.new("RGB", (256, 256), (0, 255, 0)).save(root / "valid" / "images" / "v.jpg")
    (root / "valid" / "labels" / "v.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    return root


def test_bank_cuts_only_clutter_boxes_of_the_train_split(tmp_path):
    bank = CropBank(make_garbage_source(tmp_path / "g"))
    assert len(bank) == 3 and all(c.image.parent.parent.name == "train" for c in bank.crops)
    pixels = bank.pixels(bank.crops[0])
    assert pixels.shape[:2] == (128, 128) and pixels[64, 64, 2] > 200  # BGR: red


def test_pasted_crops_are_labelled_clutter_and_deterministic(tmp_path):
    bank = CropBank(make_garbage_source(tmp_path / "g"))
    clutter_only = {"vending": 0.0, "clutter": 1.0, "flooding": 0.0}
    pasted = 0
    for seed in range(8):
        scene = random_scene(seed, 320, 180, issues=clutter_only, crop_share=1.0)
        assert all(o.kind != "clutter" for o in scene.objects)
        img, labels = render_scene(scene, bank)
        again, labels_again = render_scene(random_scene(seed, 320, 180, issues=clutter_only, crop_share=1.0), bank)
        assert np.array_equal(img, again) and [lb.box for lb in labels] == [lb.box for lb in labels_again]
        if any(o.kind == "overflowing_bin" for o in scene.objects):
            continue  # its drawn spill is clutter too
        b, g, r = (img[..., i].astype(int) for i in range(3))
        red = (r > 50) & (r > 2 * g) & (r > 2 * b)  # the red photo, even in a dark street
        for lb in labels:
            if lb.class_id != CLASS_ID["clutter"]:
                continue
            x1, y1, x2, y2 = map(int, lb.box)
            if (x2 - x1) * (y2 - y1) >= 100:  # the red photo is visible inside its clutter box
                assert red[y1:y2, x1:x2].mean() > 0.2
                pasted += 1
    assert pasted >= 3


def test_without_crops_a_seed_gives_the_scene_it_always_gave():
    a, b = render_scene(random_scene(42, 320, 180)), render_scene(random_scene(42, 320, 180, crop_share=0.0))
    assert np.array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="CropBank"):
        render_scene(random_scene(3, 320, 180, issues={"vending": 0, "clutter": 1, "flooding": 0}, crop_share=1.0))


def test_recipe_with_crops_builds_and_a_missing_folder_is_named(tmp_path):
    make_garbage_source(tmp_path / "g")
    recipe = {"name": "c", "classes": ["vending", "clutter", "flooding", "garbage_bin"],
              "splits": {"train": 1.0}, "sources": [
                  {"kind": "synthetic", "name": "s", "images": 3, "width": 160, "height": 96,
                   "garbage_crops": "g", "crop_share": 1.0}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    data, summary = build_dataset(load_recipe(tmp_path / "r.yaml"), tmp_path / "out")
    assert data.is_file() and len(list((tmp_path / "out" / "images" / "train").glob("*.jpg"))) == 3
    recipe["sources"][0]["garbage_crops"] = "nowhere"
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match=r"garbage_crops: folder not found: .*nowhere"):
        load_recipe(tmp_path / "r.yaml")


def test_a_build_cuts_no_crop_from_the_photos_it_holds_out(tmp_path):
    """The source's train folder feeds both train and val: only its train photos are cut, so
    no val photo's garbage is pasted into a training scene."""
    g = make_garbage_source(tmp_path / "g")
    for i in range(3, 40):
        Image.open(g / "train" / "images" / "p0.jpg").save(g / "train" / "images" / f"p{i}.jpg")
        (g / "train" / "labels" / f"p{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    recipe = {"name": "c", "seed": 0, "classes": ["vending", "clutter", "flooding", "garbage_bin"],
              "splits": {"train": 0.6, "val": 0.2, "test": 0.2}, "sources": [
                  {"kind": "synthetic", "name": "s", "images": 2, "width": 160, "height": 96, "garbage_crops": "g"},
                  {"kind": "yolo", "name": "g", "path": "g", "class_map": {"garbage": "clutter"},
                   "splits": {"train": "train", "val": "train", "test": "valid"}}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    loaded = load_recipe(tmp_path / "r.yaml")
    build_dataset(loaded, tmp_path / "out")
    val = {r["image"].split("__")[1].rsplit(".", 1)[0] for r in csv.DictReader((tmp_path / "out" / "sources.csv").open())
           if r["split"] == "val"}
    assert val  # the test means something only if some train-folder photos went to val

    from datasets.build import _held_out

    bank = CropBank(g, exclude=_held_out(loaded, g))
    cut = {c.image.stem for c in bank.crops}
    assert cut and not cut & val
    assert len(CropBank(g)) > len(bank)  # without the build's split, val photos would be cut


def test_a_crop_folder_without_clutter_boxes_is_a_one_line_error_naming_it(tmp_path, capsys):
    """CropBank raised ValueError, which the CLI printed as a traceback."""
    from streetwatch_cli import main

    g = make_garbage_source(tmp_path / "g")
    recipe = {"name": "c", "classes": ["clutter"], "splits": {"train": 1.0}, "sources": [
        {"kind": "synthetic", "name": "s", "images": 1, "width": 160, "height": 96, "garbage_crops": "g"}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    argv = ["dataset", "build", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out")]
    for names, message in (({0: "car", 1: "bin"}, "none of the classes"), (None, "no garbage/overflow box")):
        if names:
            (g / "data.yaml").write_text(yaml.safe_dump({"names": names}))
        else:
            (g / "data.yaml").write_text(yaml.safe_dump({"names": {0: "garbage", 1: "garbage_bin", 2: "overflow"}}))
            for label in (g / "train" / "labels").glob("*.txt"):
                label.write_text("1 0.5 0.5 0.5 0.5\n")  # bins only: nothing to cut
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"streetwatch: {g}: garbage_crops: {message}") and "\n" not in err, err


def test_a_tall_crop_is_pasted_at_a_pile_s_height_not_stretched_to_its_width(tmp_path):
    """Sized by width (0.8-2.2 m), an upright photo (a wheelie bin, a stacked sofa) stood
    3-5 m tall in the street; crops are now 0.4-1.4 m tall."""
    from datasets.synth.clip import demo_camera
    from datasets.synth.crops import draw_crop
    from datasets.synth.objects import Painter

    g = make_garbage_source(tmp_path / "g")
    for i in range(3):  # tall, narrow garbage boxes: 0.3 wide, 0.75 high
        (g / "train" / "labels" / f"p{i}.txt").write_text("0 0.5 0.5 0.3 0.75\n")
    bank = CropBank(g)
    cam = demo_camera(640, 360)
    (_, top), (_, foot) = cam.project(np.array([[2.0, 1.4, 7.0], [2.0, 0.0, 7.0]]))[0]
    tallest = foot - top  # 1.4 m there, in pixels
    heights = []
    for seed in range(20):
        painter = Painter(np.zeros((360, 640, 3), np.float32), cam, 1.0)
        draw_crop(painter, np.random.default_rng(seed), 2.0, 7.0, bank)
        if (box := painter.result()) is not None:
            heights.append(box[3] - box[1])
    assert len(heights) >= 15 and max(heights) <= tallest * 1.05, (heights, tallest)
