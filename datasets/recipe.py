"""Dataset recipes: one YAML file lists the sources of a training set and how to split them.

    name: streetwatch-v1
    seed: 0
    classes: [vending, clutter, flooding, garbage_bin]
    splits: {train: 0.8, val: 0.1, test: 0.1}     # for sources without splits of their own
    sources:
      - {kind: synthetic, name: synth, images: 1500, seed: 1}
      - kind: yolo
        name: garbage-cn
        path: ../../../shared/data/garbage-cn      # relative to this file
        class_map: {garbage: clutter, overflow: clutter, garbage_bin: garbage_bin}
        splits: {train: train, val: valid}        # keep the source's own split
      - kind: boxed_csv                           # photos boxed in a CSV (datasets/boxed_photos.py)
        name: amsterdam
        boxes: ../labels/clutter-amsterdam-boxes.csv
        labels: ../labels/clutter-amsterdam.csv   # image-level: its clutter=0 photos are negatives
        images: ../../../shared/data/clutter-amsterdam/images
        class_map: {clutter: clutter}

`streetwatch dataset build RECIPE` turns it into an ultralytics folder (see datasets/build.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vision.yaml_file import read_yaml

SPLITS = ("train", "val", "test")


class RecipeError(ValueError):
    """str() is one line naming the file and the field or path at fault."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticSource(Strict):
    kind: Literal["synthetic"]
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    images: int = Field(gt=0, le=1_000_000)
    seed: int = 0
    width: int = Field(default=640, ge=64, le=4096)
    height: int = Field(default=360, ge=64, le=4096)
    # real garbage pasted into the scenes: a YOLO folder (relative to the recipe) whose
    # train split's garbage/overflow boxes are cut; crop_share of the clutter piles use one
    garbage_crops: Path | None = None
    crop_share: float = Field(default=0.5, ge=0, le=1)


class YoloSource(Strict):
    kind: Literal["yolo"]
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    path: Path
    class_map: dict[str, str | None]  # source class name → recipe class (None: drop those boxes)
    splits: dict[Literal["train", "val", "test"], str] | None = None  # recipe split → source folder
    limit: int | None = Field(default=None, gt=0)  # at most this many images per split (quick runs)


class CompositeSource(Strict):
    """Real photos of another source (`of`, a yolo source of this recipe) as backgrounds, with
    standing water pasted on (a flooding box), wet roads (hard negatives) and camera conditions
    (night, IR, glare, rain, droplets, low bitrate, far away): datasets/synth/real_paste.py.
    Each composite keeps its background's split and labels, so nothing leaks across splits."""
    kind: Literal["composite"]
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    of: str
    images: int = Field(gt=0, le=1_000_000)
    seed: int = 0
    water_share: float = Field(default=0.4, ge=0, le=1)
    wet_share: float = Field(default=0.15, ge=0, le=1)
    effect_share: float = Field(default=0.7, ge=0, le=1)
    max_side: int = Field(default=640, ge=64, le=4096)


class BoxedCsvSource(Strict):
    """Real photos boxed in a CSV (file, split, class, x1, y1, x2, y2, normalised corners; e.g.
    datasets/labels/clutter-amsterdam-boxes.csv) plus an image-level CSV (file, clutter, split)
    whose clutter=0 photos come in as negatives: datasets/boxed_photos.py."""
    kind: Literal["boxed_csv"]
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    boxes: Path                        # the boxes CSV, relative to the recipe
    labels: Path                       # the image-level CSV, relative to the recipe
    images: Path                       # the photos' folder, relative to the recipe
    class_map: dict[str, str | None]   # CSV class name → recipe class (None: drop those boxes)
    limit: int | None = Field(default=None, gt=0)  # at most this many photos per split (quick runs)
    # train photos written this many times: a few dozen boxed street photos among thousands
    # of others would otherwise be one batch in a hundred
    repeat: int = Field(default=1, ge=1, le=100)
    # share of the repeated copies (never the original, never val or test) given one camera
    # condition of datasets/synth/real_paste.py: night, flash, IR, glare, rain, far away, ...
    effect_share: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    max_side: int = Field(default=640, ge=64, le=4096)  # the changed copies are written this size


