import csv
from pathlib import Path

import pytest
import yaml
from PIL import Image

from datasets.build import build_dataset
from datasets.recipe import RecipeError, load_recipe
from datasets.yolo_labels import LabelError, read_labels


def make_yolo_source(root: Path, labels: dict[str, str]) -> Path:
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"names": {0: "garbage", 1: "garbage_bin", 2: "overflow"}}))
    for stem, text in labels.items():
        Image.new("RGB", (64, 48), (90, 90, 90)).save(root / "train" / "images" / f"{stem}.jpg")
        (root / "train" / "labels" / f"{stem}.txt").write_text(text)
    return root


def write_recipe(tmp_path: Path, **overrides) -> Path:
    recipe = {
        "name": "tiny", "seed": 3, "classes": ["vending", "clutter", "flooding", "garbage_bin"],
        "splits": {"train": 0.5, "val": 0.5, "test": 0.0},
        "sources": [
            {"kind": "synthetic", "name": "synth", "images": 4, "seed": 2, "width": 160, "height": 96},
            {"kind": "yolo", "name": "real", "path": "src",
             "class_map": {"garbage": "clutter", "overflow": "clutter", "garbage_bin": None}},
        ],
        **overrides,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


GOOD_LABELS = {"a": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n", "b": "2 0.5 0.5 0.4 0.4\n", "c": ""}


def test_build_writes_tagged_dataset_and_maps_classes(tmp_path):
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    data, summary = build_dataset(load_recipe(write_recipe(tmp_path)), tmp_path / "out")
    spec = yaml.safe_load(data.read_text())
    assert spec["names"] == {0: "vending", 1: "clutter", 2: "flooding", 3: "garbage_bin"}
    rows = list(csv.DictReader((tmp_path / "out" / "sources.csv").open()))
    assert sorted(r["origin"] for r in rows) == ["real"] * 3 + ["synthetic"] * 4
    real = {Path(r["image"]).stem: r for r in rows if r["origin"] == "real"}
    label_a = (tmp_path / "out" / "labels" / real["real__a"]["split"] / "real__a.txt").read_text().split()
    assert label_a[0] == "1" and len(label_a) == 5  # garbage → clutter; garbage_bin dropped
    for r in rows:
        assert (tmp_path / "out" / r["image"]).is_file()
    assert sum(n for (src, _), n in summary.images.items() if src == "real") == 3
    assert "clutter" in summary.table()


def test_same_recipe_same_dataset(tmp_path):
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    recipe = load_recipe(write_recipe(tmp_path))
    build_dataset(recipe, tmp_path / "one")
    build_dataset(recipe, tmp_path / "two")
    one = sorted(p.relative_to(tmp_path / "one").as_posix() for p in (tmp_path / "one").rglob("*.txt"))
    two = sorted(p.relative_to(tmp_path / "two").as_posix() for p in (tmp_path / "two").rglob("*.txt"))
    assert one == two
    assert all((tmp_path / "one" / f).read_text() == (tmp_path / "two" / f).read_text() for f in one)


@pytest.mark.parametrize("line,message", [
    ("7 0.5 0.5 0.1 0.1", "class 7 out of range"),
    ("0 0.5 0.5 1.4 0.1", "outside the normalised range"),
    ("0 0.95 0.5 0.3 0.1", "extends outside the image"),
    ("0 0.5 0.5 0.1", "5 fields"),
    ("x 0.5 0.5 0.1 0.1", "not numbers"),
])
def test_bad_label_line_is_named_and_nothing_is_written(tmp_path, line, message):
    make_yolo_source(tmp_path / "src", {**GOOD_LABELS, "bad": f"0 0.5 0.5 0.1 0.1\n{line}\n"})
    with pytest.raises(LabelError) as err:
        build_dataset(load_recipe(write_recipe(tmp_path)), tmp_path / "out")
    assert message in str(err.value) and "bad.txt:2" in str(err.value)
    assert not (tmp_path / "out").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out-")] == []


def test_recipe_errors_name_the_field_or_folder(tmp_path):
    with pytest.raises(RecipeError, match="folder not found"):
        load_recipe(write_recipe(tmp_path))  # no src folder
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    with pytest.raises(RecipeError, match="splits must add up to 1"):
        load_recipe(write_recipe(tmp_path, splits={"train": 0.5, "val": 0.2}))
    with pytest.raises(RecipeError, match="sources.0.synthetic.imagez"):
        load_recipe(write_recipe(tmp_path, sources=[{"kind": "synthetic", "name": "s", "imagez": 3}]))
    with pytest.raises(RecipeError, match="not in classes"):
        load_recipe(write_recipe(tmp_path, classes=["vending"]))


def test_missing_label_file_is_a_negative(tmp_path):
    p = tmp_path / "none.txt"
    assert read_labels(p, 3) == []


def test_a_folder_named_for_two_splits_is_shared_and_another_kept_whole(tmp_path):
    """The source's train folder feeds train and val (by the recipe's ratios); its valid
    folder is the test split, whole: real test photos never reach training."""
    src = make_yolo_source(tmp_path / "src", {f"t{i:02d}": "0 0.5 0.5 0.2 0.2\n" for i in range(40)})
    (src / "valid" / "images").mkdir(parents=True)
    (src / "valid" / "labels").mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (64, 48)).save(src / "valid" / "images" / f"v{i}.jpg")
    sources = [{"kind": "yolo", "name": "real", "path": "src", "class_map": {"garbage": "clutter"},
                "splits": {"train": "train", "val": "train", "test": "valid"}}]
    recipe = write_recipe(tmp_path, sources=sources, splits={"train": 0.7, "val": 0.2, "test": 0.1})
    build_dataset(load_recipe(recipe), tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "sources.csv").open()))
    by_split = {s: sorted(Path(r["image"]).stem for r in rows if r["split"] == s) for s in ("train", "val", "test")}
    assert by_split["test"] == [f"real__v{i}" for i in range(5)]
    assert len(by_split["train"]) + len(by_split["val"]) == 40
    assert 3 <= len(by_split["val"]) <= 17  # ~2/9 of 40
    assert all(s.startswith("real__t") for s in by_split["train"] + by_split["val"])


