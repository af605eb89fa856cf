import csv
from pathlib import Path

import pytest
import yaml
from PIL import Image

from datasets.boxed_photos import photo_split, read_boxed, read_image_labels
from datasets.build import build_dataset, is_built
from datasets.recipe import BoxedCsvSource, Recipe, RecipeError, load_recipe
from datasets.yolo_labels import LabelError, read_labels

REPO = Path(__file__).resolve().parents[2]

# image-level rows: file, clutter, split
LABELS = [("p1.jpg", 1, "val"), ("p2.jpg", 1, "val"), ("n1.jpg", 0, "val"), ("n2.jpg", 0, "val"),
          ("n3.jpg", 0, "val"), ("t1.jpg", 1, "test"), ("tn.jpg", 0, "test"), ("u1.jpg", 1, "val")]
BOXES = [("p1.jpg", "train", "clutter", 0.1, 0.2, 0.5, 0.6), ("p1.jpg", "train", "clutter", 0.6, 0.1, 0.9, 0.3),
         ("p2.jpg", "val", "clutter", 0.0, 0.0, 1.0, 0.5), ("p2.jpg", "val", "bin", 0.2, 0.2, 0.3, 0.3)]


def write_csv(path: Path, header: list[str], rows: list) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_source(tmp_path: Path, box_rows=BOXES, label_rows=LABELS, **source) -> Path:
    images = tmp_path / "photos"
    images.mkdir(exist_ok=True)
    for file, *_ in label_rows:
        Image.new("RGB", (40, 30), (120, 110, 100)).save(images / file)
    write_csv(tmp_path / "boxes.csv", ["file", "split", "class", "x1", "y1", "x2", "y2"], box_rows)
    write_csv(tmp_path / "labels.csv", ["file", "clutter", "split", "note"], [(*r, "") for r in label_rows])
    recipe = {"name": "boxed", "seed": 0, "classes": ["vending", "clutter", "garbage_bin"],
              "sources": [{"kind": "boxed_csv", "name": "ams", "boxes": "boxes.csv", "labels": "labels.csv",
                           "images": "photos", "class_map": {"clutter": "clutter", "bin": None}, **source}]}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def built_labels(out: Path, origins=("real",)) -> dict[str, tuple[str, list]]:
    """image stem → (split, boxes) from a build's sources.csv and label files."""
    rows = list(csv.DictReader((out / "sources.csv").open()))
    assert all(r["origin"] in origins and r["source"] == "ams" for r in rows)
    got = {}
    for r in rows:
        image = out / r["image"]
        assert image.is_file()
        label = out / "labels" / r["split"] / f"{image.stem}.txt"
        got[image.stem.split("__", 1)[1]] = (r["split"], read_labels(label, 3))
    return got


def test_boxes_land_in_their_split_and_clean_photos_come_as_negatives(tmp_path):
    data, summary = build_dataset(load_recipe(make_source(tmp_path)), tmp_path / "out")
    got = built_labels(tmp_path / "out")
    split, boxes = got["p1"]
    assert split == "train" and [b.class_id for b in boxes] == [1, 1]
    assert boxes[0].cx == pytest.approx(0.3) and boxes[0].cy == pytest.approx(0.4)
    assert boxes[0].w == pytest.approx(0.4) and boxes[0].h == pytest.approx(0.4)
    split, boxes = got["p2"]  # the bin box maps to None: dropped, the clutter box kept
    assert split == "val" and len(boxes) == 1 and boxes[0].h == pytest.approx(0.5)
    for negative in ("n1", "n2", "n3"):
        assert got[negative] == (photo_split(f"{negative}.jpg", "val"), [])
    # the unboxed clutter photo is not taught as clean; the test family has no boxes yet, so its
    # clean photo is not taken either (a test split of negatives only would mislead)
    assert "u1" not in got and "t1" not in got and "tn" not in got
    assert "ams: 2 clutter photos left out" in summary.table()
    assert yaml.safe_load(data.read_text())["names"] == {0: "vending", 1: "clutter", 2: "garbage_bin"}


