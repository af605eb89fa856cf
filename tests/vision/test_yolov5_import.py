"""`streetwatch model init --from-yolov5`: the COCO release checkpoint's backbone and neck,
tensor for tensor, in ultralytics starting weights; anything else is a one-line refusal."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from streetwatch_cli import main

ROOT = Path(__file__).resolve().parents[2]
YOLOV5N = ROOT.parent / "shared" / "weights" / "yolov5n-coco" / "yolov5n.pt"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("init") / "start.pt"
    assert main(["model", "init", "--from-yolov5", str(YOLOV5N), str(out)]) == 0
    return out


def test_backbone_and_neck_are_the_checkpoints_tensors_and_the_head_is_fresh(converted):
    import torch
    from ultralytics import YOLO

    from vision.yolov5_import import read_yolov5

    source = read_yolov5(YOLOV5N)
    assert source.scale == "n" and source.names[:3] == ["person", "bicycle", "car"] and len(source.names) == 80
    model = YOLO(str(converted)).model
    state = model.state_dict()
    body = [k for k in state if not k.startswith("model.24.")]
    assert len(body) == 342
    assert all(torch.equal(state[k].float(), source.state[k].float()) for k in body)
    # the anchor head does not fit the anchor-free one: none of its tensors may have been copied
    assert not any(k in state and state[k].shape == v.shape and torch.equal(state[k].float(), v)
                   for k, v in source.state.items() if k.startswith("model.24."))


def test_converted_weights_see_what_coco_taught_them(converted):
    """The layers feeding the head respond to a real photo as the original's do: the same
    features, not merely the same names (P5 of bus.jpg, compared with the source tensors run
    through the same modules)."""
    import torch
    from ultralytics import YOLO
    from ultralytics.utils import ASSETS

    from vision.yolov5_import import read_yolov5

    import cv2

    img = cv2.resize(cv2.imread(str(ASSETS / "bus.jpg")), (320, 320))[:, :, ::-1].copy()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    model = YOLO(str(converted)).model.float().eval()
    fresh = YOLO("yolov5n.yaml").model.float().eval()
    fresh.load_state_dict({k: v for k, v in read_yolov5(YOLOV5N).state.items() if not k.startswith("model.24.")},
                          strict=False)
    with torch.no_grad():
        a, b = x, x
        for layer_a, layer_b in zip(model.model[:10], fresh.model[:10]):  # the backbone is a plain chain
            a, b = layer_a(a), layer_b(b)
    assert torch.allclose(a, b, atol=1e-5) and a.abs().mean() > 0.01


def test_not_a_yolov5_release_file_is_one_line(tmp_path, capsys):
    import torch

    (tmp_path / "text.pt").write_bytes(b"not a checkpoint")
    torch.save({"model": {"weights": torch.zeros(3)}}, tmp_path / "plain.pt")
    ours = ROOT / "models" / "streetwatch-demo" / "streetwatch-demo.pt"
    for src, why in ((tmp_path / "text.pt", "not a torch checkpoint"), (tmp_path / "plain.pt", "not a YOLOv5 release"),
                     (ours, "not a YOLOv5 release"), (tmp_path / "missing.pt", "no such checkpoint")):
        assert main(["model", "init", "--from-yolov5", str(src), str(tmp_path / "out.pt")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("streetwatch: ") and why in err and "\n" not in err, err
    assert not (tmp_path / "out.pt").exists()


def test_the_yolov5_repositorys_classes_are_never_imported_or_run():
    """A pickle naming models.yolo.Model gets an empty module, not code of that name."""
    import io
    import sys

    import torch

    from vision.yolov5_import import _stub_pickle

    loaded = _stub_pickle().Unpickler(io.BytesIO(b"cmodels.yolo\nModel\n.")).load()  # pickle's GLOBAL opcode
    assert loaded.__module__ == "yolov5_stub.models.yolo" and loaded.__name__ == "Model"
    assert issubclass(loaded, torch.nn.Module) and loaded.forward is torch.nn.Module.forward
    assert "models.yolo" not in sys.modules
    assert _stub_pickle().Unpickler(io.BytesIO(pickle.dumps({"a": 1}))).load() == {"a": 1}  # the rest as pickle