Source = Annotated[Union[SyntheticSource, YoloSource, CompositeSource, BoxedCsvSource],
                   Field(discriminator="kind")]


class ContextLabels(Strict):
    """Context classes labelled on every image by an official YOLOv5 COCO checkpoint
    (vision/coco_labeller.py): people, vehicles and furniture the detector should keep seeing."""
    weights: Path                      # the release file (yolov5n.pt), relative to the recipe
    classes: dict[str, str]            # COCO class name → recipe class (several may share one)
    conf: float = Field(default=0.4, gt=0, lt=1)
    imgsz: int = Field(default=640, ge=64, le=1920)


class Recipe(Strict):
    # A letter or digit first: "." or ".." would make the output folder the datasets folder or its parent.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    seed: int = 0
    classes: list[str] = Field(min_length=1)
    splits: dict[Literal["train", "val", "test"], float] = Field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    sources: list[Source] = Field(min_length=1)
    context: ContextLabels | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Recipe":
        if abs(sum(self.splits.values()) - 1.0) > 1e-6:
            raise ValueError(f"splits must add up to 1, not {sum(self.splits.values()):g}")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("source names must be unique")
        for src in self.sources:
            if isinstance(src, (YoloSource, BoxedCsvSource)):
                unknown = sorted({c for c in src.class_map.values() if c is not None} - set(self.classes))
                if unknown:
                    raise ValueError(f"source {src.name}: class_map targets {unknown} are not in classes")
        yolo_names = {s.name for s in self.sources if isinstance(s, YoloSource)}
        for src in self.sources:
            if isinstance(src, CompositeSource):
                if src.of not in yolo_names:
                    raise ValueError(f"source {src.name}: of: {src.of!r} is no yolo source of this recipe")
                if src.water_share + src.wet_share > 1:
                    raise ValueError(f"source {src.name}: water_share + wet_share is over 1")
                if src.water_share and "flooding" not in self.classes:
                    raise ValueError(f"source {src.name}: pasted water needs a flooding class")
        if self.context is not None:
            unknown = sorted(set(self.context.classes.values()) - set(self.classes))
            if unknown:
                raise ValueError(f"context: classes targets {unknown} are not in classes")
        return self


def load_recipe(path: Path | str) -> Recipe:
    path = Path(path)
    raw = read_yaml(path, RecipeError)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        from streams.config import first_error

        raise RecipeError(f"{path}: {first_error(exc)}") from exc
    if recipe.context is not None:
        if not recipe.context.weights.is_absolute():
            recipe.context.weights = (path.parent / recipe.context.weights).resolve()
        if not recipe.context.weights.is_file():
            raise RecipeError(f"{path}: context: weights: file not found: {recipe.context.weights}")
    for src in recipe.sources:
        if isinstance(src, SyntheticSource) and src.garbage_crops is not None:
            if not src.garbage_crops.is_absolute():
                src.garbage_crops = (path.parent / src.garbage_crops).resolve()
            if not (src.garbage_crops / "train" / "images").is_dir():
                raise RecipeError(f"{path}: source {src.name}: garbage_crops: folder not found: "
                                  f"{src.garbage_crops / 'train' / 'images'}")
        if isinstance(src, BoxedCsvSource):
            for field, is_there in (("boxes", Path.is_file), ("labels", Path.is_file), ("images", Path.is_dir)):
                value = getattr(src, field)
                if not value.is_absolute():
                    value = (path.parent / value).resolve()
                    setattr(src, field, value)
                if not is_there(value):
                    what = "folder" if field == "images" else "file"
                    raise RecipeError(f"{path}: source {src.name}: {field}: {what} not found: {value}")
        if isinstance(src, YoloSource):
            if not src.path.is_absolute():
                src.path = (path.parent / src.path).resolve()
            if not src.path.is_dir():
                raise RecipeError(f"{path}: source {src.name}: folder not found: {src.path}")
            for split, folder in (src.splits or {}).items():
                if not (src.path / folder / "images").is_dir():
                    raise RecipeError(f"{path}: source {src.name}: split {split}: folder not found: "
                                      f"{src.path / folder / 'images'}")
    return recipe