def test_boxed_test_photos_bring_their_clean_neighbours(tmp_path):
    boxes = [*BOXES, ("t1.jpg", "test", "clutter", 0.4, 0.4, 0.6, 0.6)]
    build_dataset(load_recipe(make_source(tmp_path, box_rows=boxes)), tmp_path / "out")
    got = built_labels(tmp_path / "out")
    assert got["t1"][0] == "test" and len(got["t1"][1]) == 1
    assert got["tn"] == ("test", [])


def test_photo_split_keeps_test_and_halves_the_rest_by_photo():
    names = [f"photo_{i}.jpg" for i in range(200)]
    assert {photo_split(n, "test") for n in names} == {"test"}
    halves = [photo_split(n, "val") for n in names]
    assert set(halves) == {"train", "val"} and 60 < halves.count("train") < 140
    assert halves == [photo_split(n, "val") for n in names]  # stable


def test_limit_caps_each_split(tmp_path):
    build_dataset(load_recipe(make_source(tmp_path, limit=1)), tmp_path / "out")
    splits = [split for split, _ in built_labels(tmp_path / "out").values()]
    assert sorted(splits) == sorted(set(splits)) and "train" in splits and "val" in splits


def test_new_boxes_make_a_new_dataset(tmp_path):
    recipe_path = make_source(tmp_path)
    build_dataset(load_recipe(recipe_path), tmp_path / "out")
    assert is_built(load_recipe(recipe_path), tmp_path / "out")
    with (tmp_path / "boxes.csv").open("a") as f:
        f.write("u1.jpg,val,clutter,0.1,0.1,0.2,0.2\n")
    assert not is_built(load_recipe(recipe_path), tmp_path / "out")


@pytest.mark.parametrize("row,message", [
    (("n1.jpg", "val", "clutter", 0.1, 0.1, 0.2, 0.2), "labels.csv says clutter=0"),
    (("zz.jpg", "val", "clutter", 0.1, 0.1, 0.2, 0.2), "'zz.jpg' is not in"),
    (("u1.jpg", "val", "clutter", 0.5, 0.1, 0.2, 0.2), "0 <= x1 < x2 <= 1"),
    (("u1.jpg", "val", "clutter", 0.1, 0.1, 0.2, 1.2), "0 <= x1 < x2 <= 1"),
    (("u1.jpg", "val", "clutter", "a", 0.1, 0.2, 0.2), "must be numbers"),
    (("u1.jpg", "val", "sofa", 0.1, 0.1, 0.2, 0.2), "class 'sofa' is not in the source's class_map"),
    (("u1.jpg", "test", "clutter", 0.1, 0.1, 0.2, 0.2), "test photos stay test"),
    (("t1.jpg", "val", "clutter", 0.1, 0.1, 0.2, 0.2), "test photos stay test"),
    (("p1.jpg", "val", "clutter", 0.1, 0.1, 0.2, 0.2), "in split val here and train on an earlier line"),
    (("u1.jpg", "dev", "clutter", 0.1, 0.1, 0.2, 0.2), "split must be one of"),
])
def test_bad_box_row_is_named_and_nothing_is_written(tmp_path, row, message):
    recipe = load_recipe(make_source(tmp_path, box_rows=[*BOXES, row]))
    with pytest.raises(LabelError) as err:
        build_dataset(recipe, tmp_path / "out")
    assert message in str(err.value) and "boxes.csv:6" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_csv_without_a_column_is_refused(tmp_path):
    recipe = load_recipe(make_source(tmp_path))
    write_csv(tmp_path / "boxes.csv", ["file", "split", "x1", "y1", "x2", "y2"], [])
    with pytest.raises(LabelError, match="header lacks class"):
        build_dataset(recipe, tmp_path / "out")


def test_missing_photo_is_named(tmp_path):
    recipe = load_recipe(make_source(tmp_path))
    (tmp_path / "photos" / "n2.jpg").unlink()
    with pytest.raises(LabelError, match="image not found: .*n2.jpg"):
        build_dataset(recipe, tmp_path / "out")


