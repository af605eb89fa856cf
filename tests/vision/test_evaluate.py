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


class _Boxes:
    def __init__(self, cls: list[int], conf: list[float]):
        import torch

        self.cls, self.conf = torch.tensor(cls, dtype=torch.float32), torch.tensor(conf)


class _Said:
    """A model that scores each photo as its file name says (the demo manifest: 1 = clutter)."""

    def predict(self, source: str, **_):
        name = Path(source).stem
        score = {"hit": 0.9, "weak": 0.1, "alarm": 0.8}.get(name.split("-")[0], None)
        boxes = _Boxes([1], [score]) if score is not None else _Boxes([], [])
        return [type("R", (), {"boxes": boxes})()]


def test_image_level_on_labelled_photos_counts_and_names_wrong_calls(tmp_path):
    import pytest
    from PIL import Image

    from datasets.yolo_labels import LabelError
    from vision.evaluate import image_labels_report, image_level_on_labels

    truth = {"hit-1": 1, "hit-2": 1, "weak-1": 1, "alarm-1": 0, "clean-1": 0, "clean-2": 0}
    for name in truth:
        Image.new("RGB", (32, 32)).save(tmp_path / f"{name}.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,clutter,note\n" + "".join(f"{n}.jpg,{v},x\n" for n, v in truth.items()))
    result = image_level_on_labels(ROOT / "models" / "streetwatch-demo", labels, tmp_path, model=_Said())
    assert (result["tp"], result["fp"], result["fn"], result["tn"]) == (2, 1, 1, 2)
    assert result["precision"] == 2 / 3 and result["recall"] == 2 / 3
    assert sorted((w[0], w[1]) for w in result["wrong"]) == [("alarm-1.jpg", "false alarm"), ("weak-1.jpg", "missed")]
    report = image_labels_report(result, "t")
    assert "| 0.667 | 0.667 | 2 | 1 | 1 | 2 |" in report
    # ranked by best score: hit 0.9, hit 0.9, alarm 0.8, weak 0.1, clean 0, clean 0 → AP (1 + 1 + 3/4) / 3
    assert result["ranking"]["ap"] == pytest.approx((1 + 1 + 3 / 4) / 3) and result["ranking"]["base_rate"] == 0.5
    assert "| clutter | 0.917 | 0.50 | 0.67 | 0.67 |" in report
    assert result["flagged_other"] == {"flooding": 0, "street_vending": 0}
    assert "Photos flagged flooding (at its threshold): 0 of 6 (0.0%)" in report
    labels.write_text("file,clutter,split,note\nhit-1.jpg,1,val,x\nweak-1.jpg,1,test,x\nclean-1.jpg,0,val,x\n")
    val = image_level_on_labels(ROOT / "models" / "streetwatch-demo", labels, tmp_path, model=_Said(), split="val")
    assert val["images"] == 2 and val["tp"] == 1 and val["tn"] == 1
    import cv2

    from vision.evaluate import wrong_calls_picture

    sheet = cv2.imread(str(wrong_calls_picture(result, tmp_path, tmp_path / "out" / "wrong.jpg")))
    assert sheet.shape == (180, 6 * 240, 3)  # two wrong calls, padded to a row of six
    labels.write_text("file,clutter,note\nhit-1.jpg,1,x\nhit-2.jpg,yes,x\n")
    with pytest.raises(LabelError, match=r"labels.csv:3: clutter must be 0 or 1"):
        image_level_on_labels(ROOT / "models" / "streetwatch-demo", labels, tmp_path, model=_Said())
    labels.write_text("file,clutter,note\ngone.jpg,1,x\n")
    with pytest.raises(FileNotFoundError, match=r"labels.csv:2: no image"):
        image_level_on_labels(ROOT / "models" / "streetwatch-demo", labels, tmp_path, model=_Said())


