"""What vision.train hands ultralytics: the fine-tuning rate must reach it, or --lr0 is a no-op."""

from pathlib import Path

import pytest

import vision.train


class FakeYolo:
    calls: list[dict] = []

    def __init__(self, model: str) -> None:
        self.model = model

    def add_callback(self, *_args) -> None:
        pass

    def train(self, **kwargs) -> None:
        FakeYolo.calls.append(kwargs)


@pytest.fixture
def fake_yolo(monkeypatch):
    import ultralytics

    FakeYolo.calls = []
    monkeypatch.setattr(ultralytics, "YOLO", FakeYolo)
    return FakeYolo


def test_lr0_fine_tunes_with_adamw_at_that_rate_and_no_warmup(fake_yolo, tmp_path: Path):
    vision.train.train(tmp_path / "data.yaml", model="start.pt", epochs=2, project=tmp_path, export=False,
                       freeze=0, lr0=0.0002)
    (kwargs,) = fake_yolo.calls
    # ultralytics' "auto" optimizer would silently replace lr0 with its own rate
    assert kwargs["optimizer"] == "AdamW" and kwargs["lr0"] == 0.0002 and kwargs["warmup_epochs"] == 0
    assert kwargs["freeze"] is None and kwargs["pretrained"].endswith("start.pt")


def test_without_lr0_ultralytics_keeps_its_own_schedule(fake_yolo, tmp_path: Path):
    vision.train.train(tmp_path / "data.yaml", model="start.pt", epochs=2, project=tmp_path, export=False,
                       freeze=10)
    (kwargs,) = fake_yolo.calls
    assert not {"optimizer", "lr0", "warmup_epochs"} & kwargs.keys() and kwargs["freeze"] == 10