@pytest.mark.parametrize("change,message", [
    ({"boxes": "nowhere.csv"}, "boxes: file not found"),
    ({"images": "no-photos"}, "images: folder not found"),
    ({"class_map": {"clutter": "rubbish"}}, "class_map targets ['rubbish'] are not in classes"),
])
def test_recipe_mistakes_name_the_field(tmp_path, change, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(make_source(tmp_path, **change))
    assert message in str(err.value)


def test_committed_amsterdam_boxes_agree_with_the_image_level_labels():
    """The hand-made boxes: every clutter photo is boxed, each photo in the split its file name
    gives it, no box on a clean photo, every corner inside the photo."""
    labels_csv = REPO / "datasets" / "labels" / "clutter-amsterdam.csv"
    boxes_csv = REPO / "datasets" / "labels" / "clutter-amsterdam-boxes.csv"
    source = BoxedCsvSource(kind="boxed_csv", name="ams", boxes=boxes_csv, labels=labels_csv, images=REPO,
                            class_map={"clutter": "clutter"})
    recipe = Recipe(name="ams", classes=["clutter"], sources=[source])
    labels = read_image_labels(labels_csv)
    photos = read_boxed(source, recipe, labels)
    assert all(p.boxes for p in photos)
    assert all(p.split == photo_split(p.file, labels[p.file][1]) for p in photos)
    boxed = {p.file for p in photos}
    assert boxed == {f for f, (c, s) in labels.items() if c == 1}


def test_repeat_writes_train_photos_that_many_times_and_val_and_test_once(tmp_path):
    build_dataset(load_recipe(make_source(tmp_path, repeat=3)), tmp_path / "out")
    got = built_labels(tmp_path / "out")
    copies = sorted(stem for stem in got if stem.startswith("p1"))
    assert copies == ["p1", "p1__r1", "p1__r2"] and all(len(got[c][1]) == 2 for c in copies)
    assert all(got[c][0] == "train" for c in copies)
    assert [stem for stem in got if stem.startswith("p2")] == ["p2"] and got["p2"][0] == "val"
    # clean street photos are repeated with them (the real domain's balance stays), outside train once
    for stem in ("n1", "n2", "n3"):
        n = sum(1 for s in got if s.split("__")[0] == stem)
        assert n == (3 if got[stem][0] == "train" else 1)


def test_effect_share_changes_repeated_copies_only_and_moves_boxes_with_a_distant_view(tmp_path):
    build_dataset(load_recipe(make_source(tmp_path, repeat=4, effect_share=1.0, seed=1)), tmp_path / "out")
    got = built_labels(tmp_path / "out", origins=("real", "composite"))
    copies = sorted(stem for stem in got if stem.startswith("p1"))
    assert copies[0] == "p1" and len(copies) == 4
    effects = [stem.split("__")[-1] for stem in copies[1:]]
    assert all(stem.startswith(f"p1__r{i + 1}__") for i, stem in enumerate(copies[1:])), copies
    assert set(effects) <= {"night", "ir", "glare", "rain", "droplets", "low_bitrate", "small", "flash"}
    original = (tmp_path / "photos" / "p1.jpg").read_bytes()
    images = tmp_path / "out" / "images" / "train"
    assert (images / "ams__p1.jpg").read_bytes() == original  # the original stays as it was
    for stem in copies[1:]:
        assert (images / f"ams__{stem}.jpg").read_bytes() != original
        boxes = got[stem][1]
        assert len(boxes) == 2 and all(0 <= b.cx - b.w / 2 and b.cx + b.w / 2 <= 1.0001 for b in boxes)
        if stem.endswith("__small"):  # the scene shrunk into the frame: its boxes with it
            assert boxes[0].w < 0.4 * 0.61
        else:
            assert abs(boxes[0].w - 0.4) < 1e-4
    assert [stem for stem in got if stem.startswith("p2")] == ["p2"]  # val untouched
    sources = (tmp_path / "out" / "sources.csv").read_text()
    assert "ams__p1__r1__" in sources and "composite" in sources


def test_a_photo_opencv_cannot_read_is_a_clear_error_when_a_copy_is_to_change(tmp_path):
    recipe = make_source(tmp_path, repeat=2, effect_share=1.0)
    (tmp_path / "photos" / "p1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(LabelError, match="not an image OpenCV can read: .*p1.jpg"):
        build_dataset(load_recipe(recipe), tmp_path / "out")