def test_frames_of_one_reviewed_order_stay_in_one_split(tmp_path):
    """A review export's provenance.csv groups frames by order: all of an order's frames land
    in the same split (a held-out order is really unseen)."""
    src = make_yolo_source(tmp_path / "src", {f"e{i:02d}": "0 0.5 0.5 0.2 0.2\n" for i in range(60)})
    rows = ["image,camera,order_id,event_id,model_version,verdict,issue_type,reason"]
    rows += [f"e{i:02d}.jpg,cam,{i // 6},e{i:02d},m:1,confirmed,clutter," for i in range(60)]  # 10 orders × 6
    (src / "train" / "provenance.csv").write_text("\n".join(rows) + "\n")
    sources = [{"kind": "yolo", "name": "reviews", "path": "src", "class_map": {"garbage": "clutter"}}]
    build_dataset(load_recipe(write_recipe(tmp_path, sources=sources, splits={"train": 0.5, "val": 0.25, "test": 0.25})),
                  tmp_path / "out")
    split_of = {Path(r["image"]).stem.split("__")[1]: r["split"] for r in csv.DictReader((tmp_path / "out" / "sources.csv").open())}
    for order in range(10):
        assert len({split_of[f"e{i:02d}"] for i in range(order * 6, order * 6 + 6)}) == 1
    assert len(set(split_of.values())) > 1  # and orders do spread over the splits


def test_images_of_one_name_in_two_folders_of_a_source_both_arrive(tmp_path):
    src = make_yolo_source(tmp_path / "src", {"x": "0 0.5 0.5 0.2 0.2\n"})
    (src / "valid" / "images").mkdir(parents=True)
    (src / "valid" / "labels").mkdir(parents=True)
    Image.new("RGB", (64, 48), (0, 200, 0)).save(src / "valid" / "images" / "x.jpg")
    (src / "valid" / "labels" / "x.txt").write_text("2 0.5 0.5 0.4 0.4\n")
    sources = [{"kind": "yolo", "name": "real", "path": "src", "class_map": {"garbage": "clutter", "overflow": "clutter"}}]
    build_dataset(load_recipe(write_recipe(tmp_path, sources=sources)), tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "sources.csv").open()))
    assert len(rows) == 2 and len({r["image"] for r in rows}) == 2
    pixels = sorted(Image.open(tmp_path / "out" / r["image"]).getpixel((5, 5))[1] for r in rows)
    assert pixels[0] < 150 < pixels[1]  # the grey one and the green one: neither overwrote the other
    labels = sorted((tmp_path / "out" / r["image"].replace("images", "labels", 1)).with_suffix(".txt").read_text()
                    for r in rows)
    assert [t.split()[3] for t in labels] == ["0.200000", "0.400000"]


@pytest.mark.parametrize("text, message", [
    ("- garbage\n- overflow\n", "expected a mapping"),
    ("names: {zero: garbage}\n", "'names' keys must be class ids"),
    ("names: {0: garbage, 2: overflow}\n", "'names' ids must be 0..1"),
    ("names: 5\n", "'names' must be a list"),
    ("names: [garbage\n", "not valid YAML"),
])
def test_a_sources_bad_data_yaml_is_a_label_error_naming_it(tmp_path, capsys, text, message):
    """A list, or ids that are not numbers, was an AttributeError or ValueError traceback."""
    from streetwatch_cli import main

    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    (tmp_path / "src" / "data.yaml").write_text(text)
    with pytest.raises(LabelError, match=message):
        build_dataset(load_recipe(write_recipe(tmp_path)), tmp_path / "out")
    assert main(["dataset", "build", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the synthetic source's progress bars
    assert err.startswith(f"streetwatch: {tmp_path / 'src' / 'data.yaml'}") and message in err