def test_mistakes_finds_missed_and_false_boxes_and_draws_them(tmp_path):
    import cv2
    import torch
    from PIL import Image

    from vision.failures import contact_sheet, mistakes
    from vision.manifest import load_manifest

    for split in ("images", "labels"):
        (tmp_path / split / "val").mkdir(parents=True)
    for name in ("right", "wrong", "empty"):
        Image.new("RGB", (200, 100)).save(tmp_path / "images" / "val" / f"{name}.jpg")
    (tmp_path / "labels" / "val" / "right.txt").write_text("1 0.25 0.5 0.2 0.4\n")  # clutter at x 30-70
    (tmp_path / "labels" / "val" / "wrong.txt").write_text("1 0.25 0.5 0.2 0.4\n")

    class Model:
        def predict(self, source, **_):
            name = Path(source).stem
            xyxy = {"right": [[31, 30, 70, 70]], "wrong": [[130, 30, 170, 70]], "empty": []}[name]
            boxes = type("B", (), {"cls": torch.tensor([1.0] * len(xyxy)), "conf": torch.tensor([0.9] * len(xyxy)),
                                   "xyxy": torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4)})()
            return [type("R", (), {"boxes": boxes, "orig_shape": (100, 200)})()]

    manifest = load_manifest(ROOT / "models" / "streetwatch-demo")
    images = sorted((tmp_path / "images" / "val").glob("*.jpg"))
    found = mistakes(manifest, Model(), images, ["vending", "clutter", "flooding", "garbage_bin"])
    assert [(f["image"].stem, f["what"]) for f in found] == [("wrong", "missed clutter; false clutter")]
    sheet = cv2.imread(str(contact_sheet(found, tmp_path / "sheet.jpg")))
    assert sheet.shape == (200, 4 * 320, 3)


def _plain_yolo(root: Path) -> Path:
    """A Roboflow-style folder (garbage-cn's layout): valid/images, `path: .`, no sources.csv."""
    from PIL import Image

    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (96, 64), (90, 90, 90)).save(root / split / "images" / f"x{i}.jpg")
            (root / split / "labels" / f"x{i}.txt").write_text("1 0.5 0.5 0.3 0.3\n")
    (root / "valid" / "images" / "broken.jpg").write_text("not a jpeg")
    (root / "data.yaml").write_text("path: .\ntrain: train/images\nval: valid/images\nnames: {0: vending, 1: clutter}\n")
    return root / "data.yaml"


def test_eval_of_a_plain_data_yaml_reads_its_own_split_folder(tmp_path, monkeypatch):
    """`path: .` was taken from the working folder and `images/val` assumed: nothing was
    evaluated and the command said nothing; an unreadable photo was an IndexError."""
    data = _plain_yolo(tmp_path / "garbage")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = evaluate(ROOT / "models" / "streetwatch-demo", data, "val", tmp_path / "report").read_text()
    assert "on garbage (val, 320 px)" in text and "## untagged images (3)" in text and "| clutter |" in text
    assert "1 unreadable image(s) left out: broken.jpg" in text
    assert "images with it |\n|---|---|---|---|\n| clutter | nan | 0.000 | 3 |" in text  # labels of valid/labels


def test_eval_of_a_bad_data_yaml_is_one_line(tmp_path, capsys):
    from streetwatch_cli import main

    data = _plain_yolo(tmp_path / "g")
    model = str(ROOT / "models" / "streetwatch-demo")
    cases = {"path: .\nval: valid/images\n": "no 'names'",
             "path: .\nval: valid/images\nnames: {a: vending}\n": "'names' keys must be class ids",
             "- a\n- b\n": "expected a mapping",
             "path: .\ntrain: train/images\nnames: [vending, clutter]\n": "no 'val' entry",
             "path: .\nval: nowhere/images\nnames: [vending, clutter]\n": "folder not found",
             "path: .\nval: empty\nnames: [vending, clutter]\n": "no images in the val split"}
    (tmp_path / "g" / "empty").mkdir()
    for text, message in cases.items():
        data.write_text(text)
        assert main(["eval", model, str(data), "--out", str(tmp_path / "r")]) == 2, text
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"streetwatch: {data}") and message in err and "\n" not in err, (text, err)


def test_image_level_runs_the_model_at_the_size_asked_for(tmp_path):
    """--imgsz weighs accuracy against edge speed: it must reach predict, not the manifest's size."""
    from PIL import Image

    from vision.evaluate import image_level_on_labels
    from vision.manifest import load_manifest

    sizes = []

    class _Sized(_Said):
        def predict(self, source: str, **kwargs):
            sizes.append(kwargs["imgsz"])
            return super().predict(source)

    Image.new("RGB", (32, 32)).save(tmp_path / "hit-1.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,clutter,note\nhit-1.jpg,1,x\n")
    demo = ROOT / "models" / "streetwatch-demo"
    image_level_on_labels(demo, labels, tmp_path, model=_Sized())
    image_level_on_labels(demo, labels, tmp_path, model=_Sized(), imgsz=416)
    assert sizes == [load_manifest(demo).imgsz, 416] and load_manifest(demo).imgsz != 416
